// Package marathontest is a simulated Marathon for tests and for `deploybot
// shell`. It speaks the /v2 REST API the way Marathon 1.10 does, with
// answers built from payloads recorded from Marathon's documentation, source
// and real clusters (testdata/, sources in testdata/SOURCES.md): apps with
// tasks and health results, partial PUT updates that replace whole top-level
// fields, versions kept in history and rollback to them, POST to create,
// DELETE to destroy, and deployments that hold an app until its new tasks
// are healthy — 409 with the locking deployments for a change without
// force, 422 with Marathon's validation details, 404 for unknown apps, and
// the 502 Marathon answers while it has no leader.
//
// Time is counted in reads, not seconds, so tests are deterministic: each
// GET of /v2/deployments or of an app moves every deployment one step.
package marathontest

import (
	"crypto/tls"
	"embed"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"time"
)

//go:embed testdata/*.json testdata/*.html
var payloads embed.FS

// Options shape the simulated Marathon. The zero value is a Marathon
// without authentication whose new tasks become healthy.
type Options struct {
	// User and Password, when User is set, are required as HTTP basic
	// auth (--http_credentials).
	User, Password string
	// TLS, when set, serves HTTPS with this config (e.g. one that requires
	// client certificates).
	TLS *tls.Config
	// DeployPolls is the least number of reads (see the package doc) a
	// deployment stays listed. New tasks need two reads to run and pass
	// their health checks, so a deployment lasts at least that long.
	DeployPolls int
	// Healthy says whether tasks of appID at version pass their health
	// checks; nil means they do. A failing task counts consecutive
	// failures, is killed and relaunched (a new incarnation) past the
	// check's maxConsecutiveFailures, and its deployment never finishes,
	// as in Marathon. It is called with the server locked, so it must not
	// call the Server's methods.
	Healthy func(appID, version string) bool
	// Now gives the time of versions and task events; nil means time.Now.
	Now func() time.Time
}

// Server is a running simulated Marathon.
type Server struct {
	// URL is the Marathon root, with a trailing slash.
	URL  string
	srv  *httptest.Server
	opts Options
	rec  recorded

	mu          sync.Mutex
	apps        map[string]*app
	deployments []*deployment
	last        time.Time
	faults      []*fault
	requests    []string
	closed      chan struct{}
}

type fault struct {
	method, prefix string
	status, times  int
	block          bool
}

// Start runs a simulated Marathon; Close stops it. It panics if the
// embedded recordings are unreadable, which is a bug in this package.
func Start(opts Options) *Server {
	s := &Server{opts: opts, rec: mustLoad(), apps: map[string]*app{}, closed: make(chan struct{})}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	if opts.TLS != nil {
		s.srv.TLS = opts.TLS
		s.srv.StartTLS()
	} else {
		s.srv.Start()
	}
	s.URL = s.srv.URL + "/"
	return s
}

// Close stops the server, releasing requests held by Block.
func (s *Server) Close() {
	s.mu.Lock()
	select {
	case <-s.closed:
	default:
		close(s.closed)
	}
	s.mu.Unlock()
	s.srv.Close()
}

// Client returns an HTTP client that trusts the server (for TLS servers
// that do not ask for client certificates).
func (s *Server) Client() *http.Client { return s.srv.Client() }

// AppSpec is an app to serve. Zero fields keep the recorded app's values:
// image registry.example.com/shop/api:1.4.2, one instance, a MESOS_HTTP
// health check, blue/green labels.
type AppSpec struct {
	// ID is required, e.g. "/shop/api-blue".
	ID        string
	Image     string
	Instances int
	// Env is merged into the recorded environment (which holds one plain
	// variable and one secret reference).
	Env map[string]string
	// Labels, when not nil, replace the recorded labels.
	Labels map[string]string
	// NoHealthChecks drops the health check: tasks count as ready once
	// running, and never appear in tasksHealthy.
	NoHealthChecks bool
	// Fields sets other top-level fields of the definition, e.g.
	// "resourceLimits" or "healthChecks".
	Fields map[string]any
}

