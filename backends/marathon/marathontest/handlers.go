package marathontest

import (
	"net/http"
	"regexp"
	"strings"
)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	req := r.Method + " " + r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		req += "?" + r.URL.RawQuery
	}
	s.requests = append(s.requests, req)
	if f := s.fault(r); f != nil {
		s.mu.Unlock()
		s.serveFault(w, r, f)
		return
	}
	defer s.mu.Unlock()
	if !s.authorized(r) {
		// Jetty's BasicAuthenticator, realm --http_realm (default
		// "Mesosphere"); it runs before Marathon's filters.
		w.Header().Set("WWW-Authenticate", `basic realm="Mesosphere"`)
		writeRecorded(w, r, http.StatusUnauthorized, "error-401.html")
		return
	}
	// LeaderProxyFilter adds these to every answer of the leader.
	w.Header().Set("X-Marathon-Leader", strings.TrimSuffix(s.URL, "/"))
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("X-XSS-Protection", "1; mode=block")
	s.route(w, r)
}

func (s *Server) fault(r *http.Request) *fault {
	for _, f := range s.faults {
		if f.times > 0 && (f.method == "" || f.method == r.Method) && strings.HasPrefix(r.URL.Path, f.prefix) {
			f.times--
			return f
		}
	}
	return nil
}

func (s *Server) serveFault(w http.ResponseWriter, r *http.Request, f *fault) {
	if f.block {
		select {
		case <-r.Context().Done():
		case <-s.closed:
		}
		return
	}
	switch f.status {
	case http.StatusBadGateway:
		writeRecorded(w, r, f.status, "error-502-no-leader.html")
	case http.StatusServiceUnavailable:
		writeRecorded(w, r, f.status, "error-503-timeout.json")
	default:
		// MarathonExceptionMapper answers a WebApplicationException with
		// its status's reason phrase.
		msg := strings.Replace(recordedMessage("error-status.json"), "Internal Server Error", http.StatusText(f.status), 1)
		writeMessage(w, f.status, msg)
	}
}

func (s *Server) authorized(r *http.Request) bool {
	if s.opts.User == "" {
		return true
	}
	u, p, ok := r.BasicAuth()
	return ok && u == s.opts.User && p == s.opts.Password
}

// route dispatches /v2/apps… and /v2/deployments… the way Marathon's
// Jersey resources match them: an app id may have any number of segments,
// with "/versions" and "/versions/{version}" after it.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	switch {
	case path == "/v2/apps" || path == "/v2/apps/":
		s.allow(w, r, map[string]func(){http.MethodPost: func() { s.serveCreate(w, r) }})
	case strings.HasPrefix(path, "/v2/apps/"):
		s.routeApp(w, r, strings.TrimPrefix(path, "/v2/apps"))
	case path == "/v2/deployments" || path == "/v2/deployments/":
		s.allow(w, r, map[string]func(){http.MethodGet: func() { s.serveDeployments(w) }})
	case strings.HasPrefix(path, "/v2/deployments/"):
		id := strings.TrimPrefix(path, "/v2/deployments/")
		s.allow(w, r, map[string]func(){http.MethodDelete: func() { s.serveCancel(w, r, id) }})
	default:
		// Jersey's NotFoundException, which MarathonExceptionMapper turns
		// into a 500.
		writeRecorded(w, r, http.StatusInternalServerError, "error-500-uri-not-found.json")
	}
}

func (s *Server) routeApp(w http.ResponseWriter, r *http.Request, rest string) {
	if id, ok := strings.CutSuffix(rest, "/versions"); ok {
		s.allow(w, r, map[string]func(){http.MethodGet: func() { s.serveVersions(w, canonical(id)) }})
		return
	}
	if i := strings.LastIndex(rest, "/versions/"); i > 0 {
		id, v := canonical(rest[:i]), rest[i+len("/versions/"):]
		s.allow(w, r, map[string]func(){http.MethodGet: func() { s.serveVersion(w, id, v) }})
		return
	}
	id := canonical(rest)
	s.allow(w, r, map[string]func(){
		http.MethodGet:    func() { s.serveApp(w, id) },
		http.MethodPut:    func() { s.serveUpdate(w, r, id) },
		http.MethodDelete: func() { s.serveDelete(w, r, id) },
	})
}

func (s *Server) allow(w http.ResponseWriter, r *http.Request, serve map[string]func()) {
	if f, ok := serve[r.Method]; ok {
		f()
		return
	}
	w.WriteHeader(http.StatusMethodNotAllowed)
}

