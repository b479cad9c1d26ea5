package worker_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seed-5eb4e92e/deploybot/authz"
	"github.com/seed-5eb4e92e/deploybot/backends/jenkins"
	"github.com/seed-5eb4e92e/deploybot/backends/jenkins/jenkinstest"
	"github.com/seed-5eb4e92e/deploybot/backends/marathon"
	"github.com/seed-5eb4e92e/deploybot/backends/marathon/marathontest"
	"github.com/seed-5eb4e92e/deploybot/commands"
	"github.com/seed-5eb4e92e/deploybot/deploy"
	"github.com/seed-5eb4e92e/deploybot/worker"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
	"github.com/seed-5eb4e92e/deploybot/worker/queue/queuetest"
)

var _ worker.DeployState = (*queue.Queue)(nil)

// The service every deploy test deploys, and what runs of it before.
const (
	stagingApp = "/platform/api-staging"
	prodApp    = "/platform/api-prod"
	baseImage  = "registry.example.com/platform/api:1.4.2"
)

// image is the artifact build n of ref makes in the simulated Jenkins.
func image(ref string, n int) string {
	return fmt.Sprintf("registry.example.com/platform/api:%s-b%d", ref, n)
}

// deployEnv is a DeployRunner on a real queue, wired to a simulated
// Jenkins (builds of ref "broken" fail) and a simulated Marathon running
// api in staging and prod, two healthy instances each.
type deployEnv struct {
	q        *queue.Queue
	reg      *prometheus.Registry
	jenkins  *jenkinstest.Server
	marathon *marathontest.Server
	mc       *marathon.Client
	d        *deploy.Deployer
	runner   worker.DeployRunner
	rep      *fakeReporter
	// auth is asked when a job starts (default: everything allowed);
	// audit, if set, gets the jobs stopped by it.
	auth     worker.Authorizer
	audit    worker.Auditor
	approval map[string]bool
	// base is the Marathon version of each app before the test.
	base map[string]string

	mu   sync.Mutex
	sick func(app, version string) bool
}

