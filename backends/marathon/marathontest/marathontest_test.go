package marathontest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/seed-5eb4e92e/deploybot/backends/marathon/marathontest"
)

const blue = "/shop/api-blue"

type answer struct {
	status int
	header http.Header
	body   string
}

func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(a.body), &m); err != nil {
		t.Fatalf("body %q: %v", a.body, err)
	}
	return m
}

func call(t *testing.T, s *marathontest.Server, method, path, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, strings.TrimSuffix(s.URL, "/")+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(raw)}
}

func start(t *testing.T, opts marathontest.Options) *marathontest.Server {
	t.Helper()
	s := marathontest.Start(opts)
	t.Cleanup(s.Close)
	s.AddApp(marathontest.AppSpec{ID: blue, Instances: 2})
	return s
}

func TestGetApp(t *testing.T) {
	t.Parallel()
	s := start(t, marathontest.Options{})
	a := call(t, s, "GET", "/v2/apps/shop/api-blue?embed=app.tasks", "")
	if a.status != 200 || a.header.Get("Content-Type") != "application/json" || a.header.Get("X-Marathon-Leader") == "" {
		t.Fatalf("answer = %+v", a)
	}
	app := a.json(t)["app"].(map[string]any)
	tasks := app["tasks"].([]any)
	if app["id"] != blue || app["tasksHealthy"] != 2.0 || len(tasks) != 2 || app["secrets"] == nil {
		t.Errorf("app = %v", app)
	}
	task := tasks[0].(map[string]any)
	health := task["healthCheckResults"].([]any)[0].(map[string]any)
	if !strings.HasPrefix(task["id"].(string), health["instanceId"].(string)+"._app.1") || health["lastFailure"] != nil {
		t.Errorf("task = %v", task)
	}
	// Marathon resolves ".." in the path: a client must not let it in.
	if a := call(t, s, "GET", "/v2/apps/elsewhere/../shop/api-blue", ""); a.status != 200 {
		t.Errorf("canonicalized path: %d", a.status)
	}
	a = call(t, s, "GET", "/v2/apps/shop/nope", "")
	if a.status != 404 || a.body != `{"message":"App '/shop/nope' does not exist"}`+"\n" {
		t.Errorf("unknown app: %d %q", a.status, a.body)
	}
}

func TestPartialUpdateReplacesWholeFields(t *testing.T) {
	t.Parallel()
	s := start(t, marathontest.Options{})
	s.AddApp(marathontest.AppSpec{ID: "/limited", Fields: map[string]any{"resourceLimits": map[string]any{"mem": 8192}}})
	// A partial container replaces the whole container: port mappings go.
	a := call(t, s, "PUT", "/v2/apps/shop/api-blue", `{"container":{"type":"DOCKER","docker":{"image":"x:2"}}}`)
	if a.status != 200 || a.header.Get("Marathon-Deployment-Id") != a.json(t)["deploymentId"] {
		t.Fatalf("PUT: %+v", a)
	}
	st, _ := s.App(blue)
	var def map[string]any
	_ = json.Unmarshal(st.Definition, &def)
	if st.Image != "x:2" || def["container"].(map[string]any)["portMappings"] != nil || st.Labels["HAPROXY_GROUP"] != "external" {
		t.Errorf("after partial PUT: image %s, container %v, labels %v", st.Image, def["container"], st.Labels)
	}
	// resourceLimits are reset by a PUT that leaves them out.
	call(t, s, "PUT", "/v2/apps/limited?force=true", `{"instances":2}`)
	st, _ = s.App("/limited")
	if strings.Contains(string(st.Definition), "resourceLimits") {
		t.Errorf("resourceLimits kept: %s", st.Definition)
	}
	// A PUT to an unknown id creates the app.
	a = call(t, s, "PUT", "/v2/apps/shop/new", `{"cmd":"sleep 100","instances":1}`)
	if _, ok := s.App("/shop/new"); a.status != 201 || !ok {
		t.Errorf("PUT to a new id: %d %s", a.status, a.body)
	}
}

func TestLockedAndForced(t *testing.T) {
	t.Parallel()
	s := start(t, marathontest.Options{DeployPolls: 100})
	first := call(t, s, "PUT", "/v2/apps/shop/api-blue", `{"instances":3}`).json(t)["deploymentId"]
	a := call(t, s, "PUT", "/v2/apps/shop/api-blue", `{"instances":4}`)
	m := a.json(t)
	deps := m["deployments"].([]any)
	if a.status != 409 || len(deps) != 1 || deps[0].(map[string]any)["id"] != first || !strings.HasPrefix(m["message"].(string), "App is locked by one or more deployments.") {
		t.Fatalf("locked PUT: %d %s", a.status, a.body)
	}
	a = call(t, s, "PUT", "/v2/apps/shop/api-blue?force=true", `{"instances":4}`)
	if a.status != 200 || slices.Contains(s.Deployments(), first.(string)) {
		t.Errorf("forced PUT: %d, deployments %v", a.status, s.Deployments())
	}
	// DELETE forces unless told otherwise.
	if a := call(t, s, "DELETE", "/v2/apps/shop/api-blue?force=false", ""); a.status != 409 {
		t.Errorf("DELETE force=false: %d", a.status)
	}
	if a := call(t, s, "DELETE", "/v2/apps/shop/api-blue", ""); a.status != 200 {
		t.Errorf("DELETE: %d %s", a.status, a.body)
	}
	if _, ok := s.App(blue); ok || len(s.Deployments()) != 1 {
		t.Errorf("after DELETE: deployments %v", s.Deployments())
	}
}

