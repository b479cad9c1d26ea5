package bot

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/seed-5eb4e92e/deploybot/commands"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// clickBody is the recorded block_actions payload with the clicked
// button's value, the clicker and the response_url replaced.
func clickBody(t testing.TB, value, user, responseURL string) []byte {
	t.Helper()
	return buttonClickBody(t, ActionRetry, value, user, responseURL)
}

// buttonClickBody is the recorded block_actions payload of a click on the
// button action with value, by user.
func buttonClickBody(t testing.TB, action, value, user, responseURL string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "slack", "block-actions.json"))
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]any
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	p["user"].(map[string]any)["id"] = user
	p["response_url"] = responseURL
	for _, a := range p["actions"].([]any) {
		a.(map[string]any)["action_id"] = action
		a.(map[string]any)["value"] = value
	}
	out, _ := json.Marshal(p)
	return []byte(url.Values{"payload": {string(out)}}.Encode())
}

// failedJob puts a finished, failed build job in the queue's records.
func failedJob(t testing.TB, q *queue.Queue) string {
	t.Helper()
	ctx := context.Background()
	res, err := q.Enqueue(ctx, queue.Job{
		Request: commands.Request{Kind: "build", Action: "build", Service: "api", Ref: "main"},
		User:    "U_ORIG", Channel: "C111", Text: "/deploy build api main",
	}, queue.Dedupe{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := q.Next(ctx, "test", time.Millisecond)
	if err != nil || d == nil {
		t.Fatalf("Next: %v %v", d, err)
	}
	rec, _ := q.Record(ctx, res.ID)
	rec.State, rec.Result = queue.StateFailed, "FAILURE"
	if err := q.Save(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := q.Done(ctx, d, "failed"); err != nil {
		t.Fatal(err)
	}
	return res.ID
}

func waitResponses(t *testing.T, f *fixture, n int) []string {
	t.Helper()
	f.r.Wait()
	var out []string
	for _, r := range f.slack.Responses() {
		out = append(out, r.Message.Text)
	}
	if len(out) != n {
		t.Fatalf("%d follow-ups %q, want %d", len(out), out, n)
	}
	return out
}

func TestRetryClickQueuesOneJob(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, Config{})
	orig := failedJob(t, f.q)
	respURL := f.slack.ResponseURL("click-1")
	for i := 0; i < 3; i++ { // a double click, and Slack delivering it again
		rec := f.do(t, "/slack/interactions", clickBody(t, orig, "U_CLICKER", respURL), nil)
		if rec.Code != http.StatusOK {
			t.Fatalf("click %d: status %d", i, rec.Code)
		}
	}
	if n := depth(t, f.q); n != 1 {
		t.Fatalf("%d jobs queued for three deliveries of one click, want 1", n)
	}
	// Follow-ups go out in the background, in any order: one says the
	// retry started, the others point at it.
	texts := waitResponses(t, f, 3)
	sort.SliceStable(texts, func(i, j int) bool { return strings.Contains(texts[i], "Retrying") })
	if !strings.Contains(texts[0], "Retrying build of api@main") {
		t.Fatalf("no follow-up says the retry started: %q", texts)
	}
	m := jobIDRE.FindStringSubmatch(texts[0])
	if m == nil {
		t.Fatalf("follow-up %q names no job", texts[0])
	}
	for _, txt := range texts[1:] {
		if !strings.Contains(txt, "already retried as job `"+m[1]+"`") {
			t.Fatalf("later follow-up %q, want a pointer to %s", txt, m[1])
		}
	}
	retry, err := f.q.Record(context.Background(), m[1])
	if err != nil {
		t.Fatal(err)
	}
	if retry.Job.RetryOf != orig || retry.Job.User != "U_CLICKER" || retry.Job.Channel != "C111" || retry.Job.Request.Ref != "main" {
		t.Fatalf("retry job = %+v", retry.Job)
	}
}

func TestRetryClickRefusals(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, Config{})
	running, err := f.q.Enqueue(context.Background(), queue.Job{
		Request: commands.Request{Kind: "build", Action: "build", Service: "api", Ref: "main"}, User: "U", Channel: "C",
	}, queue.Dedupe{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ value, want string }{
		{"01JDEMO0000000000000000000", "does not name a job"}, // the recorded payload's own value: not a ULID
		{"../../etc/passwd", "does not name a job"},
		{queue.NewID(time.Now()), "no longer known"},
		{running.ID, "is queued; there is nothing to retry"},
	}
	for i, tc := range tests {
		f.do(t, "/slack/interactions", clickBody(t, tc.value, "U1", f.slack.ResponseURL("r")), nil)
		texts := waitResponses(t, f, i+1)
		if !strings.Contains(texts[i], tc.want) {
			t.Errorf("click on %q answered %q, want %q", tc.value, texts[i], tc.want)
		}
	}
	if n := depth(t, f.q); n != 1 {
		t.Fatalf("refused clicks queued jobs: depth %d", n)
	}
}

func TestFollowUpsOnlyGoToSlack(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, Config{})
	orig := failedJob(t, f.q)
	rec := f.do(t, "/slack/interactions", clickBody(t, orig, "U1", "https://attacker.example/steal"), nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	f.r.Wait()
	if n := len(f.slack.Responses()); n != 0 {
		t.Fatalf("%d follow-ups went somewhere", n)
	}
	s, _ := NewSlack(SlackConfig{}, nil, nil, nil)
	for _, bad := range []string{"https://attacker.example/x", "http://hooks.slack.com/actions/1", "https://user@hooks.slack.com/x", "://"} {
		if err := s.CheckResponseURL(bad); err == nil {
			t.Errorf("CheckResponseURL(%q) accepted", bad)
		}
	}
	if err := s.CheckResponseURL("https://hooks.slack.com/actions/T1/2/x"); err != nil {
		t.Fatal(err)
	}
}

func TestOtherInteractionsAreIgnored(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, Config{})
	body := []byte(url.Values{"payload": {`{"type":"view_closed","user":{"id":"U1"}}`}}.Encode())
	if rec := f.do(t, "/slack/interactions", body, nil); rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	bad := []byte(url.Values{"payload": {`{not json`}}.Encode())
	if rec := f.do(t, "/slack/interactions", bad, nil); rec.Code != http.StatusBadRequest {
		t.Fatalf("status %d for a bad payload", rec.Code)
	}
}

func TestEvents(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, Config{})
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "slack", "url-verification.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ch struct{ Challenge string }
	_ = json.Unmarshal(raw, &ch)
	rec := f.do(t, "/slack/events", raw, func(r *http.Request) { r.Header.Set("Content-Type", "application/json") })
	if rec.Code != http.StatusOK || rec.Body.String() != ch.Challenge || ch.Challenge == "" {
		t.Fatalf("challenge answered %d %q, want %q", rec.Code, rec.Body.String(), ch.Challenge)
	}
	for _, name := range []string{"event-callback.json", "event-callback-app-mention.json"} {
		raw, err := os.ReadFile(filepath.Join("..", "testdata", "slack", name))
		if err != nil {
			t.Fatal(err)
		}
		rec := f.do(t, "/slack/events", raw, func(r *http.Request) { r.Header.Set("X-Slack-Retry-Num", "2") })
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: status %d", name, rec.Code)
		}
	}
	if rec := f.do(t, "/slack/events", []byte("nonsense"), nil); rec.Code != http.StatusBadRequest {
		t.Fatalf("nonsense answered %d", rec.Code)
	}
}

// FuzzHandlers sends signed garbage to every endpoint: nothing may panic,
// and the answer is always one Slack can take.
func FuzzHandlers(f *testing.F) {
	for _, name := range []string{"slash-command.txt", "block-actions.json", "url-verification.json", "event-callback.json"} {
		raw, err := os.ReadFile(filepath.Join("..", "testdata", "slack", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw, uint8(0))
		f.Add(raw, uint8(1))
		f.Add(raw, uint8(2))
	}
	f.Add([]byte("payload=%7B%22type%22%3A%22block_actions%22%7D"), uint8(1))
	fx := newFixture(f, nil, Config{})
	paths := []string{"/slack/commands", "/slack/interactions", "/slack/events"}
	f.Fuzz(func(t *testing.T, body []byte, which uint8) {
		rec := fx.do(t, paths[int(which)%len(paths)], body, nil)
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest:
		default:
			t.Fatalf("status %d for %q", rec.Code, body)
		}
	})
}
