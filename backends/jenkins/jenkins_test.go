package jenkins_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seed-5eb4e92e/deploybot/backends/jenkins"
	"github.com/seed-5eb4e92e/deploybot/backends/jenkins/jenkinstest"
	"github.com/seed-5eb4e92e/deploybot/deploy"
)

var _ deploy.Builder = (*jenkins.Client)(nil)

func newPair(t *testing.T, opts jenkinstest.Options) (*jenkins.Client, *jenkinstest.Server) {
	t.Helper()
	srv := jenkinstest.Start(opts)
	t.Cleanup(srv.Close)
	c, err := jenkins.New(jenkins.Config{URL: srv.URL, User: opts.User, APIToken: opts.Token}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, srv
}

// follow polls the queue item and then the build to the end, as the
// worker does, and returns the finished build.
func follow(t *testing.T, c *jenkins.Client, job string, id int64) jenkins.Build {
	t.Helper()
	ctx := context.Background()
	var kinds []string
	var number int
	for i := 0; i < 20 && number == 0; i++ {
		item, err := c.QueueItem(ctx, id)
		if err != nil {
			t.Fatalf("QueueItem(%d): %v", id, err)
		}
		kinds = append(kinds, item.Kind())
		if item.Executable != nil {
			number = item.Executable.Number
		}
	}
	want := "WaitingItem,BuildableItem,LeftItem"
	if got := strings.Join(kinds, ","); got != want {
		t.Fatalf("queue item went through %s, want %s", got, want)
	}
	for i := 0; i < 20; i++ {
		b, err := c.Build(ctx, job, number)
		if err != nil {
			t.Fatalf("Build(%s, %d): %v", job, number, err)
		}
		if !b.Building {
			return b
		}
		if b.Result != "" {
			t.Fatalf("running build has result %q", b.Result)
		}
	}
	t.Fatal("build never finished")
	return jenkins.Build{}
}

func TestTriggerFollowNestedFolder(t *testing.T) {
	t.Parallel()
	c, srv := newPair(t, jenkinstest.Options{
		User: "deploybot", Token: "s3cret-token",
		Outcome: func(job string, params url.Values, n int) string {
			if params.Get("BRANCH") == "broken" {
				return "FAILURE"
			}
			return "SUCCESS"
		},
	})
	srv.AddJob("team/api build", "BRANCH", "DEPLOY_ENV")
	ctx := context.Background()
	id, err := c.Trigger(ctx, "team/api build", map[string]string{"BRANCH": "feature/login", "DEPLOY_ENV": "staging", "IGNORED": "x"})
	if err != nil {
		t.Fatal(err)
	}
	b := follow(t, c, "team/api build", id)
	if b.Result != "SUCCESS" || b.Number != 1 || !strings.HasSuffix(b.URL, "/job/team/job/api%20build/1/") {
		t.Fatalf("build = %+v", b)
	}
	if got := srv.BuildParams("team/api build", 1); got.Get("BRANCH") != "feature/login" || got.Has("IGNORED") {
		t.Fatalf("build ran with %v", got)
	}
	id2, err := c.Trigger(ctx, "team/api build", map[string]string{"BRANCH": "broken", "DEPLOY_ENV": "staging"})
	if err != nil {
		t.Fatal(err)
	}
	if b := follow(t, c, "team/api build", id2); b.Result != "FAILURE" || b.Number != 2 {
		t.Fatalf("second build = %+v", b)
	}
}

func TestMergedRequestReturnsExistingItem(t *testing.T) {
	t.Parallel()
	c, srv := newPair(t, jenkinstest.Options{QuietPolls: 5})
	srv.AddJob("api-build", "BRANCH")
	ctx := context.Background()
	params := map[string]string{"BRANCH": "main"}
	first, err := c.Trigger(ctx, "api-build", params)
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.Trigger(ctx, "api-build", params) // 303 to the same item
	if err != nil {
		t.Fatal(err)
	}
	if first != second || srv.QueueItemsCreated() != 1 {
		t.Fatalf("items %d and %d, %d created; want one merged item", first, second, srv.QueueItemsCreated())
	}
	other, err := c.Trigger(ctx, "api-build", map[string]string{"BRANCH": "dev"})
	if err != nil || other == first {
		t.Fatalf("different parameters gave item %d (%v), want a new one", other, err)
	}
}

func TestUnparameterizedJobUsesBuild(t *testing.T) {
	t.Parallel()
	c, srv := newPair(t, jenkinstest.Options{})
	srv.AddJob("nightly")
	id, err := c.Trigger(context.Background(), "nightly", nil)
	if err != nil {
		t.Fatal(err)
	}
	if b := follow(t, c, "nightly", id); b.Result != "SUCCESS" {
		t.Fatalf("build = %+v", b)
	}
	reqs := strings.Join(srv.Requests(), "\n")
	if !strings.Contains(reqs, "POST /job/nightly/build") {
		t.Fatalf("requests:\n%s", reqs)
	}
}

func TestCrumbWithSession(t *testing.T) {
	t.Parallel()
	c, srv := newPair(t, jenkinstest.Options{User: "u", Token: "password", RequireCrumb: true})
	srv.AddJob("api-build", "BRANCH")
	ctx := context.Background()
	for _, ref := range []string{"a", "b"} {
		if _, err := c.Trigger(ctx, "api-build", map[string]string{"BRANCH": ref}); err != nil {
			t.Fatalf("Trigger(%s): %v", ref, err)
		}
	}
	var crumbs, posts int
	for _, r := range srv.Requests() {
		switch {
		case r == "GET /crumbIssuer/api/json":
			crumbs++
		case strings.HasPrefix(r, "POST "):
			posts++
		}
	}
	// The first POST is refused (403), a crumb is fetched, both builds pass.
	if crumbs != 1 || posts != 3 || srv.QueueItemsCreated() != 2 {
		t.Fatalf("%d crumb fetches, %d posts, %d items; requests: %v", crumbs, posts, srv.QueueItemsCreated(), srv.Requests())
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		setup     func(*jenkinstest.Server)
		job       string
		params    map[string]string
		status    int
		temporary bool
	}{
		{name: "disabled job", setup: func(s *jenkinstest.Server) { s.AddJob("j", "BRANCH"); s.DisableJob("j") }, job: "j", params: map[string]string{"BRANCH": "m"}, status: 409},
		{name: "not parameterized", setup: func(s *jenkinstest.Server) { s.AddJob("j") }, job: "j", params: map[string]string{"BRANCH": "m"}, status: 400},
		{name: "parameterized via build", setup: func(s *jenkinstest.Server) { s.AddJob("j", "BRANCH") }, job: "j", status: 400},
		{name: "unknown job", setup: func(*jenkinstest.Server) {}, job: "nope", params: map[string]string{"BRANCH": "m"}, status: 404},
		{name: "server error", setup: func(s *jenkinstest.Server) { s.AddJob("j", "BRANCH"); s.Fail("POST", "/job/j/", 503, 1) }, job: "j", params: map[string]string{"BRANCH": "m"}, status: 503, temporary: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, srv := newPair(t, jenkinstest.Options{User: "u", Token: "tok-123"})
			tc.setup(srv)
			_, err := c.Trigger(context.Background(), tc.job, tc.params)
			var he *jenkins.HTTPError
			if !errors.As(err, &he) {
				t.Fatalf("Trigger = %v, want *HTTPError", err)
			}
			if he.Status != tc.status || he.Temporary() != tc.temporary {
				t.Fatalf("status %d temporary %v, want %d %v (%v)", he.Status, he.Temporary(), tc.status, tc.temporary, err)
			}
			if strings.Contains(err.Error(), "tok-123") {
				t.Fatal("error text contains the API token")
			}
		})
	}
}

