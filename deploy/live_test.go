package deploy_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/seed-5eb4e92e/deploybot/backends/marathon/marathontest"
	"github.com/seed-5eb4e92e/deploybot/deploy"
)

const stagingApp = "/platform/api-staging"

// settle moves the simulated Marathon until no deployment is under way.
func settle(t *testing.T, s *marathontest.Server) {
	t.Helper()
	for range 100 {
		if len(s.Deployments()) == 0 {
			return
		}
		s.Tick()
	}
	t.Fatalf("deployments %v never ended", s.Deployments())
}

// TestLiveSaysWhatRunsSinceWhenAndWhoDeployedIt: /deploy status reads
// the app's image, the time of its configuration (which a scale does not
// move) and deploybot's labels.
func TestLiveSaysWhatRunsSinceWhenAndWhoDeployedIt(t *testing.T) {
	t.Parallel()
	e := newDeployEnv(t, deploy.Target{})
	first := e.marathon.AddApp(marathontest.AppSpec{ID: stagingApp, Image: oldImage, Instances: 2})
	live, err := e.d.Live(t.Context(), "api", "staging")
	if err != nil || live.Artifact != oldImage || live.Version != first || !live.Since.Equal(parseVersion(t, first)) {
		t.Fatalf("before a deploy: %+v, %v", live, err)
	}
	if live.User != "" || live.Job != "" || live.Healthy != 2 || live.Instances != 2 || live.Deploying {
		t.Fatalf("before a deploy: %+v; want no deployer and 2/2 healthy", live)
	}
	res, _, err := e.deploy(t, request("main"), &memSteps{})
	if err != nil {
		t.Fatal(err)
	}
	live, err = e.d.Live(t.Context(), "api", "staging")
	req := request("main")
	if err != nil || live.Artifact != res.Artifact || live.Version != res.Version || live.User != req.User || live.Job != req.JobID {
		t.Fatalf("after the deploy: %+v, %v; want %s by %s in %s", live, err, res.Artifact, req.User, req.JobID)
	}
	if !live.Since.Equal(parseVersion(t, res.Version)) || live.Service != "api" || live.Env != "staging" || live.App != stagingApp {
		t.Fatalf("after the deploy: %+v; want it live since %s", live, res.Version)
	}
	// Someone scales it: a new version, but the same deploy.
	if _, err := e.mc.Scale(t.Context(), stagingApp, 3); err != nil {
		t.Fatal(err)
	}
	if live, err = e.d.Live(t.Context(), "api", "staging"); err != nil || !live.Deploying {
		t.Fatalf("while scaling: %+v, %v; want Deploying", live, err)
	}
	settle(t, e.marathon)
	live, err = e.d.Live(t.Context(), "api", "staging")
	if err != nil || live.Version == res.Version || !live.Since.Equal(parseVersion(t, res.Version)) {
		t.Fatalf("after a scale: %+v, %v; want a new version live since the deploy at %s", live, err, res.Version)
	}
	if live.Artifact != res.Artifact || live.User != req.User || live.Healthy != 3 || live.Running != 3 || live.Instances != 3 || live.Deploying {
		t.Fatalf("after a scale: %+v; want the same deploy, 3/3 healthy", live)
	}
}

func parseVersion(t *testing.T, v string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		t.Fatalf("version %q: %v", v, err)
	}
	return at
}

func TestLiveFailures(t *testing.T) {
	t.Parallel()
	e := newDeployEnv(t, deploy.Target{})
	tests := []struct{ service, env, want string }{
		{"api", "staging", "Marathon refused to read " + stagingApp},
		{"api", "prod", "api is not deployed to prod."},
		{"web", "staging", "web has no deploy pipeline configured."},
	}
	for _, tc := range tests {
		_, err := e.d.Live(t.Context(), tc.service, tc.env)
		var f *deploy.Failure
		if !errors.As(err, &f) || !strings.Contains(f.Msg, tc.want) {
			t.Errorf("Live(%s, %s) = %v; want a Failure saying %q", tc.service, tc.env, err, tc.want)
		}
	}
}

// TestRollbackRunAgain: a rollback job run again (its worker stopped
// after Marathon took the rollback) does not roll back twice, and still
// knows what it replaced.
func TestRollbackRunAgain(t *testing.T) {
	t.Parallel()
	e := newDeployEnv(t, deploy.Target{})
	e.marathon.AddApp(marathontest.AppSpec{ID: stagingApp, Image: oldImage, Instances: 2})
	res, _, err := e.deploy(t, request("main"), &memSteps{})
	if err != nil {
		t.Fatal(err)
	}
	back := request("")
	back.JobID, back.Artifact = "01JOBBBBBBBBBBBBBBBBBBBBBB", res.PreviousArtifact
	steps := &memSteps{}
	for run := 1; run <= 2; run++ {
		rb, err := e.d.Rollback(t.Context(), back, res.Previous, steps, func(deploy.Progress) {})
		if err != nil || rb.Previous != res.Version || rb.PreviousArtifact != res.Artifact || rb.Artifact != oldImage {
			t.Fatalf("run %d: %+v, %v; want %s (%s) replaced by %s", run, rb, err, res.Artifact, res.Version, oldImage)
		}
		artifact, version, err := deploy.Previous(t.Context(), steps)
		if err != nil || artifact != res.Artifact || version != res.Version {
			t.Fatalf("run %d: steps say %q at %q replaced, want %q at %q", run, artifact, version, res.Artifact, res.Version)
		}
	}
	if n := e.marathon.Count("PUT", "/v2/apps"); n != 2 {
		t.Fatalf("%d PUTs; want the deploy and one rollback", n)
	}
	if app, _ := e.marathon.App(stagingApp); app.Image != oldImage {
		t.Fatalf("app runs %q", app.Image)
	}
}

// TestRollbackFailures: a rollback that cannot happen, or does not end
// healthy, says so.
func TestRollbackFailures(t *testing.T) {
	t.Parallel()
	e := newDeployEnv(t, deploy.Target{VerifyTimeout: 100 * time.Millisecond})
	first := e.marathon.AddApp(marathontest.AppSpec{ID: stagingApp, Image: oldImage, Instances: 1})
	res, _, err := e.deploy(t, request("main"), &memSteps{})
	if err != nil {
		t.Fatal(err)
	}
	back := request("")
	back.JobID = "01JOBBBBBBBBBBBBBBBBBBBBBB"
	_, err = e.d.Rollback(t.Context(), back, "", &memSteps{}, func(deploy.Progress) {})
	var f *deploy.Failure
	if !errors.As(err, &f) || !strings.Contains(f.Msg, "nothing to roll back to") {
		t.Fatalf("rollback to nothing: %v", err)
	}
	_, err = e.d.Rollback(t.Context(), back, "2001-01-01T00:00:00.000Z", &memSteps{}, func(deploy.Progress) {})
	if !errors.As(err, &f) || !strings.Contains(f.Msg, "Marathon refused to roll back "+stagingApp) {
		t.Fatalf("rollback to a version Marathon does not know: %v", err)
	}
	e.setUnhealthy(func(_, version string) bool { return version != first && version != res.Version })
	_, err = e.d.Rollback(t.Context(), back, first, &memSteps{}, func(deploy.Progress) {})
	if !errors.As(err, &f) || !strings.Contains(f.Msg, "The rolled-back version did not become healthy: 0 of 1 new tasks healthy") {
		t.Fatalf("unhealthy rollback: %v", err)
	}
}
