package signin

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/seed-5eb4e92e/deploybot/authz/signin/oidctest"
)

func TestLoginRedirect(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.browser(t)
	loginURL, state := e.start(t, "U123")
	p, err := e.states.Peek(t.Context(), state)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // Peek leaves the state for a second visit
		got := b.get(t, loginURL)
		if got.status != http.StatusFound {
			t.Fatalf("visit %d: status %d\n%s", i, got.status, got.body)
		}
		if cc := got.header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control = %q, want no-store", cc)
		}
		to, err := url.Parse(got.header.Get("Location"))
		if err != nil {
			t.Fatal(err)
		}
		if base := to.Scheme + "://" + to.Host + to.Path; base != e.op.Issuer()+"/v1/authorize" {
			t.Errorf("redirected to %s, want the provider's authorization endpoint", base)
		}
		q := to.Query()
		want := url.Values{
			"response_type":         {"code"},
			"client_id":             {e.op.ClientID()},
			"redirect_uri":          {e.app.URL + "/oidc/callback"},
			"scope":                 {"openid email profile groups"},
			"state":                 {state},
			"nonce":                 {p.Nonce},
			"code_challenge":        {oauth2.S256ChallengeFromVerifier(p.Verifier)},
			"code_challenge_method": {"S256"},
		}
		for k, v := range want {
			if !slices.Equal(q[k], v) {
				t.Errorf("%s = %q, want %q", k, q[k], v)
			}
		}
		if len(q) != len(want) || strings.Contains(to.String(), p.Verifier) {
			t.Errorf("authorization request carries more than it should: %v", q)
		}
		checkBindingCookie(t, got, state)
	}
}

func checkBindingCookie(t *testing.T, got page, state string) {
	t.Helper()
	resp := http.Response{Header: got.header}
	cookies := resp.Cookies()
	if len(cookies) != 1 {
		t.Fatalf("set %d cookies, want 1", len(cookies))
	}
	c := cookies[0]
	if c.Name != cookieName || c.Value != state || !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode ||
		c.Path != "/oidc" || c.MaxAge <= 0 || c.MaxAge > int(DefaultStateTTL.Seconds()) {
		t.Errorf("binding cookie %s, want %s=<state>; HttpOnly; Secure; SameSite=Lax; Path=/oidc; 0 < Max-Age <= %v",
			c.String(), cookieName, DefaultStateTTL)
	}
}

func TestStart(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(s *setup) {
		s.cfg.LoginURL = strings.Replace(s.cfg.RedirectURL, "/oidc/callback", "/oidc/login?team=T1", 1)
	})
	before := e.clock.now()
	first, state1 := e.start(t, "U123")
	_, state2 := e.start(t, "U123")
	u, err := url.Parse(first)
	if err != nil {
		t.Fatal(err)
	}
	if u.Path != "/oidc/login" || u.Query().Get("team") != "T1" || u.Host != strings.TrimPrefix(e.app.URL, "https://") {
		t.Errorf("login URL %s does not extend LoginURL", first)
	}
	p1, _ := e.states.Peek(t.Context(), state1)
	p2, _ := e.states.Peek(t.Context(), state2)
	if p1.SlackUser != "U123" || len(p1.Verifier) != 43 || p1.Nonce == "" || len(state1) < 26 {
		t.Errorf("pending %+v for state %q", p1, state1)
	}
	if state1 == state2 || p1.Nonce == p2.Nonce || p1.Verifier == p2.Verifier {
		t.Error("two sign-ins share a state, nonce or verifier")
	}
	if d := p1.Expires.Sub(before.Add(DefaultStateTTL)); d < 0 || d > time.Minute {
		t.Errorf("Expires = %v, want about now+%v", p1.Expires, DefaultStateTTL)
	}
	if _, err := e.flow.Start(t.Context(), ""); err == nil {
		t.Error("Start with no Slack user succeeded")
	}
}

// brokenStates fails every call, as a Redis that is down would.
type brokenStates struct{}

var errDown = errors.New("redis: connection refused")

func (brokenStates) Put(context.Context, string, Pending, time.Duration) error { return errDown }
func (brokenStates) Take(context.Context, string) (Pending, error)             { return Pending{}, errDown }
func (brokenStates) Peek(context.Context, string) (Pending, error)             { return Pending{}, errDown }

func TestStatesDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.flow.states = brokenStates{}
	if _, err := e.flow.Start(t.Context(), "U123"); !errors.Is(err, errDown) {
		t.Errorf("Start: %v, want %v", err, errDown)
	}
	tests := []struct {
		name  string
		serve http.HandlerFunc
		path  string
	}{
		{name: "login", serve: e.flow.ServeLogin, path: "/oidc/login?state=S"},
		{name: "callback", serve: e.flow.ServeCallback, path: "/oidc/callback?state=S&code=C"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, tt.path, nil)
			r.AddCookie(&http.Cookie{Name: cookieName, Value: "S"})
			w := httptest.NewRecorder()
			tt.serve(w, r)
			if w.Code != http.StatusInternalServerError || !strings.Contains(w.Body.String(), "run /deploy login again") {
				t.Errorf("%d %s", w.Code, w.Body)
			}
			if !strings.Contains(e.logs.String(), "connection refused") {
				t.Errorf("the store's error was not logged:\n%s", e.logs)
			}
		})
	}
}

