package worker_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-5eb4e92e/deploybot/authz"
	"github.com/seed-5eb4e92e/deploybot/backends/gerrit"
	"github.com/seed-5eb4e92e/deploybot/backends/gerrit/gerrittest"
	"github.com/seed-5eb4e92e/deploybot/backends/jenkins"
	"github.com/seed-5eb4e92e/deploybot/backends/jenkins/jenkinstest"
	"github.com/seed-5eb4e92e/deploybot/commands"
	"github.com/seed-5eb4e92e/deploybot/deploy"
	"github.com/seed-5eb4e92e/deploybot/worker"
	"github.com/seed-5eb4e92e/deploybot/worker/blame"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
	"github.com/seed-5eb4e92e/deploybot/worker/queue/queuetest"
)

var _ worker.Gerrit = (*gerrit.Client)(nil)

type changeEnv struct {
	runner worker.ChangeRunner
	sim    *gerrittest.Server
	q      *queue.Queue
}

func newChangeEnv(t *testing.T, policy authz.Policy) *changeEnv {
	t.Helper()
	sim := gerrittest.Start(gerrittest.Options{User: "deploybot", Password: "pw"})
	t.Cleanup(sim.Close)
	owner := gerrittest.Account{ID: 1000096, Name: "Ann Owner", Email: "ann@example.com", Username: "ann"}
	sim.AddChange(gerrittest.Change{Project: "platform/api", Number: 1503, Branch: "main", Subject: "s", Owner: owner, Uploader: owner, PatchSet: 2})
	sim.AddChange(gerrittest.Change{Project: "other/thing", Number: 77, Branch: "main", Subject: "s", Owner: owner, Uploader: owner, PatchSet: 1})
	gc, err := gerrit.New(gerrit.Config{URL: sim.URL, User: "deploybot", Password: "pw"}, ownTransport(), nil)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := authz.NewStatic(policy)
	if err != nil {
		t.Fatal(err)
	}
	q, _, _ := queuetest.New(t, queue.Config{})
	return &changeEnv{sim: sim, q: q, runner: worker.ChangeRunner{Gerrit: gc, Auth: auth, Service: func(p string) (string, bool) {
		return "api", p == "platform/api"
	}}}
}

var everything = authz.Policy{Groups: map[string][]string{"all": {"U1"}}, Rules: []authz.Rule{{Group: "all", Allow: []string{"*"}}}}

func (e *changeEnv) run(t *testing.T, kind string, change int, user string) (worker.Outcome, error) {
	t.Helper()
	res, err := e.q.Enqueue(context.Background(), queue.Job{Request: commands.Request{Kind: kind, Action: kind, Change: change}, User: user}, queue.Dedupe{})
	if err != nil {
		t.Fatal(err)
	}
	job, _ := e.q.Record(context.Background(), res.ID)
	return e.runner.Run(context.Background(), job.Job, e.q.Steps(res.ID), func(deploy.Progress) {})
}

func failureText(t *testing.T, err error) string {
	t.Helper()
	var f *deploy.Failure
	if !errors.As(err, &f) {
		t.Fatalf("error %v is not a Failure", err)
	}
	return f.Msg
}

func TestRecheck(t *testing.T) {
	t.Parallel()
	e := newChangeEnv(t, everything)
	out, err := e.run(t, "recheck", 1503, "U1")
	if err != nil || !out.Succeeded || out.Result != "RECHECKED" || !strings.HasSuffix(out.Link, "/c/platform/api/+/1503") {
		t.Fatalf("recheck = %+v, %v", out, err)
	}
	reviews := e.sim.Reviews("platform/api", 1503)
	if len(reviews) != 1 || reviews[0].Message != "recheck" || reviews[0].Tag != gerrit.RecheckTag {
		t.Fatalf("reviews = %+v", reviews)
	}
}

