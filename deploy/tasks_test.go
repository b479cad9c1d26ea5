package deploy_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-5eb4e92e/deploybot/backends/marathon/marathontest"
	"github.com/seed-5eb4e92e/deploybot/backends/mesos"
	"github.com/seed-5eb4e92e/deploybot/backends/mesos/mesostest"
	"github.com/seed-5eb4e92e/deploybot/deploy"
)

var _ deploy.Tasks = (*mesos.Client)(nil)

// taskEnv is a deployEnv whose pipeline runs a migration on a simulated
// Mesos master before each deploy.
type taskEnv struct {
	*deployEnv
	mesos *mesostest.Server
}

func migrateTask() deploy.Task {
	return deploy.Task{Name: "migrate", Command: "./manage.py migrate --noinput", CPUs: 0.5, MemMB: 256,
		Env: map[string]string{"DB_HOST": "db.example.com"}}
}

func newTaskEnv(t *testing.T, opts mesostest.Options) *taskEnv {
	t.Helper()
	e := newDeployEnv(t, deploy.Target{})
	e.marathon.AddApp(marathontest.AppSpec{ID: "/platform/api-staging", Image: oldImage, Instances: 2})
	if opts.HeartbeatInterval == 0 {
		// Slow enough that a loaded machine does not make the client
		// subscribe again; nothing here waits on heartbeats.
		opts.HeartbeatInterval = time.Second
	}
	srv := mesostest.Start(opts)
	t.Cleanup(srv.Close)
	mc, err := mesos.New(mesos.Config{URL: srv.URL}, srv.Client(), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := e.d.Pipelines["api"]
	p.PreDeploy = []deploy.Task{migrateTask()}
	e.d.Pipelines["api"] = p
	e.d.Tasks = mc
	return &taskEnv{deployEnv: e, mesos: srv}
}

// progressLog keeps everything a deploy reported.
type progressLog struct {
	mu  sync.Mutex
	all []deploy.Progress
}

func (l *progressLog) add(p deploy.Progress) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all = append(l.all, p)
}

func (l *progressLog) stages() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, p := range l.all {
		if p.Stage != "" {
			out = append(out, p.Stage)
		}
	}
	return out
}

// lastLink is the last link of kind reported.
func (l *progressLog) lastLink(kind string) (deploy.Link, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.all) - 1; i >= 0; i-- {
		for _, k := range l.all[i].Links {
			if k.Kind == kind {
				return k, true
			}
		}
	}
	return deploy.Link{}, false
}

// changes lists the requests that change something in Marathon.
func changes(s *marathontest.Server) []string {
	var out []string
	for _, r := range s.Requests() {
		if !strings.HasPrefix(r, "GET ") {
			out = append(out, r)
		}
	}
	return out
}

