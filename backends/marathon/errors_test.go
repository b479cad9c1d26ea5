package marathon_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/seed-5eb4e92e/deploybot/backends/marathon"
	"github.com/seed-5eb4e92e/deploybot/backends/marathon/marathontest"
)

// appDef is a definition to create, from the double's recording, changed by
// edit.
func appDef(t *testing.T, c *marathon.Client, edit func(map[string]any)) json.RawMessage {
	t.Helper()
	raw, err := c.Definition(context.Background(), blue)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	m["id"] = "/shop/api-green"
	edit(m)
	raw, _ = json.Marshal(m)
	return raw
}

func TestErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		opts      marathontest.Options
		password  string
		setup     func(*marathontest.Server)
		call      func(*testing.T, *marathon.Client) error
		status    int
		is        error
		temporary bool
		reason    string
		url       string // appended to the server's URL
	}{
		{name: "unknown app", status: 404, is: marathon.ErrNotFound, reason: "App '/shop/nope' does not exist",
			call: func(_ *testing.T, c *marathon.Client) error {
				_, err := c.App(context.Background(), "/shop/nope")
				return err
			}},
		{name: "empty image", status: 422, reason: "Marathon rejected the app definition: container.docker.image: must not be empty",
			call: func(t *testing.T, c *marathon.Client) error {
				_, err := c.Create(context.Background(), appDef(t, c, func(m map[string]any) {
					m["container"].(map[string]any)["docker"].(map[string]any)["image"] = ""
				}))
				return err
			}},
		{name: "two failures", status: 422,
			reason: "Marathon rejected the app definition: instances: got -2, expected 0 or more; container.docker.image: must not be empty",
			call: func(t *testing.T, c *marathon.Client) error {
				_, err := c.Create(context.Background(), appDef(t, c, func(m map[string]any) {
					m["instances"] = -2
					m["container"].(map[string]any)["docker"].(map[string]any)["image"] = ""
				}))
				return err
			}},
		{name: "wrong JSON type", status: 422, reason: "Marathon rejected the app definition: labels.team: error.expected.jsstring",
			call: func(t *testing.T, c *marathon.Client) error {
				_, err := c.Create(context.Background(), appDef(t, c, func(m map[string]any) { m["labels"] = map[string]any{"team": 7} }))
				return err
			}},
		{name: "exists", status: 409, is: marathon.ErrExists, reason: "An app with id [/shop/api-blue] already exists.",
			call: func(t *testing.T, c *marathon.Client) error {
				_, err := c.Create(context.Background(), appDef(t, c, func(m map[string]any) { m["id"] = blue }))
				return err
			}},
		{name: "no leader", status: 502, temporary: true, reason: "Marathon has no leader right now; try again shortly",
			setup: func(s *marathontest.Server) { s.ForceLeaderElection(1) },
			call:  func(_ *testing.T, c *marathon.Client) error { _, err := c.App(context.Background(), blue); return err }},
		{name: "no leader on a write", status: 502, temporary: true, reason: "Marathon is unavailable (Bad Gateway); try again shortly",
			setup: func(s *marathontest.Server) { s.Fail("PUT", "/v2/apps", 502, 1) },
			call: func(_ *testing.T, c *marathon.Client) error {
				_, err := c.Scale(context.Background(), blue, 3)
				return err
			}},
		{name: "storage timeout", status: 503, temporary: true, reason: "Marathon is unavailable (Service Unavailable); try again shortly",
			setup: func(s *marathontest.Server) { s.Fail("GET", "/v2/deployments", 503, 1) },
			call: func(_ *testing.T, c *marathon.Client) error {
				_, err := c.Deployments(context.Background())
				return err
			}},
		{name: "server error", status: 500, temporary: true, reason: "Marathon is unavailable (Internal Server Error); try again shortly",
			setup: func(s *marathontest.Server) { s.Fail("DELETE", "/v2/deployments/", 500, 1) },
			call: func(_ *testing.T, c *marathon.Client) error {
				_, err := c.CancelDeployment(context.Background(), "5ed4c0c5-9ff8-4a6f-a0cd-f57f59a34b43", false)
				return err
			}},
		{name: "wrong base path", status: 500, reason: "Marathon has no such API path; check deploybot's Marathon URL",
			call: func(_ *testing.T, c *marathon.Client) error {
				_, err := c.Deployments(context.Background())
				return err
			},
			url: "marathon/"},
		{name: "bad password", opts: marathontest.Options{User: "deploybot", Password: "right"}, password: "wrong",
			status: 401, reason: "Marathon did not accept deploybot's credentials",
			call: func(_ *testing.T, c *marathon.Client) error {
				_, err := c.Versions(context.Background(), blue)
				return err
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := marathontest.Start(tc.opts)
			t.Cleanup(srv.Close)
			srv.AddApp(marathontest.AppSpec{ID: blue})
			good, err := marathon.New(marathon.Config{URL: srv.URL + tc.url, User: tc.opts.User, Password: tc.opts.Password}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			c := good
			if tc.password != "" {
				c, _ = marathon.New(marathon.Config{URL: srv.URL, User: tc.opts.User, Password: tc.password}, nil, nil)
			}
			if tc.setup != nil {
				tc.setup(srv)
			}
			err = tc.call(t, good)
			if c != good {
				err = tc.call(t, c)
			}
			var he *marathon.HTTPError
			if !errors.As(err, &he) {
				t.Fatalf("err = %v, want an *HTTPError", err)
			}
			if he.Status != tc.status || he.Temporary() != tc.temporary || tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("err = %v: status %d temporary %v, want %d %v %v", err, he.Status, he.Temporary(), tc.status, tc.temporary, tc.is)
			}
			if got := he.Reason(); got != tc.reason {
				t.Errorf("Reason() = %q, want %q", got, tc.reason)
			}
			if strings.Contains(he.Reason(), "<") || strings.Contains(err.Error(), "<html>") {
				t.Errorf("a raw body leaked: %q / %q", he.Reason(), err)
			}
		})
	}
}

