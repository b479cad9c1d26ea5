package worker_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seed-5eb4e92e/deploybot/authz"
	"github.com/seed-5eb4e92e/deploybot/backends/jenkins"
	"github.com/seed-5eb4e92e/deploybot/backends/jenkins/jenkinstest"
	"github.com/seed-5eb4e92e/deploybot/commands"
	"github.com/seed-5eb4e92e/deploybot/deploy"
	"github.com/seed-5eb4e92e/deploybot/worker"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
	"github.com/seed-5eb4e92e/deploybot/worker/queue/queuetest"
)

// fakeReporter records what would have been shown in Slack.
type fakeReporter struct {
	mu      sync.Mutex
	posts   int
	reports []queue.Record
	notes   []string
}

func (f *fakeReporter) Report(_ context.Context, rec queue.Record) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reports = append(f.reports, rec)
	if rec.MessageTS != "" {
		return rec.MessageTS, nil
	}
	f.posts++
	return fmt.Sprintf("1700000000.%06d", f.posts), nil
}

func (f *fakeReporter) Note(_ context.Context, rec queue.Record, text string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.notes = append(f.notes, rec.Job.ID+": "+text)
	return nil
}

// count is how many reports of job id showed stage.
func (f *fakeReporter) count(id, stage string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.reports {
		if r.Job.ID == id && r.Stage == stage {
			n++
		}
	}
	return n
}

func (f *fakeReporter) stages(id string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, r := range f.reports {
		if r.Job.ID == id {
			s := string(r.State)
			if r.Stage != "" {
				s += " " + r.Stage
			}
			if len(out) == 0 || out[len(out)-1] != s {
				out = append(out, s)
			}
		}
	}
	return out
}

type env struct {
	q       *queue.Queue
	reg     *prometheus.Registry
	jenkins *jenkinstest.Server
	rep     *fakeReporter
	auth    worker.Authorizer
	wcfg    worker.Config
	// jenkinsHTTP is the client the Jenkins backend uses; nil is the default.
	jenkinsHTTP *http.Client
}

func newEnv(t *testing.T, qcfg queue.Config, jopts jenkinstest.Options) *env {
	t.Helper()
	q, _, reg := queuetest.New(t, qcfg)
	srv := jenkinstest.Start(jopts)
	t.Cleanup(srv.Close)
	srv.AddJob("api-build", "BRANCH")
	return &env{
		q: q, reg: reg, jenkins: srv, rep: &fakeReporter{}, auth: authz.AllowAll{},
		wcfg: worker.Config{Concurrency: 2, BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond, Block: 20 * time.Millisecond, Grace: time.Millisecond},
	}
}

func (e *env) pool(t *testing.T) *worker.Pool {
	t.Helper()
	c, err := jenkins.New(jenkins.Config{URL: e.jenkins.URL}, e.jenkinsHTTP, nil)
	if err != nil {
		t.Fatal(err)
	}
	builds := &deploy.Builds{Builder: c, Jobs: map[string]deploy.BuildJob{"api": {Job: "api-build"}}, Poll: time.Millisecond}
	return worker.New(e.wcfg, e.q, map[string]worker.Runner{"build": worker.BuildRunner{Builds: builds}}, e.auth, e.rep, nil)
}

// start runs a pool until the test ends (or stop is called).
func (e *env) start(t *testing.T) (stop func()) {
	t.Helper()
	return runPool(t, e.pool(t))
}