// testCtx bounds a test that would otherwise hang when broken; it is not
// a speed requirement.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestPreDeployTaskRunsFirst: the migration runs in the built image with
// the deploy's environment, Marathon is not changed while it runs, and the
// stages name it and link to its sandbox.
func TestPreDeployTaskRunsFirst(t *testing.T) {
	t.Parallel()
	e := newTaskEnv(t, mesostest.Options{HoldRunning: true})
	var log progressLog
	var duringTask []string
	duringImage := ""
	res, err := e.d.Deploy(testCtx(t), request("main"), &memSteps{}, func(p deploy.Progress) {
		log.add(p)
		if p.Stage == "running migrate: running" {
			duringTask = changes(e.marathon)
			app, _ := e.marathon.App("/platform/api-staging")
			duringImage = app.Image
			for _, lt := range e.mesos.Launched() {
				e.mesos.Finish(lt.TaskID)
			}
		}
	})
	stages := log.stages()
	if err != nil {
		t.Fatalf("deploy: %v (stages %q)", err, stages)
	}
	if duringImage != oldImage || len(duringTask) != 0 {
		t.Fatalf("while the migration ran the app ran %q and Marathon got %q; want it untouched", duringImage, duringTask)
	}
	launched := e.mesos.Launched()
	if len(launched) != 1 {
		t.Fatalf("%d tasks launched, want 1", len(launched))
	}
	checkLaunched(t, launched[0], res.Artifact)
	ran, done, rolled := slices.Index(stages, "running migrate"), slices.Index(stages, "running migrate: finished"), slices.Index(stages, "deploying")
	if ran < 0 || done < ran || rolled < done {
		t.Fatalf("stages %q; want the migration named and finished before deploying", stages)
	}
	link, ok := log.lastLink("task")
	want := e.mesos.URL + "#/agents/" + launched[0].AgentID + "/frameworks/" + launched[0].FrameworkID
	if !ok || link.Text != "migrate sandbox" || !strings.HasPrefix(link.URL, want) || !strings.HasSuffix(link.URL, "/tasks/"+launched[0].TaskID+"/browse") {
		t.Fatalf("sandbox link %+v (reported %v); want one under %s for %s", link, ok, want, launched[0].TaskID)
	}
	if app, _ := e.marathon.App("/platform/api-staging"); app.Image != res.Artifact {
		t.Fatalf("after the migration the app runs %q, want %q", app.Image, res.Artifact)
	}
}

// checkLaunched checks the task Mesos ran for request("main").
func checkLaunched(t *testing.T, lt mesostest.LaunchedTask, artifact string) {
	t.Helper()
	req := request("main")
	if lt.Image != artifact || lt.Command != migrateTask().Command || lt.CPUs != 0.5 || lt.MemMB != 256 {
		t.Errorf("task ran %q with %q, %.2f cpus, %.0f MB; want the artifact %q and the task's command and resources", lt.Image, lt.Command, lt.CPUs, lt.MemMB, artifact)
	}
	wantEnv := map[string]string{"DEPLOY_ENV": "staging", "DEPLOY_SERVICE": "api", "DEPLOY_ARTIFACT": artifact, "DB_HOST": "db.example.com"}
	for k, v := range wantEnv {
		if lt.Env[k] != v {
			t.Errorf("task env %s = %q, want %q", k, lt.Env[k], v)
		}
	}
	wantLabels := map[string]string{deploy.LabelJob: req.JobID, deploy.LabelUser: req.User,
		deploy.LabelService: "api", deploy.LabelEnv: "staging", deploy.LabelTask: "migrate"}
	if !maps.Equal(lt.Labels, wantLabels) {
		t.Errorf("task labels %v; want %v", lt.Labels, wantLabels)
	}
	if !strings.Contains(lt.TaskID, strings.ToLower(req.JobID)) || !strings.HasSuffix(lt.TaskID, "-migrate") {
		t.Errorf("task id %q does not name the job and the task", lt.TaskID)
	}
}

