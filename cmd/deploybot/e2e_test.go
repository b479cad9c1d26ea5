package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-5eb4e92e/deploybot/backends/jenkins/jenkinstest"
	"github.com/seed-5eb4e92e/deploybot/backends/vault"
	"github.com/seed-5eb4e92e/deploybot/bot"
	"github.com/seed-5eb4e92e/deploybot/bot/slacktest"
	"github.com/seed-5eb4e92e/deploybot/worker/queue/queuetest"
)

const e2eSecret = "e2e-signing-secret"

// e2e is the serve role wired as in production — real HTTP handlers, a real
// queue on Redis, workers — against the simulated Jenkins and a fake Slack.
type e2e struct {
	srv     *httptest.Server
	a       *app
	slack   *slacktest.Server
	jenkins *jenkinstest.Server
}

func startE2E(t *testing.T) *e2e { return startE2EWith(t, false) }

// startE2EWith starts the serve wiring; with mtls, the simulated Jenkins
// requires client certificates, which a development CA provides in place
// of Vault.
func startE2EWith(t *testing.T, mtls bool) *e2e { return startE2EEnv(t, mtls, nil) }

// startE2EEnv is startE2EWith with the process environment changed by
// edit, which may also set up the fake Slack.
func startE2EEnv(t *testing.T, mtls bool, edit func(env map[string]string, fake *slacktest.Server)) *e2e {
	t.Helper()
	return startE2EOpts(t, e2eOpts{mtls: mtls, edit: edit})
}

// e2eOpts are what a test may change about the serve wiring it runs.
type e2eOpts struct {
	mtls bool
	edit func(env map[string]string, fake *slacktest.Server)
	// jenkinsFront, when set, stands between the workers and the
	// simulated Jenkins (to inject failures); it gets the simulator's URL.
	jenkinsFront func(t *testing.T, simURL string) string
	// config changes the config before it is checked.
	config func(c *fileConfig)
	// redisURL replaces the test Redis (a server of the test's own).
	redisURL string
}

func startE2EOpts(t *testing.T, o e2eOpts) *e2e {
	t.Helper()
	mtls, edit := o.mtls, o.edit
	redisURL, prefix := queuetest.URL(t)
	if o.redisURL != "" {
		redisURL = o.redisURL
	}
	jopts := jenkinstest.Options{User: "deploybot", Token: "jenkins-token", Outcome: shellOutcome()}
	var w wiring
	if mtls {
		ca, err := vault.NewDevCA("e2e-worker", time.Hour, nil)
		if err != nil {
			t.Fatal(err)
		}
		if jopts.TLS, err = ca.ServerTLS("127.0.0.1"); err != nil {
			t.Fatal(err)
		}
		w.certs = ca
	}
	sim := jenkinstest.Start(jopts)
	t.Cleanup(sim.Close)
	sim.AddJob("platform/api-build", "BRANCH", "TARGET")
	fake := slacktest.Start("xoxb-e2e")
	t.Cleanup(fake.Close)
	cfg := fileConfig{
		Services: map[string]svcCfg{"api": {Build: buildCfg{Job: "platform/api-build", Params: map[string]string{"TARGET": "docker"}}}},
		Policy: policyFromYAML(t, `
groups:
  devs: [U2147483697, U0CLICKER]
  viewers: [U0VIEWER]
rules:
  - group: devs
    allow: ["build:*"]
`),
	}
	cfg.Redis = redisConfig{Prefix: prefix}
	cfg.Jenkins = jenkinsConfig{URL: sim.URL, User: "deploybot"}
	if o.jenkinsFront != nil {
		cfg.Jenkins.URL = o.jenkinsFront(t, sim.URL)
	}
	if mtls {
		cfg.Jenkins.TLS.ClientCert = "vault"
		// Checked like a real config; the development CA stands in for it.
		cfg.Vault = vaultConfig{Address: "https://vault.invalid:8200", PKIRole: "deploybot-worker", Token: "unused"}
	}
	env := map[string]string{
		"REDIS_URL": redisURL, "SLACK_SIGNING_SECRET": e2eSecret, "SLACK_BOT_TOKEN": "xoxb-e2e",
		"SLACK_API_URL": fake.URL, "JENKINS_API_TOKEN": "jenkins-token",
	}
	if edit != nil {
		edit(env, fake)
	}
	if o.config != nil {
		o.config(&cfg)
	}
	l := &loaded{name: "e2e", cfg: cfg, fromEnv: map[string]string{}}
	l.applyEnv(func(k string) string { return env[k] })
	l.check()
	if len(l.problems) > 0 {
		t.Fatalf("config problems: %v", l.problems)
	}
	l.cfg.Slack.Interval = duration(time.Millisecond)
	w.pollInterval, w.workerBlock = 2*time.Millisecond, 20*time.Millisecond
	a, srv := serveApp(t, l, roleServe, w)
	return &e2e{srv: srv, a: a, slack: fake, jenkins: sim}
}