// AddApp serves spec as an app that has been running, all its tasks healthy,
// and returns its version. It replaces an app with the same id.
func (s *Server) AddApp(spec AppSpec) string {
	if !validID(spec.ID) {
		panic("marathontest: AddApp: bad app id " + spec.ID)
	}
	def := clone(s.rec.definition)
	def["id"] = spec.ID
	if spec.Image != "" {
		def["container"].(map[string]any)["docker"].(map[string]any)["image"] = spec.Image
	}
	if spec.Instances > 0 {
		def["instances"] = spec.Instances
	}
	for k, v := range spec.Env {
		def["env"].(map[string]any)[k] = v
	}
	if spec.Labels != nil {
		def["labels"] = spec.Labels
	}
	if spec.NoHealthChecks {
		def["healthChecks"] = []any{}
	}
	for k, v := range spec.Fields {
		def[k] = v
	}
	def = clone(def) // numbers as JSON decodes them, as in definitions from requests
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.stamp()
	setVersion(def, v, true)
	a := &app{id: spec.ID, def: def, history: []map[string]any{clone(def)}}
	for range intField(def, "instances") {
		t := s.newTask(v)
		t.state, t.startedAt = stateRunning, v
		if a.hasChecks() {
			t.checked, t.alive, t.firstSuccess, t.lastSuccess = true, true, v, v
		}
		a.tasks = append(a.tasks, t)
	}
	s.apps[spec.ID] = a
	return v
}

// AppState is an app as the server holds it.
type AppState struct {
	ID, Version string
	Instances   int
	Image       string
	// Env holds plain values as strings and secret references as
	// map[string]any{"secret": name}.
	Env    map[string]any
	Labels map[string]string
	// Definition is the current definition, every field included.
	Definition json.RawMessage
	Tasks      []TaskState
	// Deployments are the ids of deployments holding the app.
	Deployments []string
}

// TaskState is one task of an app.
type TaskState struct {
	ID, Version, State string
	Healthy            bool
}

// App returns the current state of app id, without moving deployments.
func (s *Server) App(id string) (AppState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[id]
	if a == nil {
		return AppState{}, false
	}
	raw, _ := json.Marshal(a.def)
	st := AppState{ID: id, Version: a.version(), Instances: intField(a.def, "instances"), Definition: raw,
		Env: map[string]any{}, Labels: map[string]string{}}
	st.Image, _ = lookup(a.def, "container", "docker", "image").(string)
	for k, v := range mapField(a.def, "env") {
		st.Env[k] = v
	}
	for k, v := range mapField(a.def, "labels") {
		st.Labels[k], _ = v.(string)
	}
	for _, t := range a.tasks {
		r := s.renderTask(id, a.hasChecks(), t)
		st.Tasks = append(st.Tasks, TaskState{ID: r["id"].(string), Version: t.version, State: t.state, Healthy: a.ready(t)})
	}
	for _, d := range s.holding(id) {
		st.Deployments = append(st.Deployments, d.id)
	}
	return st, true
}

// Versions returns the versions kept of app id, oldest first.
func (s *Server) Versions(id string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var vs []string
	if a := s.apps[id]; a != nil {
		for _, d := range a.history {
			vs = append(vs, d["version"].(string))
		}
	}
	return vs
}

// Deployments returns the ids of the deployments in progress.
func (s *Server) Deployments() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.deployments))
	for _, d := range s.deployments {
		ids = append(ids, d.id)
	}
	return ids
}

// Tick moves every deployment one step, as a read would.
func (s *Server) Tick() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tick()
}

// Fail makes the next times requests whose method matches ("" for any) and
// whose path starts with prefix answer status instead, with the body
// Marathon gives for it (502: the no-leader page, 503: a storage timeout).
func (s *Server) Fail(method, prefix string, status, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{method: method, prefix: prefix, status: status, times: times})
}

// ForceLeaderElection makes the next times requests fail as they do while
// Marathon elects a new leader: 502 "Could not determine the current
// leader".
func (s *Server) ForceLeaderElection(times int) { s.Fail("", "/", http.StatusBadGateway, times) }

// Block makes the next times matching requests wait until the client gives
// up (or the server closes): a Marathon too slow for the client's deadline.
func (s *Server) Block(method, prefix string, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{method: method, prefix: prefix, times: times, block: true})
}

// Requests lists "METHOD path?query" of every request served, in order.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

// Count returns how many requests had method and a path starting with
// prefix.
func (s *Server) Count(method, prefix string) int {
	n := 0
	for _, r := range s.Requests() {
		m, p, _ := strings.Cut(r, " ")
		if m == method && strings.HasPrefix(p, prefix) {
			n++
		}
	}
	return n
}

// now is the simulated clock.
func (s *Server) now() time.Time {
	if s.opts.Now != nil {
		return s.opts.Now().UTC()
	}
	return time.Now().UTC()
}

// stamp returns a new version: the time, at least a millisecond after the
// last one, so that versions stay unique and ordered as in Marathon.
func (s *Server) stamp() string {
	t := s.now().Truncate(time.Millisecond)
	if !t.After(s.last) {
		t = s.last.Add(time.Millisecond)
	}
	s.last = t
	return stamp(t)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