// TestFailedPreDeployTaskStopsTheDeploy: a migration that fails leaves
// Marathon alone, and the message says how it ended.
func TestFailedPreDeployTaskStopsTheDeploy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		state   string
		code    int
		message string
		want    string
	}{
		{name: "non-zero exit", state: "TASK_FAILED", code: 3, want: "migrate failed (exit status 3)"},
		{name: "container exit", state: "TASK_FAILED", message: "Container exited with status 137", want: "migrate failed (exit status 137)"},
		{name: "no exit status", state: "TASK_FAILED", message: "Failed to launch container: image not found", want: "migrate failed (failed: Failed to launch container: image not found)"},
		{name: "killed", state: "TASK_KILLED", message: "Command terminated with signal Killed", want: "migrate failed (killed: Command terminated with signal Killed)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newTaskEnv(t, mesostest.Options{TaskOutcome: func(mesostest.LaunchedTask) (string, int, string) {
				return tc.state, tc.code, tc.message
			}})
			steps := &memSteps{}
			_, stages, err := e.deploy(t, request("main"), steps)
			var f *deploy.Failure
			if !errors.As(err, &f) || !strings.Contains(f.Msg, tc.want+", so api was not deployed to staging") {
				t.Fatalf("err = %v (stages %q); want a Failure saying %q", err, stages, tc.want)
			}
			app, _ := e.marathon.App("/platform/api-staging")
			if got := changes(e.marathon); len(got) != 0 || app.Image != oldImage {
				t.Fatalf("Marathon got %q and runs %q after a failed migration", got, app.Image)
			}
			// A migration that ran may have changed the database even
			// though it failed: a lock taken now must not cut the job off
			// from reporting it.
			if started, _ := deploy.Started(t.Context(), steps); !started {
				t.Fatal("a job whose migration ran does not count as having begun")
			}
			// The same job run again (the queue delivered it twice) tells
			// the same story without running the migration a second time.
			if _, _, err := e.deploy(t, request("main"), steps); !errors.As(err, &f) || !strings.Contains(f.Msg, tc.want) {
				t.Fatalf("run again: %v", err)
			}
			if n := len(e.mesos.Launched()); n != 1 {
				t.Fatalf("%d launches; the failed migration must not run again under the same job", n)
			}
		})
	}
}

// TestPreDeployTaskRunsOncePerJob: a job run again after the migration
// finished does not launch it again, whether its steps recorded the end or
// the worker stopped before they could (Mesos still knows the task).
func TestPreDeployTaskRunsOncePerJob(t *testing.T) {
	t.Parallel()
	e := newTaskEnv(t, mesostest.Options{})
	steps := &memSteps{}
	res, _, err := e.deploy(t, request("main"), steps)
	if err != nil || len(e.mesos.Launched()) != 1 {
		t.Fatalf("first run: %v, %d launches", err, len(e.mesos.Launched()))
	}
	if _, stages, err := e.deploy(t, request("main"), steps); err != nil || slices.Contains(stages, "running migrate") {
		t.Fatalf("run again: %v, stages %q; want the migration skipped", err, stages)
	}
	lost := &memSteps{}
	for k, v := range steps.m {
		if k != "task_migrate" {
			_ = lost.Set(t.Context(), k, v)
		}
	}
	if _, _, err := e.deploy(t, request("main"), lost); err != nil {
		t.Fatalf("run again without the task's step: %v", err)
	}
	if n := len(e.mesos.Launched()); n != 1 {
		t.Fatalf("%d launches; want the migration run once per job", n)
	}
	if app, _ := e.marathon.App("/platform/api-staging"); app.Image != res.Artifact || e.marathon.Count("PUT", "/v2/apps") != 1 {
		t.Fatalf("app runs %q after %d PUTs", app.Image, e.marathon.Count("PUT", "/v2/apps"))
	}
}

