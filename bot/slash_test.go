package bot

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/seed-5eb4e92e/deploybot/authz"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// TestSignMatchesSlackVector checks our signer against the worked example
// in Slack's documentation (testdata/slack/signing-example.md).
func TestSignMatchesSlackVector(t *testing.T) {
	t.Parallel()
	body, err := os.ReadFile(filepath.Join("..", "testdata", "slack", "signing-example.body"))
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	Sign(h, "8f742231b10e8888abcd99yyyzzz85a5", body, time.Unix(1531420618, 0))
	if got, want := h.Get("X-Slack-Signature"), "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"; got != want {
		t.Fatalf("signature %s, want Slack's %s", got, want)
	}
}

func TestUnsignedRequestsAreRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, Config{})
	body := slashBody(t, "build api main", "")
	tests := []struct {
		name   string
		mutate func(*http.Request)
	}{
		{"no signature", func(r *http.Request) { r.Header.Del("X-Slack-Signature") }},
		{"no timestamp", func(r *http.Request) { r.Header.Del("X-Slack-Request-Timestamp") }},
		{"wrong secret", func(r *http.Request) { Sign(r.Header, "not-the-secret", body, time.Now()) }},
		{"six minutes old", func(r *http.Request) { Sign(r.Header, testSecret, body, time.Now().Add(-6*time.Minute)) }},
		{"six minutes ahead", func(r *http.Request) { Sign(r.Header, testSecret, body, time.Now().Add(6*time.Minute)) }},
		{"tampered body", func(r *http.Request) {
			Sign(r.Header, testSecret, []byte("text=build+api+other"), time.Now())
		}},
		{"garbage signature", func(r *http.Request) { r.Header.Set("X-Slack-Signature", "v0=zz") }},
	}
	for _, tc := range tests {
		for _, path := range []string{"/slack/commands", "/slack/interactions", "/slack/events"} {
			rec := f.do(t, path, body, tc.mutate)
			if rec.Code != http.StatusUnauthorized {
				t.Errorf("%s %s: status %d, want 401", tc.name, path, rec.Code)
			}
		}
	}
	if n := depth(t, f.q); n != 0 {
		t.Fatalf("refused requests queued %d jobs", n)
	}
	if got := outcomeCount(t, f.reg, "commands", "unauthorized"); got != float64(len(tests)) {
		t.Fatalf("unauthorized commands counted %v, want %d", got, len(tests))
	}
}

func TestOversizedBodyIsRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, Config{MaxBody: 512})
	body := slashBody(t, "build api "+strings.Repeat("x", 600), "")
	if rec := f.do(t, "/slack/commands", body, nil); rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", rec.Code)
	}
	if n := depth(t, f.q); n != 0 {
		t.Fatalf("queued %d jobs", n)
	}
}

var jobIDRE = regexp.MustCompile("job `([0-9A-Z]{26})`")

func TestSlashCommandQueuesAJob(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, Config{})
	a := answer(t, f.do(t, "/slack/commands", slashBody(t, "build api feature/login", ""), nil))
	if !strings.Contains(a.Text, "Queued build of api@feature/login") {
		t.Fatalf("answer %q", a.Text)
	}
	m := jobIDRE.FindStringSubmatch(a.Text)
	if m == nil {
		t.Fatalf("answer %q names no job", a.Text)
	}
	rec, err := f.q.Record(context.Background(), m[1])
	if err != nil {
		t.Fatal(err)
	}
	job := rec.Job
	if job.User != "U2147483697" || job.Channel != "C2147483705" || job.Request.Ref != "feature/login" ||
		job.ResponseURL != "https://hooks.slack.com/commands/1234/5678" || job.Text != "/deploy build api feature/login" {
		t.Fatalf("queued job = %+v", job)
	}
}

func TestDuplicatesGetOneJob(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, Config{})
	first := answer(t, f.do(t, "/slack/commands", slashBody(t, "build api main", ""), nil))
	id := jobIDRE.FindStringSubmatch(first.Text)[1]
	retries := []func(*http.Request){
		nil, // the user sends it again
		func(r *http.Request) {
			r.Header.Set("X-Slack-Retry-Num", "1")
			r.Header.Set("X-Slack-Retry-Reason", "http_timeout")
		},
	}
	for _, m := range retries {
		a := answer(t, f.do(t, "/slack/commands", slashBody(t, "BUILD  api main", ""), m))
		if !strings.Contains(a.Text, "Already queued") || !strings.Contains(a.Text, id) {
			t.Fatalf("duplicate answered %q, want a pointer to %s", a.Text, id)
		}
	}
	if n := depth(t, f.q); n != 1 {
		t.Fatalf("%d jobs queued, want 1", n)
	}
	other := answer(t, f.do(t, "/slack/commands", slashBody(t, "build api main", "U_OTHER"), nil))
	if !strings.Contains(other.Text, "Queued") {
		t.Fatalf("another user's command answered %q", other.Text)
	}
}

func TestBadInputIsAnsweredAndQueuesNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, Config{})
	tests := []struct{ text, want string }{
		{"build apu main", "Did you mean `api`?"},
		{"build nope", "Known services: api, web."},
		{"build api ../etc", "not a valid git ref"},
		{"buidl api", "Did you mean `/deploy build`?"},
		{"", "Commands:"},
		{"help build", "/deploy build &lt;service&gt; [ref]"},
	}
	for _, tc := range tests {
		a := answer(t, f.do(t, "/slack/commands", slashBody(t, tc.text, ""), nil))
		if !strings.Contains(a.all(), tc.want) {
			t.Errorf("%q answered %q, want it to say %q", tc.text, a.Text, tc.want)
		}
	}
	if n := depth(t, f.q); n != 0 {
		t.Fatalf("bad input queued %d jobs", n)
	}
}

