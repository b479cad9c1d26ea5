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
	"time"

	"github.com/seed-5eb4e92e/deploybot/commands"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// hookDedupe is how long an identical webhook body is recognised as a
// re-delivery.
const hookDedupe = 24 * time.Hour

// hook serves a webhook from Jenkins or Gerrit: it checks the shared
// secret, takes the JSON body as it is, and queues it for a worker —
// nothing is processed inline, and an identical re-delivery queues
// nothing. Senders authenticate with HTTP basic auth whose password is the
// secret (Jenkins' Notification plugin takes credentials in the URL), or
// with the secret in the "token" query parameter or the
// X-Deploybot-Token header (Gerrit's webhooks plugin can send neither
// headers nor credentials).
func (r *Responder) hook(name string) func(http.ResponseWriter, *http.Request) outcome {
	return func(w http.ResponseWriter, req *http.Request) outcome {
		secret := r.cfg.Hooks[name]
		if secret == "" {
			http.NotFound(w, req)
			return "disabled"
		}
		if !hookAuthorized(req, secret) {
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

func hookAuthorized(req *http.Request, secret string) bool {
	match := func(s string) bool { return s != "" && subtle.ConstantTimeCompare([]byte(s), []byte(secret)) == 1 }
	if _, pass, ok := req.BasicAuth(); ok && match(pass) {
		return true
	}
	return match(req.Header.Get("X-Deploybot-Token")) || match(req.URL.Query().Get("token"))
}