// TestPreDeployTaskFollowedAfterWorkerStops: the worker stops while the
// migration runs; the job run again follows the same task to its end
// instead of launching another.
func TestPreDeployTaskFollowedAfterWorkerStops(t *testing.T) {
	t.Parallel()
	e := newTaskEnv(t, mesostest.Options{HoldRunning: true})
	steps := &memSteps{}
	ctx, stop := context.WithCancel(testCtx(t))
	_, err := e.d.Deploy(ctx, request("main"), steps, func(p deploy.Progress) {
		if p.Stage == "running migrate: running" {
			stop()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("first run: %v; want it cancelled", err)
	}
	var finished bool
	res, err := e.d.Deploy(testCtx(t), request("main"), steps, func(p deploy.Progress) {
		if p.Stage == "running migrate: running" && !finished {
			finished = true
			for _, lt := range e.mesos.Launched() {
				e.mesos.Finish(lt.TaskID)
			}
		}
	})
	if err != nil || !finished {
		t.Fatalf("second run: %v (saw the running task: %v)", err, finished)
	}
	if n := len(e.mesos.Launched()); n != 1 {
		t.Fatalf("%d launches; the second run must follow the first one's task", n)
	}
	if app, _ := e.marathon.App("/platform/api-staging"); app.Image != res.Artifact {
		t.Fatalf("app runs %q, want %q", app.Image, res.Artifact)
	}
}

// TestPreDeployTasksRunInOrder: tasks run one after the other, each in
// its own image or the artifact's, and a failing one stops the rest.
func TestPreDeployTasksRunInOrder(t *testing.T) {
	t.Parallel()
	const tools = "registry.example.com/platform/tools:7"
	e := newTaskEnv(t, mesostest.Options{TaskOutcome: func(lt mesostest.LaunchedTask) (string, int, string) {
		if lt.Env["DEPLOY_ARTIFACT"] == oldImage { // the promotion below
			return "TASK_FAILED", 1, ""
		}
		return "TASK_FINISHED", 0, ""
	}})
	p := e.d.Pipelines["api"]
	p.PreDeploy = []deploy.Task{{Name: "check-schema", Image: tools, Command: "check"}, migrateTask()}
	e.d.Pipelines["api"] = p
	req := request("")
	req.Artifact = "registry.example.com/platform/api:1.5.7"
	if _, _, err := e.deploy(t, req, &memSteps{}); err != nil {
		t.Fatal(err)
	}
	l := e.mesos.Launched()
	if len(l) != 2 || !strings.HasSuffix(l[0].TaskID, "-check-schema") || l[0].Image != tools || l[0].Env["DEPLOY_ARTIFACT"] != req.Artifact || l[1].Image != req.Artifact {
		t.Fatalf("launched %+v; want check-schema in its own image, then migrate in the artifact", l)
	}
	req.JobID, req.Artifact = "01JOBCCCCCCCCCCCCCCCCCCCCC", oldImage
	_, _, err := e.deploy(t, req, &memSteps{})
	if err == nil || !strings.Contains(err.Error(), "check-schema failed (exit status 1)") || len(e.mesos.Launched()) != 3 {
		t.Fatalf("err = %v, %d launches; want check-schema to fail and migrate not to run", err, len(e.mesos.Launched()))
	}
}

// TestPreDeployTaskWithoutMesos: a pipeline that migrates cannot deploy
// without Mesos, and says so before anything changes.
func TestPreDeployTaskWithoutMesos(t *testing.T) {
	t.Parallel()
	e := newTaskEnv(t, mesostest.Options{})
	e.d.Tasks = nil
	_, _, err := e.deploy(t, request("main"), &memSteps{})
	var f *deploy.Failure
	if !errors.As(err, &f) || !strings.Contains(f.Msg, "needs Mesos to run migrate") || len(changes(e.marathon)) != 0 {
		t.Fatalf("err = %v, Marathon got %q", err, changes(e.marathon))
	}
}

// TestRollbackRunsNoPreDeployTask: a rollback does not migrate forward,
// whether it puts back a Marathon version or redeploys an artifact.
func TestRollbackRunsNoPreDeployTask(t *testing.T) {
	t.Parallel()
	e := newTaskEnv(t, mesostest.Options{})
	res, _, err := e.deploy(t, request("main"), &memSteps{})
	if err != nil {
		t.Fatal(err)
	}
	for i, version := range []string{res.Previous, ""} {
		back := request("")
		back.JobID, back.Artifact = "01JOBRRRRRRRRRRRRRRRRRRRR"+string(rune('0'+i)), res.PreviousArtifact
		if _, err := e.d.Rollback(testCtx(t), back, version, &memSteps{}, func(deploy.Progress) {}); err != nil {
			t.Fatalf("rollback to %q: %v", version, err)
		}
		if app, _ := e.marathon.App("/platform/api-staging"); app.Image != oldImage {
			t.Fatalf("rollback to %q: app runs %q", version, app.Image)
		}
	}
	if n := len(e.mesos.Launched()); n != 1 {
		t.Fatalf("%d launches; a rollback must not run the migration", n)
	}
}