func newDeployEnv(t *testing.T, staging deploy.Target) *deployEnv {
	t.Helper()
	e := &deployEnv{rep: &fakeReporter{}, base: map[string]string{}, auth: authz.AllowAll{}}
	e.q, _, e.reg = queuetest.New(t, queue.Config{})
	e.jenkins = jenkinstest.Start(jenkinstest.Options{Finish: func(_ string, params url.Values, n int) jenkinstest.Finished {
		if ref := params.Get("BRANCH"); ref != "broken" {
			return jenkinstest.Finished{Description: "built " + image(ref, n)}
		}
		return jenkinstest.Finished{Result: "FAILURE"}
	}})
	t.Cleanup(e.jenkins.Close)
	e.jenkins.AddJob("platform/api-build", "BRANCH")
	e.marathon = marathontest.Start(marathontest.Options{DeployPolls: 2, Healthy: e.healthy})
	t.Cleanup(e.marathon.Close)
	for _, id := range []string{stagingApp, prodApp} {
		e.base[id] = e.marathon.AddApp(marathontest.AppSpec{ID: id, Image: baseImage, Instances: 2})
	}
	jc, err := jenkins.New(jenkins.Config{URL: e.jenkins.URL}, ownTransport(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if e.mc, err = marathon.New(marathon.Config{URL: e.marathon.URL}, ownTransport(), nil); err != nil {
		t.Fatal(err)
	}
	staging.App = stagingApp
	if staging.VerifyTimeout == 0 {
		staging.VerifyTimeout = time.Minute // never reached: health is decided by the test
	}
	pipe := deploy.Pipeline{
		Service:  "api",
		Build:    deploy.BuildJob{Job: "platform/api-build"},
		Artifact: deploy.ArtifactSource{From: deploy.FromDescription, Pattern: regexp.MustCompile(`built (\S+)`)},
		Targets:  map[string]deploy.Target{"staging": staging, "prod": {App: prodApp, VerifyTimeout: time.Minute}},
	}
	e.d = &deploy.Deployer{
		Builds:    &deploy.Builds{Builder: jc, Jobs: map[string]deploy.BuildJob{"api": pipe.Build}, Poll: time.Millisecond},
		Artifacts: jc, Apps: e.mc, Colours: e.mc,
		Pipelines: map[string]deploy.Pipeline{"api": pipe},
		Poll:      2 * time.Millisecond,
	}
	catalog := commands.Catalog{
		Services:     []commands.Service{{Name: "api", Envs: []string{"staging", "prod"}}},
		Environments: []string{"dev", "staging", "prod"},
	}
	e.runner = worker.DeployRunner{Deployer: e.d, State: e.q, Catalog: catalog, Recheck: 7 * time.Millisecond}
	return e
}

// healthy is the simulated Marathon's health check; it runs with the
// server locked.
func (e *deployEnv) healthy(app, version string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sick == nil || !e.sick(app, version)
}

// setSick makes tasks for which f is true fail their health checks.
func (e *deployEnv) setSick(f func(app, version string) bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.sick = f
}

// start runs a pool with the runner as it is now, until the test ends or
// stop is called.
func (e *deployEnv) start(t *testing.T) (stop func()) {
	t.Helper()
	runners := map[string]worker.Runner{"deploy": e.runner, "promote": e.runner, "rollback": e.runner}
	cfg := worker.Config{Concurrency: 2, BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond, Block: 20 * time.Millisecond, Grace: time.Millisecond,
		Audit: e.audit, Approval: e.approval}
	return runPool(t, worker.New(cfg, e.q, runners, e.auth, e.rep, nil))
}

// deployJob is a deploy of api to env at ref, asked for by user.
func deployJob(user, env, ref string) queue.Job {
	return queue.Job{
		Request: commands.Request{Kind: "deploy", Action: "deploy", Service: "api", Env: env, Ref: ref},
		User:    user, Channel: "C1", Text: "deploy api " + ref + " to " + env,
	}
}

func promoteJob(user, from, env, source string) queue.Job {
	return queue.Job{
		Request: commands.Request{Kind: "promote", Action: "promote", Service: "api", From: from, Env: env},
		User:    user, Channel: "C1", Source: source,
	}
}

func rollbackJob(user, env, source string) queue.Job {
	return queue.Job{
		Request: commands.Request{Kind: "rollback", Action: "rollback", Service: "api", Env: env},
		User:    user, Channel: "C1", Source: source,
	}
}

// enqueue writes job to the queue and returns it as a worker receives it.
func (e *deployEnv) enqueue(t *testing.T, job queue.Job) queue.Job {
	t.Helper()
	res, err := e.q.Enqueue(context.Background(), job, queue.Dedupe{})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := e.q.Record(context.Background(), res.ID)
	if err != nil {
		t.Fatal(err)
	}
	return rec.Job
}

// run runs job with the runner directly, as a worker would.
func (e *deployEnv) run(ctx context.Context, r worker.DeployRunner, job queue.Job, report func(deploy.Progress)) (worker.Outcome, error) {
	if report == nil {
		report = func(deploy.Progress) {}
	}
	return r.Run(ctx, job, e.q.Steps(job.ID), report)
}

// until polls job id's record until ok holds. It waits for a condition;
// it does not measure how fast the machine is.
func (e *deployEnv) until(t *testing.T, id, what string, ok func(queue.Record) bool) queue.Record {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		rec, err := e.q.Record(context.Background(), id)
		if err == nil && ok(rec) {
			return rec
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s never %s; record %+v, %v", id, what, rec, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (e *deployEnv) final(t *testing.T, id string) queue.Record {
	t.Helper()
	return e.until(t, id, "finished", func(r queue.Record) bool { return r.State.Final() })
}

// step reads a step job id recorded.
func (e *deployEnv) step(t *testing.T, id, name string) string {
	t.Helper()
	v, err := e.q.Steps(id).Get(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// app is what Marathon runs as app id.
func (e *deployEnv) app(t *testing.T, id string) marathontest.AppState {
	t.Helper()
	a, ok := e.marathon.App(id)
	if !ok {
		t.Fatalf("Marathon has no app %s", id)
	}
	return a
}

// lock has user lock env for an hour and returns the lock.
func (e *deployEnv) lock(t *testing.T, env, user, reason string) queue.EnvLock {
	t.Helper()
	now := time.Now()
	l, ok, err := e.q.LockEnv(context.Background(), queue.EnvLock{Env: env, User: user, Reason: reason, Since: now, Until: now.Add(time.Hour)})
	if err != nil || !ok {
		t.Fatalf("LockEnv = %+v, %v, %v", l, ok, err)
	}
	return l
}

// settle moves Marathon on until no deployment is under way.
func (e *deployEnv) settle(t *testing.T) {
	t.Helper()
	for range 1000 {
		if len(e.marathon.Deployments()) == 0 {
			return
		}
		e.marathon.Tick()
	}
	t.Fatalf("Marathon's deployments %v never ended", e.marathon.Deployments())
}

// puts counts the changes asked of Marathon's app id.
func (e *deployEnv) puts(id string) int { return e.marathon.Count("PUT", "/v2/apps"+id) }

func failureMsg(t *testing.T, err error) string {
	t.Helper()
	var f *deploy.Failure
	if !errors.As(err, &f) {
		t.Fatalf("error %v is not a Failure", err)
	}
	return f.Msg
}

// untilStage is a report that calls fn once, at the first stage starting
// with prefix.
func untilStage(prefix string, fn func()) func(deploy.Progress) {
	var once sync.Once
	return func(p deploy.Progress) {
		if strings.HasPrefix(p.Stage, prefix) {
			once.Do(fn)
		}
	}
}
