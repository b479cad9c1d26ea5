package marathontest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// recorded are the parsed recordings the answers are built from.
type recorded struct {
	appInfo    map[string]any // the "app" object of app-info.json
	task       map[string]any // its first task
	health     map[string]any // that task's first health result
	definition map[string]any // app-version.json
	deployment map[string]any // the first element of deployments.json
	result     map[string]any // deployment-result.json
}

func mustLoad() recorded {
	var info struct {
		App map[string]any `json:"app"`
	}
	mustRead("app-info.json", &info)
	var deployments []map[string]any
	mustRead("deployments.json", &deployments)
	r := recorded{appInfo: info.App, deployment: deployments[0]}
	r.task = info.App["tasks"].([]any)[0].(map[string]any)
	r.health = r.task["healthCheckResults"].([]any)[0].(map[string]any)
	mustRead("app-version.json", &r.definition)
	mustRead("deployment-result.json", &r.result)
	return r
}

func mustRead(name string, v any) {
	raw, err := payloads.ReadFile("testdata/" + name)
	if err != nil {
		panic("marathontest: " + err.Error())
	}
	if err := json.Unmarshal(raw, v); err != nil {
		panic("marathontest: " + name + ": " + err.Error())
	}
}

// recordedMessage is the "message" of a recorded error body.
func recordedMessage(name string) string {
	var m struct {
		Message string `json:"message"`
	}
	mustRead(name, &m)
	return m.Message
}

// clone deep-copies a JSON value.
func clone[T any](v T) T {
	raw, err := json.Marshal(v)
	if err != nil {
		panic("marathontest: clone: " + err.Error())
	}
	var out T
	if err := json.Unmarshal(raw, &out); err != nil {
		panic("marathontest: clone: " + err.Error())
	}
	return out
}

// writeJSON answers like Marathon's Jersey resources: application/json.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeMessage answers {"message": msg}, the shape of every Marathon error
// that is not a validation failure.
func writeMessage(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"message": msg})
}

// detail is one validation failure, as Marathon reports it.
type detail struct {
	Path   string   `json:"path"`
	Errors []string `json:"errors"`
}

// writeInvalid answers a validation failure with the recorded body of file
// (error-422-object-not-valid.json for a value Marathon's validators
// refuse, error-422-invalid-json.json for a JSON type Play JSON cannot
// read) and these details. A struct keeps Marathon's member order.
func writeInvalid(w http.ResponseWriter, file string, details []detail) {
	writeJSON(w, http.StatusUnprocessableEntity, struct {
		Message string   `json:"message"`
		Details []detail `json:"details"`
	}{recordedMessage(file), details})
}

// writeRecorded answers a recorded body as is.
func writeRecorded(w http.ResponseWriter, r *http.Request, status int, name string) {
	raw, err := payloads.ReadFile("testdata/" + name)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if strings.HasSuffix(name, ".html") {
		// Jetty's ErrorHandler writes a page only for GET, POST and HEAD.
		w.Header().Set("Content-Type", "text/html;charset=iso-8859-1")
		w.Header().Set("Cache-Control", "must-revalidate,no-cache,no-store")
		w.WriteHeader(status)
		if r.Method == http.MethodGet || r.Method == http.MethodPost || r.Method == http.MethodHead {
			_, _ = w.Write([]byte(strings.ReplaceAll(string(raw), "/v2/apps/shop/api-blue", r.URL.Path)))
		}
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(raw)
}

// stampLayout is how Marathon writes versions and times
// (Timestamp.formatter: milliseconds, UTC, "Z").
const stampLayout = "2006-01-02T15:04:05.000Z"

func stamp(t time.Time) string { return t.UTC().Format(stampLayout) }

// uuid makes a random UUID string; version 1 for instance ids (Marathon's
// are time-based), 4 for deployment ids (java.util.UUID.randomUUID).
func uuid(version byte) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | version<<4
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// safePath is PathId.safePath: the id's segments joined with "_", which
// starts instance and task ids.
func safePath(id string) string { return strings.ReplaceAll(strings.TrimPrefix(id, "/"), "/", "_") }

// renderTask fills the recorded task with t's values.
func (s *Server) renderTask(appID string, hasChecks bool, t *task) map[string]any {
	m := clone(s.rec.task)
	instance := fmt.Sprintf("%s.instance-%s", safePath(appID), t.instance)
	m["id"] = fmt.Sprintf("%s._app.%d", instance, t.incarnation)
	m["appId"] = appID
	m["version"] = t.version
	m["state"] = t.state
	m["stagedAt"] = t.stagedAt
	m["ports"] = []any{t.port}
	delete(m, "startedAt")
	delete(m, "healthCheckResults")
	if t.state == stateRunning {
		m["startedAt"] = t.startedAt
	}
	if hasChecks && t.checked {
		h := clone(s.rec.health)
		h["instanceId"] = instance
		h["alive"] = t.alive
		h["consecutiveFailures"] = t.failures
		h["firstSuccess"] = nullable(t.firstSuccess)
		h["lastSuccess"] = nullable(t.lastSuccess)
		h["lastFailure"] = nullable(t.lastFailure)
		h["lastFailureCause"] = nil
		if t.lastFailure != "" {
			h["lastFailureCause"] = t.cause
		}
		m["healthCheckResults"] = []any{h}
	}
	return m
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
