package bot

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Requests that must not start anything, each refused with its status and
// counted by outcome; then the one genuine request among them, to show the
// refusals were the requests' fault. Nothing refused reaches the queue.
func TestBadInputIsRefusedAndCounted(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, Config{MaxBody: 4096})
	genuine := slashBody(t, "build api main", "U0GENUINE")
	forged := bytes.Replace(genuine, []byte("user_id=U0GENUINE"), []byte("user_id=U0ADMIN"), 1)
	twice := append(slashBody(t, "build api main", "U0ONE"), []byte("&user_id=U0TWO")...)
	click := buttonClickBody(t, ActionRetry, "01JDEMO0000000000000000000", "U0CLICK", "https://hooks.slack.com/actions/T1/1/x")
	clickTwice := append(append([]byte{}, click...), []byte("&payload=%7B%7D")...)
	noUser := []byte(url.Values{"payload": {`{"type":"block_actions","actions":[{"action_id":"retry","value":"x"}]}`}}.Encode())
	oversized := append(slashBody(t, "build api main", "U0BIG"), []byte("&pad="+strings.Repeat("x", 5000))...)
	signedAt := func(body []byte, secret string, at time.Time) func(*http.Request) {
		return func(r *http.Request) { Sign(r.Header, secret, body, at) }
	}
	contentType := func(ct string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Content-Type", ct) }
	}
	cases := []struct {
		name    string
		path    string
		body    []byte
		mutate  func(*http.Request)
		status  int
		outcome string
	}{
		{"no signature", "/slack/commands", genuine, func(r *http.Request) { r.Header.Del("X-Slack-Signature") }, 401, "unauthorized"},
		{"no timestamp", "/slack/commands", genuine, func(r *http.Request) { r.Header.Del("X-Slack-Request-Timestamp") }, 401, "unauthorized"},
		{"signed with another secret", "/slack/commands", genuine, signedAt(genuine, "not-our-secret", time.Now()), 401, "unauthorized"},
		{"timestamp 6 minutes old (a replay)", "/slack/commands", genuine, signedAt(genuine, testSecret, time.Now().Add(-6*time.Minute)), 401, "unauthorized"},
		{"timestamp 6 minutes ahead", "/slack/commands", genuine, signedAt(genuine, testSecret, time.Now().Add(6*time.Minute)), 401, "unauthorized"},
		{"user_id changed after signing", "/slack/commands", forged, signedAt(genuine, testSecret, time.Now()), 401, "unauthorized"},
		{"click signed with another secret", "/slack/interactions", click, signedAt(click, "not-our-secret", time.Now()), 401, "unauthorized"},
		{"event without a signature", "/slack/events", []byte(`{"type":"event_callback"}`), func(r *http.Request) { r.Header.Del("X-Slack-Signature") }, 401, "unauthorized"},
		{"body over the limit", "/slack/commands", oversized, nil, 413, "too_large"},
		{"command sent as JSON", "/slack/commands", genuine, contentType("application/json"), 415, "bad_content_type"},
		{"command without a Content-Type", "/slack/commands", genuine, contentType(""), 415, "bad_content_type"},
		{"click sent as text", "/slack/interactions", click, contentType("text/plain"), 415, "bad_content_type"},
		{"event sent as a form", "/slack/events", []byte(`{"type":"event_callback"}`), contentType("application/x-www-form-urlencoded"), 415, "bad_content_type"},
		{"two user_ids in a signed command", "/slack/commands", twice, nil, 400, "bad_request"},
		{"two payloads in a signed click", "/slack/interactions", clickTwice, nil, 400, "bad_request"},
		{"signed command with no user", "/slack/commands", []byte(url.Values{"command": {"/deploy"}, "text": {"build api main"}}.Encode()), nil, 400, "bad_request"},
		{"signed click with no user", "/slack/interactions", noUser, nil, 400, "bad_request"},
	}
	want := map[string]int{}
	for _, tc := range cases {
		rec := f.do(t, tc.path, tc.body, tc.mutate)
		if rec.Code != tc.status {
			t.Errorf("%s: status %d, want %d (%s)", tc.name, rec.Code, tc.status, strings.TrimSpace(rec.Body.String()))
		}
		want[tc.outcome]++
	}
	f.r.Wait()
	depth, err := f.q.Depth(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := requestsByOutcome(t, f)
	refused := 0
	for outcome, n := range want {
		refused += got[outcome]
		if got[outcome] != n {
			t.Errorf("%d requests counted as %q, want %d", got[outcome], outcome, n)
		}
	}
	t.Logf("bad input: sent %d, refused %d (%v), enqueued %d", len(cases), refused, got, depth)
	if depth != 0 || got["queued"] != 0 {
		t.Fatalf("%d jobs queued (%d answered queued) from refused requests; want none", depth, got["queued"])
	}
	if rec := f.do(t, "/slack/commands", genuine, nil); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "Queued") {
		t.Fatalf("the genuine request: %d %s", rec.Code, rec.Body.String())
	}
	if depth, _ := f.q.Depth(context.Background()); depth != 1 {
		t.Fatalf("after the genuine request %d jobs, want 1", depth)
	}
}

// requestsByOutcome reads deploybot_http_requests_total by outcome.
func requestsByOutcome(t *testing.T, f *fixture) map[string]int {
	t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, mf := range mfs {
		if mf.GetName() != "deploybot_http_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" {
					out[l.GetValue()] += int(m.GetCounter().GetValue())
				}
			}
		}
	}
	return out
}
