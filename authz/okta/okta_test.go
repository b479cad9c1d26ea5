package okta

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-resty/resty/v2"
	"github.com/seed-5eb4e92e/deploybot/authz/okta/oktatest"
)

const token = "00tok-SECRET-c3VwZXJzZWNyZXQ"

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// org starts the double with users and a client for it sharing one clock.
func org(t *testing.T, opts oktatest.Options) (*oktatest.Server, *Client, *oktatest.Clock) {
	t.Helper()
	clock := oktatest.NewClock(t0)
	if opts.Token == "" {
		opts.Token = token
	}
	opts.Now = clock.Now
	srv := oktatest.New(t, opts)
	return srv, client(t, srv.URL, token, clock), clock
}

func client(t *testing.T, orgURL, tok string, clock *oktatest.Clock) *Client {
	t.Helper()
	c, err := New(Config{URL: orgURL, Token: tok}, nil, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if clock != nil {
		c.now = clock.Now
	}
	return c
}

// counting is a server that must not be reached; it counts what reaches it.
func counting(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write([]byte("[]"))
	}))
	t.Cleanup(s.Close)
	return s, &hits
}

var staff = []oktatest.User{
	{ID: "00uANN0000000000000a", Email: "ann@example.com", Groups: []string{"sre", "deploybot-dev", "Everyone"}},
	{ID: "00uBOB0000000000000b", Email: "bob@example.com", Status: "SUSPENDED", Groups: []string{"sre"}},
	{ID: "00uOLD0000000000000c", Email: "old@example.com", Status: "DEPROVISIONED", Groups: []string{"sre"}},
	{ID: "00uNEW0000000000000d", Email: "rehired@example.com", Groups: []string{"qa"}},
	{ID: "00uGONE000000000000e", Email: "rehired@example.com", Status: "DEPROVISIONED", Groups: []string{"sre"}},
	{ID: "00uTWIN100000000000f", Email: "twin@example.com", Groups: []string{"a"}},
	{ID: "00uTWIN200000000000g", Email: "twin@example.com", Groups: []string{"b"}},
	{ID: "00uLONE000000000000h", Email: "lone@example.com"},
	{ID: "00uMANY000000000000i", Email: "many@example.com", Groups: []string{"g5", "g4", "g3", "g2", "g1", "g0", "g6"}},
}

func TestUserGroups(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, email string
		wantID      string
		want        []string
		wantErr     error
		errHas      string
		groupPages  int
	}{
		{name: "active user", email: "ann@example.com", wantID: "00uANN0000000000000a", want: []string{"Everyone", "deploybot-dev", "sre"}, groupPages: 2},
		{name: "e-mail in another case", email: "Ann@Example.COM", wantID: "00uANN0000000000000a", want: []string{"Everyone", "deploybot-dev", "sre"}, groupPages: 2},
		{name: "several pages", email: "many@example.com", wantID: "00uMANY000000000000i", want: []string{"g0", "g1", "g2", "g3", "g4", "g5", "g6"}, groupPages: 4},
		{name: "no groups", email: "lone@example.com", wantID: "00uLONE000000000000h", want: []string{}, groupPages: 1},
		{name: "active one among deprovisioned", email: "rehired@example.com", wantID: "00uNEW0000000000000d", want: []string{"qa"}, groupPages: 1},
		{name: "unknown e-mail", email: "nobody@example.com", wantErr: ErrNoUser},
		{name: "suspended", email: "bob@example.com", wantErr: ErrNoUser, errHas: "00uBOB0000000000000b is SUSPENDED"},
		{name: "deprovisioned", email: "old@example.com", wantErr: ErrNoUser, errHas: "DEPROVISIONED"},
		{name: "two active users share it", email: "twin@example.com", wantErr: ErrNoUser, errHas: "2 active users share it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, c, _ := org(t, oktatest.Options{Users: staff, PageSize: 2})
			u, groups, err := c.UserGroups(context.Background(), tt.email)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("err = %v, want %v with %q", err, tt.wantErr, tt.errHas)
				}
				// Only someone Okta does not know at all may fall back
				// to other groups; a deactivated user must not.
				if unknown := tt.name == "unknown e-mail"; errors.Is(err, ErrUnknownUser) != unknown {
					t.Fatalf("errors.Is(%v, ErrUnknownUser) = %v, want %v", err, !unknown, unknown)
				}
				if n := srv.Requests(oktatest.UserGroups); n != 0 {
					t.Errorf("%d group requests for no user", n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if u.ID != tt.wantID || u.Status != "ACTIVE" || !strings.EqualFold(u.Email, tt.email) || u.Login != u.Email {
				t.Errorf("user = %+v, want %s, ACTIVE", u, tt.wantID)
			}
			if !slices.Equal(groups, tt.want) {
				t.Errorf("groups = %q, want %q", groups, tt.want)
			}
			if n := srv.Requests(oktatest.UserGroups); n != tt.groupPages {
				t.Errorf("%d group pages read, want %d", n, tt.groupPages)
			}
		})
	}
}

