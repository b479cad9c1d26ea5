// Package slacktest is a fake Slack for tests and for `deploybot shell`: the
// Web API methods the bot calls (chat.postMessage, chat.update,
// chat.postEphemeral, auth.test, users.info, users.lookupByEmail,
// conversations.open, views.open, views.publish, apps.connections.open),
// Socket Mode
// connections, and response_url endpoints.
// Its answers are built from the payloads in testdata/, taken from Slack's
// documentation and SDK mocks (sources in testdata/SOURCES.md); errors come
// with HTTP 200 and ok:false, and rate limits with 429 and Retry-After, as
// Slack sends them.
package slacktest

import (
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"

	"github.com/slack-go/slack"
)

//go:embed testdata/*.json
var payloads embed.FS

// Message is a message as the fake holds it.
type Message struct {
	Channel  string
	TS       string
	ThreadTS string
	Text     string
	// Blocks is the Block Kit JSON the bot sent.
	Blocks string
	// Edits counts chat.update calls on it.
	Edits int
}

// DecodeBlocks parses the message's blocks.
func (m Message) DecodeBlocks() ([]slack.Block, error) {
	if m.Blocks == "" {
		return nil, nil
	}
	var b slack.Blocks
	if err := json.Unmarshal([]byte(m.Blocks), &b); err != nil {
		return nil, err
	}
	return b.BlockSet, nil
}

// maxResponseURLUses is how often one response_url may be used (Slack:
// "up to 5 times within 30 minutes").
const maxResponseURLUses = 5

// Response is a POST the bot made to a response_url.
type Response struct {
	// Name is the last path element of the response_url.
	Name    string
	Message slack.WebhookMessage
}

// Event is one change the bot made, for observers such as the shell.
type Event struct {
	// Kind is "post", "update", "reply", "response", "view" or "home".
	Kind     string
	Message  Message
	Response Response
	// View is the modal a "view" event opened.
	View OpenedView
}

// Server is a running fake Slack.
type Server struct {
	// URL is the Web API base to give slack-go, with its trailing slash.
	URL string
	srv *httptest.Server
	// token is required on API calls when set.
	token string

	mu        sync.Mutex
	msgs      []*Message
	responses []Response
	calls     map[string]int
	limits    map[string]*limit
	blocked   map[string]bool
	nextTS    int
	observers []func(Event)
	users     map[string]string // e-mail address → user ID
	names     map[string]string // "#name" → channel ID
	views     []OpenedView
	exchanged map[string]bool // trigger_ids views.open has used
	expired   bool            // every trigger_id has expired
	socket    *socketState    // nil until EnableSocketMode
	homes     []Home
}

type limit struct{ times, retryAfter, status int }

