package gerrit_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/seed-5eb4e92e/deploybot/backends/gerrit"
	"github.com/seed-5eb4e92e/deploybot/backends/gerrit/gerrittest"
)

func reason(err error) string {
	var he *gerrit.HTTPError
	if errors.As(err, &he) {
		return he.Reason()
	}
	return ""
}

func TestErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		user      string
		password  string
		setup     func(*gerrittest.Server)
		call      func(*gerrit.Client) error
		status    int
		temporary bool
		reason    string
	}{
		{name: "bad password", user: "ci", password: "wrong", status: 401, reason: "Unauthorized",
			call: func(c *gerrit.Client) error { _, err := c.Change(context.Background(), project, 1503); return err }},
		{name: "anonymous write", status: 403, reason: "Authentication required",
			call: func(c *gerrit.Client) error { return c.Recheck(context.Background(), project, 1503, "") }},
		{name: "restricted vote", user: "ci", password: password, status: 403, reason: `Applying label "Verified": 1 is restricted`,
			setup: func(s *gerrittest.Server) { s.RestrictLabel("Verified", -1, 0) },
			call: func(c *gerrit.Client) error {
				return c.Review(context.Background(), project, 1503, sha, gerrit.ReviewInput{Labels: map[string]int{"Verified": 1}})
			}},
		{name: "unknown change", user: "ci", password: password, status: 404, reason: "Not found: platform/api~99",
			call: func(c *gerrit.Client) error { _, err := c.Change(context.Background(), project, 99); return err }},
		{name: "unknown revision", user: "ci", password: password, status: 404, reason: "Not found: " + strings.Repeat("ab", 20),
			call: func(c *gerrit.Client) error {
				return c.Review(context.Background(), project, 1503, strings.Repeat("ab", 20), gerrit.ReviewInput{Message: "x"})
			}},
		{name: "server error", user: "ci", password: password, status: 503, temporary: true, reason: "Service Unavailable",
			setup: func(s *gerrittest.Server) { s.Fail("POST", "/a/changes/platform%2Fapi~1503/submit", 503, 1) },
			call:  func(c *gerrit.Client) error { _, err := c.Submit(context.Background(), project, 1503); return err }},
		{name: "quota", user: "ci", password: password, status: 429, temporary: true, reason: "Too Many Requests",
			setup: func(s *gerrittest.Server) { s.Fail("GET", "/a/changes/", 429, 1) },
			call:  func(c *gerrit.Client) error { _, err := c.Query(context.Background(), "status:open", 1); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := gerrittest.Start(gerrittest.Options{User: "ci", Password: password})
			t.Cleanup(srv.Close)
			srv.AddChange(gerrittest.Change{Project: project, Number: 1503, PatchSet: 2, Revision: sha})
			if tc.setup != nil {
				tc.setup(srv)
			}
			c, err := gerrit.New(gerrit.Config{URL: srv.URL, User: tc.user, Password: tc.password}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = tc.call(c)
			var he *gerrit.HTTPError
			if !errors.As(err, &he) {
				t.Fatalf("got %v, want *HTTPError", err)
			}
			if he.Status != tc.status || he.Temporary() != tc.temporary || he.Reason() != tc.reason {
				t.Fatalf("status %d temporary %v reason %q, want %d %v %q (%v)", he.Status, he.Temporary(), he.Reason(), tc.status, tc.temporary, tc.reason, err)
			}
			if strings.Contains(err.Error(), password) || strings.Contains(err.Error(), "wrong") {
				t.Fatalf("error text carries the password: %v", err)
			}
			if !strings.HasPrefix(err.Error(), "gerrit: ") {
				t.Fatalf("error %q lacks the package prefix", err)
			}
		})
	}
}

// TestNeverFollowsRedirects points the client at a server that redirects
// to another host; the other host must see nothing, least of all the
// credentials.
func TestNeverFollowsRedirects(t *testing.T) {
	t.Parallel()
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusFound)
	}))
	defer redirector.Close()
	c, err := gerrit.New(gerrit.Config{URL: redirector.URL, User: "ci", Password: password}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Change(context.Background(), project, 1503)
	var he *gerrit.HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusFound {
		t.Fatalf("Change = %v, want a 302 *HTTPError", err)
	}
	if elsewhere.Load() != 0 {
		t.Fatal("the client followed the redirect")
	}
}

func TestReason(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status int
		body   string
		want   string
	}{
		{409, recorded(t, "submit-409-not-ready.txt"), "Change 1503 is not ready: submit requirement 'Verified' is unsatisfied."},
		{409, recorded(t, "submit-409-blocked-legacy.txt"), "blocked by Verified"},
		{409, recorded(t, "submit-409-already-merged.txt"), "change is merged"},
		{403, recorded(t, "error-403-label-restricted.txt"), `Applying label "Verified": -1 is restricted`},
		{403, recorded(t, "error-403-authentication-required.txt"), "Authentication required"},
		{404, recorded(t, "error-404-change.txt"), "Not found: platform/api~1503"},
		{401, recorded(t, "error-401.txt"), "Unauthorized"},
		{409, "Failed to submit 2 changes due to the following problems:\nChange 7: Change 7 is not ready: x\nChange 8: needs rebase\n", "Change 7 is not ready: x; Change 8: needs rebase"},
		{403, "<html><body>Forbidden by proxy</body></html>", "Forbidden"},
		{400, ")]}'\n{\"reviewers\":{}}", "Bad Request"},
		{500, "java.lang.NullPointerException at com.google.gerrit…", "Internal Server Error"},
		{409, strings.Repeat("é", 300), strings.Repeat("é", 100) + "…"},
		{400, "", "Bad Request"},
		{499, "", "HTTP status 499"},
	}
	for _, tc := range tests {
		if got := errorFor(t, tc.status, tc.body).Reason(); got != tc.want {
			t.Errorf("Reason(%d, %.40q) = %q, want %q", tc.status, tc.body, got, tc.want)
		}
	}
	if got := (&gerrit.HTTPError{Status: 409, Body: "built by hand"}).Reason(); got != "Conflict" {
		t.Errorf("Reason of a hand-made error = %q, want the status text", got)
	}
}

// errorFor gets the *HTTPError for an answer with status and body, typed
// the way Gerrit (plain text), a proxy (HTML) or the REST API (JSON) would.
func errorFor(t *testing.T, status int, body string) *gerrit.HTTPError {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ct := "text/plain; charset=UTF-8"
		switch {
		case strings.HasPrefix(body, "<"):
			ct = "text/html"
		case strings.HasPrefix(body, ")]}'"):
			ct = "application/json; charset=utf-8"
		}
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	defer srv.Close()
	c, err := gerrit.New(gerrit.Config{URL: srv.URL}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Change(context.Background(), "", 1)
	var he *gerrit.HTTPError
	if !errors.As(err, &he) {
		t.Fatalf("status %d: got %v, want *HTTPError", status, err)
	}
	return he
}

func recorded(t *testing.T, name string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("gerrittest", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}
