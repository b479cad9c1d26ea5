package mesostest

import (
	"crypto/subtle"
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

// Realms of the master's HTTP authentication, per endpoint
// (src/master/constants.hpp, routes in src/master/master.cpp).
const (
	realmScheduler = "mesos-master-scheduler"
	realmOperator  = "mesos-master-readwrite"
)

// serve checks what src/master/http.cpp checks, in its order:
// authentication, leadership (307), method, content type, then the call.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	var realm string
	switch r.URL.Path {
	case "/api/v1/scheduler":
		realm = realmScheduler
	case "/api/v1":
		realm = realmOperator
	default:
		http.NotFound(w, r)
		return
	}
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="`+realm+`"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if s.opts.Leader != nil {
		// A protocol-relative URL, as Master::Http::redirect builds it.
		w.Header().Set("Location", "//"+s.opts.Leader.srv.Listener.Addr().String()+r.URL.RequestURI())
		w.WriteHeader(http.StatusTemporaryRedirect)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if r.Header.Get("Content-Type") != "application/json" {
		plainError(w, http.StatusUnsupportedMediaType, recordedText("error-415-content-type.txt"))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		return
	}
	if !json.Valid(body) {
		plainError(w, http.StatusBadRequest, recordedText("error-400-json.txt")+"invalid JSON")
		return
	}
	if realm == realmOperator {
		s.operator(w, body)
		return
	}
	s.scheduler(w, r, body)
}

func (s *Server) authorized(r *http.Request) bool {
	if s.opts.Principal == "" {
		return true
	}
	user, pass, ok := r.BasicAuth()
	return ok && subtle.ConstantTimeCompare([]byte(user), []byte(s.opts.Principal)) == 1 &&
		subtle.ConstantTimeCompare([]byte(pass), []byte(s.opts.Secret)) == 1
}

// plainError answers like libprocess's BadRequest(message) and friends: the
// message is the whole body.
func plainError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg)
}

// operator serves the operator API calls the client makes: GET_TASKS
// (RunTask) and GET_STATE (status).
func (s *Server) operator(w http.ResponseWriter, body []byte) {
	var c struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(body, &c)
	var out map[string]any
	s.mu.Lock()
	switch c.Type {
	case "GET_TASKS":
		out = s.getTasks()
	case "GET_STATE":
		out = s.getState()
	}
	s.mu.Unlock()
	if out == nil {
		plainError(w, http.StatusNotImplemented, "mesostest: only GET_TASKS and GET_STATE are simulated")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// getTasks fills the recorded GET_TASKS answer with the master's tasks:
// launched ones (including terminal ones not yet acknowledged) under
// "tasks", finished and acknowledged ones under "completed_tasks", next to
// the recorded history of another framework.
func (s *Server) getTasks() map[string]any {
	m := template("get-tasks.json")
	g := m["get_tasks"].(map[string]any)
	shape := g["tasks"].([]any)[0].(map[string]any)
	completed, _ := g["completed_tasks"].([]any)
	var active []any
	for _, fw := range s.sortedFrameworks() {
		for _, t := range fw.order {
			entry := t.listing(shape, fw)
			if t.completed {
				completed = append(completed, entry)
			} else {
				active = append(active, entry)
			}
		}
	}
	delete(g, "tasks")
	if len(active) > 0 { // Mesos leaves empty repeated fields out
		g["tasks"] = active
	}
	g["completed_tasks"] = completed
	return m
}

func recordedText(name string) string {
	raw, err := payloads.ReadFile("testdata/" + name)
	if err != nil {
		panic(err)
	}
	return strings.TrimSuffix(string(raw), "\n")
}

// template returns a recorded JSON payload to fill in.
func template(name string) map[string]any {
	var m map[string]any
	if err := json.Unmarshal([]byte(recordedText(name)), &m); err != nil {
		panic(name + ": " + err.Error())
	}
	return m
}
