package gerrittest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}

// TestZeroValuesGiveTheRecordings checks the event builders against the
// recordings they start from, in both forms.
func TestZeroValuesGiveTheRecordings(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{PatchSetCreated, CommentAdded, ChangeMerged, ChangeAbandoned, RefUpdated} {
		got, err := StreamEvent(kind, EventValues{})
		if err != nil {
			t.Fatal(err)
		}
		want, _ := payloads.ReadFile("testdata/" + kind + ".json")
		if !bytes.HasSuffix(got, []byte("}\n")) || bytes.Count(got, []byte("\n")) != 1 || !jsonEqual(t, got, want) {
			t.Errorf("StreamEvent(%s) = %s\nwant %s", kind, got, want)
		}
	}
	for _, kind := range []string{CommentAdded, RefUpdated} {
		got, err := WebhookEvent(kind, EventValues{})
		if err != nil {
			t.Fatal(err)
		}
		want, _ := payloads.ReadFile("testdata/webhook-" + kind + ".json")
		if bytes.HasSuffix(got, []byte("\n")) || !jsonEqual(t, got, want) {
			t.Errorf("WebhookEvent(%s) = %s\nwant %s", kind, got, want)
		}
	}
	if _, err := StreamEvent("draft-published", EventValues{}); err == nil {
		t.Error("StreamEvent made up an event it has no recording of")
	}
}

func TestEventValuesAreSubstituted(t *testing.T) {
	t.Parallel()
	old := 0
	raw, err := WebhookEvent(CommentAdded, EventValues{
		Project: "platform/web", Branch: "release", Number: 42, PatchSet: 3, Revision: strings.Repeat("a", 40),
		Actor: Account{Name: "Rae Viewer", Username: "rae"}, Approvals: []Approval{{Label: "Code-Review", Value: 2, OldValue: &old}},
		CreatedOn: time.Unix(1741700000, 0),
	})
	if err != nil {
		t.Fatal(err)
	}
	var e struct {
		Project   map[string]string `json:"project"`
		RefName   string            `json:"refName"`
		Change    map[string]any    `json:"change"`
		PatchSet  map[string]any    `json:"patchSet"`
		Author    map[string]string `json:"author"`
		Approvals []map[string]any  `json:"approvals"`
		Created   int64             `json:"eventCreatedOn"`
	}
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatal(err)
	}
	switch {
	case e.Project["name"] != "platform/web" || e.RefName != "refs/heads/release" || e.Change["project"] != "platform/web":
		t.Errorf("project/ref: %s", raw)
	case e.Change["number"] != 42.0 || e.Change["url"] != "https://gerrit.example.com/c/platform/web/+/42":
		t.Errorf("change: %v", e.Change)
	case e.PatchSet["number"] != 3.0 || e.PatchSet["ref"] != "refs/changes/42/42/3" || e.PatchSet["revision"] != strings.Repeat("a", 40):
		t.Errorf("patch set: %v", e.PatchSet)
	case e.Author["username"] != "rae" || len(e.Approvals) != 1 || e.Approvals[0]["value"] != "2" || e.Approvals[0]["oldValue"] != "0":
		t.Errorf("author/approvals: %v %v", e.Author, e.Approvals)
	case e.Created != 1741700000:
		t.Errorf("eventCreatedOn %d", e.Created)
	}
}

func TestAbandonedValuesAreSubstituted(t *testing.T) {
	t.Parallel()
	rae := Account{Name: "Rae Viewer", Email: "rae@example.com", Username: "rae"}
	raw, err := WebhookEvent(ChangeAbandoned, EventValues{Number: 42, Actor: rae, Reason: "Duplicate of 41"})
	if err != nil {
		t.Fatal(err)
	}
	var e struct {
		Project   map[string]string `json:"project"`
		ChangeKey map[string]string `json:"changeKey"`
		Change    map[string]any    `json:"change"`
		Abandoner map[string]string `json:"abandoner"`
		Reason    string            `json:"reason"`
		Comment   *string           `json:"comment"`
	}
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatal(err)
	}
	switch {
	case e.Project["name"] != "platform/api" || e.ChangeKey["key"] != "I8473b95934b5732ac55d26311a706c9c2bde9940":
		t.Errorf("webhook project/changeKey: %s", raw)
	case e.Change["number"] != 42.0 || e.Change["status"] != "ABANDONED":
		t.Errorf("change: %v", e.Change)
	case e.Abandoner["username"] != "rae" || e.Reason != "Duplicate of 41" || e.Comment != nil:
		t.Errorf("abandoner %v, reason %q, comment %v", e.Abandoner, e.Reason, e.Comment)
	}
	// Reason belongs to change-abandoned alone.
	raw, err = StreamEvent(ChangeMerged, EventValues{Reason: "Duplicate of 41"})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(`"reason"`)) {
		t.Errorf("change-merged got a reason: %s", raw)
	}
}