func TestBadEmailsSendNothing(t *testing.T) {
	t.Parallel()
	srv, c, _ := org(t, oktatest.Options{Users: staff})
	for _, email := range []string{
		"", "ann", "ann@", "@example.com", "ann@@example.com",
		`ann"@example.com`, `ann@example.com" or profile.login sw "`, `ann\@example.com`,
		"ann @example.com", " ann@example.com", "ann@example.com\n", "ann@exa\tmple.com", "ann@example.com\x00",
		"ann@exa\u200bmple.com", "Ann <ann@example.com>", "<ann@example.com>", "ann(x)@example.com",
		"ann@example.com, bob@example.com", "ann\U0001F600@example.com", "ann@example.com\xff",
		strings.Repeat("a", 250) + "@example.com",
	} {
		t.Run(email, func(t *testing.T) {
			_, _, err := c.UserGroups(context.Background(), email)
			if !errors.Is(err, errBadEmail) || errors.Is(err, ErrNoUser) {
				t.Errorf("UserGroups(%q) = %v, want a bad e-mail error", email, err)
			}
		})
	}
	if n, m := srv.Requests(oktatest.Users), srv.Requests(oktatest.UserGroups); n+m != 0 {
		t.Errorf("bad e-mails sent %d user and %d group requests, want none", n, m)
	}
}

func TestWrongTokenIsAnHTTPErrorWithoutTheToken(t *testing.T) {
	t.Parallel()
	srv := oktatest.New(t, oktatest.Options{Token: token, Users: staff})
	c := client(t, srv.URL, "00tok-WRONG-bm90IHRoZSByaWdodCBvbmU", nil)
	_, _, err := c.UserGroups(context.Background(), "ann@example.com")
	var he *HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusUnauthorized || he.Code != "E0000011" || he.Summary != "Invalid token provided" {
		t.Fatalf("err = %#v, want HTTP 401 E0000011", err)
	}
	for _, secret := range []string{"00tok-WRONG-bm90IHRoZSByaWdodCBvbmU", token} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error text %q has a token", err)
		}
	}
}

// TestEchoedTokenIsMasked: an error summary that repeats the request's
// Authorization header does not carry the token into the error text.
func TestEchoedTokenIsMasked(t *testing.T) {
	t.Parallel()
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		w.Write([]byte(`{"errorCode":"E0000006","errorSummary":"no access for \u0007` + r.Header.Get("Authorization") + `","errorId":"oae1"}`))
	}))
	t.Cleanup(echo.Close)
	_, _, err := client(t, echo.URL, token, nil).UserGroups(context.Background(), "ann@example.com")
	var he *HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusForbidden || he.Code != "E0000006" {
		t.Fatalf("err = %v, want HTTP 403 E0000006", err)
	}
	if strings.Contains(err.Error(), token) || !strings.Contains(he.Summary, "SSWS [token]") || strings.ContainsRune(he.Summary, 7) {
		t.Errorf("error text %q: want the token masked and no control characters", err)
	}
}

func TestRedirectIsNotFollowed(t *testing.T) {
	t.Parallel()
	srv, c, _ := org(t, oktatest.Options{Users: staff})
	elsewhere, hits := counting(t)
	srv.RedirectTo(elsewhere.URL)
	_, _, err := c.UserGroups(context.Background(), "ann@example.com")
	if !errors.Is(err, resty.ErrAutoRedirectDisabled) || !strings.Contains(err.Error(), "302") {
		t.Fatalf("err = %v, want a refused 302", err)
	}
	if hits.Load() != 0 {
		t.Errorf("the redirect was followed: %d requests elsewhere", hits.Load())
	}
}