func TestValidation(t *testing.T) {
	t.Parallel()
	s := start(t, marathontest.Options{})
	tests := []struct {
		name, method, path, body string
		status                   int
		want                     string
	}{
		{"not JSON", "PUT", "/v2/apps/shop/api-blue", `{"instances": 2`, 400, `"message":"Invalid JSON","details":"Unexpected end-of-input`},
		{"no body", "POST", "/v2/apps", ``, 400, `Please specify data in JSON format`},
		{"wrong type", "PUT", "/v2/apps/shop/api-blue", `{"instances":"two"}`, 422, `{"message":"Invalid JSON","details":[{"path":"/instances","errors":["error.expected.jsnumber"]}]}`},
		{"negative", "PUT", "/v2/apps/shop/api-blue", `{"instances":-1}`, 422, `{"message":"Object is not valid","details":[{"path":"/instances","errors":["got -1, expected 0 or more"]}]}`},
		{"empty image", "PUT", "/v2/apps/shop/api-blue", `{"container":{"docker":{"image":""}}}`, 422, `"path":"/container/docker/image","errors":["must not be empty"]`},
		{"version and more", "PUT", "/v2/apps/shop/api-blue", `{"version":"2020-01-01T00:00:00.000Z","instances":1}`, 422, `The 'version' field may only be combined with the 'id' field.`},
		{"unknown version", "PUT", "/v2/apps/shop/api-blue", `{"version":"2020-01-01T00:00:00.000Z"}`, 404, `App '/shop/api-blue' does not exist"`},
		{"bad id", "POST", "/v2/apps", `{"id":"/Shop","cmd":"x"}`, 422, `"path":"/id","errors":["must fully match regular expression`},
		{"nothing to run", "POST", "/v2/apps", `{"id":"/shop/x"}`, 422, `AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'.`},
		{"exists", "POST", "/v2/apps", `{"id":"/shop/api-blue","cmd":"x"}`, 409, `{"message":"An app with id [/shop/api-blue] already exists."}`},
		{"unknown deployment", "DELETE", "/v2/deployments/5ed4c0c5-9ff8-4a6f-a0cd-f57f59a34b43", ``, 404, `DeploymentPlan 5ed4c0c5-9ff8-4a6f-a0cd-f57f59a34b43 does not exist`},
		{"unknown route", "GET", "/v2/nothing", ``, 500, `{"message":"URI not found"}`},
		{"unknown version read", "GET", "/v2/apps/shop/api-blue/versions/2020-01-01T00:00:00.000Z", ``, 404, `does not exist in version 2020-01-01T00:00:00.000Z`},
	}
	for _, tc := range tests {
		a := call(t, s, tc.method, tc.path, tc.body)
		if a.status != tc.status || !strings.Contains(a.body, tc.want) {
			t.Errorf("%s: %d %s, want %d with %s", tc.name, a.status, a.body, tc.status, tc.want)
		}
	}
	if n := len(s.Deployments()); n != 0 {
		t.Errorf("refused changes started %d deployments", n)
	}
}

func TestCreateAndDeploymentSteps(t *testing.T) {
	t.Parallel()
	s := start(t, marathontest.Options{DeployPolls: 3})
	a := call(t, s, "POST", "/v2/apps", `{"id":"shop/api-green","cmd":"sleep 100","instances":2,"tasks":[],"version":"2000-01-01T00:00:00.000Z"}`)
	app := a.json(t)
	if a.status != 201 || !strings.HasSuffix(a.header.Get("Location"), "/shop/api-green") || app["id"] != "/shop/api-green" ||
		app["tasks"] != nil || app["tasksRunning"] != 0.0 || app["version"] == "2000-01-01T00:00:00.000Z" {
		t.Fatalf("POST: %d %v %s", a.status, a.header, a.body)
	}
	deps := app["deployments"].([]any)
	if len(deps) != 1 || deps[0].(map[string]any)["id"] != a.header.Get("Marathon-Deployment-Id") {
		t.Errorf("deployments = %v, header %s", deps, a.header.Get("Marathon-Deployment-Id"))
	}
	var list []map[string]any
	var steps []string
	for range 3 {
		_ = json.Unmarshal([]byte(call(t, s, "GET", "/v2/deployments", "").body), &list)
		for _, d := range list {
			action := d["currentActions"].([]any)[0].(map[string]any)["action"].(string)
			steps = append(steps, action+"/"+jsonString(d["currentStep"])+"/"+jsonString(d["totalSteps"]))
		}
	}
	want := []string{"StartApplication/1/2", "ScaleApplication/2/2"}
	if !slices.Equal(steps, want) {
		t.Errorf("steps = %v, want %v", steps, want)
	}
}

