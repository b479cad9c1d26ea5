package signin

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-5eb4e92e/deploybot/authz"
	"github.com/seed-5eb4e92e/deploybot/authz/signin/oidctest"
	"github.com/seed-5eb4e92e/deploybot/worker/queue/queuetest"
)

const (
	testSecret  = "client-s3cret-never-shown"
	testLinkTTL = 12 * time.Hour
)

// recorder is the Linker and Notifier of the tests.
type recorder struct {
	mu    sync.Mutex
	links []authz.Identity
	notes []authz.Identity
	err   error // what Link returns
}

func (r *recorder) Link(_ context.Context, id authz.Identity) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.links = append(r.links, id)
	return nil
}

func (r *recorder) Linked(_ context.Context, id authz.Identity) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes = append(r.notes, id)
}

func (r *recorder) failWith(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.err = err
}

func (r *recorder) got() (links, notes []authz.Identity) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]authz.Identity(nil), r.links...), append([]authz.Identity(nil), r.notes...)
}

// clock is the flow's clock, which tests can move forward.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// syncBuffer collects the flow's log lines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// setup is what a test may change before the env starts.
type setup struct {
	cfg        Config
	op         oidctest.Options
	noNotifier bool
}

// publicClient makes the client a public one, with no secret.
func publicClient(s *setup) { s.cfg.ClientSecret, s.op.ClientSecret = "", "" }

// env is the bot's HTTP server with the flow mounted, a provider, and Redis.
type env struct {
	op     *oidctest.Server
	app    *httptest.Server
	flow   *Flow
	states *RedisStates
	rec    *recorder
	clock  *clock
	logs   *syncBuffer
	pool   *x509.CertPool

	mu     sync.Mutex
	hidden []string // codes and verifiers handed out so far
}

func (e *env) hide(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.hidden = append(e.hidden, s)
}

func newEnv(t *testing.T, edits ...func(*setup)) *env {
	t.Helper()
	mux := http.NewServeMux()
	app := httptest.NewTLSServer(mux)
	t.Cleanup(app.Close)
	s := setup{
		cfg: Config{ClientID: oidctest.DefaultClientID, ClientSecret: testSecret, RedirectURL: app.URL + "/oidc/callback", LinkTTL: testLinkTTL},
		op:  oidctest.Options{ClientSecret: testSecret, RedirectURI: app.URL + "/oidc/callback"},
	}
	for _, edit := range edits {
		edit(&s)
	}
	e := &env{app: app, op: oidctest.New(t, s.op), rec: &recorder{}, clock: &clock{}, logs: &syncBuffer{}}
	s.cfg.Issuer = e.op.Issuer()
	rdb, prefix := queuetest.Redis(t)
	e.states = NewRedisStates(rdb, prefix)
	var note Notifier = e.rec
	if s.noNotifier {
		note = nil
	}
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	flow, err := New(t.Context(), s.cfg, e.states, e.rec, note, e.op.Client(), log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	flow.now = e.clock.now
	e.flow = flow
	mux.HandleFunc("GET /oidc/login", flow.ServeLogin)
	mux.HandleFunc("GET /oidc/callback", flow.ServeCallback)
	e.pool = x509.NewCertPool()
	e.pool.AddCert(e.op.Certificate())
	e.pool.AddCert(app.Certificate())
	return e
}

// start runs Start for user and returns the login URL and its state.
func (e *env) start(t *testing.T, user string) (loginURL, state string) {
	t.Helper()
	loginURL, err := e.flow.Start(t.Context(), user)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	u, err := url.Parse(loginURL)
	if err != nil {
		t.Fatal(err)
	}
	state = u.Query().Get("state")
	p, err := e.states.Peek(t.Context(), state)
	if err != nil {
		t.Fatalf("Start saved no pending sign-in: %v", err)
	}
	e.hide(p.Verifier)
	return loginURL, state
}

// browser is one person's browser: a cookie jar that trusts the app and the
// provider.
type browser struct {
	jar    *cookiejar.Jar
	follow *http.Client // follows redirects, but stops before the callback
	raw    *http.Client // follows nothing
}

func (e *env) browser(t *testing.T) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.pool}}
	t.Cleanup(tr.CloseIdleConnections)
	b := &browser{jar: jar}
	b.follow = &http.Client{Jar: jar, Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Path == "/oidc/callback" || len(via) >= 10 {
				return http.ErrUseLastResponse
			}
			return nil
		}}
	b.raw = &http.Client{Jar: jar, Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return b
}

// page is an answer the browser got.
type page struct {
	status int
	header http.Header
	body   string
}

func fetch(t *testing.T, c *http.Client, u string) page {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	defer resp.Body.Close()
	return pageOf(t, resp)
}

// pageOf reads resp. It may run off the test's goroutine.
func pageOf(t *testing.T, resp *http.Response) page {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Errorf("read body: %v", err)
	}
	return page{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// get fetches u without following redirects.
func (b *browser) get(t *testing.T, u string) page {
	t.Helper()
	return fetch(t, b.raw, u)
}

// open fetches u following redirects up to (not into) the callback.
func (b *browser) open(t *testing.T, u string) page {
	t.Helper()
	return fetch(t, b.follow, u)
}

// toCallback opens a login URL in b and lets the provider approve, stopping
// at the redirect to the callback, whose URL it returns.
func (e *env) toCallback(t *testing.T, b *browser, loginURL string) string {
	t.Helper()
	p := b.open(t, loginURL)
	loc, err := url.Parse(p.header.Get("Location"))
	if p.status != http.StatusFound || err != nil || loc.Path != "/oidc/callback" {
		t.Fatalf("login did not come back to the callback: %d %s", p.status, p.header.Get("Location"))
	}
	if code := loc.Query().Get("code"); code != "" {
		e.hide(code)
	}
	return loc.String()
}

// cookie returns the browser's binding cookie for the app, if any.
func (b *browser) cookie(t *testing.T, e *env) *http.Cookie {
	t.Helper()
	u, err := url.Parse(e.app.URL + "/oidc/callback")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range b.jar.Cookies(u) {
		if c.Name == cookieName {
			return c
		}
	}
	return nil
}

// restoreCookie puts a binding cookie (back) into b.
func restoreCookie(t *testing.T, e *env, b *browser, c *http.Cookie) {
	t.Helper()
	u, err := url.Parse(e.app.URL + "/oidc/")
	if err != nil {
		t.Fatal(err)
	}
	b.jar.SetCookies(u, []*http.Cookie{{Name: c.Name, Value: c.Value, Path: "/oidc", Secure: true, HttpOnly: true}})
}

// secrets lists what must never appear in a page or a log line: the client
// secret, every code and verifier the provider saw, and any JWT (they all
// start with the base64 of `{"`).
func (e *env) secrets() []string {
	e.mu.Lock()
	out := append([]string{testSecret, "eyJ"}, e.hidden...)
	e.mu.Unlock()
	for _, r := range e.op.TokenRequests() {
		out = append(out, r.Form.Get("code"), r.Form.Get("code_verifier"))
	}
	return out
}

// checkNoSecrets fails if a page or the log shows a secret.
func (e *env) checkNoSecrets(t *testing.T, pages ...page) {
	t.Helper()
	texts := map[string]string{"log": e.logs.String()}
	for i, p := range pages {
		texts["page "+string(rune('A'+i))] = p.body
	}
	for _, s := range e.secrets() {
		if s == "" {
			continue
		}
		for where, text := range texts {
			if strings.Contains(text, s) {
				t.Errorf("%s shows a secret %.6s…:\n%s", where, s, text)
			}
		}
	}
}
