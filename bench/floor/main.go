// Command floor is the lower bound of the load test: the least an HTTP Slack
// responder can do and still be correct. It verifies Slack's signature, writes
// one job to a Redis stream with a single XADD and acknowledges. Whatever
// deploybot's responder spends on top of this (parsing, permission checks,
// dedupe, audit) shows up as the gap between the two in `deploybot loadtest`.
package main

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	maxBody    = 1 << 20         // Slack bodies are small; anything past 1 MiB is refused.
	skew       = 5 * time.Minute // Slack's replay window for X-Slack-Request-Timestamp.
	ackTimeout = 2500 * time.Millisecond
)

// ack is the body of every accepted request: Slack shows it only to the caller.
var ack = []byte(`{"response_type":"ephemeral","text":"Queued."}`)

// server answers Slack. Its fields are set once in main and only read after.
type server struct {
	secret []byte
	rdb    *redis.Client
	stream string
	now    func() time.Time
}

// job is what one request asked for, as written to the stream's `job` field.
// Bolt's target writes the same shape so both do the same Redis work.
type job struct {
	Type    string          `json:"type"`
	UserID  string          `json:"user_id"`
	Command string          `json:"command,omitempty"`
	Text    string          `json:"text,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// handler routes the three endpoints the load test uses.
func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /slack/commands", s.commands)
	mux.HandleFunc("POST /slack/interactions", s.interactions)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	return mux
}

// commands queues a slash command.
func (s *server) commands(w http.ResponseWriter, r *http.Request) {
	if form, ok := s.readForm(w, r); ok {
		s.enqueue(w, r, job{Type: "command", UserID: form.Get("user_id"),
			Command: form.Get("command"), Text: form.Get("text")})
	}
}

// interactions queues a button click (a block_actions payload).
func (s *server) interactions(w http.ResponseWriter, r *http.Request) {
	form, ok := s.readForm(w, r)
	if !ok {
		return
	}
	raw := []byte(form.Get("payload"))
	var p struct {
		Type string
		User struct{ ID string }
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		http.Error(w, "payload is not JSON", http.StatusBadRequest)
		return
	}
	s.enqueue(w, r, job{Type: p.Type, UserID: p.User.ID, Payload: raw})
}

// readForm reads the capped body, checks its signature and parses it as a
// form. It answers the request itself when it returns false.
func (s *server) readForm(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
		http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
		return nil, false
	} else if err != nil {
		http.Error(w, "cannot read request body", http.StatusBadRequest)
		return nil, false
	}
	if !s.verify(r.Header, body) {
		http.Error(w, "invalid request signature", http.StatusUnauthorized)
		return nil, false
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		http.Error(w, "body is not a form", http.StatusBadRequest)
		return nil, false
	}
	return form, true
}

// verify reports whether the headers carry Slack's v0 signature of body,
// made inside the replay window.
func (s *server) verify(h http.Header, body []byte) bool {
	ts := h.Get("X-Slack-Request-Timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if age := s.now().Sub(time.Unix(sec, 0)); err != nil || age > skew || age < -skew {
		return false
	}
	mac := hmac.New(sha256.New, s.secret)
	mac.Write([]byte("v0:" + ts + ":"))
	mac.Write(body)
	want := "v0=" + hex.EncodeToString(mac.Sum(nil))
	return hmac.Equal([]byte(want), []byte(h.Get("X-Slack-Signature")))
}

// enqueue writes j with one XADD and acknowledges only once Redis has it.
func (s *server) enqueue(w http.ResponseWriter, r *http.Request, j job) {
	b, _ := json.Marshal(j) // cannot fail: strings, and a payload json.Unmarshal accepted
	ctx, cancel := context.WithTimeout(r.Context(), ackTimeout)
	defer cancel()
	err := s.rdb.XAdd(ctx, &redis.XAddArgs{Stream: s.stream, Values: []any{"job", b}}).Err()
	if err != nil {
		http.Error(w, "The queue is unavailable; nothing started.", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(ack)
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

// run reads flags and environment, then serves until SIGINT or SIGTERM.
func run() error {
	defURL := cmp.Or(os.Getenv("REDIS_URL"), "redis://127.0.0.1:6379/15")
	listen := flag.String("listen", "127.0.0.1:8090", "address to serve HTTP on")
	redisURL := flag.String("redis", defURL, "Redis URL (default from REDIS_URL)")
	stream := flag.String("stream", "{bench}:floor:jobs", "Redis stream the jobs go to")
	flag.Parse()

	secret := os.Getenv("SLACK_SIGNING_SECRET")
	if secret == "" {
		return errors.New("SLACK_SIGNING_SECRET is required")
	}
	opt, err := redis.ParseURL(*redisURL)
	if err != nil {
		return fmt.Errorf("parse -redis: %w", err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	s := &server{secret: []byte(secret), rdb: rdb, stream: *stream, now: time.Now}
	srv := &http.Server{Addr: *listen, Handler: s.handler(), ReadHeaderTimeout: 5 * time.Second}
	context.AfterFunc(ctx, func() {
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	})
	slog.New(slog.NewJSONHandler(os.Stderr, nil)).Info("floor listening", "addr", *listen, "stream", *stream)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
