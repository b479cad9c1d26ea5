package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seed-5eb4e92e/deploybot/bot/slacktest"
)

const e2eAppToken = "xapp-1-A0DEPLOYBOT-1-e2e"

// TestEndToEndSocketMode: with an app token and no signing secret, serve
// takes Slack's requests over Socket Mode only. A command sent as an
// envelope is acked with the same answer, runs, and reports in the
// channel; the HTTP endpoint refuses Slack requests it cannot verify.
func TestEndToEndSocketMode(t *testing.T) {
	t.Parallel()
	e := startE2EEnv(t, false, func(env map[string]string, fake *slacktest.Server) {
		delete(env, "SLACK_SIGNING_SECRET")
		env["SLACK_APP_TOKEN"] = e2eAppToken
		fake.EnableSocketMode(e2eAppToken, 0)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.slack.WaitSocket(ctx, func(st slacktest.SocketState) bool { return st.Open == 1 }); err != nil {
		t.Fatalf("no Socket Mode connection: %v", err)
	}
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "slack", "socket", "slash-commands.json"))
	if err != nil {
		t.Fatal(err)
	}
	var env slacktest.Envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatal(err)
	}
	form := slashForm(t, "build api feature/login", "U2147483697")
	payload := map[string]any{}
	if err := json.Unmarshal(env.Payload, &payload); err != nil {
		t.Fatal(err)
	}
	for k := range form {
		payload[k] = form.Get(k)
	}
	env.EnvelopeID = ""
	if env.Payload, err = json.Marshal(payload); err != nil {
		t.Fatal(err)
	}
	id, err := e.slack.DeliverTo(0, env)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := e.slack.WaitAck(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var answer struct{ Text string }
	_ = json.Unmarshal(ack.Payload, &answer)
	m := jobRE.FindStringSubmatch(answer.Text)
	if m == nil || !strings.Contains(answer.Text, "Queued build of api@feature/login") {
		t.Fatalf("acked with %s", ack.Payload)
	}
	e.waitMessage(t, m[1], "✅ *success*")
	if status, _ := e.post(t, "/slack/commands", []byte(form.Encode()), true); status != 404 {
		t.Fatalf("a Slack request over HTTP got %d, want 404", status)
	}
	if metrics := e.get(t, "/metrics"); !strings.Contains(metrics, "deploybot_slack_socket_connected 1") {
		t.Fatal("/metrics does not show the Socket Mode connection")
	}
}