func TestContextCancellation(t *testing.T) {
	t.Parallel()
	c, srv := bluePair(t, marathontest.Options{}, marathon.Config{})
	srv.Block("GET", "/v2/apps/", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.App(ctx, blue); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("blocked App = %v, want the deadline", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if _, err := c.Update(ctx, blue, marathon.AppUpdate{Image: newImage}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Update = %v", err)
	}
	if n := srv.Count("PUT", "/"); n != 0 {
		t.Errorf("%d PUTs after cancellation", n)
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  marathon.Config
		ok   bool
	}{
		{name: "https", cfg: marathon.Config{URL: "https://marathon.example.com:8443"}, ok: true},
		{name: "behind admin router", cfg: marathon.Config{URL: "https://dcos.example.com/service/marathon/", User: "u", Password: "p"}, ok: true},
		{name: "no scheme", cfg: marathon.Config{URL: "marathon.example.com:8080"}},
		{name: "ftp", cfg: marathon.Config{URL: "ftp://marathon.example.com/"}},
		{name: "no host", cfg: marathon.Config{URL: "https:///v2"}},
		{name: "credentials in URL", cfg: marathon.Config{URL: "https://u:p@marathon.example.com/"}},
		{name: "password without user", cfg: marathon.Config{URL: "https://marathon.example.com/", Password: "p"}},
		{name: "not a URL", cfg: marathon.Config{URL: "https://[::1"}},
	}
	for _, tc := range tests {
		_, err := marathon.New(tc.cfg, nil, nil)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && strings.Contains(err.Error(), "p@") {
			t.Errorf("%s: error shows the URL's password: %v", tc.name, err)
		}
	}
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	t.Parallel()
	var followed bool
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { followed = true }))
	defer target.Close()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	c, err := marathon.New(marathon.Config{URL: redirect.URL, User: "deploybot", Password: "secret"}, redirect.Client(), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Deployments(context.Background())
	var he *marathon.HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusTemporaryRedirect || followed {
		t.Errorf("err = %v, followed = %v", err, followed)
	}
}
