package worker_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/seed-5eb4e92e/deploybot/backends/marathon"
	"github.com/seed-5eb4e92e/deploybot/backends/marathon/marathontest"
	"github.com/seed-5eb4e92e/deploybot/commands"
	"github.com/seed-5eb4e92e/deploybot/deploy"
	"github.com/seed-5eb4e92e/deploybot/worker"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// liveRunner answers about api (staging, prod) and web (staging), which
// has no pipeline.
func (e *deployEnv) liveRunner() worker.LiveRunner {
	return worker.LiveRunner{Deployer: e.d, Locks: e.q, Catalog: commands.Catalog{
		Services: []commands.Service{
			{Name: "api", Envs: []string{"staging", "prod"}},
			{Name: "web", Envs: []string{"staging"}},
		},
		Environments: []string{"staging", "prod"},
	}}
}

func (e *deployEnv) live(t *testing.T, service string) []queue.LiveApp {
	t.Helper()
	return e.liveOutcome(t, service).Live
}

// liveOutcome is what a status job of service found.
func (e *deployEnv) liveOutcome(t *testing.T, service string) worker.Outcome {
	t.Helper()
	job := queue.Job{ID: queue.NewID(time.Now()), Request: commands.Request{Kind: "live", Service: service}, User: "U_DAN"}
	out, err := e.liveRunner().Run(context.Background(), job, e.q.Steps(job.ID), func(deploy.Progress) {})
	if err != nil || !out.Succeeded || out.Result != "LISTED" {
		t.Fatalf("live: %+v, %v", out, err)
	}
	return out
}

// sameLive compares what live found with want: Since as an instant, the
// lock by value.
func sameLive(t *testing.T, got, want []queue.LiveApp) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("live listed %d apps, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if !g.Since.Equal(w.Since) {
			t.Errorf("%s/%s: since %v, want %v", w.Service, w.Env, g.Since, w.Since)
		}
		if (g.Lock == nil) != (w.Lock == nil) || g.Lock != nil && !reflect.DeepEqual(*g.Lock, *w.Lock) {
			t.Errorf("%s/%s: lock %+v, want %+v", w.Service, w.Env, g.Lock, w.Lock)
		}
		g.Since, w.Since, g.Lock, w.Lock = time.Time{}, time.Time{}, nil, nil
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s/%s:\n got %+v\nwant %+v", w.Service, w.Env, g, w)
		}
	}
}

func since(t *testing.T, version string) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, version)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// TestLiveReportsWhatRuns: per service and environment, what Marathon
// runs, since when, who deployed it (from the app's labels), how healthy
// it is, and the environment's lock; an environment that cannot be asked
// says why instead of failing the answer.
func TestLiveReportsWhatRuns(t *testing.T) {
	t.Parallel()
	e := newDeployEnv(t, deploy.Target{})
	job := e.enqueue(t, deployJob("U_ANN", "staging", "v1"))
	if _, err := e.run(context.Background(), e.runner, job, nil); err != nil {
		t.Fatal(err)
	}
	const byHand = "registry.example.com/platform/api:1.4.1"
	prodVersion := e.marathon.AddApp(marathontest.AppSpec{ID: prodApp, Image: byHand, Instances: 3,
		Labels: map[string]string{deploy.LabelUser: "U_CAT", deploy.LabelJob: "01JOBCCCCCCCCCCCCCCCCCCCCC"}})
	e.setSick(func(app, _ string) bool { return app == prodApp })
	lock := e.lock(t, "prod", "U_BOB", "release freeze")
	want := []queue.LiveApp{
		{Service: "api", Env: "staging", App: stagingApp, Artifact: image("v1", 1), Since: since(t, e.app(t, stagingApp).Version),
			User: "U_ANN", Job: job.ID, Healthy: 2, Running: 2, Instances: 2},
		{Service: "api", Env: "prod", App: prodApp, Artifact: byHand, Since: since(t, prodVersion),
			User: "U_CAT", Job: "01JOBCCCCCCCCCCCCCCCCCCCCC", Healthy: 0, Running: 3, Instances: 3, Lock: &lock},
		{Service: "web", Env: "staging", Error: "web has no deploy pipeline configured."},
	}
	sameLive(t, e.live(t, ""), want)
	sameLive(t, e.live(t, "web"), want[2:])
}

// TestLiveWhileDeployingAndMarathonFailing: a deployment under way is
// shown as such; a Marathon error for one environment is shown for that
// one only, without its details.
func TestLiveWhileDeployingAndMarathonFailing(t *testing.T) {
	t.Parallel()
	e := newDeployEnv(t, deploy.Target{})
	if _, err := e.mc.Update(context.Background(), stagingApp, marathon.AppUpdate{Image: image("v8", 8)}); err != nil {
		t.Fatal(err)
	}
	e.marathon.Fail("GET", "/v2/apps"+prodApp, 503, 1)
	got := e.live(t, "api")
	if len(got) != 2 {
		t.Fatalf("live = %+v", got)
	}
	if s := got[0]; !s.Deploying || s.Artifact != image("v8", 8) || s.Instances != 2 || s.Error != "" {
		t.Errorf("staging mid-deployment: %+v", s)
	}
	if p := got[1]; p.Error != "Marathon could not be asked just now." || p.Artifact != "" {
		t.Errorf("prod with Marathon failing: %+v", p)
	}
	if again := e.live(t, "api"); again[1].Error != "" || again[1].Artifact != baseImage || again[1].Healthy != 2 {
		t.Errorf("prod once Marathon answers: %+v", again[1])
	}
}
