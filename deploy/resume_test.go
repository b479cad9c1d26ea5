package deploy_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/seed-5eb4e92e/deploybot/backends/marathon/marathontest"
	"github.com/seed-5eb4e92e/deploybot/deploy"
)

// The tests here run a job to a point, as if its worker then died, and
// run it again with the same steps, as the next worker would: the second
// run must finish what the first began, and change nothing twice.

// forget drops steps, as if the first run had died before recording them.
func (s *memSteps) forget(names ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range names {
		delete(s.m, n)
	}
}

// TestBlueGreenRunAgainAfterOldColourRemoved: the first run removed blue
// but died before recording that it was done.
func TestBlueGreenRunAgainAfterOldColourRemoved(t *testing.T) {
	t.Parallel()
	e := blueGreenEnv(t, 2*time.Second)
	steps := &memSteps{}
	first, _, err := e.deploy(t, request("main"), steps)
	if err != nil {
		t.Fatal(err)
	}
	steps.forget("bg_done")
	before := changes(e.marathon)
	again, _, err := e.deploy(t, request("main"), steps)
	if err != nil || again.App != first.App || again.Artifact != first.Artifact || again.PreviousArtifact != oldImage {
		t.Fatalf("run again = %+v, %v; want the first run's %+v", again, err, first)
	}
	// It cannot know whether blue's removal went through, so it asks
	// again, and Marathon finds nothing to remove; nothing else is sent.
	if got := changes(e.marathon)[len(before):]; !slices.Equal(got, []string{"DELETE /v2/apps/platform/api-blue?force=false"}) {
		t.Fatalf("the second run sent %q", got)
	}
	if _, ok := e.marathon.App("/platform/api-blue"); ok {
		t.Fatal("blue is back")
	}
}

// TestBlueGreenAbortRunAgain: a job whose abort completed is run again; it
// reports the same failure and leaves traffic on blue.
func TestBlueGreenAbortRunAgain(t *testing.T) {
	t.Parallel()
	e := blueGreenEnv(t, 150*time.Millisecond)
	e.setUnhealthy(func(app, _ string) bool { return app == "/platform/api-green" })
	steps := &memSteps{}
	if _, _, err := e.deploy(t, request("main"), steps); !errors.Is(err, deploy.ErrRolledBack) {
		t.Fatalf("first run: %v", err)
	}
	_, _, err := e.deploy(t, request("main"), steps)
	if !errors.Is(err, deploy.ErrRolledBack) {
		t.Fatalf("run again = %v; want the same rolled-back failure", err)
	}
	if blue, ok := e.marathon.App("/platform/api-blue"); !ok || blue.Instances != 3 || blue.Image != oldImage {
		t.Fatalf("blue = %+v (exists %v)", blue, ok)
	}
	if _, ok := e.marathon.App("/platform/api-green"); ok {
		t.Fatal("the second run brought green back")
	}
}

// TestRollingRunAgainAfterAutoRollback: the rollback of an unhealthy
// rollout is followed again, not mistaken for someone else's change.
func TestRollingRunAgainAfterAutoRollback(t *testing.T) {
	t.Parallel()
	e := newDeployEnv(t, deploy.Target{VerifyTimeout: 100 * time.Millisecond})
	e.marathon.AddApp(marathontest.AppSpec{ID: "/platform/api-staging", Image: oldImage, Instances: 2})
	steps := &memSteps{}
	e.setUnhealthy(func(_, version string) bool { return version == steps.get("marathon_version") })
	if _, _, err := e.deploy(t, request("main"), steps); !errors.Is(err, deploy.ErrRolledBack) {
		t.Fatalf("first run: %v", err)
	}
	before := changes(e.marathon)
	_, _, err := e.deploy(t, request("main"), steps)
	if !errors.Is(err, deploy.ErrRolledBack) {
		t.Fatalf("run again = %v; want the rollback reported", err)
	}
	if got := changes(e.marathon); len(got) != len(before) {
		t.Fatalf("the second run changed Marathon: %q", got[len(before):])
	}
	if app, _ := e.marathon.App("/platform/api-staging"); app.Image != oldImage {
		t.Fatalf("staging runs %q", app.Image)
	}
}

// TestPromotionRunAgainKeepsItsArtifact: a promotion run again deploys
// what its first run resolved, whatever it is handed the second time.
func TestPromotionRunAgainKeepsItsArtifact(t *testing.T) {
	t.Parallel()
	e := newDeployEnv(t, deploy.Target{})
	e.marathon.AddApp(marathontest.AppSpec{ID: "/platform/api-staging", Image: oldImage, Instances: 1})
	steps := &memSteps{}
	req := request("")
	req.Artifact = "registry.example.com/platform/api:1.5.0"
	ctx, kill := context.WithCancel(context.Background())
	_, err := e.d.Deploy(ctx, req, steps, func(p deploy.Progress) {
		if p.Stage == "deploying" {
			kill()
		}
	})
	if err == nil {
		t.Fatal("the first run was not interrupted")
	}
	req.Artifact = "registry.example.com/platform/api:1.6.0" // what staging's source runs by now
	res, _, err := e.deploy(t, req, steps)
	if err != nil || res.Artifact != "registry.example.com/platform/api:1.5.0" {
		t.Fatalf("run again = %+v, %v; want 1.5.0 deployed", res, err)
	}
	if app, _ := e.marathon.App("/platform/api-staging"); app.Image != res.Artifact {
		t.Fatalf("staging runs %q", app.Image)
	}
}

// TestGateStopsDeployBeforeFirstChange: the gate is asked once, after the
// build and before anything changes; a refusal leaves Marathon alone.
func TestGateStopsDeployBeforeFirstChange(t *testing.T) {
	t.Parallel()
	e := newDeployEnv(t, deploy.Target{})
	e.marathon.AddApp(marathontest.AppSpec{ID: "/platform/api-staging", Image: oldImage, Instances: 1})
	steps := &memSteps{}
	var asked []string
	locked := &deploy.Failure{Msg: "staging was locked during the build"}
	req := request("main")
	req.Gate = func(context.Context) error {
		asked = append(asked, steps.get("artifact"))
		if len(asked) == 1 {
			return locked
		}
		return nil
	}
	if _, _, err := e.deploy(t, req, steps); !errors.Is(err, locked) {
		t.Fatalf("err = %v; want the gate's", err)
	}
	if got := changes(e.marathon); len(got) != 0 {
		t.Fatalf("Marathon was changed past a closed gate: %q", got)
	}
	if _, _, err := e.deploy(t, req, steps); err != nil {
		t.Fatalf("run again, gate open: %v", err)
	}
	if _, _, err := e.deploy(t, req, steps); err != nil {
		t.Fatalf("run a third time: %v", err)
	}
	if len(asked) != 2 || asked[0] == "" || !slices.Equal(asked[:1], asked[1:]) {
		t.Fatalf("gate asked with artifacts %q; want twice, after the same build, and not once the job began", asked)
	}
}
