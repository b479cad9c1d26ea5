package marathontest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// statusFields are AppInfo's live fields; a definition in a request may
// carry them (a copied GET answer) and Marathon ignores them.
var statusFields = []string{"tasksStaged", "tasksRunning", "tasksHealthy", "tasksUnhealthy", "deployments",
	"readinessCheckResults", "tasks", "lastTaskFailure", "tasksStats", "version", "versionInfo"}

// Recorded validation failures, whose messages the 422s reuse.
const (
	objectNotValid = "error-422-object-not-valid.json"
	invalidJSON    = "error-422-invalid-json.json"
)

// resetFields are the fields a partial update does not keep when the
// update leaves them out (AppConversion.appUpdateRamlReader).
var resetFields = []string{"executorResources", "resourceLimits"}

// serveUpdate is PUT /v2/apps/{id}: a partial update of an existing app
// (each top-level field in the body replaces the app's), a rollback when the
// body is {"version": …}, or — for an unknown id — the creation of an app.
func (s *Server) serveUpdate(w http.ResponseWriter, r *http.Request, id string) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	force := r.URL.Query().Get("force") == "true"
	a := s.apps[id]
	if a == nil {
		body["id"] = id
		s.create(w, r, body, force, http.StatusCreated)
		return
	}
	// The new definition is worked out before the lock is checked:
	// GroupManager applies the change to the root group first and the
	// deployment manager refuses it afterwards.
	def, ok := updated(w, a, body, r.URL.Query().Get("partialUpdate") != "false")
	if !ok || !s.unlock(w, id, force) {
		return
	}
	d := s.change(a, clone(a.def), def)
	s.writeResult(w, http.StatusOK, d)
}

// updated returns a's definition after the PUT body, or answers why not.
func updated(w http.ResponseWriter, a *app, body map[string]any, partial bool) (map[string]any, bool) {
	if v, isRollback := body["version"]; isRollback {
		if len(body) > 2 || len(body) == 2 && body["id"] == nil {
			writeInvalid(w, objectNotValid, []detail{{Path: "/", Errors: []string{"The 'version' field may only be combined with the 'id' field."}}})
			return nil, false
		}
		old := a.at(fmt.Sprint(v))
		if old == nil {
			// AppHelpers.updateOrCreate: AppNotFoundException without the version.
			writeMessage(w, http.StatusNotFound, appNotFound(a.id))
			return nil, false
		}
		return clone(old), true
	}
	def := clone(a.def)
	if !partial {
		def = map[string]any{"version": a.def["version"], "versionInfo": clone(a.def["versionInfo"])}
	}
	for _, k := range resetFields {
		delete(def, k)
	}
	for k, v := range body {
		if k != "id" && !isStatusField(k) {
			def[k] = v
		}
	}
	def["id"] = a.id
	if details := validateApp(def); len(details) > 0 {
		writeInvalid(w, objectNotValid, details)
		return nil, false
	}
	return def, true
}

// unlock answers 409 when deployments hold app id, unless force, in which
// case they are cancelled (the new deployment takes over).
func (s *Server) unlock(w http.ResponseWriter, id string, force bool) bool {
	holding := s.holding(id)
	if len(holding) == 0 {
		return true
	}
	if force {
		s.cancel(holding)
		return true
	}
	var m map[string]any
	mustRead("error-409-locked.json", &m)
	var ids []any
	for _, d := range holding {
		ids = append(ids, map[string]any{"id": d.id})
	}
	m["deployments"] = ids
	writeJSON(w, http.StatusConflict, m)
	return false
}

// writeResult answers a change with its deployment, in the body and in the
// Marathon-Deployment-Id header. A change that changed nothing still gets a
// deployment id and a new version (of the root group), but no deployment
// runs and the app keeps its version.
func (s *Server) writeResult(w http.ResponseWriter, status int, d *deployment) {
	if d == nil {
		d = &deployment{id: uuid(4), version: s.stamp()}
	}
	m := clone(s.rec.result)
	m["deploymentId"], m["version"] = d.id, d.version
	w.Header().Set("Marathon-Deployment-Id", d.id)
	writeJSON(w, status, m)
}

// serveCreate is POST /v2/apps.
func (s *Server) serveCreate(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	s.create(w, r, body, r.URL.Query().Get("force") == "true", 0)
}

// create makes an app from a full definition. status 0 answers like POST
// (201 with the app); otherwise like PUT (a deployment result).
func (s *Server) create(w http.ResponseWriter, r *http.Request, body map[string]any, force bool, status int) {
	id, _ := body["id"].(string)
	if !strings.HasPrefix(id, "/") {
		id = "/" + id // a relative id is taken relative to the root group
	}
	id = canonical(id)
	def := map[string]any{}
	for k, v := range body {
		if !isStatusField(k) {
			def[k] = v
		}
	}
	def["id"] = id
	details := validateApp(def)
	if !validID(id) {
		details = append([]detail{{Path: "/id", Errors: []string{"must fully match regular expression '" + idPattern + "'"}}}, details...)
	}
	if len(details) > 0 {
		writeInvalid(w, objectNotValid, details)
		return
	}
	if s.apps[id] != nil {
		msg := strings.Replace(recordedMessage("error-409-exists.json"), "/existing_app", id, 1)
		writeMessage(w, http.StatusConflict, msg)
		return
	}
	if !s.unlock(w, id, force) { // a deletion of the same id still running
		return
	}
	a := &app{id: id}
	s.apps[id] = a
	d := s.change(a, nil, def)
	if status != 0 {
		s.writeResult(w, status, d)
		return
	}
	// AppsResource.create: Response.created(new URI(app.id)), resolved by
	// Jersey against the base URI.
	w.Header().Set("Location", strings.TrimSuffix(s.URL, "/")+id)
	w.Header().Set("Marathon-Deployment-Id", d.id)
	writeJSON(w, http.StatusCreated, s.renderApp(a, false))
}