func TestMethodNotAllowed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, serve := range []http.HandlerFunc{e.flow.ServeLogin, e.flow.ServeCallback} {
		w := httptest.NewRecorder()
		serve(w, httptest.NewRequest(http.MethodPost, "/oidc/x", nil))
		if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("POST: %d %v", w.Code, w.Header())
		}
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	op := oidctest.New(t, oidctest.Options{RedirectURI: "https://bot.example/oidc/callback"})
	plain := plainPKCEProvider(t)
	good := Config{Issuer: op.Issuer(), ClientID: op.ClientID(), ClientSecret: testSecret, RedirectURL: "https://bot.example/oidc/callback"}
	tests := []struct {
		name    string
		edit    func(*Config)
		hc      *http.Client
		nilLink bool
		wantErr string
		check   func(t *testing.T, f *Flow)
	}{
		{name: "defaults", check: checkDefaults},
		{name: "scopes without openid", edit: func(c *Config) { c.Scopes = []string{"email", "okta.groups"} }, check: checkOpenIDAdded},
		{name: "plain http public client", edit: func(c *Config) { c.RedirectURL = "http://localhost:8080/bot/oidc/callback"; c.ClientSecret = "" },
			check: checkPlainPublic},
		{name: "no issuer", edit: func(c *Config) { c.Issuer = "" }, wantErr: "required"},
		{name: "no client ID", edit: func(c *Config) { c.ClientID = "" }, wantErr: "required"},
		{name: "relative redirect", edit: func(c *Config) { c.RedirectURL = "/oidc/callback" }, wantErr: "not an absolute"},
		{name: "login on another host", edit: func(c *Config) { c.LoginURL = "https://other.example/oidc/login" }, wantErr: "share scheme and host"},
		{name: "negative TTL", edit: func(c *Config) { c.StateTTL = -time.Minute }, wantErr: "negative"},
		{name: "no linker", nilLink: true, wantErr: "required"},
		{name: "unknown issuer", edit: func(c *Config) { c.Issuer = op.URL() + "/oauth2/nope" }, wantErr: "discovery"},
		{name: "issuer mismatch", edit: func(c *Config) { c.Issuer = op.Issuer() + "/" }, wantErr: "discovery"},
		{name: "untrusted TLS", hc: &http.Client{}, wantErr: "discovery"},
		{name: "no S256", edit: func(c *Config) { c.Issuer = plain.URL }, hc: plain.Client(), wantErr: "PKCE S256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := good
			if tt.edit != nil {
				tt.edit(&cfg)
			}
			hc := op.Client()
			if tt.hc != nil {
				hc = tt.hc
			}
			var link Linker = &recorder{}
			if tt.nilLink {
				link = nil
			}
			f, err := New(t.Context(), cfg, brokenStates{}, link, nil, hc, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("New: %v, want an error about %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, f)
		})
	}
}

// plainPKCEProvider serves a discovery document that offers only plain PKCE.
func plainPKCEProvider(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		iss := "https://" + r.Host
		_, _ = w.Write([]byte(`{"issuer":"` + iss + `","authorization_endpoint":"` + iss + `/a","token_endpoint":"` + iss +
			`/t","jwks_uri":"` + iss + `/k","code_challenge_methods_supported":["plain"]}`))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func checkDefaults(t *testing.T, f *Flow) {
	t.Helper()
	c := f.cfg
	if !slices.Equal(c.Scopes, DefaultScopes()) || c.GroupsClaim != "groups" || c.StateTTL != 10*time.Minute ||
		c.LinkTTL != 24*time.Hour || c.LoginURL != "https://bot.example/oidc/login" {
		t.Errorf("config %+v", c)
	}
	if f.cookie != (cookieSpec{path: "/oidc", secure: true, maxAge: 10 * time.Minute}) {
		t.Errorf("cookie %+v", f.cookie)
	}
	if f.oauth.Endpoint.AuthStyle != oauth2.AuthStyleInHeader {
		t.Errorf("confidential client authenticates with style %v, want client_secret_basic", f.oauth.Endpoint.AuthStyle)
	}
}

func checkOpenIDAdded(t *testing.T, f *Flow) {
	t.Helper()
	if !slices.Equal(f.cfg.Scopes, []string{"openid", "email", "okta.groups"}) {
		t.Errorf("scopes %v", f.cfg.Scopes)
	}
}

func checkPlainPublic(t *testing.T, f *Flow) {
	t.Helper()
	if f.cookie.secure || f.cookie.path != "/bot/oidc" || f.cfg.LoginURL != "http://localhost:8080/oidc/login" {
		t.Errorf("cookie %+v, login %s", f.cookie, f.cfg.LoginURL)
	}
	if f.oauth.Endpoint.AuthStyle != oauth2.AuthStyleInParams {
		t.Errorf("public client authenticates with style %v, want client_id in the form", f.oauth.Endpoint.AuthStyle)
	}
}
