// Package oktatest is an in-process stand-in for the two Okta management
// API endpoints package okta calls, so the client can be tested against
// what Okta answers rather than against what the client expects:
//
//   - GET /api/v1/users with search= or filter= expressions (eq and sw on
//     id, status and the profile's email, login, firstName and lastName,
//     joined by "and"), or q=, or nothing;
//   - GET /api/v1/users/{id}/groups, the user given by ID or login.
//
// Its answers are built from the examples in Okta's API documentation (see
// testdata/SOURCES.md): the User and Group objects, the error objects
// (E0000011 invalid token, E0000047 rate limited, E0000007 not found,
// E0000031 invalid search), cursor pagination with Link headers, and the
// X-Rate-Limit-Limit, -Remaining and -Reset headers on every answer, per
// endpoint bucket, over one-minute windows.
//
// Knobs let a test use up a rate limit, redirect every request elsewhere,
// or point the next-page links at another host; Requests counts what each
// endpoint received, so a test can assert that nothing was sent.
package oktatest

import (
	"embed"
	"encoding/json"
	"hash/fnv"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

//go:embed testdata/*.json
var testdata embed.FS

// recordedOrigin is the placeholder origin in the recorded examples.
const recordedOrigin = "https://{yourOktaDomain}"

// IDs of the objects in the recorded examples, replaced when serving.
const (
	recordedUserID  = "00ub0oNGTSWTBKOLGLNR"
	recordedGroupID = "00g1emaKYZTWRYYRRTSK"
)

// Defaults for the zero values of Options.
const (
	DefaultToken    = "00oktatest-api-token-not-a-real-one"
	DefaultPageSize = 200
	DefaultLimit    = 600
)

// Window is how long a rate-limit window lasts; Okta's counters
// "typically reset every 60 seconds".
const Window = time.Minute

// Bucket is a rate-limit bucket; each endpoint the server has is one.
type Bucket string

// The server's endpoints, which are also its rate-limit buckets.
const (
	Users      Bucket = "GET /api/v1/users"
	UserGroups Bucket = "GET /api/v1/users/{id}/groups"
)

// User is an Okta user the server knows.
type User struct {
	// ID is the Okta user ID; empty: one made from Email, 00u….
	ID    string
	Email string
	// Login is the Okta username; empty: Email.
	Login     string
	FirstName string
	LastName  string
	// Status is the lifecycle status; empty: ACTIVE. Okta's are STAGED,
	// PROVISIONED, ACTIVE, RECOVERY, LOCKED_OUT, PASSWORD_EXPIRED,
	// SUSPENDED and DEPROVISIONED.
	Status string
	// Groups are the names of the user's groups, in the order served.
	Groups []string
}

// Options configure the server. The zero value serves no users.
type Options struct {
	// Token is the API token requests must carry as "SSWS <token>";
	// empty: DefaultToken.
	Token string
	Users []User
	// PageSize is the most objects a page holds, whatever limit= asks;
	// empty: DefaultPageSize.
	PageSize int
	// Limit is every bucket's X-Rate-Limit-Limit; empty: DefaultLimit.
	Limit int
	// Now is the server's clock, for rate-limit windows and the Date
	// header; nil: time.Now.
	Now func() time.Time
}

// Server is the stand-in Okta org. Its methods are safe for concurrent use.
type Server struct {
	// URL is the org's URL, http://127.0.0.1:port.
	URL string

	opts   Options
	users  []User
	userT  []byte
	groupT []byte

	mu       sync.Mutex
	requests map[Bucket]int
	windows  map[Bucket]*window
	redirect string
	linkBase string
	served   int
}

// window is a bucket's rate-limit state.
type window struct {
	limit, remaining int
	reset            time.Time
}

// New starts a server; it is closed when the test ends.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.Token == "" {
		opts.Token = DefaultToken
	}
	if opts.PageSize <= 0 {
		opts.PageSize = DefaultPageSize
	}
	if opts.Limit <= 0 {
		opts.Limit = DefaultLimit
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{opts: opts, requests: map[Bucket]int{}, windows: map[Bucket]*window{}}
	for _, u := range opts.Users {
		s.users = append(s.users, withDefaults(u))
	}
	s.userT = firstOf(t, "testdata/users-search.json")
	s.groupT = firstOf(t, "testdata/groups.json")
	mux := http.NewServeMux()
	mux.HandleFunc(string(Users), s.endpoint(Users, s.serveUsers))
	mux.HandleFunc(string(UserGroups), s.endpoint(UserGroups, s.serveGroups))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

func withDefaults(u User) User {
	if u.ID == "" {
		u.ID = makeID("00u", u.Email)
	}
	if u.Login == "" {
		u.Login = u.Email
	}
	if u.Status == "" {
		u.Status = "ACTIVE"
	}
	if u.FirstName == "" {
		u.FirstName, _, _ = strings.Cut(u.Email, "@")
	}
	if u.LastName == "" {
		u.LastName = "Example"
	}
	return u
}

// makeID makes a 20-character Okta-like ID from prefix and seed.
func makeID(prefix, seed string) string {
	h := fnv.New64a()
	h.Write([]byte(seed))
	const digits = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	id := []byte(prefix)
	for n := h.Sum64(); len(id) < 20; n /= 62 {
		id = append(id, digits[n%62])
	}
	return string(id)
}

// firstOf reads a recorded JSON array and returns its first element.
func firstOf(t testing.TB, name string) []byte {
	t.Helper()
	b, err := testdata.ReadFile(name)
	if err != nil {
		t.Fatalf("oktatest: %v", err)
	}
	var list []json.RawMessage
	if err := json.Unmarshal(b, &list); err != nil || len(list) == 0 {
		t.Fatalf("oktatest: %s: want a non-empty JSON array: %v", name, err)
	}
	return list[0]
}

// UserID is the Okta ID the server gives the user with e-mail email (when
// Options gave the user none).
func UserID(email string) string { return makeID("00u", email) }

// GroupID is the Okta ID of the group named name.
func GroupID(name string) string { return makeID("00g", name) }

// Requests is how many requests bucket's endpoint received, whatever it
// answered.
func (s *Server) Requests(b Bucket) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[b]
}

// SetRateLimit sets bucket's current window: remaining calls left until
// reset. With remaining 0 the endpoint answers 429 with Okta's E0000047
// error until reset, after which a new window starts with the full limit.
func (s *Server) SetRateLimit(b Bucket, remaining int, reset time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.windows[b] = &window{limit: s.opts.Limit, remaining: remaining, reset: reset}
}

// RedirectTo makes every endpoint answer 302 Found to origin plus the
// request's path and query; "" stops it.
func (s *Server) RedirectTo(origin string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.redirect = strings.TrimSuffix(origin, "/")
}

// SetLinkBase makes the Link headers point at origin instead of URL; ""
// goes back to URL.
func (s *Server) SetLinkBase(origin string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.linkBase = strings.TrimSuffix(origin, "/")
}

// Clock is a settable clock to share between a test, the server and the
// client under test.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock stopped at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