func get(t *testing.T, method, url, user, password, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, string(raw)
}

func TestWireFormat(t *testing.T) {
	t.Parallel()
	s := Start(Options{User: "ci", Password: "pw"})
	defer s.Close()
	s.AddChange(Change{Project: "platform/api", Number: 1503})
	tests := []struct {
		name, method, path, user, password, body string
		status                                   int
		want                                     func(*http.Response, string) bool
	}{
		{"json", "GET", "a/changes/platform%2Fapi~1503", "ci", "pw", "", 200, func(r *http.Response, b string) bool {
			return strings.HasPrefix(b, ")]}'\n{") && strings.HasSuffix(b, "}\n") && !strings.Contains(b[5:], "\n ") &&
				!strings.Contains(b, `"labels"`) && strings.HasPrefix(r.Header.Get("Content-Type"), "application/json")
		}},
		{"bad password", "GET", "a/changes/1503", "ci", "nope", "", 401, func(r *http.Response, b string) bool {
			return b == "Unauthorized" && r.Header.Get("WWW-Authenticate") == `Basic realm="Gerrit Code Review"`
		}},
		{"anonymous read", "GET", "changes/1503", "", "", "", 200, func(_ *http.Response, b string) bool { return strings.HasPrefix(b, ")]}'") }},
		{"anonymous write", "POST", "changes/1503/submit", "", "", "{}", 403, func(r *http.Response, b string) bool {
			return b == "Authentication required\n" && strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain")
		}},
		{"unknown change", "GET", "a/changes/platform%2Fapi~7", "ci", "pw", "", 404, func(_ *http.Response, b string) bool { return b == "Not found: platform/api~7\n" }},
		{"bad json", "POST", "a/changes/1503/revisions/current/review", "ci", "pw", "{", 400, func(_ *http.Response, b string) bool {
			return b == "Invalid application/json in request\n"
		}},
		{"unknown label ignored", "POST", "a/changes/1503/revisions/current/review", "ci", "pw", `{"labels":{"Bogus":1,"Verified":5}}`, 200,
			func(_ *http.Response, b string) bool { return strings.Contains(b, `"labels":{}`) }},
	}
	for _, tc := range tests {
		resp, body := get(t, tc.method, s.URL+tc.path, tc.user, tc.password, tc.body)
		if resp.StatusCode != tc.status || !tc.want(resp, body) {
			t.Errorf("%s: %d %q (%v)", tc.name, resp.StatusCode, body, resp.Header)
		}
	}
}

func TestStrictLabels(t *testing.T) {
	t.Parallel()
	s := Start(Options{StrictLabels: true})
	defer s.Close()
	s.AddChange(Change{Project: "p", Number: 1})
	for body, want := range map[string]string{
		`{"labels":{"Bogus":1}}`:    "label \"Bogus\" is not a configured label\n",
		`{"labels":{"Verified":2}}`: "label \"Verified\": 2 is not a valid value\n",
	} {
		resp, got := get(t, "POST", s.URL+"a/changes/p~1/revisions/current/review", "", "", body)
		if resp.StatusCode != 400 || got != want {
			t.Errorf("%s: %d %q, want 400 %q", body, resp.StatusCode, got, want)
		}
	}
	if n := len(s.Reviews("p", 1)); n != 0 {
		t.Errorf("%d refused reviews were recorded", n)
	}
	v, ok := s.EventValues("p", 1)
	if !ok || v.Number != 1 || v.Owner.Username != "ann" || v.Uploader.Username != "upe" || len(v.Revision) != 40 {
		t.Errorf("EventValues = %+v, %v", v, ok)
	}
}

func TestSSHUnknownCommand(t *testing.T) {
	t.Parallel()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := StartSSH(SSHOptions{User: "ci", Key: signer.PublicKey()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	client, err := ssh.Dial("tcp", srv.Addr, &ssh.ClientConfig{User: "ci", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: srv.HostKeyCallback()})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	sess.Stderr = &stderr
	err = sess.Run("gerrit stream-event")
	var exit *ssh.ExitError
	if !errors.As(err, &exit) || exit.ExitStatus() != 1 || stderr.String() != "fatal: gerrit: stream-event: not found\n" {
		t.Fatalf("Run = %v, stderr %q", err, stderr.String())
	}
	if srv.Sessions() != 0 {
		t.Fatalf("a mistyped command counted as a stream session")
	}
}
