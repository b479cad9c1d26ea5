package oidctest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// goodForm authorizes and returns a good token request for the code.
func goodForm(t *testing.T, s *Server) url.Values {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	return url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {authorize(t, s, verifier)},
		"redirect_uri":  {testRedirect},
		"code_verifier": {verifier},
	}
}

// exchange posts form to the token endpoint, authenticating as auth says:
// basic, post, both, none, or wrong (Basic with a wrong secret).
func exchange(t *testing.T, s *Server, form url.Values, auth, secret string) (*http.Response, map[string]any) {
	t.Helper()
	form = cloneValues(form)
	basic := auth == "basic" || auth == "both" || auth == "wrong"
	if auth == "wrong" {
		secret = "not-" + secret
	}
	if !basic {
		form.Set("client_id", s.ClientID())
	}
	if auth == "post" || auth == "both" {
		form.Set("client_secret", secret)
	}
	req, err := http.NewRequest(http.MethodPost, s.Issuer()+"/v1/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		req.SetBasicAuth(url.QueryEscape(s.ClientID()), url.QueryEscape(secret))
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("token answer is not JSON: %v", err)
	}
	return resp, body
}

func TestToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		secret     string // the client's registered secret; "" for a public client
		auth       string
		edit       func(url.Values)
		status     int
		wantError  string
		wantMethod string
	}{
		{name: "client_secret_basic", secret: testSecret, auth: "basic", status: 200, wantMethod: "client_secret_basic"},
		{name: "client_secret_post", secret: testSecret, auth: "post", status: 200, wantMethod: "client_secret_post"},
		{name: "public client", auth: "none", status: 200, wantMethod: "none"},
		{name: "wrong verifier", secret: testSecret, auth: "basic", status: 400, wantError: "invalid_grant",
			edit: func(f url.Values) { f.Set("code_verifier", oauth2.GenerateVerifier()) }},
		{name: "wrong verifier public client", auth: "none", status: 400, wantError: "invalid_grant",
			edit: func(f url.Values) { f.Set("code_verifier", oauth2.GenerateVerifier()) }},
		{name: "short verifier", secret: testSecret, auth: "basic", status: 400, wantError: "invalid_request",
			edit: func(f url.Values) { f.Set("code_verifier", "short") }},
		{name: "no verifier", secret: testSecret, auth: "basic", status: 400, wantError: "invalid_request",
			edit: func(f url.Values) { f.Del("code_verifier") }},
		{name: "other redirect_uri", secret: testSecret, auth: "basic", status: 400, wantError: "invalid_grant",
			edit: func(f url.Values) { f.Set("redirect_uri", "https://evil.example/cb") }},
		{name: "unknown code", secret: testSecret, auth: "basic", status: 400, wantError: "invalid_grant",
			edit: func(f url.Values) { f.Set("code", "not-a-code") }},
		{name: "other grant type", secret: testSecret, auth: "basic", status: 400, wantError: "unsupported_grant_type",
			edit: func(f url.Values) { f.Set("grant_type", "password") }},
		{name: "wrong secret", secret: testSecret, auth: "wrong", status: 401, wantError: "invalid_client"},
		{name: "two auth methods", secret: testSecret, auth: "both", status: 401, wantError: "invalid_client"},
		{name: "no client auth", secret: testSecret, auth: "none", status: 401, wantError: "invalid_client"},
		{name: "public client sends a secret", auth: "post", status: 401, wantError: "invalid_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := New(t, Options{RedirectURI: testRedirect, ClientSecret: tt.secret})
			form := goodForm(t, s)
			if tt.edit != nil {
				tt.edit(form)
			}
			resp, body := exchange(t, s, form, tt.auth, tt.secret)
			if resp.StatusCode != tt.status || body["error"] != nonEmpty(tt.wantError) {
				t.Fatalf("status %s, body %v; want %d %q", resp.Status, body, tt.status, tt.wantError)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", cc)
			}
			reqs := s.TokenRequests()
			if len(reqs) != 1 || reqs[0].Form.Has("client_secret") {
				t.Fatalf("recorded %+v, want one request without its secret", reqs)
			}
			if tt.status == http.StatusOK {
				checkTokenAnswer(t, body, reqs[0], tt.wantMethod)
			}
		})
	}
}