// canonical is PathId.canonicalPath on a path parameter: absolute, with
// empty and "." segments dropped and ".." taking the parent — so
// "/shop/../api" is "/api" to Marathon.
func canonical(id string) string {
	var out []string
	for _, seg := range strings.Split(id, "/") {
		switch seg {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, seg)
		}
	}
	return "/" + strings.Join(out, "/")
}

// segmentRE is PathId.ID_PATH_SEGMENT_PATTERN.
var segmentRE = regexp.MustCompile(`^(([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])\.)*([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])$|^(\.|\.\.)$`)

// validID is Marathon's id validation for an app: every segment matches the
// pattern, the last is not reserved, and there is at least one.
func validID(id string) bool {
	segs := strings.Split(strings.Trim(id, "/"), "/")
	for _, seg := range segs {
		if !segmentRE.MatchString(seg) {
			return false
		}
	}
	switch segs[len(segs)-1] {
	case "restart", "tasks", "versions", ".", "..":
		return false
	}
	return true
}

func (s *Server) serveApp(w http.ResponseWriter, id string) {
	s.tick()
	a := s.apps[id]
	if a == nil {
		writeMessage(w, http.StatusNotFound, appNotFound(id))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"app": s.renderApp(a, true)})
}

// renderApp is the recorded AppInfo with a's definition, counts,
// deployments and (when withTasks) tasks.
func (s *Server) renderApp(a *app, withTasks bool) map[string]any {
	m := clone(a.def)
	counts := map[string]int{}
	var tasks []any
	for _, t := range a.tasks {
		switch {
		case t.state == stateStaging:
			counts["tasksStaged"]++
		default:
			counts["tasksRunning"]++
		}
		if t.checked && t.alive {
			counts["tasksHealthy"]++
		} else if t.checked {
			counts["tasksUnhealthy"]++
		}
		tasks = append(tasks, s.renderTask(a.id, a.hasChecks(), t))
	}
	for _, k := range []string{"tasksStaged", "tasksRunning", "tasksHealthy", "tasksUnhealthy"} {
		m[k] = counts[k]
	}
	deployments := []any{}
	for _, d := range s.holding(a.id) {
		deployments = append(deployments, map[string]any{"id": d.id})
	}
	m["deployments"] = deployments
	if withTasks {
		m["tasks"] = append([]any{}, tasks...)
	}
	return m
}

func appNotFound(id string) string {
	return strings.Replace(recordedMessage("error-404-app.json"), "/not_existent", id, 1)
}

// serveVersions lists the kept versions oldest first. Marathon lists them
// as its store (ZooKeeper children) happens to hold them, in no defined
// order; oldest first keeps clients from trusting any order.
func (s *Server) serveVersions(w http.ResponseWriter, id string) {
	a := s.apps[id]
	if a == nil {
		writeMessage(w, http.StatusNotFound, appNotFound(id))
		return
	}
	var m map[string]any
	mustRead("versions.json", &m)
	vs := []any{}
	for _, d := range a.history {
		vs = append(vs, d["version"])
	}
	m["versions"] = vs
	writeJSON(w, http.StatusOK, m)
}

func (s *Server) serveVersion(w http.ResponseWriter, id, version string) {
	if a := s.apps[id]; a != nil {
		if def := a.at(version); def != nil {
			writeJSON(w, http.StatusOK, def)
			return
		}
	}
	msg := recordedMessage("error-404-app-version.json")
	msg = strings.Replace(msg, "/shop/api-blue", id, 1)
	msg = strings.Replace(msg, "2025-03-01T23:17:50.295Z", version, 1)
	writeMessage(w, http.StatusNotFound, msg)
}

// at returns the definition of a kept version, or nil.
func (a *app) at(version string) map[string]any {
	for _, d := range a.history {
		if d["version"] == version {
			return d
		}
	}
	return nil
}

func (s *Server) serveDeployments(w http.ResponseWriter) {
	s.tick()
	list := []any{}
	for _, d := range s.deployments {
		m := clone(s.rec.deployment)
		m["id"], m["version"] = d.id, d.version
		m["affectedApps"] = []any{d.appID}
		var steps []any
		for _, name := range actions[d.kind] {
			steps = append(steps, map[string]any{"actions": []any{map[string]any{"action": name, "app": d.appID}}})
		}
		m["steps"] = steps
		step := d.currentStep()
		m["currentStep"], m["totalSteps"] = step, len(steps)
		m["currentActions"] = []any{map[string]any{"action": actions[d.kind][step-1], "app": d.appID, "readinessCheckResults": []any{}}}
		list = append(list, m)
	}
	writeJSON(w, http.StatusOK, list)
}
