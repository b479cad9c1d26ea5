package deploy_test

import (
	"context"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-5eb4e92e/deploybot/backends/jenkins"
	"github.com/seed-5eb4e92e/deploybot/backends/jenkins/jenkinstest"
	"github.com/seed-5eb4e92e/deploybot/deploy"
)

// memSteps is step state in memory; the Redis implementation has its own
// tests in worker/queue.
type memSteps struct {
	mu sync.Mutex
	m  map[string]string
}

func (s *memSteps) Get(_ context.Context, name string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[name], nil
}

func (s *memSteps) Set(_ context.Context, name, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]string{}
	}
	s.m[name] = value
	return nil
}

func setup(t *testing.T, opts jenkinstest.Options) (*deploy.Builds, *jenkinstest.Server) {
	t.Helper()
	srv := jenkinstest.Start(opts)
	t.Cleanup(srv.Close)
	srv.AddJob("team/api-build", "BRANCH", "TARGET")
	c, err := jenkins.New(jenkins.Config{URL: srv.URL}, ownTransport(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return &deploy.Builds{
		Builder: c,
		Jobs:    map[string]deploy.BuildJob{"api": {Job: "team/api-build", Params: map[string]string{"TARGET": "docker"}}},
		Poll:    time.Millisecond,
	}, srv
}

func TestBuildHappyPath(t *testing.T) {
	t.Parallel()
	b, srv := setup(t, jenkinstest.Options{QuietPolls: 2, ExecutorPolls: 2, BuildPolls: 3})
	var stages []string
	steps := &memSteps{}
	res, err := b.Run(context.Background(), "api", "feature/login", steps, func(p deploy.Progress) {
		stages = append(stages, p.Stage+" "+p.LinkText)
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Succeeded() || res.Number != 1 || !strings.HasSuffix(res.URL, "/job/team/job/api-build/1/") || res.Duration <= 0 {
		t.Fatalf("result = %+v", res)
	}
	want := "queued in Jenkins |waiting for an executor |building #1"
	if got := strings.Join(stages, "|"); got != want {
		t.Fatalf("stages = %q, want %q", got, want)
	}
	params := srv.BuildParams("team/api-build", 1)
	if params.Get("BRANCH") != "feature/login" || params.Get("TARGET") != "docker" {
		t.Fatalf("build parameters = %v", params)
	}
	if steps.m["jenkins_queue_item"] == "" || steps.m["jenkins_build"] != "1" {
		t.Fatalf("steps = %v", steps.m)
	}
}

// TestResumeFollowsTheSameBuild kills the run (cancels its context) at each
// stage and runs it again with the same steps, as a worker that reclaims
// the job would: there must be exactly one queue item and one build.
func TestResumeFollowsTheSameBuild(t *testing.T) {
	t.Parallel()
	for _, stopAt := range []string{"queued in Jenkins", "waiting for an executor", "building"} {
		t.Run(stopAt, func(t *testing.T) {
			t.Parallel()
			b, srv := setup(t, jenkinstest.Options{QuietPolls: 2, ExecutorPolls: 2, BuildPolls: 3})
			steps := &memSteps{}
			ctx, cancel := context.WithCancel(context.Background())
			_, err := b.Run(ctx, "api", "main", steps, func(p deploy.Progress) {
				if p.Stage == stopAt {
					cancel()
				}
			})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("first run = %v, want it cancelled", err)
			}
			res, err := b.Run(context.Background(), "api", "main", steps, func(deploy.Progress) {})
			if err != nil || !res.Succeeded() {
				t.Fatalf("resumed run = %+v, %v", res, err)
			}
			if n := srv.QueueItemsCreated(); n != 1 {
				t.Fatalf("%d queue items created, want 1", n)
			}
			if n := srv.Builds("team/api-build"); n != 1 {
				t.Fatalf("%d builds, want 1", n)
			}
		})
	}
}

func TestBuildOutcomes(t *testing.T) {
	t.Parallel()
	b, srv := setup(t, jenkinstest.Options{Outcome: func(_ string, p url.Values, _ int) string { return p.Get("BRANCH") }})
	for _, outcome := range []string{"FAILURE", "ABORTED", "UNSTABLE"} {
		res, err := b.Run(context.Background(), "api", outcome, &memSteps{}, func(deploy.Progress) {})
		if err != nil || res.Outcome != outcome || res.Succeeded() {
			t.Fatalf("Run(%s) = %+v, %v", outcome, res, err)
		}
	}
	if n := srv.Builds("team/api-build"); n != 3 {
		t.Fatalf("%d builds, want 3", n)
	}
}

func TestCancelledQueueItem(t *testing.T) {
	t.Parallel()
	b, srv := setup(t, jenkinstest.Options{QuietPolls: 100})
	steps := &memSteps{}
	res, err := b.Run(context.Background(), "api", "main", steps, func(p deploy.Progress) {
		id, _ := steps.Get(context.Background(), "jenkins_queue_item")
		n, _ := strconv.ParseInt(id, 10, 64)
		srv.Cancel(n)
	})
	if err != nil || res.Outcome != "CANCELLED" {
		t.Fatalf("Run = %+v, %v; want CANCELLED", res, err)
	}
}

func TestFailuresAreExplained(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(*jenkinstest.Server, *deploy.Builds)
		want  string // substring of the Failure message
	}{
		{name: "no such job", setup: func(_ *jenkinstest.Server, b *deploy.Builds) {
			b.Jobs["api"] = deploy.BuildJob{Job: "missing"}
		}, want: "Jenkins has no job missing"},
		{name: "disabled", setup: func(s *jenkinstest.Server, _ *deploy.Builds) { s.DisableJob("team/api-build") }, want: "not buildable"},
		{name: "unknown service", setup: func(_ *jenkinstest.Server, b *deploy.Builds) { delete(b.Jobs, "api") }, want: "No build job is configured for api"},
		{name: "queue item forgotten", setup: func(s *jenkinstest.Server, _ *deploy.Builds) {}, want: "no longer knows queue item"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := jenkinstest.Options{}
			if tc.name == "queue item forgotten" {
				opts.LeftPolls = 1
			}
			b, srv := setup(t, opts)
			tc.setup(srv, b)
			steps := &memSteps{}
			if tc.name == "queue item forgotten" {
				// The item started and was forgotten while no worker was watching.
				c, _ := jenkins.New(jenkins.Config{URL: srv.URL}, ownTransport(), nil)
				id, _ := c.Trigger(context.Background(), "team/api-build", map[string]string{"BRANCH": "main", "TARGET": "docker"})
				for i := 0; i < 4; i++ {
					_, _ = c.QueueItem(context.Background(), id)
				}
				_ = steps.Set(context.Background(), "jenkins_queue_item", strconv.FormatInt(id, 10))
			}
			_, err := b.Run(context.Background(), "api", "main", steps, func(deploy.Progress) {})
			var f *deploy.Failure
			if !errors.As(err, &f) || !strings.Contains(f.Msg, tc.want) {
				t.Fatalf("Run = %v, want a Failure saying %q", err, tc.want)
			}
		})
	}
}

func TestServerErrorsStayRetryable(t *testing.T) {
	t.Parallel()
	b, srv := setup(t, jenkinstest.Options{})
	srv.Fail("POST", "/job/", 502, 1)
	_, err := b.Run(context.Background(), "api", "main", &memSteps{}, func(deploy.Progress) {})
	var f *deploy.Failure
	var he *jenkins.HTTPError
	if !errors.As(err, &he) || !he.Temporary() {
		t.Fatalf("Run = %v, want a temporary HTTPError inside", err)
	}
	if !errors.As(err, &f) || !strings.Contains(f.Msg, "502") {
		t.Fatalf("Run = %v, want a Failure naming the status", err)
	}
}
