package deploy_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/seed-5eb4e92e/deploybot/backends/marathon"
	"github.com/seed-5eb4e92e/deploybot/backends/marathon/marathontest"
	"github.com/seed-5eb4e92e/deploybot/deploy"
)

func blueGreenEnv(t *testing.T, timeout time.Duration) *deployEnv {
	t.Helper()
	e := newDeployEnv(t, deploy.Target{App: "/platform/api", Strategy: deploy.BlueGreen, Step: 1, VerifyTimeout: timeout})
	// The recorded app is a blue colour with marathon-lb's labels.
	e.marathon.AddApp(marathontest.AppSpec{ID: "/platform/api-blue", Image: oldImage, Instances: 3})
	return e
}

// TestBlueGreenDeploy: the green app grows a step at a time while blue
// shrinks, and blue is removed once green serves every instance.
func TestBlueGreenDeploy(t *testing.T) {
	t.Parallel()
	e := blueGreenEnv(t, 2*time.Second)
	res, stages, err := e.deploy(t, request("main"), &memSteps{})
	if err != nil {
		t.Fatalf("deploy: %v (stages %q)", err, stages)
	}
	green, ok := e.marathon.App("/platform/api-green")
	if !ok || green.Image != res.Artifact || green.Instances != 3 || green.Labels[marathon.LabelDeploymentColour] != marathon.ColourGreen {
		t.Fatalf("green = %+v", green)
	}
	if green.Labels[marathon.LabelDeploymentGroup] != "shop-api" || green.Labels[deploy.LabelJob] == "" {
		t.Fatalf("green labels %v; want blue's group kept and the job", green.Labels)
	}
	if _, ok := e.marathon.App("/platform/api-blue"); ok {
		t.Fatal("blue was not removed")
	}
	if res.PreviousArtifact != oldImage || res.App != "/platform/api-green" {
		t.Fatalf("result %+v", res)
	}
	var growth []string
	for _, s := range stages {
		if strings.HasPrefix(s, "blue/green: green ") {
			growth = append(growth, s)
		}
	}
	if len(growth) < 3 {
		t.Fatalf("the shift was not gradual: %q", growth)
	}
	live, err := e.d.Live(t.Context(), "api", "staging")
	if err != nil || live.App != "/platform/api-green" || live.Healthy != 3 {
		t.Fatalf("live = %+v, %v", live, err)
	}
}

// TestBlueGreenAbort: green never becomes healthy; blue is scaled back
// and green removed, so traffic stays on blue.
func TestBlueGreenAbort(t *testing.T) {
	t.Parallel()
	e := blueGreenEnv(t, 150*time.Millisecond)
	e.setUnhealthy(func(app, _ string) bool { return app == "/platform/api-green" })
	_, _, err := e.deploy(t, request("main"), &memSteps{})
	if !errors.Is(err, deploy.ErrRolledBack) || !strings.Contains(err.Error(), "Traffic stays on /platform/api-blue") {
		t.Fatalf("err = %v", err)
	}
	blue, ok := e.marathon.App("/platform/api-blue")
	if !ok || blue.Instances != 3 || blue.Image != oldImage {
		t.Fatalf("blue = %+v (exists %v); want it back at 3", blue, ok)
	}
	if _, ok := e.marathon.App("/platform/api-green"); ok {
		t.Fatal("green was left behind")
	}
}