func TestNextLinkToAnotherHostIsRefused(t *testing.T) {
	t.Parallel()
	srv, c, _ := org(t, oktatest.Options{Users: staff, PageSize: 1})
	elsewhere, hits := counting(t)
	srv.SetLinkBase(elsewhere.URL)
	_, groups, err := c.UserGroups(context.Background(), "ann@example.com")
	if err == nil || !strings.Contains(err.Error(), "refused") || groups != nil {
		t.Fatalf("groups %v, err = %v; want the next link refused", groups, err)
	}
	if hits.Load() != 0 {
		t.Errorf("%d requests went to the other host", hits.Load())
	}
}

func TestRequestTimesOut(t *testing.T) {
	t.Parallel()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	t.Cleanup(slow.Close)
	c, err := New(Config{URL: slow.URL, Token: token, Timeout: 50 * time.Millisecond}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	_, _, err = c.UserGroups(context.Background(), "ann@example.com")
	if err == nil || time.Since(began) > 3*time.Second {
		t.Fatalf("err = %v after %v, want a timeout", err, time.Since(began))
	}
	if strings.Contains(err.Error(), "ann%40example.com") {
		t.Errorf("error %q repeats the request URL", err)
	}
}

// TestRequestIsWhatOktaDocuments checks the wire format of the user search.
func TestRequestIsWhatOktaDocuments(t *testing.T) {
	t.Parallel()
	var got *http.Request
	rec := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Clone(context.Background())
		w.Write([]byte("[]"))
	}))
	t.Cleanup(rec.Close)
	_, _, err := client(t, rec.URL, token, nil).UserGroups(context.Background(), "ann.o+x@example.com")
	if !errors.Is(err, ErrNoUser) {
		t.Fatalf("err = %v", err)
	}
	if got.Method != http.MethodGet || got.URL.Path != "/api/v1/users" ||
		got.URL.Query().Get("search") != `profile.email eq "ann.o+x@example.com"` || len(got.URL.Query()) != 1 {
		t.Errorf("request %s %s", got.Method, got.URL)
	}
	if got.Header.Get("Authorization") != "SSWS "+token || got.Header.Get("Accept") != "application/json" {
		t.Errorf("headers %v", got.Header)
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, url, token string
		timeout          time.Duration
		ok               bool
	}{
		{"https org", "https://acme.okta.com", token, 0, true},
		{"trailing slash", "https://acme.okta.com/", token, time.Second, true},
		{"http on loopback", "http://127.0.0.1:8080", token, 0, true},
		{"http on localhost", "http://localhost:8080", token, 0, true},
		{"http on ::1", "http://[::1]:8080", token, 0, true},
		{"http elsewhere", "http://acme.okta.com", token, 0, false},
		{"no url", "", token, 0, false},
		{"no host", "https://", token, 0, false},
		{"path", "https://acme.okta.com/api/v1", token, 0, false},
		{"query", "https://acme.okta.com?x=1", token, 0, false},
		{"user info", "https://admin:hunter2@acme.okta.com", token, 0, false},
		{"other scheme", "ftp://acme.okta.com", token, 0, false},
		{"no token", "https://acme.okta.com", "", 0, false},
		{"token with newline", "https://acme.okta.com", "abc\r\nX-Evil: 1", 0, false},
		{"negative timeout", "https://acme.okta.com", token, -time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := New(Config{URL: tt.url, Token: tt.token, Timeout: tt.timeout}, nil, nil)
			if (err == nil) != tt.ok {
				t.Fatalf("New = %v, %v; want ok %v", c, err, tt.ok)
			}
			if err != nil && (strings.Contains(err.Error(), "hunter2") || (tt.token != "" && strings.Contains(err.Error(), tt.token))) {
				t.Errorf("error %q has a secret", err)
			}
		})
	}
}

// TestNewLeavesTheHTTPClientAlone: the redirect policy and timeout are set
// on a copy, not on the caller's client.
func TestNewLeavesTheHTTPClientAlone(t *testing.T) {
	t.Parallel()
	hc := &http.Client{Timeout: time.Hour}
	if _, err := New(Config{URL: "https://acme.okta.com", Token: token}, hc, nil); err != nil {
		t.Fatal(err)
	}
	if hc.CheckRedirect != nil || hc.Timeout != time.Hour || hc.Transport != nil {
		t.Errorf("New changed the caller's client: %+v", hc)
	}
}
