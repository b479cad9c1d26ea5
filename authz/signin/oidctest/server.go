// Package oidctest is an in-process OpenID Provider shaped like an Okta
// custom authorization server, so the sign-in flow can be tested end to end,
// over TLS, without Okta.
//
// It auto-approves every authorization request as one configured user, signs
// real RS256 ID tokens with its own RSA key, and checks what Okta checks: the
// client, the registered redirect URI, PKCE (S256 only), single-use codes and
// client authentication. Faults make it misbehave in the ways a relying party
// must notice: a bad signature, a wrong audience, an expired token, another
// nonce, no groups, an unverified email, or a refused authorization.
package oidctest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	_ "embed"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// recordedOrigin is the origin in testdata/openid-configuration.json that
// the server replaces with its own.
const recordedOrigin = "https://acme.okta.com"

// AuthServerPath is where the authorization server lives on the server, as
// Okta's "default" custom authorization server does.
const AuthServerPath = "/oauth2/default"

//go:embed testdata/openid-configuration.json
var discoveryJSON string

// Defaults for the zero values of Options.
const (
	DefaultClientID = "0oa1dep10ybot5d7TEST"
	DefaultSubject  = "00u1ann0example5d7id"
)

// DefaultUser is who the server signs in when Options.User is empty: Ann,
// in the Okta groups Everyone and sre.
func DefaultUser() User {
	return User{
		Subject: DefaultSubject,
		Email:   "ann@example.com",
		Name:    "Ann Example",
		Login:   "ann@example.com",
		Groups:  []string{"Everyone", "sre"},
	}
}

// User is who the server signs in.
type User struct {
	// Subject is the "sub" claim, the Okta user ID.
	Subject string
	Email   string
	Name    string
	// Login is the Okta username, the "preferred_username" claim.
	Login  string
	Groups []string
}

// Options registers one client and one user.
type Options struct {
	ClientID string
	// ClientSecret empty registers a public client (token endpoint auth
	// method "none", PKCE only).
	ClientSecret string
	// RedirectURI is the one registered redirect URI, compared exactly.
	RedirectURI string
	User        User
}

// Faults make the server misbehave. The zero value is a well-behaved server.
type Faults struct {
	// BadSignature corrupts the ID token's signature.
	BadSignature bool
	// Audience, when set, is the ID token's "aud" instead of the client ID.
	Audience string
	// Expired issues an ID token that expired an hour ago.
	Expired bool
	// Nonce, when set, is the ID token's "nonce" instead of the one sent to
	// /v1/authorize.
	Nonce string
	// OmitGroups leaves the "groups" claim out.
	OmitGroups bool
	// EmailUnverified sends "email_verified": false.
	EmailUnverified bool
	// AuthorizeError, when set, makes /v1/authorize redirect back with
	// error=access_denied and this error_description instead of a code.
	AuthorizeError string
}

// TokenRequest is a request the token endpoint received, its client secret
// removed.
type TokenRequest struct {
	Form url.Values
	// AuthMethod is how the client authenticated: client_secret_basic,
	// client_secret_post or none.
	AuthMethod string
}

// Server is the provider. Its methods are safe for concurrent use.
type Server struct {
	srv    *httptest.Server
	opts   Options
	key    *rsa.PrivateKey
	kid    string
	orgID  string
	signer jose.Signer
	disco  []byte

	mu        sync.Mutex
	faults    Faults
	codes     map[string]grant
	authorize []url.Values
	tokens    []TokenRequest
}

// grant is an authorization code not yet spent.
type grant struct {
	redirectURI string
	challenge   string
	nonce       string
	scope       string
	authTime    time.Time
	expires     time.Time
}

// New starts the server; it is closed when the test ends. opts.RedirectURI
// is required.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.RedirectURI == "" {
		t.Fatal("oidctest: Options.RedirectURI is required")
	}
	if opts.ClientID == "" {
		opts.ClientID = DefaultClientID
	}
	if opts.User.Subject == "" && opts.User.Email == "" {
		opts.User = DefaultUser()
	}
	if opts.User.Subject == "" {
		opts.User.Subject = DefaultSubject
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("oidctest: key: %v", err)
	}
	s := &Server{opts: opts, key: key, kid: rand.Text(), orgID: "00o" + rand.Text()[:17], codes: map[string]grant{}}
	s.signer, err = jose.NewSigner(jose.SigningKey{
		Algorithm: jose.RS256,
		Key:       jose.JSONWebKey{Key: key, KeyID: s.kid, Algorithm: string(jose.RS256)},
	}, nil)
	if err != nil {
		t.Fatalf("oidctest: signer: %v", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+AuthServerPath+"/.well-known/openid-configuration", s.serveDiscovery)
	mux.HandleFunc("GET "+AuthServerPath+"/v1/keys", s.serveKeys)
	mux.HandleFunc("GET "+AuthServerPath+"/v1/authorize", s.serveAuthorize)
	mux.HandleFunc("POST "+AuthServerPath+"/v1/token", s.serveToken)
	s.srv = httptest.NewTLSServer(mux)
	t.Cleanup(s.srv.Close)
	s.disco, err = substitute([]byte(discoveryJSON), recordedOrigin, s.srv.URL)
	if err != nil {
		t.Fatalf("oidctest: discovery document: %v", err)
	}
	return s
}

// substitute replaces origin at the start of every string value of the
// discovery document.
func substitute(doc []byte, from, to string) ([]byte, error) {
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		return nil, err
	}
	for k, v := range m {
		if s, ok := v.(string); ok && strings.HasPrefix(s, from) {
			m[k] = to + strings.TrimPrefix(s, from)
		}
	}
	return json.MarshalIndent(m, "", "  ")
}

// URL is the server's origin, https://127.0.0.1:port.
func (s *Server) URL() string { return s.srv.URL }

// Issuer is the authorization server's issuer, URL()+AuthServerPath.
func (s *Server) Issuer() string { return s.srv.URL + AuthServerPath }

// ClientID is the registered client's ID.
func (s *Server) ClientID() string { return s.opts.ClientID }

// User is who the server signs in.
func (s *Server) User() User { return s.opts.User }

// Client returns an HTTP client that trusts the server's certificate.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Certificate is the server's TLS certificate, for building a pool that
// trusts it alongside other test servers.
func (s *Server) Certificate() *x509.Certificate { return s.srv.Certificate() }

// SetFaults makes the server misbehave from now on.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
}

func (s *Server) currentFaults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// AuthorizeRequests returns the query of every /v1/authorize request so far.
func (s *Server) AuthorizeRequests() []url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]url.Values, len(s.authorize))
	for i, q := range s.authorize {
		out[i] = cloneValues(q)
	}
	return out
}

// TokenRequests returns every /v1/token request so far.
func (s *Server) TokenRequests() []TokenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]TokenRequest, len(s.tokens))
	for i, r := range s.tokens {
		out[i] = TokenRequest{Form: cloneValues(r.Form), AuthMethod: r.AuthMethod}
	}
	return out
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

func (s *Server) serveDiscovery(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(s.disco)
}

func (s *Server) serveKeys(w http.ResponseWriter, _ *http.Request) {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key:       &s.key.PublicKey,
		KeyID:     s.kid,
		Algorithm: string(jose.RS256),
		Use:       "sig",
	}}}
	writeJSON(w, http.StatusOK, set)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
