package bot

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/seed-5eb4e92e/deploybot/bot/slacktest"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
	"github.com/seed-5eb4e92e/deploybot/worker/queue/queuetest"
)

const testAppToken = "xapp-1-A0DEPLOYBOT-1-test"

// socketEnvelope reads a recorded Socket Mode envelope and lets edit change
// its payload.
func socketEnvelope(t testing.TB, name string, edit func(map[string]any)) slacktest.Envelope {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "slack", "socket", name))
	if err != nil {
		t.Fatal(err)
	}
	var env slacktest.Envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		var p map[string]any
		if err := json.Unmarshal(env.Payload, &p); err != nil {
			t.Fatal(err)
		}
		edit(p)
		if env.Payload, err = json.Marshal(p); err != nil {
			t.Fatal(err)
		}
	}
	env.EnvelopeID = "" // the fake numbers them
	return env
}

// slashEnvelope is the recorded slash_commands envelope with text typed by
// user.
func slashEnvelope(t testing.TB, text, user string) slacktest.Envelope {
	return socketEnvelope(t, "slash-commands.json", func(p map[string]any) {
		p["text"], p["user_id"], p["command"] = text, user, "/deploy"
	})
}

// serveSocket runs f's responder over Socket Mode against fake until the
// test ends, and waits for it to connect.
func serveSocket(t *testing.T, f *fixture, fake *slacktest.Server) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- f.r.ServeSocketMode(ctx, SocketConfig{AppToken: testAppToken, APIURL: fake.URL}, loopbackOnly())
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeSocketMode: %v", err)
		}
	})
}

func waitSocket(t *testing.T, fake *slacktest.Server, what string, cond func(slacktest.SocketState) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := fake.WaitSocket(ctx, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func deliver(t *testing.T, fake *slacktest.Server, conn int, env slacktest.Envelope) slacktest.Ack {
	t.Helper()
	id, err := fake.DeliverTo(conn, env)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ack, err := fake.WaitAck(ctx, id)
	if err != nil {
		t.Fatalf("envelope %s (%s) not acked: %v", id, env.Type, err)
	}
	return ack
}

func socketFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t, nil, Config{})
	f.slack.EnableSocketMode(testAppToken, 0)
	serveSocket(t, f, f.slack)
	waitSocket(t, f.slack, "a connection", func(st slacktest.SocketState) bool { return st.Open == 1 })
	return f
}

// TestSocketModeSlashCommand: a slash command over Socket Mode is queued
// once and acked with the answer HTTP would have given, as the envelope's
// response payload.
func TestSocketModeSlashCommand(t *testing.T) {
	t.Parallel()
	f := socketFixture(t)
	ack := deliver(t, f.slack, 0, slashEnvelope(t, "build api main", "U1"))
	var a ephemeralAnswer
	if err := json.Unmarshal(ack.Payload, &a); err != nil || a.ResponseType != "ephemeral" || !strings.HasPrefix(a.Text, "⏳ Queued build of api@main") {
		t.Fatalf("ack payload %s (%v)", ack.Payload, err)
	}
	if n := depth(t, f.q); n != 1 {
		t.Fatalf("%d jobs queued, want 1", n)
	}
	ack = deliver(t, f.slack, 0, slashEnvelope(t, "frobnicate", "U1"))
	if err := json.Unmarshal(ack.Payload, &a); err != nil || !strings.Contains(a.Text, "frobnicate") {
		t.Fatalf("a typo was answered %s", ack.Payload)
	}
	if n := depth(t, f.q); n != 1 {
		t.Fatalf("%d jobs queued after a typo, want 1", n)
	}
}

// TestSocketModeTwoResponders: two responders hold connections for one app.
// When Slack hands the same command to both (a redelivery after a lost
// ack), one job is queued and both say so.
func TestSocketModeTwoResponders(t *testing.T) {
	t.Parallel()
	q, _, reg := queuetest.New(t, queue.Config{})
	one := newFixtureWithQueue(t, q, reg, nil, Config{})
	two := newFixtureWithQueue(t, q, prometheus.NewRegistry(), nil, Config{})
	fake := one.slack
	fake.EnableSocketMode(testAppToken, 0)
	serveSocket(t, one, fake)
	serveSocket(t, two, fake)
	waitSocket(t, fake, "two connections", func(st slacktest.SocketState) bool { return st.Open == 2 })
	env := slashEnvelope(t, "build web main", "U7")
	first, second := deliver(t, fake, 1, env), deliver(t, fake, 2, env)
	if first.Conn == second.Conn {
		t.Fatalf("both envelopes were acked on connection %d", first.Conn)
	}
	if n := depth(t, q); n != 1 {
		t.Fatalf("%d jobs queued for one command sent twice, want 1", n)
	}
	for _, ack := range []slacktest.Ack{first, second} {
		var a ephemeralAnswer
		if err := json.Unmarshal(ack.Payload, &a); err != nil || !strings.Contains(a.Text, "web@main") {
			t.Fatalf("connection %d acked %s", ack.Conn, ack.Payload)
		}
	}
}

