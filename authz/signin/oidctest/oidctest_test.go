package oidctest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

const (
	testRedirect = "https://deploybot.example/oidc/callback"
	testSecret   = "s3cret-never-logged"
)

// noFollow returns a client that trusts s and stops at redirects.
func noFollow(s *Server) *http.Client {
	c := *s.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// authorizeQuery is a good authorization request for s.
func authorizeQuery(s *Server, verifier string) url.Values {
	return url.Values{
		"client_id":             {s.ClientID()},
		"redirect_uri":          {testRedirect},
		"response_type":         {"code"},
		"scope":                 {"openid email profile groups"},
		"state":                 {"st4te"},
		"nonce":                 {"n0nce"},
		"code_challenge":        {oauth2.S256ChallengeFromVerifier(verifier)},
		"code_challenge_method": {"S256"},
	}
}

// get requests path on s without following redirects.
func get(t *testing.T, s *Server, path string, q url.Values) *http.Response {
	t.Helper()
	resp, err := noFollow(s).Get(s.Issuer() + path + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// authorize runs a good authorization request and returns the code.
func authorize(t *testing.T, s *Server, verifier string) string {
	t.Helper()
	resp := get(t, s, "/v1/authorize", authorizeQuery(s, verifier))
	loc, err := resp.Location()
	if resp.StatusCode != http.StatusFound || err != nil {
		t.Fatalf("authorize: %s, Location %v", resp.Status, err)
	}
	code := loc.Query().Get("code")
	if code == "" {
		t.Fatalf("authorize: no code in %s", loc.Redacted())
	}
	return code
}

func TestDiscovery(t *testing.T) {
	t.Parallel()
	s := New(t, Options{RedirectURI: testRedirect})
	resp, err := s.Client().Get(s.Issuer() + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	var recorded map[string]any
	if err := json.Unmarshal([]byte(discoveryJSON), &recorded); err != nil {
		t.Fatal(err)
	}
	for k := range recorded {
		if _, ok := doc[k]; !ok {
			t.Errorf("served document lacks %q", k)
		}
	}
	want := map[string]string{
		"issuer":                 s.Issuer(),
		"authorization_endpoint": s.Issuer() + "/v1/authorize",
		"token_endpoint":         s.Issuer() + "/v1/token",
		"jwks_uri":               s.Issuer() + "/v1/keys",
	}
	for k, v := range want {
		if doc[k] != v {
			t.Errorf("%s = %v, want %s", k, doc[k], v)
		}
	}
	for k, v := range doc {
		if s, ok := v.(string); ok && strings.Contains(s, "acme.okta.com") {
			t.Errorf("%s = %s still points at the recorded org", k, s)
		}
	}
	if m, _ := doc["code_challenge_methods_supported"].([]any); !slices.Equal(m, []any{"S256"}) {
		t.Errorf("code_challenge_methods_supported = %v, want [S256]", m)
	}
}

func TestAuthorize(t *testing.T) {
	t.Parallel()
	const verifier = "a-verifier-that-is-long-enough-for-rfc-7636-pkce"
	tests := []struct {
		name      string
		edit      func(url.Values)
		faults    Faults
		status    int
		wantError string // the error= sent back; "" means a code
	}{
		{name: "approved", edit: func(url.Values) {}, status: http.StatusFound},
		{name: "unknown client", edit: func(q url.Values) { q.Set("client_id", "0oaOTHER") }, status: http.StatusBadRequest},
		{name: "unregistered redirect", edit: func(q url.Values) { q.Set("redirect_uri", "https://evil.example/cb") }, status: http.StatusBadRequest},
		{name: "implicit flow", edit: func(q url.Values) { q.Set("response_type", "token") }, status: http.StatusFound, wantError: "unsupported_response_type"},
		{name: "no openid scope", edit: func(q url.Values) { q.Set("scope", "email") }, status: http.StatusFound, wantError: "invalid_scope"},
		{name: "no state", edit: func(q url.Values) { q.Del("state") }, status: http.StatusFound, wantError: "invalid_request"},
		{name: "no nonce", edit: func(q url.Values) { q.Del("nonce") }, status: http.StatusFound, wantError: "invalid_request"},
		{name: "no challenge", edit: func(q url.Values) { q.Del("code_challenge") }, status: http.StatusFound, wantError: "invalid_request"},
		{name: "plain challenge", edit: func(q url.Values) { q.Set("code_challenge_method", "plain") }, status: http.StatusFound, wantError: "invalid_request"},
		{name: "verifier leaked", edit: func(q url.Values) { q.Set("code_verifier", verifier) }, status: http.StatusFound, wantError: "invalid_request"},
		{name: "user not assigned", edit: func(url.Values) {}, faults: Faults{AuthorizeError: "User is not assigned to the client application."}, status: http.StatusFound, wantError: "access_denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := New(t, Options{RedirectURI: testRedirect})
			s.SetFaults(tt.faults)
			q := authorizeQuery(s, verifier)
			tt.edit(q)
			resp := get(t, s, "/v1/authorize", q)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %s, want %d", resp.Status, tt.status)
			}
			if tt.status != http.StatusFound {
				if resp.Header.Get("Location") != "" {
					t.Errorf("redirected to %s for an untrusted client or redirect URI", resp.Header.Get("Location"))
				}
				return
			}
			checkRedirectBack(t, resp, q.Get("state"), tt.wantError)
		})
	}
}

// checkRedirectBack checks resp sends the browser back to the client with
// the state and either a code or wantError.
func checkRedirectBack(t *testing.T, resp *http.Response, state, wantError string) {
	t.Helper()
	loc, err := resp.Location()
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != testRedirect {
		t.Errorf("redirected to %s, want %s", got, testRedirect)
	}
	back := loc.Query()
	if back.Get("state") != state {
		t.Errorf("state = %q, want %q", back.Get("state"), state)
	}
	if back.Get("error") != wantError {
		t.Errorf("error = %q (%s), want %q", back.Get("error"), back.Get("error_description"), wantError)
	}
	if (back.Get("code") != "") != (wantError == "") {
		t.Errorf("code = %q with error %q", back.Get("code"), back.Get("error"))
	}
}

func TestAuthorizeIsRecorded(t *testing.T) {
	t.Parallel()
	s := New(t, Options{RedirectURI: testRedirect})
	authorize(t, s, oauth2.GenerateVerifier())
	reqs := s.AuthorizeRequests()
	if len(reqs) != 1 || reqs[0].Get("code_challenge_method") != "S256" {
		t.Fatalf("recorded %v", reqs)
	}
	reqs[0].Set("state", "changed")
	if s.AuthorizeRequests()[0].Get("state") == "changed" {
		t.Error("AuthorizeRequests returned the server's own map")
	}
}