// runPool runs p until the test ends (or stop is called).
func runPool(t *testing.T, p *worker.Pool) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := p.Run(ctx); err != nil {
			t.Errorf("pool: %v", err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

func (e *env) enqueue(t *testing.T, ref string) string {
	t.Helper()
	res, err := e.q.Enqueue(context.Background(), queue.Job{
		Request: commands.Request{Kind: "build", Action: "build", Service: "api", Ref: ref},
		User:    "U1", Channel: "C1", Text: "build api " + ref,
	}, queue.Dedupe{})
	if err != nil {
		t.Fatal(err)
	}
	return res.ID
}

// waitFinal waits for the job to reach a final state; it waits for a
// condition, it does not measure time.
func (e *env) waitFinal(t *testing.T, id string) queue.Record {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		rec, err := e.q.Record(context.Background(), id)
		if err == nil && rec.State.Final() {
			if n, _ := e.q.Depth(context.Background()); n == 0 {
				return rec
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	rec, _ := e.q.Record(context.Background(), id)
	t.Fatalf("job %s never finished; record %+v", id, rec)
	return queue.Record{}
}

func counter(t *testing.T, reg *prometheus.Registry, event string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "deploybot_jobs_total" {
			for _, m := range mf.GetMetric() {
				if m.GetLabel()[0].GetValue() == event {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestBuildSucceeds(t *testing.T) {
	t.Parallel()
	e := newEnv(t, queue.Config{}, jenkinstest.Options{QuietPolls: 2, ExecutorPolls: 2, BuildPolls: 2})
	stop := e.start(t)
	id := e.enqueue(t, "feature/login")
	rec := e.waitFinal(t, id)
	stop() // every handler has returned, so the counters are final
	if rec.State != queue.StateSucceeded || rec.Result != "SUCCESS" || rec.LinkText != "#1" || rec.MessageTS == "" {
		t.Fatalf("record = %+v", rec)
	}
	want := []string{"running starting", "running queued in Jenkins", "running waiting for an executor", "running building", "succeeded"}
	if got := e.rep.stages(id); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("reported %q, want %q", got, want)
	}
	if e.rep.posts != 1 {
		t.Fatalf("%d messages posted, want one updated in place", e.rep.posts)
	}
	if got := e.jenkins.BuildParams("api-build", 1).Get("BRANCH"); got != "feature/login" {
		t.Fatalf("BRANCH = %q", got)
	}
	if counter(t, e.reg, "succeeded") != 1 || counter(t, e.reg, "started") != 1 {
		t.Fatal("metrics did not count the job")
	}
}

func TestBuildFailsWithResult(t *testing.T) {
	t.Parallel()
	e := newEnv(t, queue.Config{}, jenkinstest.Options{Outcome: func(string, url.Values, int) string { return "FAILURE" }})
	stop := e.start(t)
	rec := e.waitFinal(t, e.enqueue(t, "main"))
	stop()
	if rec.State != queue.StateFailed || rec.Result != "FAILURE" || rec.Link == "" || rec.Error != "" {
		t.Fatalf("record = %+v", rec)
	}
	if counter(t, e.reg, "failed") != 1 {
		t.Fatal("failed not counted")
	}
}

func TestPermissionRevokedBeforeRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t, queue.Config{}, jenkinstest.Options{})
	deny, err := authz.NewStatic(authz.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	e.auth = deny
	e.start(t)
	rec := e.waitFinal(t, e.enqueue(t, "main"))
	if rec.State != queue.StateFailed || !strings.Contains(rec.Error, "may not build api") {
		t.Fatalf("record = %+v", rec)
	}
	if n := e.jenkins.QueueItemsCreated(); n != 0 {
		t.Fatalf("Jenkins was called %d times for a denied job", n)
	}
}

func TestTemporaryErrorsAreRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t, queue.Config{}, jenkinstest.Options{})
	e.jenkins.Fail("POST", "/job/api-build/", 503, 2)
	stop := e.start(t)
	rec := e.waitFinal(t, e.enqueue(t, "main"))
	stop()
	if rec.State != queue.StateSucceeded || rec.Job.Attempt != 3 {
		t.Fatalf("record = %+v, want success on attempt 3", rec)
	}
	if got := counter(t, e.reg, "retried"); got != 2 {
		t.Fatalf("retried = %v, want 2", got)
	}
}

func TestOutOfAttemptsIsDeadLettered(t *testing.T) {
	t.Parallel()
	e := newEnv(t, queue.Config{}, jenkinstest.Options{})
	e.wcfg.MaxAttempts = 2
	e.jenkins.Fail("POST", "/job/api-build/", 502, 100)
	e.start(t)
	id := e.enqueue(t, "main")
	rec := e.waitFinal(t, id)
	if rec.State != queue.StateDead || !strings.Contains(rec.Error, "Gave up after 2 attempts") || !strings.Contains(rec.Error, "502") {
		t.Fatalf("record = %+v", rec)
	}
	dead, err := e.q.Dead(context.Background(), 10)
	if err != nil || len(dead) != 1 || dead[0].Job.ID != id {
		t.Fatalf("dead letters = %+v, %v", dead, err)
	}
}

// TestSlowJenkinsIsRetried: a Jenkins slower than the client's timeout is a
// temporary failure, not a broken job.
func TestSlowJenkinsIsRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t, queue.Config{}, jenkinstest.Options{})
	e.jenkinsHTTP = &http.Client{Timeout: 100 * time.Millisecond}
	e.jenkins.Stall("POST", "/job/api-build/", time.Second, 1)
	e.start(t)
	rec := e.waitFinal(t, e.enqueue(t, "main"))
	if rec.State != queue.StateSucceeded || rec.Job.Attempt != 2 {
		t.Fatalf("record = %+v, want success on attempt 2", rec)
	}
}

func TestClientErrorsFailAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, queue.Config{}, jenkinstest.Options{})
	e.jenkins.DisableJob("api-build")
	stop := e.start(t)
	rec := e.waitFinal(t, e.enqueue(t, "main"))
	stop()
	if rec.State != queue.StateFailed || !strings.Contains(rec.Error, "not buildable") {
		t.Fatalf("record = %+v", rec)
	}
	if got := counter(t, e.reg, "retried"); got != 0 {
		t.Fatalf("a 409 was retried %v times", got)
	}
}

