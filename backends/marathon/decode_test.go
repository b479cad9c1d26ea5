package marathon

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
)

func TestDecodeApp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body string
		ok         bool
	}{
		{"recorded", readRecording(t, "app-info.json"), true},
		{"secret env", `{"app":{"id":"/a","env":{"A":"1","B":{"secret":"s"},"C":7,"D":null}}}`, true},
		{"null container", `{"app":{"id":"/a","container":null,"cmd":null}}`, true},
		{"no app", `{"apps":[]}`, false},
		{"app without id", `{"app":{"instances":1}}`, false},
		{"html", `<html>Sign in</html>`, false},
		{"label not a string", `{"app":{"id":"/a","labels":{"x":1}}}`, false},
	}
	for _, tc := range tests {
		app, err := decodeApp([]byte(tc.body))
		if (err == nil) != tc.ok {
			t.Errorf("%s: decodeApp = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if tc.name == "secret env" && (app.Env["A"] != "1" || app.EnvSecrets["B"] != "s" || len(app.Env) != 1) {
			t.Errorf("env = %v, secrets = %v", app.Env, app.EnvSecrets)
		}
	}
}

func readRecording(t testing.TB, name string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("marathontest", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

func TestHTTPErrorFromRecordings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file, contentType string
		status            int
		reason            string
		locked, notFound  bool
	}{
		{"error-409-locked.json", "application/json", 409, "the app is locked by a running deployment (5cd987cd-85ae-4e70-8df7-f1438367d9cb); wait for it to finish or cancel it", true, false},
		{"error-404-app.json", "application/json", 404, "App '/not_existent' does not exist", false, true},
		{"error-422-object-not-valid.json", "application/json", 422, "Marathon rejected the app definition: upgradeStrategy.minimumHealthCapacity: is greater than 1", false, false},
		{"error-422-invalid-json.json", "application/json", 422, "Marathon rejected the app definition: id: error.expected.jsstring", false, false},
		{"error-400-invalid-json.json", "application/json", 400, "Marathon could not parse the request (invalid JSON)", false, false},
		{"error-502-no-leader.html", "text/html;charset=iso-8859-1", 502, "Marathon has no leader right now; try again shortly", false, false},
		{"error-401.html", "text/html;charset=iso-8859-1", 401, "Marathon did not accept deploybot's credentials", false, false},
		{"error-503-timeout.json", "application/json", 503, "Marathon is unavailable (Service Unavailable); try again shortly", false, false},
	}
	for _, tc := range tests {
		e := newHTTPError("PUT", "/v2/apps/x", tc.status, tc.contentType, []byte(readRecording(t, tc.file)))
		if got := e.Reason(); got != tc.reason {
			t.Errorf("%s: Reason() = %q, want %q", tc.file, got, tc.reason)
		}
		if e.Is(ErrLocked) != tc.locked || e.Is(ErrNotFound) != tc.notFound || e.Is(ErrExists) {
			t.Errorf("%s: locked %v notFound %v", tc.file, e.Is(ErrLocked), e.Is(ErrNotFound))
		}
		if strings.Contains(e.Error(), "<html") || !strings.Contains(e.Error(), "PUT /v2/apps/x") {
			t.Errorf("%s: Error() = %q", tc.file, e.Error())
		}
	}
	e := newHTTPError("PUT", "/", 502, "text/html", []byte(readRecording(t, "error-502-no-leader.html")))
	if e.Message != "Could not determine the current leader" {
		t.Errorf("message from the Jetty page = %q", e.Message)
	}
}

func TestReadablePath(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"/container/docker/image":  "container.docker.image",
		"/healthChecks(0)/path":    "healthChecks[0].path",
		"/":                        "",
		"":                         "",
		"/apps//test/group1/x":     "apps..test.group1.x",
		"/portMappings(12)(3)/foo": "portMappings[12][3].foo",
	} {
		if got := readablePath(in); got != want {
			t.Errorf("readablePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzDecodeApp(f *testing.F) {
	f.Add([]byte(readRecording(f, "app-info.json")))
	f.Add([]byte(`{"app":{"id":"/a","env":{"B":{"secret":"s"}},"tasks":[{"healthCheckResults":[{"alive":false}]}]}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		app, err := decodeApp(raw)
		if err != nil {
			return
		}
		if app.ID == "" {
			t.Fatal("decoded an app without an id")
		}
		_ = app.Image()
		for _, task := range app.Tasks {
			if task.Healthy() && len(task.HealthCheckResults) == 0 {
				t.Fatalf("task %+v healthy without results", task)
			}
			_ = app.TaskHealthy(task)
		}
		// What decodes must survive a round trip.
		again, err := json.Marshal(app)
		if err != nil || !json.Valid(again) {
			t.Fatalf("re-encode: %v", err)
		}
	})
}

func FuzzHTTPError(f *testing.F) {
	for _, name := range []string{"error-409-locked.json", "error-422-object-not-valid.json", "error-400-invalid-json.json", "error-502-no-leader.html"} {
		f.Add(409, []byte(readRecording(f, name)))
	}
	f.Add(422, []byte(`{"message":"x","details":[{"path":"/a\u0000\n","errors":["\u001b[31mred"]}]}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		e := newHTTPError("GET", "/v2/deployments", status, "application/json", body)
		r := e.Reason()
		if len(r) > 310 || strings.ContainsFunc(r, unicode.IsControl) || bytes.Contains([]byte(r), []byte("<html")) {
			t.Fatalf("Reason() = %q", r)
		}
		_ = e.Error()
		_ = e.Temporary()
	})
}