// checkTokenAnswer checks a good answer is shaped like Okta's and that the
// client authenticated as it should have.
func checkTokenAnswer(t *testing.T, body map[string]any, req TokenRequest, method string) {
	t.Helper()
	if req.AuthMethod != method {
		t.Errorf("auth method %q, want %q", req.AuthMethod, method)
	}
	for _, k := range []string{"access_token", "id_token"} {
		if s, _ := body[k].(string); strings.Count(s, ".") != 2 {
			t.Errorf("%s = %v, want a JWT", k, body[k])
		}
	}
	if body["token_type"] != "Bearer" || body["expires_in"] != 3600.0 || body["scope"] != "openid email profile groups" {
		t.Errorf("answer %v is not shaped like Okta's", body)
	}
}

// nonEmpty is v, or nil for "" (an absent JSON member).
func nonEmpty(v string) any {
	if v == "" {
		return nil
	}
	return v
}

func TestCodeIsSingleUse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		first func(url.Values) url.Values
	}{
		{name: "after a good exchange", first: func(f url.Values) url.Values { return f }},
		{name: "after a failed exchange", first: func(f url.Values) url.Values {
			bad := cloneValues(f)
			bad.Set("code_verifier", oauth2.GenerateVerifier())
			return bad
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := New(t, Options{RedirectURI: testRedirect, ClientSecret: testSecret})
			form := goodForm(t, s)
			exchange(t, s, tt.first(form), "basic", testSecret)
			resp, body := exchange(t, s, form, "basic", testSecret)
			if resp.StatusCode != http.StatusBadRequest || body["error"] != "invalid_grant" {
				t.Errorf("second use: %s %v, want 400 invalid_grant", resp.Status, body)
			}
		})
	}
}

func TestIDToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		faults    Faults
		scope     string
		badSig    bool
		checkFunc func(t *testing.T, s *Server, c IDClaims, raw map[string]any)
	}{
		{name: "as Okta issues it", checkFunc: checkOktaClaims},
		{name: "openid scope only", scope: "openid", checkFunc: checkNoScopedClaims},
		{name: "bad signature", faults: Faults{BadSignature: true}, badSig: true},
		{name: "wrong audience", faults: Faults{Audience: "0oaSOMEONEELSE"}, checkFunc: func(t *testing.T, _ *Server, c IDClaims, _ map[string]any) {
			if c.Audience != "0oaSOMEONEELSE" {
				t.Errorf("aud = %q", c.Audience)
			}
		}},
		{name: "expired", faults: Faults{Expired: true}, checkFunc: func(t *testing.T, _ *Server, c IDClaims, _ map[string]any) {
			if !time.Unix(c.Expiry, 0).Before(time.Now()) || c.Expiry <= c.IssuedAt {
				t.Errorf("iat %d exp %d, want an expired token", c.IssuedAt, c.Expiry)
			}
		}},
		{name: "other nonce", faults: Faults{Nonce: "someone-else"}, checkFunc: func(t *testing.T, _ *Server, c IDClaims, _ map[string]any) {
			if c.Nonce != "someone-else" {
				t.Errorf("nonce = %q", c.Nonce)
			}
		}},
		{name: "no groups", faults: Faults{OmitGroups: true}, checkFunc: func(t *testing.T, _ *Server, _ IDClaims, raw map[string]any) {
			if _, ok := raw["groups"]; ok {
				t.Errorf("groups = %v, want none", raw["groups"])
			}
		}},
		{name: "email unverified", faults: Faults{EmailUnverified: true}, checkFunc: func(t *testing.T, _ *Server, _ IDClaims, raw map[string]any) {
			if raw["email_verified"] != false {
				t.Errorf("email_verified = %v, want false", raw["email_verified"])
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := New(t, Options{RedirectURI: testRedirect})
			s.SetFaults(tt.faults)
			body := tokensFor(t, s, tt.scope)
			payload, err := verifyJWS(t, s, body["id_token"].(string))
			if tt.badSig {
				if err == nil {
					t.Fatal("tampered ID token verified")
				}
				return
			}
			if err != nil {
				t.Fatalf("ID token does not verify against /v1/keys: %v", err)
			}
			checkAtHash(t, payload, body["access_token"].(string))
			var c IDClaims
			var raw map[string]any
			if err := json.Unmarshal(payload, &c); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(payload, &raw); err != nil {
				t.Fatal(err)
			}
			tt.checkFunc(t, s, c, raw)
		})
	}
}