// TestReclaimedJobFollowsTheSameBuild: a worker took the job, triggered the
// build and vanished; the pool reclaims the job after the visibility
// timeout and follows that build instead of starting another.
func TestReclaimedJobFollowsTheSameBuild(t *testing.T) {
	t.Parallel()
	e := newEnv(t, queue.Config{Visibility: 60 * time.Millisecond}, jenkinstest.Options{QuietPolls: 1, ExecutorPolls: 1, BuildPolls: 5})
	id := e.enqueue(t, "main")
	ghost, err := e.q.Next(context.Background(), "ghost", 10*time.Millisecond)
	if err != nil || ghost == nil {
		t.Fatalf("ghost Next = %v, %v", ghost, err)
	}
	c, _ := jenkins.New(jenkins.Config{URL: e.jenkins.URL}, ownTransport(), nil)
	builds := &deploy.Builds{Builder: c, Jobs: map[string]deploy.BuildJob{"api": {Job: "api-build"}}, Poll: time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	_, _ = builds.Run(ctx, "api", "main", e.q.Steps(id), func(p deploy.Progress) {
		if p.Stage == "building" {
			cancel() // the ghost dies mid-build
		}
	})
	e.start(t)
	rec := e.waitFinal(t, id)
	if rec.State != queue.StateSucceeded {
		t.Fatalf("record = %+v", rec)
	}
	if n, b := e.jenkins.QueueItemsCreated(), e.jenkins.Builds("api-build"); n != 1 || b != 1 {
		t.Fatalf("%d queue items and %d builds, want exactly one of each", n, b)
	}
}

// TestShutdownHandsBackRunningJobs stops a pool mid-build; the job goes back
// to the queue and a new pool finishes it without a second build.
func TestShutdownHandsBackRunningJobs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, queue.Config{Visibility: time.Hour}, jenkinstest.Options{BuildPolls: 1 << 30})
	stop := e.start(t)
	id := e.enqueue(t, "main")
	for {
		rec, _ := e.q.Record(context.Background(), id)
		if rec.Stage == "building" {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	stop()
	if n, _ := e.q.Depth(context.Background()); n != 1 {
		t.Fatalf("Depth after shutdown = %d, want the job handed back", n)
	}
	rec, _ := e.q.Record(context.Background(), id)
	if rec.State.Final() {
		t.Fatalf("a handed-back job was finished: %+v", rec)
	}
	// A visibility of an hour means only Release can have made it available.
	d, err := e.q.Next(context.Background(), "successor", 10*time.Millisecond)
	if err != nil || d == nil || d.Job.ID != id {
		t.Fatalf("successor got %+v, %v", d, err)
	}
	if v, _ := e.q.Steps(id).Get(context.Background(), "jenkins_build"); v != "1" {
		t.Fatalf("the build number was not kept for the successor: %q", v)
	}
}

func TestJobTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, queue.Config{}, jenkinstest.Options{BuildPolls: 1 << 30})
	// Long enough for the build to start under the race detector on a
	// busy machine, so the message can link to it; it never finishes.
	e.wcfg.JobTimeout = time.Second
	e.start(t)
	rec := e.waitFinal(t, e.enqueue(t, "main"))
	if rec.State != queue.StateFailed || !strings.Contains(rec.Error, "Stopped following the job after 1s") || !strings.Contains(rec.Error, "/job/api-build/1/") {
		t.Fatalf("record = %+v", rec)
	}
}

func TestRetryMarksTheOriginal(t *testing.T) {
	t.Parallel()
	e := newEnv(t, queue.Config{}, jenkinstest.Options{})
	e.start(t)
	orig := e.enqueue(t, "main")
	e.waitFinal(t, orig)
	res, err := e.q.Enqueue(context.Background(), queue.Job{
		Request: commands.Request{Kind: "build", Action: "build", Service: "api", Ref: "main"},
		User:    "U2", Channel: "C1", RetryOf: orig,
	}, queue.Dedupe{})
	if err != nil {
		t.Fatal(err)
	}
	e.waitFinal(t, res.ID)
	rec, _ := e.q.Record(context.Background(), orig)
	if rec.RetriedAs != res.ID || rec.RetriedBy != "U2" {
		t.Fatalf("original record = %+v", rec)
	}
	var updated bool
	e.rep.mu.Lock()
	for _, r := range e.rep.reports {
		updated = updated || (r.Job.ID == orig && r.RetriedAs == res.ID)
	}
	e.rep.mu.Unlock()
	if !updated {
		t.Fatal("the original job's message was not updated to point at the retry")
	}
}

func TestRetryable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"5xx", &jenkins.HTTPError{Status: 503}, true},
		{"429", &jenkins.HTTPError{Status: 429}, true},
		{"4xx", &jenkins.HTTPError{Status: 404}, false},
		{"wrapped 5xx", &deploy.Failure{Msg: "x", Err: fmt.Errorf("a: %w", &jenkins.HTTPError{Status: 500})}, true},
		{"network", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, true},
		{"a backend that did not answer in time", fmt.Errorf("jenkins: GET x: %w", &net.OpError{Op: "read", Err: context.DeadlineExceeded}), true},
		{"cancelled", fmt.Errorf("x: %w", context.Canceled), false},
		{"plain", errors.New("bad config"), false},
	}
	for _, tc := range tests {
		if got := worker.Retryable(tc.err); got != tc.want {
			t.Errorf("%s: Retryable = %v, want %v", tc.name, got, tc.want)
		}
	}
}