// TestMentionsInRefsAreInert: "<!channel>" is a legal git ref, so it is
// queued, but it must never reach Slack as a live mention.
func TestMentionsInRefsAreInert(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, Config{})
	a := answer(t, f.do(t, "/slack/commands", slashBody(t, "build api <!channel>", ""), nil))
	if strings.Contains(a.all(), "<!channel>") || !strings.Contains(a.Text, "&lt;!channel&gt;") {
		t.Fatalf("answer %s carries a live mention", a.all())
	}
}

func TestDeniedRequestQueuesNothing(t *testing.T) {
	t.Parallel()
	policy, err := authz.NewStatic(authz.Policy{
		Groups: map[string][]string{"dev": {"U_DEV"}},
		Rules:  []authz.Rule{{Group: "dev", Allow: []string{"build:web"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, policy, Config{})
	a := answer(t, f.do(t, "/slack/commands", slashBody(t, "build api main", "U_DEV"), nil))
	if !strings.Contains(a.Text, "Not allowed") || !strings.Contains(a.Text, "build:api") {
		t.Fatalf("answer %q", a.Text)
	}
	if n := depth(t, f.q); n != 0 {
		t.Fatalf("a denied request queued %d jobs", n)
	}
	ok := answer(t, f.do(t, "/slack/commands", slashBody(t, "build web main", "U_DEV"), nil))
	if !strings.Contains(ok.Text, "Queued") {
		t.Fatalf("allowed request answered %q", ok.Text)
	}
}

func TestStatusListsRecentJobs(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, Config{})
	answer(t, f.do(t, "/slack/commands", slashBody(t, "build api v1.2.3", ""), nil))
	a := answer(t, f.do(t, "/slack/commands", slashBody(t, "status api", ""), nil))
	if !strings.Contains(a.all(), "Recent jobs for `api`") || !strings.Contains(a.all(), "v1.2.3") || !strings.Contains(a.all(), "queued") {
		t.Fatalf("status answered %s", a.all())
	}
	empty := answer(t, f.do(t, "/slack/commands", slashBody(t, "status web", ""), nil))
	if !strings.Contains(empty.all(), "No jobs yet") {
		t.Fatalf("status of an idle service answered %s", empty.all())
	}
}

// blockingRedis accepts connections and never answers: Redis hung.
func blockingRedis(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				<-done
				c.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

// TestAckDeadlineHoldsWhenRedisHangs: Redis takes connections and never
// answers. The user still gets an answer, saying nothing started, and
// /readyz turns red. Nothing here measures time: the hung Redis blocks
// forever, so only the deadline can end the request.
func TestAckDeadlineHoldsWhenRedisHangs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		addr string
	}{
		{"hung", blockingRedis(t)},
		{"down", "127.0.0.1:1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rdb := redis.NewClient(&redis.Options{Addr: tc.addr, ContextTimeoutEnabled: true, MaxRetries: -1})
			t.Cleanup(func() { rdb.Close() })
			reg := prometheus.NewRegistry()
			q, err := queue.New(queue.Config{Prefix: "ack-deadline"}, rdb, reg)
			if err != nil {
				t.Fatal(err)
			}
			f := newFixtureWithQueue(t, q, reg, nil, Config{AckTimeout: 300 * time.Millisecond})
			a := answer(t, f.do(t, "/slack/commands", slashBody(t, "build api main", ""), nil))
			if !strings.Contains(a.Text, "Nothing was started") {
				t.Fatalf("answer %q, want it to say nothing was started", a.Text)
			}
			rec := httptest.NewRecorder()
			f.r.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			if rec.Code != http.StatusServiceUnavailable {
				t.Fatalf("/readyz = %d, want 503", rec.Code)
			}
			if got := outcomeCount(t, f.reg, "commands", "unavailable"); got != 1 {
				t.Fatalf("unavailable counted %v", got)
			}
		})
	}
}

func TestHealthEndpoints(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, Config{})
	get := func(path string) int {
		rec := httptest.NewRecorder()
		f.r.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code
	}
	if get("/healthz") != 200 || get("/readyz") != 200 {
		t.Fatal("a fresh responder is not healthy and ready")
	}
	f.health.Drain()
	if get("/readyz") != 503 || get("/healthz") != 200 {
		t.Fatal("a draining responder must be alive but not ready")
	}
}

type degradedErr struct{}

func (degradedErr) Error() string  { return "renewal failing" }
func (degradedErr) Degraded() bool { return true }

func TestReadinessChecks(t *testing.T) {
	t.Parallel()
	var state error
	h := NewHealth(HealthInput{Checks: []Check{{Name: "vault", Func: func() error { return state }}}})
	get := func() (int, string) {
		rec := httptest.NewRecorder()
		h.ServeReadyz(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := get(); code != 200 || body != "ok\n" {
		t.Fatalf("healthy: %d %q", code, body)
	}
	state = degradedErr{}
	if code, body := get(); code != 200 || !strings.Contains(body, "degraded: vault: renewal failing") {
		t.Fatalf("degraded: %d %q; want 200 and the reason", code, body)
	}
	state = errors.New("no valid client certificate")
	if code, body := get(); code != 503 || !strings.Contains(body, "vault: no valid client certificate") {
		t.Fatalf("failing: %d %q; want 503 and the reason", code, body)
	}
}