// tokensFor runs a sign-in for scope (default: all) as a public client and
// returns the token answer.
func tokensFor(t *testing.T, s *Server, scope string) map[string]any {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	q := authorizeQuery(s, verifier)
	if scope != "" {
		q.Set("scope", scope)
	}
	loc, err := get(t, s, "/v1/authorize", q).Location()
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"redirect_uri": {testRedirect}, "code_verifier": {verifier}}
	resp, body := exchange(t, s, form, "none", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token: %s %v", resp.Status, body)
	}
	return body
}

func checkOktaClaims(t *testing.T, s *Server, c IDClaims, _ map[string]any) {
	t.Helper()
	u := s.User()
	if c.Ver != 1 || c.Issuer != s.Issuer() || c.Audience != s.ClientID() || c.Subject != u.Subject ||
		c.Nonce != "n0nce" || c.Email != u.Email || c.EmailVerified == nil || !*c.EmailVerified ||
		c.Name != u.Name || c.PreferredUsername != u.Login || !slices.Equal(c.Groups, u.Groups) ||
		!strings.HasPrefix(c.JTI, "ID.") || !slices.Equal(c.AMR, []string{"pwd"}) || !strings.HasPrefix(c.IDP, "00o") {
		t.Errorf("claims %+v", c)
	}
	if c.Expiry-c.IssuedAt != 3600 || c.AuthTime > c.IssuedAt || time.Unix(c.IssuedAt, 0).Before(time.Now().Add(-time.Minute)) {
		t.Errorf("times iat %d exp %d auth_time %d", c.IssuedAt, c.Expiry, c.AuthTime)
	}
}

func checkNoScopedClaims(t *testing.T, _ *Server, _ IDClaims, raw map[string]any) {
	t.Helper()
	for _, k := range []string{"email", "email_verified", "groups", "name", "preferred_username"} {
		if _, ok := raw[k]; ok {
			t.Errorf("claim %s present without its scope", k)
		}
	}
}

// verifyJWS checks raw's RS256 signature with the key /v1/keys publishes
// under the token's kid, and returns the payload.
func verifyJWS(t *testing.T, s *Server, raw string) ([]byte, error) {
	t.Helper()
	resp, err := s.Client().Get(s.Issuer() + "/v1/keys")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("not an RS256 JWS: %v", err)
	}
	kid := jws.Signatures[0].Header.KeyID
	keys := set.Key(kid)
	if len(keys) != 1 || keys[0].Use != "sig" || keys[0].Algorithm != "RS256" {
		t.Fatalf("/v1/keys has %+v for kid %q", keys, kid)
	}
	return jws.Verify(keys[0])
}

func checkAtHash(t *testing.T, payload []byte, access string) {
	t.Helper()
	var c struct {
		AtHash string `json:"at_hash"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(access))
	if want := base64.RawURLEncoding.EncodeToString(sum[:16]); c.AtHash != want {
		t.Errorf("at_hash = %q, want %q", c.AtHash, want)
	}
}