func TestSubmit(t *testing.T) {
	t.Parallel()
	e := newChangeEnv(t, everything)
	e.sim.SetSubmittable("platform/api", 1503, false)
	_, err := e.run(t, "submit", 1503, "U1")
	if msg := failureText(t, err); !strings.Contains(msg, "Gerrit refused: Change 1503 is not ready") {
		t.Fatalf("unsubmittable = %q", msg)
	}
	e.sim.SetSubmittable("platform/api", 1503, true)
	out, err := e.run(t, "submit", 1503, "U1")
	if err != nil || out.Result != "MERGED" || e.sim.Status("platform/api", 1503) != gerrit.StatusMerged {
		t.Fatalf("submit = %+v, %v; status %s", out, err, e.sim.Status("platform/api", 1503))
	}
	// Run again (a worker restarted after submitting): still a success.
	if out, err := e.run(t, "submit", 1503, "U1"); err != nil || out.Result != "MERGED" {
		t.Fatalf("second submit = %+v, %v", out, err)
	}
}

func TestChangeRefusals(t *testing.T) {
	t.Parallel()
	webOnly := authz.Policy{Groups: map[string][]string{"web": {"U2"}}, Rules: []authz.Rule{{Group: "web", Allow: []string{"recheck:web"}}}}
	e := newChangeEnv(t, webOnly)
	tests := []struct {
		change int
		user   string
		want   string
	}{
		{1503, "U2", "you may not recheck api"},
		{77, "U2", "belongs to no configured service"},
		{9999, "U2", "Gerrit has no change 9999"},
	}
	for _, tc := range tests {
		_, err := e.run(t, "recheck", tc.change, tc.user)
		if msg := failureText(t, err); !strings.Contains(msg, tc.want) {
			t.Errorf("recheck %d by %s: %q, want %q", tc.change, tc.user, msg, tc.want)
		}
	}
	if n := len(e.sim.Reviews("platform/api", 1503)); n != 0 {
		t.Fatalf("a refused recheck posted %d reviews", n)
	}
}

func TestEventRunnerRefusesGarbage(t *testing.T) {
	t.Parallel()
	q, _, _ := queuetest.New(t, queue.Config{})
	r := worker.EventRunner{Blame: blame.New(blame.Config{}, blame.Deps{Store: q}, nil)}
	for _, topic := range []string{"jenkins", "gerrit", "bitbucket"} {
		_, err := r.Run(context.Background(), queue.Job{Request: commands.Request{Kind: "hook", Topic: topic}, Payload: []byte(`{"x":1}`)}, nil, nil)
		if worker.Retryable(err) || failureText(t, err) == "" {
			t.Errorf("%s garbage: %v", topic, err)
		}
	}
	started := []byte(`{"name":"j","url":"job/j/","build":{"number":1,"phase":"STARTED"}}`)
	out, err := r.Run(context.Background(), queue.Job{Request: commands.Request{Kind: "hook", Topic: "jenkins"}, Payload: started}, nil, nil)
	if err != nil || out.Result != "IGNORED" {
		t.Fatalf("a STARTED notification = %+v, %v", out, err)
	}
}