func TestBadCredentials(t *testing.T) {
	t.Parallel()
	srv := jenkinstest.Start(jenkinstest.Options{User: "u", Token: "right"})
	defer srv.Close()
	srv.AddJob("j", "BRANCH")
	c, _ := jenkins.New(jenkins.Config{URL: srv.URL, User: "u", APIToken: "wrong"}, nil, nil)
	_, err := c.Trigger(context.Background(), "j", map[string]string{"BRANCH": "m"})
	var he *jenkins.HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusUnauthorized || he.Temporary() {
		t.Fatalf("Trigger with a wrong token = %v", err)
	}
}

func TestLeftItemExpiresAndCancel(t *testing.T) {
	t.Parallel()
	c, srv := newPair(t, jenkinstest.Options{LeftPolls: 1})
	srv.AddJob("j", "BRANCH")
	ctx := context.Background()
	id, _ := c.Trigger(ctx, "j", map[string]string{"BRANCH": "a"})
	var left bool
	for i := 0; i < 5 && !left; i++ {
		item, err := c.QueueItem(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		left = item.Left()
	}
	_, err := c.QueueItem(ctx, id)
	var he *jenkins.HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusNotFound {
		t.Fatalf("expired item = %v, want 404", err)
	}

	id2, _ := c.Trigger(ctx, "j", map[string]string{"BRANCH": "b"})
	srv.Cancel(id2)
	item, err := c.QueueItem(ctx, id2)
	if err != nil || !item.Cancelled || item.Executable != nil || !item.Left() {
		t.Fatalf("cancelled item = %+v, %v", item, err)
	}
}

func TestJobPath(t *testing.T) {
	t.Parallel()
	good := map[string]string{
		"api-build":       "job/api-build/",
		"team/api-build":  "job/team/job/api-build/",
		"my folder/a b?c": "job/my%20folder/job/a%20b%3Fc/",
	}
	for in, want := range good {
		if got, err := jenkins.JobPath(in); err != nil || got != want {
			t.Errorf("JobPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "/a", "a/", "a//b", "..", "a/../b", "a\nb"} {
		if _, err := jenkins.JobPath(bad); err == nil {
			t.Errorf("JobPath(%q) accepted", bad)
		}
	}
}

func TestCheckParams(t *testing.T) {
	t.Parallel()
	if err := jenkins.CheckParams(map[string]string{"BRANCH": "feature/x", "GIT_REF": "v1.2"}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []map[string]string{{"": "x"}, {"A B": "x"}, {"1A": "x"}, {"A": "x\ny"}, {"A": strings.Repeat("x", 5000)}} {
		if err := jenkins.CheckParams(bad); err == nil {
			t.Errorf("CheckParams(%q) accepted", bad)
		}
	}
}

func TestNewRejectsBadURLs(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "jenkins.example.com", "ftp://x/", "https://user:pw@jenkins.example.com/"} {
		if _, err := jenkins.New(jenkins.Config{URL: u}, nil, nil); err == nil {
			t.Errorf("New accepted %q", u)
		}
	}
}

// TestRecordedPayloads decodes the payloads recorded from Jenkins directly,
// so the client's types are checked against Jenkins, not only against the
// double.
func TestRecordedPayloads(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("jenkinstest", "testdata")
	items := map[string]func(jenkins.QueueItem) bool{
		"queue-waiting.json": func(q jenkins.QueueItem) bool {
			return q.Kind() == "WaitingItem" && !q.Left() && q.ID == 42 && q.URL == "queue/item/42/"
		},
		"queue-blocked.json": func(q jenkins.QueueItem) bool { return q.Kind() == "BlockedItem" && q.Blocked && !q.Left() },
		"queue-buildable.json": func(q jenkins.QueueItem) bool {
			return q.Kind() == "BuildableItem" && q.Why == "Waiting for next available executor"
		},
		"queue-left.json":      func(q jenkins.QueueItem) bool { return q.Left() && q.Executable != nil && q.Executable.Number == 7 },
		"queue-cancelled.json": func(q jenkins.QueueItem) bool { return q.Left() && q.Cancelled && q.Executable == nil },
	}
	for name, ok := range items {
		var q jenkins.QueueItem
		decodeFile(t, filepath.Join(dir, name), &q)
		if !ok(q) {
			t.Errorf("%s decoded as %+v", name, q)
		}
	}
	builds := map[string]func(jenkins.Build) bool{
		"build-running.json":  func(b jenkins.Build) bool { return b.Building && b.Result == "" && b.Number == 7 && b.QueueID == 42 },
		"build-success.json":  func(b jenkins.Build) bool { return !b.Building && b.Result == "SUCCESS" && b.Duration > 0 },
		"build-failure.json":  func(b jenkins.Build) bool { return !b.Building && b.Result == "FAILURE" },
		"build-aborted.json":  func(b jenkins.Build) bool { return !b.Building && b.Result == "ABORTED" },
		"build-workflow.json": func(b jenkins.Build) bool { return b.Number == 12 && strings.Contains(b.Class, "WorkflowRun") },
		"build-release.json": func(b jenkins.Build) bool {
			return b.Number == 15 && b.Result == "SUCCESS" && b.Description != "" && len(b.Artifacts) == 2
		},
		"build-workflow-artifacts.json": func(b jenkins.Build) bool {
			return b.Number == 13 && strings.Contains(b.Class, "WorkflowRun") && b.Params()["VERSION"] == "1.4.2" && len(b.Artifacts) == 4
		},
	}
	for name, ok := range builds {
		var b jenkins.Build
		decodeFile(t, filepath.Join(dir, name), &b)
		if !ok(b) {
			t.Errorf("%s decoded as %+v", name, b)
		}
	}
}

func decodeFile(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestQueueItemID(t *testing.T) {
	t.Parallel()
	good := map[string]int64{
		"http://jenkins.example.com/queue/item/42/":   42,
		"https://ci.example.com/jenkins/queue/item/7": 7,
		"/queue/item/1151/":                           1151,
	}
	for in, want := range good {
		if got, err := jenkins.QueueItemID(in); err != nil || got != want {
			t.Errorf("QueueItemID(%q) = %d, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "http://j/job/api/", "http://j/queue/item/0/", "http://j/queue/item/x/", "http://j/queue/item/99999999999999999999/"} {
		if _, err := jenkins.QueueItemID(bad); !errors.Is(err, jenkins.ErrNotQueued) {
			t.Errorf("QueueItemID(%q) = %v, want ErrNotQueued", bad, err)
		}
	}
}

func FuzzQueueItemID(f *testing.F) {
	f.Add("http://jenkins.example.com/queue/item/42/")
	f.Add("/queue/item/1/")
	f.Add("%zz")
	f.Fuzz(func(t *testing.T, loc string) {
		id, err := jenkins.QueueItemID(loc)
		if err == nil && id <= 0 {
			t.Fatalf("QueueItemID(%q) = %d without error", loc, id)
		}
	})
}

func FuzzDecodeResponses(f *testing.F) {
	for _, name := range []string{"queue-left.json", "build-failure.json", "crumb.json", "build-release.json", "build-workflow-artifacts.json"} {
		raw, err := os.ReadFile(filepath.Join("jenkinstest", "testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var q jenkins.QueueItem
		if json.Unmarshal(raw, &q) == nil {
			_ = q.Kind()
			_ = q.Left()
		}
		var b jenkins.Build
		if json.Unmarshal(raw, &b) != nil {
			return
		}
		_ = b.Changes()
		params := b.Params()
		for _, a := range b.Actions {
			for _, p := range a.Parameters {
				if v, ok := p.Text(); ok && p.Name != "" && params[p.Name] != v && !repeated(b, p.Name) {
					t.Fatalf("Params()[%q] = %q, but its Text is %q", p.Name, params[p.Name], v)
				}
			}
		}
		for _, art := range b.Artifacts {
			_, _ = jenkins.ArtifactPath(art.RelativePath)
		}
	})
}

// repeated reports whether more than one parameter is called name, so the
// last one wins in Params.
func repeated(b jenkins.Build, name string) bool {
	n := 0
	for _, a := range b.Actions {
		for _, p := range a.Parameters {
			if p.Name == name {
				n++
			}
		}
	}
	return n > 1
}