// TestSocketModeReconnects: when Slack asks for a refresh, the responder
// opens a new connection with a new URL and answers on it.
func TestSocketModeReconnects(t *testing.T) {
	t.Parallel()
	f := socketFixture(t)
	f.slack.Disconnect("refresh_requested")
	waitSocket(t, f.slack, "a second connection", func(st slacktest.SocketState) bool {
		return st.Open == 1 && st.Opened == 2
	})
	if n := f.slack.Calls("apps.connections.open"); n != 2 {
		t.Fatalf("apps.connections.open called %d times, want 2", n)
	}
	ack := deliver(t, f.slack, 0, slashEnvelope(t, "build api main", "U1"))
	if ack.Conn != 2 || len(ack.Payload) == 0 {
		t.Fatalf("acked on connection %d with %s", ack.Conn, ack.Payload)
	}
	if got := testutil.ToFloat64(f.r.metrics.socketConnects); got != 2 {
		t.Fatalf("deploybot_slack_socket_connects_total = %v, want 2", got)
	}
}

// TestSocketModeInteractionsAndEvents: a click and an event are handled by
// the HTTP handlers and acked without a payload, as their HTTP answers
// have no body.
func TestSocketModeInteractionsAndEvents(t *testing.T) {
	t.Parallel()
	f := socketFixture(t)
	click := socketEnvelope(t, "interactive-block-actions.json", func(p map[string]any) {
		for _, a := range p["actions"].([]any) {
			a.(map[string]any)["action_id"] = "not_ours"
		}
	})
	if ack := deliver(t, f.slack, 0, click); len(ack.Payload) != 0 {
		t.Fatalf("a click was acked with %s", ack.Payload)
	}
	ev := socketEnvelope(t, "events-api-app-home-opened.json", nil)
	ev.RetryAttempt, ev.RetryReason = 1, "timeout"
	if ack := deliver(t, f.slack, 0, ev); len(ack.Payload) != 0 {
		t.Fatalf("an event was acked with %s", ack.Payload)
	}
	if got := testutil.ToFloat64(f.r.metrics.requests.WithLabelValues("interactions", "ignored")); got != 1 {
		t.Fatalf("interactions counted %v times as ignored, want 1", got)
	}
}

// TestSocketModeBadEnvelopes: envelopes the handlers cannot use are acked,
// so Slack does not send them again, and nothing is queued.
func TestSocketModeBadEnvelopes(t *testing.T) {
	t.Parallel()
	f := socketFixture(t)
	bad := []slacktest.Envelope{
		{Type: "slash_commands", Payload: json.RawMessage(`["not", "an", "object"]`), AcceptsResponsePayload: true},
		{Type: "slash_commands", Payload: json.RawMessage(`{"text": "build api main"}`), AcceptsResponsePayload: true},
		{Type: "interactive", Payload: json.RawMessage(`{"type": "block_actions"}`), AcceptsResponsePayload: true},
		{Type: "events_api", Payload: json.RawMessage(`"nonsense"`)},
		{Type: "no_such_type", Payload: json.RawMessage(`{}`)},
	}
	for _, env := range bad {
		if ack := deliver(t, f.slack, 0, env); len(ack.Payload) != 0 {
			t.Fatalf("%s %s was acked with %s", env.Type, env.Payload, ack.Payload)
		}
	}
	if n := depth(t, f.q); n != 0 {
		t.Fatalf("%d jobs queued from bad envelopes", n)
	}
	// The connection survived them all.
	if ack := deliver(t, f.slack, 0, slashEnvelope(t, "build api main", "U1")); len(ack.Payload) == 0 {
		t.Fatal("a good command after bad envelopes got an empty ack")
	}
}

// TestSocketModeNeedsAnAppToken: a missing or bot token is refused up
// front (slack-go would retry it for ever), and an app token Slack refuses
// stops ServeSocketMode with an error.
func TestSocketModeNeedsAnAppToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, Config{})
	f.slack.EnableSocketMode(testAppToken, 0)
	for _, token := range []string{"", "xoxb-test", "xapp-1-A0DEPLOYBOT-1-revoked"} {
		err := f.r.ServeSocketMode(context.Background(), SocketConfig{AppToken: token, APIURL: f.slack.URL}, loopbackOnly())
		if err == nil {
			t.Fatalf("token %q was accepted", token)
		}
	}
}

// TestSocketOnlyRefusesHTTP: a responder served only over Socket Mode has
// no signing secret, and refuses Slack requests over HTTP.
func TestSocketOnlyRefusesHTTP(t *testing.T) {
	t.Parallel()
	if _, err := New(Config{}, nil, testCatalog, Deps{}, nil); err == nil {
		t.Fatal("a responder without a signing secret or Socket Mode was built")
	}
	f := newFixture(t, nil, Config{})
	r, err := New(Config{SocketMode: true}, f.r.cmds().table, testCatalog, Deps{Queue: f.q, Auth: f.r.auth}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.r = r
	if rec := f.do(t, "/slack/commands", slashBody(t, "build api main", "U1"), nil); rec.Code != 404 {
		t.Fatalf("a signed HTTP command got %d", rec.Code)
	}
	status, _ := r.ServeTrusted(context.Background(), EndpointCommands, slashBody(t, "build api main", "U1"), nil)
	if status != 200 || depth(t, f.q) != 1 {
		t.Fatalf("over Socket Mode: %d with %d jobs", status, depth(t, f.q))
	}
}

func TestCommandForm(t *testing.T) {
	t.Parallel()
	form, err := commandForm(json.RawMessage(`{"text":"build api main","is_enterprise_install":false,"enterprise_id":null,"n":3}`))
	if err != nil {
		t.Fatal(err)
	}
	want := url.Values{"text": {"build api main"}, "is_enterprise_install": {"false"}, "n": {"3"}}
	if form.Encode() != want.Encode() {
		t.Fatalf("form = %s, want %s", form.Encode(), want.Encode())
	}
}