// TestNoticeButtonsNeedThePermissionOfTheNotice: a notice's buttons need
// the permission to build its service, checked again when the job runs; a
// notice no service claims needs that permission on every service.
func TestNoticeButtonsNeedThePermissionOfTheNotice(t *testing.T) {
	t.Parallel()
	q, _, _ := queuetest.New(t, queue.Config{})
	auth, err := authz.NewStatic(authz.Policy{
		Groups: map[string][]string{"web": {"U_WEB"}, "api": {"U_API"}, "ci": {"U_CI"}},
		Rules: []authz.Rule{
			{Group: "web", Allow: []string{"build:web"}},
			{Group: "api", Allow: []string{"build:api"}},
			{Group: "ci", Allow: []string{"build:*"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, n := range []queue.Notice{
		{Subject: "job:prod-db-migrate", State: "failing", Channel: "C1", Retry: queue.RetryTarget{Kind: "rebuild", Job: "prod-db-migrate"}},
		{Subject: "job:api-postmerge", Service: "api", State: "failing", Channel: "C1", Retry: queue.RetryTarget{Kind: "rebuild", Job: "api-postmerge"}},
	} {
		if err := q.SaveNotice(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	engine := blame.New(blame.Config{}, blame.Deps{Store: q}, nil)
	runner := worker.NoticeRunner{Blame: engine, Auth: auth, Notices: q}
	tests := []struct {
		subject, user string
		allowed       bool
	}{
		{"job:prod-db-migrate", "U_WEB", false},
		{"job:prod-db-migrate", "U_CI", true},
		{"job:api-postmerge", "U_WEB", false},
		{"job:api-postmerge", "U_API", true},
	}
	for _, tc := range tests {
		job := queue.Job{Request: commands.Request{Kind: "notice-mute", Topic: queue.NoticeID(tc.subject)}, User: tc.user}
		out, err := runner.Run(ctx, job, nil, func(deploy.Progress) {})
		if tc.allowed != (err == nil && out.Result == "MUTED") {
			t.Errorf("%s muting %s: %+v, %v", tc.user, tc.subject, out, err)
		}
		if !tc.allowed && err != nil && !strings.Contains(failureText(t, err), "Not done") {
			t.Errorf("%s muting %s: %v", tc.user, tc.subject, err)
		}
	}
}

// shownNotices records the notices blame would show.
type shownNotices struct {
	mu    sync.Mutex
	shown []queue.Notice
}

func (s *shownNotices) Show(_ context.Context, n queue.Notice) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shown = append(s.shown, n)
	return n.Channel, "1700000000.000001", nil
}

func (s *shownNotices) DM(context.Context, string, queue.Notice) error { return nil }

// TestOwnBuildsOfTheDefaultRefOnly: a build deploybot started of a
// feature branch that fails is not the job breaking; a build of the
// default branch is, and its Retry runs the same ref again.
func TestOwnBuildsOfTheDefaultRefOnly(t *testing.T) {
	t.Parallel()
	sim := jenkinstest.Start(jenkinstest.Options{Outcome: func(string, url.Values, int) string { return "FAILURE" }})
	t.Cleanup(sim.Close)
	sim.AddJob("api-build", "BRANCH", "MODE")
	jc, err := jenkins.New(jenkins.Config{URL: sim.URL}, ownTransport(), nil)
	if err != nil {
		t.Fatal(err)
	}
	q, _, _ := queuetest.New(t, queue.Config{})
	shown := &shownNotices{}
	engine := blame.New(blame.Config{Services: []blame.Service{{Name: "api", Channel: "C_API", Jobs: []string{"api-build"}}}},
		blame.Deps{Builds: jc, Store: q, Notifier: shown, Directory: noDirectory{}}, nil)
	runner := worker.BuildRunner{
		Builds:      &deploy.Builds{Builder: jc, Jobs: map[string]deploy.BuildJob{"api": {Job: "api-build", Params: map[string]string{"MODE": "ci"}}}, Poll: time.Millisecond},
		Blame:       engine,
		DefaultRefs: map[string]string{"api": "main"},
	}
	build := func(ref string) {
		t.Helper()
		res, err := q.Enqueue(context.Background(), queue.Job{Request: commands.Request{Kind: "build", Action: "build", Service: "api", Ref: ref}}, queue.Dedupe{})
		if err != nil {
			t.Fatal(err)
		}
		rec, _ := q.Record(context.Background(), res.ID)
		if _, err := runner.Run(context.Background(), rec.Job, q.Steps(res.ID), func(deploy.Progress) {}); err != nil {
			t.Fatal(err)
		}
	}
	build("feature/login")
	if len(shown.shown) != 0 {
		t.Fatalf("a feature branch's failure opened a notice: %+v", shown.shown)
	}
	build("main")
	if len(shown.shown) != 1 {
		t.Fatalf("%d notices for the default branch failing, want 1", len(shown.shown))
	}
	if p := shown.shown[0].Retry.Params; p["BRANCH"] != "main" || p["MODE"] != "ci" {
		t.Fatalf("retry params %v; want the build's own", p)
	}
}

type noDirectory struct{}

func (noDirectory) LookupEmail(context.Context, string) (string, bool, error) { return "", false, nil }
