package bot

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seed-5eb4e92e/deploybot/authz"
	"github.com/seed-5eb4e92e/deploybot/bot/slacktest"
	"github.com/seed-5eb4e92e/deploybot/commands"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
	"github.com/seed-5eb4e92e/deploybot/worker/queue/queuetest"
)

const testSecret = "test-signing-secret"

var testCatalog = commands.Catalog{
	Services:     []commands.Service{{Name: "api"}, {Name: "web"}},
	Environments: []string{"dev", "staging", "prod"},
}

// loopbackOnly is an HTTP client that cannot leave the machine: recorded
// payloads carry real hooks.slack.com response_urls, and tests must never
// reach the network.
func loopbackOnly() *http.Client {
	dialer := &net.Dialer{Timeout: time.Second}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
				return nil, fmt.Errorf("test client: refusing to dial %s", addr)
			}
			return dialer.DialContext(ctx, network, addr)
		},
	}}
}

type fixture struct {
	r      *Responder
	client *Slack
	q      *queue.Queue
	slack  *slacktest.Server
	health *Health
	reg    *prometheus.Registry
}

func newFixture(t testing.TB, auth Authorizer, cfg Config) *fixture {
	t.Helper()
	q, _, reg := queuetest.New(t, queue.Config{})
	return newFixtureWithQueue(t, q, reg, auth, cfg)
}

func newFixtureWithQueue(t testing.TB, q *queue.Queue, reg *prometheus.Registry, auth Authorizer, cfg Config) *fixture {
	t.Helper()
	return newFixtureWith(t, q, reg, auth, cfg, testCatalog, nil)
}

// newFixtureWith is newFixtureWithQueue with a catalog of its own and,
// where deploybot deploys, the environments' locks and history.
func newFixtureWith(t testing.TB, q *queue.Queue, reg *prometheus.Registry, auth Authorizer, cfg Config, cat commands.Catalog, envs Envs) *fixture {
	t.Helper()
	fake := slacktest.Start("xoxb-test")
	t.Cleanup(fake.Close)
	m := NewMetrics(reg)
	s, err := NewSlack(SlackConfig{Token: "xoxb-test", APIURL: fake.URL, Interval: time.Millisecond}, loopbackOnly(), m, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop(context.Background()) })
	table, err := commands.NewTable("/deploy", commands.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	if auth == nil {
		auth = authz.AllowAll{}
	}
	if cfg.SigningSecret == "" {
		cfg.SigningSecret = testSecret
	}
	health := NewHealth(HealthInput{})
	r, err := New(cfg, table, cat, Deps{Queue: q, Notices: q, Envs: envs, Auth: auth, FollowUp: s, Health: health, Metrics: m, Home: s}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Wait)
	return &fixture{r: r, client: s, q: q, slack: fake, health: health, reg: reg}
}

// do sends a signed request to the responder and returns the recorder.
func (f *fixture) do(t testing.TB, path string, body []byte, mutate func(*http.Request)) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if path == "/slack/events" {
		req.Header.Set("Content-Type", "application/json") // as Slack sends events
	}
	Sign(req.Header, testSecret, body, time.Now())
	if mutate != nil {
		mutate(req)
	}
	rec := httptest.NewRecorder()
	f.r.Handler().ServeHTTP(rec, req)
	return rec
}

// slashBody is the recorded slash-command payload with some fields changed.
func slashBody(t testing.TB, text, user string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "slack", "slash-command.txt"))
	if err != nil {
		t.Fatal(err)
	}
	form, err := url.ParseQuery(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	form.Set("text", text)
	if user != "" {
		form.Set("user_id", user)
	}
	return []byte(form.Encode())
}

// answer decodes an ephemeral slash-command answer.
func answer(t testing.TB, rec *httptest.ResponseRecorder) ephemeralAnswer {
	t.Helper()
	return answerAs(t, rec, "ephemeral")
}

// answerAs decodes a slash-command answer of the given response_type:
// "ephemeral", or "in_channel" for what everyone in the channel sees.
func answerAs(t testing.TB, rec *httptest.ResponseRecorder, responseType string) ephemeralAnswer {
	t.Helper()
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d, body %q", rec.Code, rec.Body.String())
	}
	var a ephemeralAnswer
	if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
		t.Fatalf("answer %q: %v", rec.Body.String(), err)
	}
	if a.ResponseType != responseType {
		t.Fatalf("response_type %q, want %s; answer %s", a.ResponseType, responseType, a.all())
	}
	return a
}

type ephemeralAnswer struct {
	ResponseType string            `json:"response_type"`
	Text         string            `json:"text"`
	Blocks       []json.RawMessage `json:"blocks"`
}

func (a ephemeralAnswer) all() string {
	var b strings.Builder
	b.WriteString(a.Text)
	for _, bl := range a.Blocks {
		b.Write(bl)
	}
	return b.String()
}

func depth(t testing.TB, q *queue.Queue) int64 {
	t.Helper()
	n, err := q.Depth(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func outcomeCount(t testing.TB, reg *prometheus.Registry, endpoint, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "deploybot_http_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["endpoint"] == endpoint && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