// serveApp runs role r of the config as `deploybot serve` does, on a local
// listener, until the test ends. It returns once /healthz answers.
func serveApp(t *testing.T, l *loaded, r role, w wiring) (*app, *httptest.Server) {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	return serveAppOn(t, l, r, w, srv), srv
}

// serveAppOn is serveApp on a server whose address the test needed
// earlier (for a redirect URL in the config, say).
func serveAppOn(t *testing.T, l *loaded, r role, w wiring, srv *httptest.Server) *app {
	t.Helper()
	a, err := newApp(l, r, slog.New(slog.NewJSONHandler(io.Discard, nil)), w)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := a.serve(ctx, srv.Listener); err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	srv.URL = "http://" + srv.Listener.Addr().String()
	waitFor(t, "the server to answer", func() bool {
		resp, err := http.Get(srv.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})
	return a
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("gave up waiting for %s", what)
}

func (e *e2e) post(t *testing.T, path string, body []byte, sign bool) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if sign {
		bot.Sign(req.Header, e2eSecret, body, time.Now())
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// slashForm is the recorded slash command with text, by user.
func slashForm(t *testing.T, text, user string) url.Values {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "slack", "slash-command.txt"))
	if err != nil {
		t.Fatal(err)
	}
	form, _ := url.ParseQuery(strings.TrimSpace(string(raw)))
	form.Set("text", text)
	form.Set("user_id", user)
	return form
}

func (e *e2e) slash(t *testing.T, text, user string) string {
	t.Helper()
	form := slashForm(t, text, user)
	form.Set("response_url", e.slack.ResponseURL("cmd"))
	status, body := e.post(t, "/slack/commands", []byte(form.Encode()), true)
	if status != http.StatusOK {
		t.Fatalf("slash %q: %d %s", text, status, body)
	}
	var a struct{ Text string }
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		t.Fatalf("slash answer %q: %v", body, err)
	}
	return a.Text
}

func (e *e2e) click(t *testing.T, value, user string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "slack", "block-actions.json"))
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]any
	_ = json.Unmarshal(raw, &p)
	p["user"].(map[string]any)["id"] = user
	p["response_url"] = e.slack.ResponseURL("click")
	p["actions"].([]any)[0].(map[string]any)["value"] = value
	payload, _ := json.Marshal(p)
	if status, body := e.post(t, "/slack/interactions", []byte(url.Values{"payload": {string(payload)}}.Encode()), true); status != 200 {
		t.Fatalf("click: %d %s", status, body)
	}
}

const channel = "C2147483705" // the recorded slash command's channel

var jobRE = regexp.MustCompile("job `([0-9A-Z]{26})`")

// shown is a message as a reader sees it, buttons included ("[Retry: …]").
func shown(m slacktest.Message) string {
	blocks, err := m.DecodeBlocks()
	if err != nil {
		return "undecodable blocks: " + err.Error()
	}
	return bot.BlocksText(blocks)
}

// message finds the channel message of a job.
func (e *e2e) message(jobID string) (slacktest.Message, bool) {
	for _, m := range e.slack.Messages(channel) {
		if s := shown(m); strings.Contains(s, "job `"+jobID+"`") && !strings.Contains(s, "retry of job `"+jobID) {
			return m, true
		}
	}
	return slacktest.Message{}, false
}

func (e *e2e) waitMessage(t *testing.T, jobID, contains string) slacktest.Message {
	t.Helper()
	var m slacktest.Message
	waitFor(t, "job "+jobID+" to show "+contains, func() bool {
		var ok bool
		m, ok = e.message(jobID)
		return ok && strings.Contains(shown(m), contains)
	})
	return m
}

