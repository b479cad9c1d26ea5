// Package signin links a Slack user to their Okta identity by having them
// sign in once through OpenID Connect.
//
// Slack tells the bot only a Slack user ID; the policy is written in terms of
// Okta groups. Rather than trust a Slack profile's email, the user proves who
// they are to Okta: /deploy login gives them a link (Flow.Start), the link
// sends their browser through Okta's authorization code flow with PKCE
// (Flow.ServeLogin), and the callback (Flow.ServeCallback) exchanges the code,
// verifies the ID token, and hands the Okta email, subject and groups to a
// Linker as an authz.Identity that lasts Config.LinkTTL.
//
// Each sign-in is bound three ways: to the Slack user by a random single-use
// state that expires in minutes, to the browser that opened the link by a
// cookie holding that state, and to the ID token by a nonce. Nothing secret
// (codes, tokens, the PKCE verifier, the client secret) is ever logged or
// shown.
package signin

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"slices"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/seed-5eb4e92e/deploybot/authz"
)

// Defaults for the zero values of Config.
const (
	DefaultGroupsClaim = "groups"
	DefaultStateTTL    = 10 * time.Minute
	DefaultLinkTTL     = 24 * time.Hour
)

// DefaultScopes are the scopes asked for when Config.Scopes is empty.
func DefaultScopes() []string {
	return []string{oidc.ScopeOpenID, "email", "profile", "groups"}
}

// Config says which provider and client the flow uses.
type Config struct {
	// Issuer is the authorization server, e.g.
	// https://acme.okta.com/oauth2/default; discovery is fetched from it.
	Issuer   string
	ClientID string
	// ClientSecret is never logged. Empty means a public client, which
	// relies on PKCE alone.
	ClientSecret string
	// RedirectURL is our public https://…/oidc/callback, as registered with
	// the provider.
	RedirectURL string
	// LoginURL is our public https://…/oidc/login, which Start's links point
	// to. Default: RedirectURL with the path /oidc/login. It must be on the
	// same scheme and host as RedirectURL, or the browser cookie that binds a
	// sign-in would not reach the callback.
	LoginURL string
	// Scopes default to DefaultScopes; openid is added when missing.
	Scopes []string
	// GroupsClaim is the ID token claim holding the groups; default "groups".
	GroupsClaim string
	// StateTTL is how long a sign-in link works; default 10m.
	StateTTL time.Duration
	// LinkTTL is how long a link lasts before the user must sign in again;
	// default 24h.
	LinkTTL time.Duration
}

// Linker stores a signed-in identity (the bot keeps it in Redis with
// Identity.Expires as its expiry).
type Linker interface {
	Link(ctx context.Context, id authz.Identity) error
}

// Notifier is told about each new link, e.g. to DM the user which groups
// they now act with.
type Notifier interface {
	Linked(ctx context.Context, id authz.Identity)
}

// Flow runs the sign-in. Mount ServeLogin at GET /oidc/login and
// ServeCallback at GET /oidc/callback (the paths of Config.LoginURL and
// Config.RedirectURL). It is safe for concurrent use.
type Flow struct {
	cfg      Config
	states   States
	link     Linker
	note     Notifier
	hc       *http.Client
	log      *slog.Logger
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
	login    *url.URL
	cookie   cookieSpec
	tmpl     *template.Template
	// now is time.Now except in tests.
	now func() time.Time
}

