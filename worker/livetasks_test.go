package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/seed-5eb4e92e/deploybot/backends/mesos"
	"github.com/seed-5eb4e92e/deploybot/backends/mesos/mesostest"
	"github.com/seed-5eb4e92e/deploybot/deploy"
	"github.com/seed-5eb4e92e/deploybot/worker"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// withMesos gives api's pipeline a migration run on a simulated Mesos
// master that keeps tasks running until told to finish them.
func (e *deployEnv) withMesos(t *testing.T) *mesostest.Server {
	t.Helper()
	srv := mesostest.Start(mesostest.Options{HoldRunning: true, HeartbeatInterval: time.Second})
	t.Cleanup(srv.Close)
	mc, err := mesos.New(mesos.Config{URL: srv.URL}, srv.Client(), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := e.d.Pipelines["api"]
	p.PreDeploy = []deploy.Task{{Name: "migrate", Command: "bin/migrate up"}}
	e.d.Pipelines["api"] = p
	e.d.Tasks = mc
	return srv
}

// untilLiveTasks polls status of service until ok holds for what it found.
func (e *deployEnv) untilLiveTasks(t *testing.T, service, what string, ok func(worker.Outcome) bool) worker.Outcome {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := e.liveOutcome(t, service)
		if ok(out) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("status of %s never %s; last %+v (%q)", service, what, out.LiveTasks, out.LiveTasksError)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLiveListsRunningTasks: while a deploy's migration runs on Mesos,
// status lists it (environment, job, who asked) after the Marathon apps;
// once it finished it is gone. Without Mesos there is nothing to say; with
// Mesos down, status still answers about Marathon and says so in one line,
// without Mesos's address.
func TestLiveListsRunningTasks(t *testing.T) {
	t.Parallel()
	e := newDeployEnv(t, deploy.Target{})
	if out := e.liveOutcome(t, "api"); len(out.Live) != 2 || out.LiveTasks != nil ||
		out.LiveTasksError != "" {
		t.Fatalf("without Mesos: %+v", out)
	}
	srv := e.withMesos(t)
	if out := e.liveOutcome(t, "api"); out.LiveTasks != nil || out.LiveTasksError != "" {
		t.Fatalf("nothing launched yet: %+v", out)
	}
	job := e.enqueue(t, deployJob("U_ANN", "staging", "v1"))
	ran := make(chan error, 1)
	go func() {
		_, err := e.run(context.Background(), e.runner, job, nil)
		ran <- err
	}()
	out := e.untilLiveTasks(t, "api", "listed the running migration", func(o worker.Outcome) bool {
		return len(o.LiveTasks) == 1 && o.LiveTasks[0].State == "TASK_RUNNING"
	})
	got := out.LiveTasks[0]
	if got.Since.IsZero() || time.Since(got.Since) > time.Minute || time.Until(got.Since) > time.Minute {
		t.Errorf("running since %v", got.Since)
	}
	got.Since = time.Time{}
	want := queue.LiveTask{Service: "api", Env: "staging", Task: "migrate", State: "TASK_RUNNING", Job: job.ID, User: "U_ANN"}
	if got != want || len(out.Live) != 2 || out.LiveTasksError != "" {
		t.Errorf("status while migrating:\n got %+v\nwant %+v\n(apps %+v, error %q)", got, want, out.Live, out.LiveTasksError)
	}
	if web := e.liveOutcome(t, "web"); web.LiveTasks != nil {
		t.Errorf("web lists api's task: %+v", web.LiveTasks)
	}

	launched := srv.Launched()
	srv.Finish(launched[0].TaskID)
	if err := <-ran; err != nil {
		t.Fatalf("deploy: %v", err)
	}
	e.untilLiveTasks(t, "api", "dropped the finished migration", func(o worker.Outcome) bool {
		return o.LiveTasks == nil && o.LiveTasksError == ""
	})

	srv.Close()
	out = e.liveOutcome(t, "api")
	if len(out.Live) != 2 || out.Live[0].Error != "" || out.LiveTasks != nil ||
		out.LiveTasksError != "Mesos could not be asked about one-off tasks just now." {
		t.Errorf("Mesos down: %+v", out)
	}
}