// Start runs a fake Slack that requires token (if not empty).
func Start(token string) *Server {
	s := &Server{token: token, calls: map[string]int{}, limits: map[string]*limit{}, blocked: map[string]bool{}, users: map[string]string{}, names: map[string]string{}, exchanged: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/{method}", s.serveAPI)
	mux.HandleFunc("POST /response/{name}", s.serveResponse)
	mux.HandleFunc("GET /link/", s.serveLink)
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL + "/api/"
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// ResponseURL returns a response_url served by the fake.
func (s *Server) ResponseURL(name string) string { return s.srv.URL + "/response/" + name }

// OnEvent registers f to be called after every change, outside the lock.
func (s *Server) OnEvent(f func(Event)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.observers = append(s.observers, f)
}

// RateLimit makes the next times calls of method answer 429 with
// Retry-After: retryAfter seconds (no header when retryAfter < 0).
func (s *Server) RateLimit(method string, times, retryAfter int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits[method] = &limit{times: times, retryAfter: retryAfter, status: http.StatusTooManyRequests}
}

// Fail makes the next times calls of method answer with HTTP status (a 5xx,
// as Slack sends during an incident, with an HTML body).
func (s *Server) Fail(method string, times, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits[method] = &limit{times: times, status: status}
}

// AddUser makes users.lookupByEmail find id at email.
func (s *Server) AddUser(id, email string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[strings.ToLower(email)] = id
}

// AddChannel makes chat.postMessage accept "#name" for channel id, and
// answer with the ID, as Slack does. chat.update takes only the ID.
func (s *Server) AddChannel(name, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.names["#"+strings.TrimPrefix(name, "#")] = id
}

// DMChannel is the direct-message channel conversations.open gives for
// user.
func DMChannel(user string) string { return "D" + user }

// Block makes posts to channel fail with not_in_channel.
func (s *Server) Block(channel string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blocked[channel] = true
}

// Calls returns how many times method was called (rate-limited calls
// included).
func (s *Server) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// Messages returns the top-level messages of channel, oldest first.
func (s *Server) Messages(channel string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.msgs {
		if m.Channel == channel && m.ThreadTS == "" {
			out = append(out, *m)
		}
	}
	return out
}

// Replies returns the thread replies to message ts in channel.
func (s *Server) Replies(channel, ts string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.msgs {
		if m.Channel == channel && m.ThreadTS == ts {
			out = append(out, *m)
		}
	}
	return out
}

// Responses returns the posts made to response_urls, oldest first.
func (s *Server) Responses() []Response {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Response(nil), s.responses...)
}

func (s *Server) emit(e Event) {
	s.mu.Lock()
	obs := append([](func(Event)){}, s.observers...)
	s.mu.Unlock()
	for _, f := range obs {
		f(e)
	}
}

// limited counts a call to method and answers it with the failure a test
// set up for it, if any is left, reporting whether it did.
func (s *Server) limited(w http.ResponseWriter, method string) bool {
	s.mu.Lock()
	s.calls[method]++
	l := s.limits[method]
	if l == nil || l.times <= 0 {
		s.mu.Unlock()
		return false
	}
	l.times--
	s.mu.Unlock()
	if l.status != http.StatusTooManyRequests {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(l.status)
		_, _ = w.Write([]byte("<html><body>Slack is having trouble</body></html>"))
		return true
	}
	if l.retryAfter >= 0 {
		w.Header().Set("Retry-After", strconv.Itoa(l.retryAfter))
	}
	writeFile(w, http.StatusTooManyRequests, "error-ratelimited.json", nil)
	return true
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	method := r.PathValue("method")
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if s.limited(w, method) {
		return
	}
	if method == "apps.connections.open" {
		s.openConnection(w, r)
		return
	}
	token := r.PostForm.Get("token")
	if token == "" {
		token = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	if s.token != "" && token != s.token {
		writeFile(w, http.StatusOK, "error-invalid_auth.json", nil)
		return
	}
	switch method {
	case "chat.postMessage":
		s.postMessage(w, r)
	case "chat.update":
		s.update(w, r)
	case "chat.postEphemeral":
		writeFile(w, http.StatusOK, "chat.postEphemeral.json", func(m map[string]any) { m["message_ts"] = s.newTS() })
	case "auth.test":
		writeFile(w, http.StatusOK, "auth.test.json", nil)
	case "users.lookupByEmail":
		s.mu.Lock()
		id, ok := s.users[strings.ToLower(r.PostForm.Get("email"))]
		s.mu.Unlock()
		if !ok {
			writeFile(w, http.StatusOK, "error-users_not_found.json", nil)
			return
		}
		writeFile(w, http.StatusOK, "users.lookupByEmail.json", func(m map[string]any) {
			if u, ok := m["user"].(map[string]any); ok {
				u["id"] = id
				if p, ok := u["profile"].(map[string]any); ok {
					p["email"] = r.PostForm.Get("email")
				}
			}
		})
	case "conversations.open":
		writeFile(w, http.StatusOK, "conversations.open.json", func(m map[string]any) {
			m["channel"] = map[string]any{"id": DMChannel(r.PostForm.Get("users"))}
		})
	case "views.open":
		s.openView(w, r)
	case "views.publish":
		s.publishView(w, r)
	case "users.info":
		id := r.PostForm.Get("user")
		writeFile(w, http.StatusOK, "users.info.json", func(m map[string]any) {
			if u, ok := m["user"].(map[string]any); ok {
				u["id"] = id
			}
		})
	default:
		writeJSON(w, map[string]any{"ok": false, "error": "unknown_method"})
	}
}

func (s *Server) newTS() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextTS++
	return fmt.Sprintf("1700000000.%06d", s.nextTS)
}

func (s *Server) serveResponse(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var msg slack.WebhookMessage
	if err != nil || json.Unmarshal(body, &msg) != nil {
		http.Error(w, "invalid_payload", http.StatusBadRequest)
		return
	}
	resp := Response{Name: r.PathValue("name"), Message: msg}
	s.mu.Lock()
	uses := 0
	for _, prev := range s.responses {
		if prev.Name == resp.Name {
			uses++
		}
	}
	if uses >= maxResponseURLUses {
		s.mu.Unlock()
		// Slack documents the limit but not its answer; any failure will do
		// for the bot, which only checks the status.
		http.Error(w, "used_url", http.StatusNotFound)
		return
	}
	s.responses = append(s.responses, resp)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte("ok"))
	s.emit(Event{Kind: "response", Response: resp})
}

func writeFile(w http.ResponseWriter, status int, name string, edit func(map[string]any)) {
	raw, err := payloads.ReadFile("testdata/" + name)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if edit != nil {
		edit(m)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(m)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}
