package bot

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seed-5eb4e92e/deploybot/authz"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// protectedFixture deploys with staging protected by a confirmation and
// prod by an approval too. U_ANN may deploy anywhere, U_BOB may approve in
// prod, U_DEV may deploy to staging only.
func protectedFixture(t *testing.T) *fixture {
	t.Helper()
	p, err := authz.NewStatic(authz.Policy{
		Groups: map[string][]string{"dev": {"U_DEV"}, "sre": {"U_ANN"}, "approvers": {"U_BOB"}},
		Rules: []authz.Rule{
			{Group: "dev", Allow: []string{"deploy:staging:*"}},
			{Group: "sre", Allow: []string{"deploy:*", "approve:*"}},
			{Group: "approvers", Allow: []string{"approve:prod"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	f, _ := newDeployFixture(t, p)
	f.r.cfg.Protected = map[string]Protection{"staging": {}, "prod": {Approval: true}}
	f.r.views, f.r.approvals, f.r.poster = f.client, f.q, f.client
	return f
}

// protectedCommand sends a slash command with its own trigger and
// response_url, and returns the ephemeral answer's text.
func (f *fixture) protectedCommand(t *testing.T, text, user, name string) string {
	t.Helper()
	form, err := url.ParseQuery(string(slashBody(t, text, user)))
	if err != nil {
		t.Fatal(err)
	}
	form.Set("trigger_id", fmt.Sprintf("1334522%04d.738474920.8088930838d88f008e0", len(f.slack.Views())))
	form.Set("response_url", f.slack.ResponseURL(name))
	return strings.Join(sectionTexts(t, answer(t, f.do(t, "/slack/commands", []byte(form.Encode()), nil))), "\n")
}

// submit sends the confirmation dialog's submit for pending request id, by
// user, and returns the raw answer.
func (f *fixture) submit(t *testing.T, id, user string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "slack", "view-submission.json"))
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]any
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	p["user"].(map[string]any)["id"] = user
	v := p["view"].(map[string]any)
	v["private_metadata"], v["callback_id"] = id, CallbackConfirm
	out, _ := json.Marshal(p)
	rec := f.do(t, "/slack/interactions", []byte(url.Values{"payload": {string(out)}}.Encode()), nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("view_submission: status %d", rec.Code)
	}
	f.r.Wait()
	return rec.Body.String()
}

// lastResponse is the last follow-up posted to the response_url name.
func (f *fixture) lastResponse(t *testing.T, name string) string {
	t.Helper()
	f.r.Wait()
	var last string
	for _, r := range f.slack.Responses() {
		if r.Name == name {
			last = r.Message.Text
		}
	}
	return last
}

func TestProtectedEnvironmentAsksForConfirmation(t *testing.T) {
	t.Parallel()
	f := protectedFixture(t)
	got := f.protectedCommand(t, "api main to staging", "U_DEV", "dev1")
	if !strings.Contains(got, "*staging* is a protected environment: confirm deploy of api@main to staging in the dialog") {
		t.Fatalf("answer %q", got)
	}
	views := f.slack.Views()
	if len(views) != 1 || views[0].CallbackID != CallbackConfirm || !queue.ValidID(views[0].PrivateMetadata) {
		t.Fatalf("dialogs opened: %+v", views)
	}
	if n := depth(t, f.q); n != 0 {
		t.Fatalf("%d jobs queued before the confirmation", n)
	}
	id := views[0].PrivateMetadata
	if body := f.submit(t, id, "U_ANN"); !strings.Contains(body, "someone else") {
		t.Fatalf("someone else's submit answered %q", body)
	}
	if body := f.submit(t, id, "U_DEV"); strings.TrimSpace(body) != "" {
		t.Fatalf("the submit answered %q, want an empty 200 that closes the dialog", body)
	}
	if got := f.lastResponse(t, "dev1"); !strings.HasPrefix(got, "⏳ Queued deploy of api@main to staging — job `") {
		t.Fatalf("follow-up %q", got)
	}
	if body := f.submit(t, id, "U_DEV"); !strings.Contains(body, "expired or was already confirmed") {
		t.Fatalf("a second submit answered %q", body)
	}
	if n := depth(t, f.q); n != 1 {
		t.Fatalf("%d jobs queued for one confirmed request, want 1", n)
	}
}

// approvalButtons finds the Approve and Reject buttons the request posted.
func approvalMessage(t *testing.T, f *fixture, channel string) string {
	t.Helper()
	f.r.Wait()
	msgs := f.slack.Messages(channel)
	if len(msgs) == 0 {
		t.Fatal("no approval request was posted")
	}
	m := msgs[len(msgs)-1]
	blocks, err := m.DecodeBlocks()
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(blocks)
	if !strings.Contains(string(raw), ActionApprove) || !strings.Contains(string(raw), ActionReject) {
		t.Fatalf("approval message %q has no Approve and Reject buttons: %s", m.Text, raw)
	}
	return m.Text
}

func TestProtectedEnvironmentNeedsSomeoneElsesApproval(t *testing.T) {
	t.Parallel()
	f := protectedFixture(t)
	f.protectedCommand(t, "api main to prod", "U_ANN", "ann1")
	id := f.slack.Views()[0].PrivateMetadata
	// Approving a request still in its requester's dialog does nothing.
	f.click(t, ActionApprove, id, "U_BOB", f.slack.ResponseURL("early"))
	if got := f.lastResponse(t, "early"); !strings.Contains(got, "has not been confirmed by its requester") {
		t.Fatalf("approve before the confirmation answered %q", got)
	}
	if body := f.submit(t, id, "U_ANN"); strings.TrimSpace(body) != "" {
		t.Fatalf("submit answered %q", body)
	}
	channel := "C2147483705" // the recorded slash command's channel
	text := approvalMessage(t, f, channel)
	if !strings.Contains(text, "<@U_ANN> asks to deploy api@main to prod") {
		t.Fatalf("approval request %q", text)
	}
	if n := depth(t, f.q); n != 0 {
		t.Fatalf("%d jobs queued before approval", n)
	}
	clicks := []struct {
		user, name, want string
	}{
		{"U_ANN", "c1", "You can't approve your own request"},
		{"U_DEV", "c2", "⛔ Not allowed: you may not approve prod (needs `approve:prod`)"},
		{"U_BOB", "c3", "✅ <@U_BOB> approved <@U_ANN>'s request to deploy api@main to prod — job `"},
		{"U_BOB", "c4", "⌛ This request was decided already or has expired"},
	}
	for _, c := range clicks {
		f.click(t, ActionApprove, id, c.user, f.slack.ResponseURL(c.name))
		if got := f.lastResponse(t, c.name); !strings.Contains(got, c.want) {
			t.Fatalf("%s's Approve answered %q, want %q", c.user, got, c.want)
		}
	}
	if n := depth(t, f.q); n != 1 {
		t.Fatalf("%d jobs queued after approval, want 1", n)
	}
	job := queuedJob(t, f, f.lastResponse(t, "c3"))
	if job.User != "U_ANN" || job.ApprovedBy != "U_BOB" || job.Request.Env != "prod" {
		t.Fatalf("approved job = %+v", job)
	}
}

func TestRequesterWithdrawsApprovalRequest(t *testing.T) {
	t.Parallel()
	f := protectedFixture(t)
	f.protectedCommand(t, "api main to prod", "U_ANN", "ann1")
	id := f.slack.Views()[0].PrivateMetadata
	f.submit(t, id, "U_ANN")
	approvalMessage(t, f, "C2147483705")
	f.click(t, ActionReject, id, "U_ANN", f.slack.ResponseURL("r1"))
	if got := f.lastResponse(t, "r1"); !strings.Contains(got, "❌ Withdrawn by <@U_ANN>") {
		t.Fatalf("withdraw answered %q", got)
	}
	f.click(t, ActionApprove, id, "U_BOB", f.slack.ResponseURL("r2"))
	if got := f.lastResponse(t, "r2"); !strings.Contains(got, "decided already") || depth(t, f.q) != 0 {
		t.Fatalf("approve after withdrawal answered %q with %d jobs queued", got, depth(t, f.q))
	}
}
