package bot

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestServeTrustedSharesTheHandlers: a request through ServeTrusted (Socket
// Mode) is answered by the same handlers as over HTTP, without a
// signature; over HTTP the same unsigned body is still refused.
func TestServeTrustedSharesTheHandlers(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, Config{})
	body := slashBody(t, "build api main", "U1")
	status, out := f.r.ServeTrusted(context.Background(), EndpointCommands, body, nil)
	var a ephemeralAnswer
	if status != http.StatusOK || json.Unmarshal(out, &a) != nil || !strings.HasPrefix(a.Text, "⏳ Queued build of api@main") {
		t.Fatalf("ServeTrusted = %d %s", status, out)
	}
	if n := depth(t, f.q); n != 1 {
		t.Fatalf("%d jobs queued, want 1", n)
	}
	rec := f.do(t, "/slack/commands", body, func(r *http.Request) { r.Header.Del("X-Slack-Signature") })
	if rec.Code != http.StatusUnauthorized || depth(t, f.q) != 1 {
		t.Fatalf("an unsigned HTTP request got %d with %d jobs queued", rec.Code, depth(t, f.q))
	}
}
