package bot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/seed-5eb4e92e/deploybot/commands"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// hookDedupe is how long an identical webhook body is recognised as a
// re-delivery.
const hookDedupe = 24 * time.Hour

// hook serves a webhook from Jenkins or Gerrit: it checks who sent it,
// takes the JSON body as it is, and queues it for a worker — nothing is
// processed inline, and an identical re-delivery queues nothing. Senders
// authenticate with HTTP basic auth whose password is the secret (Jenkins'
// Notification plugin takes credentials in the URL), with the secret in
// the "token" query parameter or the X-Deploybot-Token header (Gerrit's
// webhooks plugin can send neither headers nor credentials), or with a
// client certificate on the mTLS listener.
func (r *Responder) hook(name string) func(http.ResponseWriter, *http.Request) outcome {
	return func(w http.ResponseWriter, req *http.Request) outcome {
		auth := r.cfg.Hooks[name]
		if !auth.enabled() {
			http.NotFound(w, req)
			return "disabled"
		}
		if !hookAuthorized(req, auth) {
			r.log.Warn("refused a webhook without the right secret", "hook", name)
			w.Header().Set("WWW-Authenticate", `Basic realm="deploybot"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return "unauthorized"
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, r.cfg.MaxBody))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
				return "too_large"
			}
			http.Error(w, "cannot read request body", http.StatusBadRequest)
			return "bad_request"
		}
		body = bytes.TrimSpace(body)
		if len(body) == 0 || body[0] != '{' || !json.Valid(body) {
			http.Error(w, "want a JSON object", http.StatusBadRequest)
			return "bad_request"
		}
		sum := sha256.Sum256(body)
		job := queue.Job{
			Request:   commands.Request{Kind: "hook", Topic: name},
			Payload:   json.RawMessage(body),
			CreatedAt: r.now(),
		}
		ctx, cancel := context.WithTimeout(req.Context(), r.cfg.AckTimeout)
		defer cancel()
		res, err := r.enqueue(ctx, job, queue.Dedupe{Key: "hook:" + name + ":" + hex.EncodeToString(sum[:16]), TTL: hookDedupe})
		if err != nil {
			_, out := r.unavailable(err, r.log.With("hook", name))
			http.Error(w, "not queued; try again", http.StatusServiceUnavailable)
			return out
		}
		w.WriteHeader(http.StatusAccepted)
		if res.Duplicate {
			return "duplicate"
		}
		return "queued"
	}
}

func hookAuthorized(req *http.Request, auth HookAuth) bool {
	if clientNamed(req, auth.Clients) {
		return true
	}
	if auth.Secret == "" {
		return false
	}
	match := func(s string) bool { return s != "" && subtle.ConstantTimeCompare([]byte(s), []byte(auth.Secret)) == 1 }
	if _, pass, ok := req.BasicAuth(); ok && match(pass) {
		return true
	}
	return match(req.Header.Get("X-Deploybot-Token")) || match(req.URL.Query().Get("token"))
}

// clientNamed reports whether the request came over TLS with a client
// certificate that the server verified and that names one of clients.
// Only the verified leaf counts: a certificate merely presented, or a
// request over plain HTTP, names nobody.
func clientNamed(req *http.Request, clients []string) bool {
	if req.TLS == nil || len(req.TLS.VerifiedChains) == 0 || len(req.TLS.VerifiedChains[0]) == 0 {
		return false
	}
	leaf := req.TLS.VerifiedChains[0][0]
	names := append([]string{leaf.Subject.CommonName}, leaf.DNSNames...)
	for _, c := range clients {
		for _, n := range names {
			if n != "" && strings.EqualFold(n, c) {
				return true
			}
		}
	}
	return false
}