func jsonString(v any) string { raw, _ := json.Marshal(v); return string(raw) }

func TestVersionsListedOldestFirst(t *testing.T) {
	t.Parallel()
	s := start(t, marathontest.Options{})
	call(t, s, "PUT", "/v2/apps/shop/api-blue", `{"instances":3}`)
	call(t, s, "PUT", "/v2/apps/shop/api-blue?force=true", `{"instances":4}`)
	var vs struct{ Versions []string }
	_ = json.Unmarshal([]byte(call(t, s, "GET", "/v2/apps/shop/api-blue/versions", "").body), &vs)
	if len(vs.Versions) != 3 || !slices.IsSorted(vs.Versions) || !slices.Equal(vs.Versions, s.Versions(blue)) {
		t.Errorf("versions = %v", vs.Versions)
	}
	a := call(t, s, "GET", "/v2/apps/shop/api-blue/versions/"+vs.Versions[0], "")
	if m := a.json(t); a.status != 200 || m["instances"] != 2.0 || m["version"] != vs.Versions[0] || m["tasks"] != nil {
		t.Errorf("first version: %d %v", a.status, m)
	}
}

func TestFaultsAndAuth(t *testing.T) {
	t.Parallel()
	s := start(t, marathontest.Options{User: "deploybot", Password: "s3cret"})
	a := call(t, s, "GET", "/v2/deployments", "")
	if a.status != 401 || a.header.Get("WWW-Authenticate") != `basic realm="Mesosphere"` || !strings.Contains(a.body, "HTTP ERROR 401") {
		t.Errorf("no credentials: %d %v %q", a.status, a.header, a.body)
	}
	s.ForceLeaderElection(2)
	a = call(t, s, "GET", "/v2/apps/shop/api-blue", "")
	if a.status != 502 || !strings.Contains(a.body, "Problem accessing /v2/apps/shop/api-blue. Reason:\n<pre>    Could not determine the current leader</pre>") {
		t.Errorf("leader election GET: %d %q", a.status, a.body)
	}
	// Jetty writes error pages only for GET, POST and HEAD.
	if a := call(t, s, "PUT", "/v2/apps/shop/api-blue", `{}`); a.status != 502 || a.body != "" {
		t.Errorf("leader election PUT: %d %q", a.status, a.body)
	}
	s.Fail("GET", "/v2/deployments", 503, 1)
	if a := call(t, s, "GET", "/v2/deployments", ""); a.status != 503 || !strings.Contains(a.body, "Futures timed out") {
		t.Errorf("503: %d %q", a.status, a.body)
	}
	if n := s.Count("GET", "/v2/apps/shop/api-blue"); n != 1 {
		t.Errorf("Count = %d, requests %q", n, s.Requests())
	}
}

func TestUnhealthyTasksAreRelaunched(t *testing.T) {
	t.Parallel()
	s := marathontest.Start(marathontest.Options{Healthy: func(_, version string) bool { return false }})
	t.Cleanup(s.Close)
	s.AddApp(marathontest.AppSpec{ID: blue, Fields: map[string]any{"healthChecks": []any{
		map[string]any{"protocol": "HTTP", "path": "/", "maxConsecutiveFailures": 1}}}})
	call(t, s, "PUT", "/v2/apps/shop/api-blue", `{"env":{"X":"1"}}`)
	var seen []string
	for range 4 {
		a := call(t, s, "GET", "/v2/apps/shop/api-blue", "")
		for _, task := range a.json(t)["app"].(map[string]any)["tasks"].([]any) {
			tm := task.(map[string]any)
			if len(tm["id"].(string)) > 0 && tm["healthCheckResults"] != nil {
				h := tm["healthCheckResults"].([]any)[0].(map[string]any)
				seen = append(seen, tm["id"].(string)[len(tm["id"].(string))-1:]+":"+jsonString(h["alive"])+":"+jsonString(h["lastFailureCause"]))
			}
		}
	}
	// The old task turns unhealthy too (Healthy says no for every version);
	// each is killed after one failure and comes back as incarnation 2.
	joined := strings.Join(seen, " ")
	if !strings.Contains(joined, `1:false:"503 Service Unavailable"`) || !strings.Contains(joined, "2:") {
		t.Errorf("health seen: %s", joined)
	}
	if len(s.Deployments()) != 1 {
		t.Errorf("deployments = %v, want the failing one still running", s.Deployments())
	}
}