// serveDelete is DELETE /v2/apps/{id}. Marathon's force defaults to true
// here, unlike every other change.
func (s *Server) serveDelete(w http.ResponseWriter, r *http.Request, id string) {
	a := s.apps[id]
	if a == nil {
		writeMessage(w, http.StatusNotFound, appNotFound(id))
		return
	}
	if !s.unlock(w, id, r.URL.Query().Get("force") != "false") {
		return
	}
	s.writeResult(w, http.StatusOK, s.stop(a))
}

// serveCancel is DELETE /v2/deployments/{id}: with force, stop it where it
// is (202, no body); without, roll its apps back in a new deployment.
func (s *Server) serveCancel(w http.ResponseWriter, r *http.Request, id string) {
	for _, d := range s.deployments {
		if d.id != id {
			continue
		}
		if r.URL.Query().Get("force") == "true" {
			s.cancel([]*deployment{d})
			w.WriteHeader(http.StatusAccepted)
			return
		}
		s.writeResult(w, http.StatusOK, s.revert(d))
		return
	}
	msg := strings.Replace(recordedMessage("error-404-deployment.json"), "97c136bf-5a28-4821-9d94-480d9fbb01c8", id, 1)
	writeMessage(w, http.StatusNotFound, msg)
}

func isStatusField(k string) bool {
	for _, f := range statusFields {
		if k == f {
			return true
		}
	}
	return false
}

// readBody reads a JSON object, answering Marathon's errors when it is not:
// 400 for text that is not JSON, 422 "Invalid JSON" for values of the wrong
// JSON type.
func readBody(w http.ResponseWriter, r *http.Request) (map[string]any, bool) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		return nil, false
	}
	if len(strings.TrimSpace(string(raw))) == 0 {
		// Jackson's JsonMappingException for no content.
		writeRecorded(w, r, http.StatusBadRequest, "error-400-no-content.json")
		return nil, false
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		writeRecorded(w, r, http.StatusBadRequest, "error-400-invalid-json.json")
		return nil, false
	}
	body, isObject := v.(map[string]any)
	if !isObject {
		writeInvalid(w, invalidJSON, []detail{{Path: "", Errors: []string{"error.expected.jsobject"}}})
		return nil, false
	}
	if details := typeErrors(body); len(details) > 0 {
		writeInvalid(w, invalidJSON, details)
		return nil, false
	}
	return body, true
}

// typeErrors checks the JSON types of the fields the simulation reads, as
// Play JSON's Reads of raml.App do ("error.expected.jsstring", …).
func typeErrors(body map[string]any) []detail {
	var ds []detail
	want := func(path string, v any, ok bool, expected string) {
		if v != nil && !ok {
			ds = append(ds, detail{Path: path, Errors: []string{"error.expected." + expected}})
		}
	}
	for _, k := range []string{"id", "cmd", "version"} {
		_, ok := body[k].(string)
		want("/"+k, body[k], ok, "jsstring")
	}
	_, ok := body["instances"].(float64)
	want("/instances", body["instances"], ok, "jsnumber")
	for _, k := range []string{"env", "labels", "container"} {
		_, ok := body[k].(map[string]any)
		want("/"+k, body[k], ok, "jsobject")
	}
	for _, k := range sortedKeys(mapField(body, "labels")) {
		v := mapField(body, "labels")[k]
		_, ok := v.(string)
		want("/labels/"+k, v, ok, "jsstring")
	}
	for _, k := range sortedKeys(mapField(body, "env")) {
		v := mapField(body, "env")[k]
		_, isString := v.(string)
		secret, _ := lookup(v, "secret").(string)
		want("/env/"+k, v, isString || secret != "", "jsstring")
	}
	image := lookup(body, "container", "docker", "image")
	_, ok = image.(string)
	want("/container/docker/image", image, ok, "jsstring")
	return ds
}

// idPattern is how PathId's validator quotes ID_PATH_SEGMENT_PATTERN (Java
// matches it against a whole segment; segmentRE is the same for Go).
const idPattern = `^(([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])\.)*([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])|(\.|\.\.)$`

// validateApp checks what Marathon's AppValidation checks of the fields the
// simulation models.
func validateApp(def map[string]any) []detail {
	var ds []detail
	if n, ok := def["instances"].(float64); ok && n < 0 {
		ds = append(ds, detail{Path: "/instances", Errors: []string{fmt.Sprintf("got %v, expected 0 or more", n)}})
	}
	if docker, ok := lookup(def, "container", "docker").(map[string]any); ok && docker["image"] == "" {
		ds = append(ds, detail{Path: "/container/docker/image", Errors: []string{"must not be empty"}})
	}
	cmd, _ := def["cmd"].(string)
	args, _ := def["args"].([]any)
	if cmd == "" && len(args) == 0 && def["container"] == nil {
		ds = append(ds, detail{Path: "/", Errors: []string{"AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'."}})
	}
	for _, k := range sortedKeys(mapField(def, "env")) {
		if k == "" {
			ds = append(ds, detail{Path: "/env", Errors: []string{"must not be empty"}})
		}
	}
	return ds
}