func TestEndToEndBuild(t *testing.T) {
	t.Parallel()
	for _, mtls := range []bool{false, true} {
		t.Run(map[bool]string{false: "token auth", true: "mutual TLS"}[mtls], func(t *testing.T) {
			t.Parallel()
			endToEndBuild(t, startE2EWith(t, mtls))
		})
	}
}

func endToEndBuild(t *testing.T, e *e2e) {
	answer := e.slash(t, "build api feature/login", "U2147483697")
	m := jobRE.FindStringSubmatch(answer)
	if m == nil || !strings.Contains(answer, "Queued build of api@feature/login") {
		t.Fatalf("answer %q", answer)
	}
	msg := e.waitMessage(t, m[1], "✅ *success*")
	if n := len(e.slack.Messages(channel)); n != 1 {
		t.Fatalf("%d messages in the channel, want one updated in place", n)
	}
	if msg.Edits == 0 || !strings.Contains(shown(msg), "#1 ("+e.jenkins.URL+"job/platform/job/api-build/1/)") {
		t.Fatalf("message %+v", msg)
	}
	thread := e.slack.Replies(channel, msg.TS)
	if len(thread) < 2 || !strings.Contains(thread[0].Text, "/deploy build api feature/login") {
		t.Fatalf("thread = %+v", thread)
	}
	if got := e.jenkins.BuildParams("platform/api-build", 1); got.Get("BRANCH") != "feature/login" || got.Get("TARGET") != "docker" {
		t.Fatalf("Jenkins ran with %v", got)
	}
	// The job's last report goes out before it is acknowledged; wait for the
	// acknowledgement before reading the counters.
	var metrics string
	waitFor(t, "the job to be acknowledged", func() bool {
		metrics = e.get(t, "/metrics")
		return strings.Contains(metrics, `deploybot_jobs_total{event="succeeded"} 1`) && strings.Contains(metrics, "deploybot_queue_depth 0")
	})
	for _, want := range []string{
		`deploybot_jobs_total{event="succeeded"} 1`,
		`deploybot_http_requests_total{endpoint="commands",outcome="queued"} 1`,
		`deploybot_ack_seconds_count{endpoint="commands"} 1`,
		`deploybot_queue_depth 0`,
		`deploybot_slack_api_calls_total{method="chat.postMessage",outcome="ok"}`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if got := e.get(t, "/readyz"); got != "ok\n" {
		t.Fatalf("/readyz = %q", got)
	}
}

func (e *e2e) get(t *testing.T, path string) string {
	t.Helper()
	resp, err := http.Get(e.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestEndToEndFailureRetryOnce(t *testing.T) {
	t.Parallel()
	e := startE2E(t)
	answer := e.slash(t, "build api fail-fast", "U2147483697")
	orig := jobRE.FindStringSubmatch(answer)[1]
	e.waitMessage(t, orig, "[Retry: click retry "+orig+"]")
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ { // a double click, and a redelivery
		wg.Add(1)
		go func() { defer wg.Done(); e.click(t, orig, "U0CLICKER") }()
	}
	wg.Wait()
	e.waitMessage(t, orig, "retried by @U0CLICKER as job")
	waitFor(t, "the retry to fail too", func() bool {
		msgs := e.slack.Messages(channel)
		return len(msgs) == 2 && strings.Contains(shown(msgs[1]), "❌ *failure* #2")
	})
	if n := e.jenkins.Builds("platform/api-build"); n != 2 {
		t.Fatalf("%d builds for one failure and three clicks, want 2", n)
	}
	if strings.Contains(shown(e.slack.Messages(channel)[0]), "[Retry") {
		t.Fatal("the retried message still has its Retry button")
	}
}

func TestEndToEndRefusals(t *testing.T) {
	t.Parallel()
	e := startE2E(t)
	if a := e.slash(t, "build api main", "U0VIEWER"); !strings.Contains(a, "Not allowed") {
		t.Fatalf("a viewer's build answered %q", a)
	}
	form := url.Values{"user_id": {"U2147483697"}, "text": {"build api main"}, "channel_id": {channel}}
	if status, _ := e.post(t, "/slack/commands", []byte(form.Encode()), false); status != http.StatusUnauthorized {
		t.Fatalf("unsigned request answered %d", status)
	}
	recent, err := e.a.q.Recent(context.Background(), "", 10)
	if err != nil || len(recent) != 0 {
		t.Fatalf("refused requests queued %d jobs (%v)", len(recent), err)
	}
}