// New fetches the provider's discovery document through hc and returns the
// flow. note may be nil; hc nil means http.DefaultClient; log nil discards.
func New(ctx context.Context, cfg Config, st States, link Linker, note Notifier, hc *http.Client, log *slog.Logger) (*Flow, error) {
	if st == nil || link == nil {
		return nil, errors.New("signin: States and Linker are required")
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, login, redirect, err := withDefaults(cfg)
	if err != nil {
		return nil, err
	}
	tmpl, err := parsePage()
	if err != nil {
		return nil, fmt.Errorf("signin: page: %w", err)
	}
	f := &Flow{cfg: cfg, states: st, link: link, note: note, hc: hc, log: log, login: login, tmpl: tmpl, now: time.Now}
	f.cookie = cookieSpec{path: path.Dir(redirect.Path), secure: redirect.Scheme == "https", maxAge: cfg.StateTTL}
	provider, err := oidc.NewProvider(oidc.ClientContext(ctx, hc), cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("signin: discovery: %w", err)
	}
	if err := checkPKCE(provider); err != nil {
		return nil, err
	}
	endpoint := provider.Endpoint()
	endpoint.AuthStyle = oauth2.AuthStyleInHeader // client_secret_basic
	if cfg.ClientSecret == "" {
		endpoint.AuthStyle = oauth2.AuthStyleInParams // a public client sends client_id only
	}
	f.oauth = oauth2.Config{
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		Endpoint:     endpoint,
		RedirectURL:  cfg.RedirectURL,
		Scopes:       cfg.Scopes,
	}
	f.verifier = provider.Verifier(&oidc.Config{ClientID: cfg.ClientID, Now: func() time.Time { return f.now() }})
	return f, nil
}

// withDefaults fills in cfg's defaults and checks it.
func withDefaults(cfg Config) (Config, *url.URL, *url.URL, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" || cfg.RedirectURL == "" {
		return cfg, nil, nil, errors.New("signin: Issuer, ClientID and RedirectURL are required")
	}
	redirect, err := absoluteURL("RedirectURL", cfg.RedirectURL)
	if err != nil {
		return cfg, nil, nil, err
	}
	if cfg.LoginURL == "" {
		u := *redirect
		u.Path, u.RawPath, u.RawQuery = "/oidc/login", "", ""
		cfg.LoginURL = u.String()
	}
	login, err := absoluteURL("LoginURL", cfg.LoginURL)
	if err != nil {
		return cfg, nil, nil, err
	}
	if login.Scheme != redirect.Scheme || login.Host != redirect.Host {
		return cfg, nil, nil, fmt.Errorf("signin: LoginURL %s and RedirectURL %s must share scheme and host", login.Redacted(), redirect.Redacted())
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = DefaultScopes()
	}
	if !slices.Contains(cfg.Scopes, oidc.ScopeOpenID) {
		cfg.Scopes = append([]string{oidc.ScopeOpenID}, cfg.Scopes...)
	}
	if cfg.GroupsClaim == "" {
		cfg.GroupsClaim = DefaultGroupsClaim
	}
	if cfg.StateTTL == 0 {
		cfg.StateTTL = DefaultStateTTL
	}
	if cfg.LinkTTL == 0 {
		cfg.LinkTTL = DefaultLinkTTL
	}
	if cfg.StateTTL < 0 || cfg.LinkTTL < 0 {
		return cfg, nil, nil, errors.New("signin: StateTTL and LinkTTL must not be negative")
	}
	return cfg, login, redirect, nil
}

func absoluteURL(name, s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("signin: %s: %w", name, err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("signin: %s %q is not an absolute http(s) URL", name, u.Redacted())
	}
	return u, nil
}

// checkPKCE refuses a provider that says it does not do S256 PKCE. One that
// says nothing is given the benefit of the doubt.
func checkPKCE(p *oidc.Provider) error {
	var meta struct {
		Methods []string `json:"code_challenge_methods_supported"`
	}
	if err := p.Claims(&meta); err != nil {
		return fmt.Errorf("signin: discovery: %w", err)
	}
	if len(meta.Methods) > 0 && !slices.Contains(meta.Methods, "S256") {
		return fmt.Errorf("signin: discovery: provider does not support PKCE S256 (only %v)", meta.Methods)
	}
	return nil
}

// Start begins a sign-in for slackUser and returns the link to show them.
// The link may be opened more than once, but the sign-in finishes once, and
// only within Config.StateTTL. Its errors are those of States.Put.
func (f *Flow) Start(ctx context.Context, slackUser string) (string, error) {
	if slackUser == "" {
		return "", errors.New("signin: start: no Slack user")
	}
	state := rand.Text()
	p := Pending{
		SlackUser: slackUser,
		Nonce:     rand.Text(),
		Verifier:  oauth2.GenerateVerifier(),
		Expires:   f.now().Add(f.cfg.StateTTL),
	}
	if err := f.states.Put(ctx, state, p, f.cfg.StateTTL); err != nil {
		return "", err // States' errors already say where they come from
	}
	u := *f.login
	q := u.Query()
	q.Set("state", state)
	u.RawQuery = q.Encode()
	return u.String(), nil
}
