package bot

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
)

// Endpoint names a Slack request kind the responder answers.
type Endpoint string

// The Slack endpoints, as ServeTrusted takes them.
const (
	EndpointCommands     Endpoint = "/slack/commands"
	EndpointInteractions Endpoint = "/slack/interactions"
	EndpointEvents       Endpoint = "/slack/events"
)

type trustedKey struct{}

// trusted reports whether the request came through ServeTrusted: its
// transport has already proved it is from Slack.
func trusted(ctx context.Context) bool {
	v, _ := ctx.Value(trustedKey{}).(bool)
	return v
}

// ServeTrusted answers a request that arrived by a transport that
// authenticates Slack itself (Socket Mode's WebSocket, opened with the app
// token), through the same handlers as HTTP: only the signature check is
// skipped. body is what Slack would POST over HTTP (a form, or JSON for
// events), hdr any headers it would have set (X-Slack-Retry-Num). It returns
// the status and the body the HTTP answer would have had.
func (r *Responder) ServeTrusted(ctx context.Context, ep Endpoint, body []byte, hdr http.Header) (int, []byte) {
	req := httptest.NewRequestWithContext(context.WithValue(ctx, trustedKey{}, true), http.MethodPost, string(ep), bytes.NewReader(body))
	for k, v := range hdr {
		req.Header[k] = v
	}
	if ep == EndpointEvents {
		req.Header.Set("Content-Type", "application/json")
	} else {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	rec := httptest.NewRecorder()
	r.handler.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}
