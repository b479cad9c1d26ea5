package oidctest

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// codeTTL is how long an authorization code can be exchanged.
const codeTTL = time.Minute

// serveAuthorize is /v1/authorize. A bad client_id or redirect_uri gets an
// error page, as nothing can be trusted to redirect to; any other problem is
// redirected back as error=…, as Okta does. A good request is approved at
// once as the configured user.
func (s *Server) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	s.authorize = append(s.authorize, cloneValues(q))
	s.mu.Unlock()
	if q.Get("client_id") != s.opts.ClientID {
		http.Error(w, "invalid_client: the client_id is not registered", http.StatusBadRequest)
		return
	}
	if q.Get("redirect_uri") != s.opts.RedirectURI {
		http.Error(w, "invalid_request: the redirect_uri is not registered for this client", http.StatusBadRequest)
		return
	}
	state := q.Get("state")
	if code, desc := checkAuthorize(q); code != "" {
		s.redirectBack(w, r, url.Values{"error": {code}, "error_description": {desc}, "state": {state}})
		return
	}
	if desc := s.currentFaults().AuthorizeError; desc != "" {
		s.redirectBack(w, r, url.Values{"error": {"access_denied"}, "error_description": {desc}, "state": {state}})
		return
	}
	code := rand.Text()
	now := time.Now()
	s.mu.Lock()
	s.codes[code] = grant{
		redirectURI: q.Get("redirect_uri"),
		challenge:   q.Get("code_challenge"),
		nonce:       q.Get("nonce"),
		scope:       q.Get("scope"),
		authTime:    now,
		expires:     now.Add(codeTTL),
	}
	s.mu.Unlock()
	s.redirectBack(w, r, url.Values{"code": {code}, "state": {state}})
}

// checkAuthorize returns the OAuth error code and description for a bad
// authorization request, or "".
func checkAuthorize(q url.Values) (code, desc string) {
	switch {
	case q.Get("response_type") != "code":
		return "unsupported_response_type", "The response type is not supported by the authorization server. Configured response types: [code]."
	case !slices.Contains(strings.Fields(q.Get("scope")), "openid"):
		return "invalid_scope", "The authentication request has an invalid 'scope' parameter: openid is required."
	case q.Get("state") == "":
		return "invalid_request", "The authentication request has no 'state' parameter."
	case q.Get("nonce") == "":
		return "invalid_request", "The authentication request has no 'nonce' parameter."
	case q.Has("code_verifier"):
		return "invalid_request", "The code_verifier belongs in the token request, never in the authorization request."
	case q.Get("code_challenge") == "":
		return "invalid_request", "PKCE code challenge is required."
	case q.Get("code_challenge_method") != "S256":
		return "invalid_request", "PKCE code challenge method must be S256."
	}
	return "", ""
}

func (s *Server) redirectBack(w http.ResponseWriter, r *http.Request, params url.Values) {
	u, err := url.Parse(s.opts.RedirectURI)
	if err != nil {
		http.Error(w, "bad registered redirect_uri", http.StatusInternalServerError)
		return
	}
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// tokenError is an RFC 6749 section 5.2 error answer.
type tokenError struct {
	status int
	Code   string `json:"error"`
	Desc   string `json:"error_description"`
}

func (e *tokenError) Error() string { return e.Code + ": " + e.Desc }

func invalidGrant(desc string) *tokenError {
	return &tokenError{status: http.StatusBadRequest, Code: "invalid_grant", Desc: desc}
}

// serveToken is /v1/token for the authorization code grant.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	resp, err := s.token(r)
	if err != nil {
		te, ok := errors.AsType[*tokenError](err)
		if !ok {
			te = &tokenError{status: http.StatusInternalServerError, Code: "server_error", Desc: err.Error()}
		}
		if te.status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="oidctest"`)
		}
		writeJSON(w, te.status, te)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) token(r *http.Request) (*tokenResponse, error) {
	if err := r.ParseForm(); err != nil {
		return nil, &tokenError{status: http.StatusBadRequest, Code: "invalid_request", Desc: "The request body is not a form."}
	}
	form := r.PostForm
	method, err := s.authenticate(r, form)
	s.recordToken(form, method)
	if err != nil {
		return nil, err
	}
	if gt := form.Get("grant_type"); gt != "authorization_code" {
		return nil, &tokenError{status: http.StatusBadRequest, Code: "unsupported_grant_type", Desc: "The grant type " + gt + " is not supported."}
	}
	g, ok := s.spend(form.Get("code"))
	if !ok {
		return nil, invalidGrant("The authorization code is invalid or has expired.")
	}
	if form.Get("redirect_uri") != g.redirectURI {
		return nil, invalidGrant("The 'redirect_uri' does not match the redirection URI used in the authorization request.")
	}
	verifier := form.Get("code_verifier")
	if len(verifier) < 43 || len(verifier) > 128 {
		return nil, &tokenError{status: http.StatusBadRequest, Code: "invalid_request", Desc: "PKCE code verifier is required and must be 43 to 128 characters."}
	}
	sum := sha256.Sum256([]byte(verifier))
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(g.challenge)) != 1 {
		return nil, invalidGrant("PKCE verification failed.")
	}
	return s.issue(g)
}

// authenticate checks client_secret_basic, client_secret_post, or (for a
// public client) none, and says which was used. Using two methods at once
// is refused.
func (s *Server) authenticate(r *http.Request, form url.Values) (string, error) {
	bad := func(desc string) error {
		return &tokenError{status: http.StatusUnauthorized, Code: "invalid_client", Desc: desc}
	}
	user, pass, basic := r.BasicAuth()
	posted := form.Has("client_secret")
	method, id, secret := "none", form.Get("client_id"), ""
	switch {
	case basic && posted:
		return "", bad("Client authentication must use exactly one method.")
	case basic:
		// RFC 6749 2.3.1: the credentials are form-encoded before Basic.
		var err1, err2 error
		id, err1 = url.QueryUnescape(user)
		secret, err2 = url.QueryUnescape(pass)
		if err1 != nil || err2 != nil {
			return "", bad("The Basic credentials are not form-encoded.")
		}
		method = "client_secret_basic"
		if form.Has("client_id") && form.Get("client_id") != id {
			return "", bad("The client_id does not match the Basic credentials.")
		}
	case posted:
		method, secret = "client_secret_post", form.Get("client_secret")
	}
	if id != s.opts.ClientID {
		return method, bad("The client_id is not registered.")
	}
	if s.opts.ClientSecret == "" {
		if method != "none" {
			return method, bad("This is a public client; it has no secret to send.")
		}
		return method, nil
	}
	if method == "none" {
		return method, bad("Client authentication is required.")
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(s.opts.ClientSecret)) != 1 {
		return method, bad("The client secret is wrong.")
	}
	return method, nil
}

func (s *Server) recordToken(form url.Values, method string) {
	f := cloneValues(form)
	f.Del("client_secret")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = append(s.tokens, TokenRequest{Form: f, AuthMethod: method})
}

// spend returns the grant of a code and forgets it: a code works once, even
// when the exchange then fails.
func (s *Server) spend(code string) (grant, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.codes[code]
	delete(s.codes, code)
	if !ok || time.Now().After(g.expires) {
		return grant{}, false
	}
	return g, true
}
