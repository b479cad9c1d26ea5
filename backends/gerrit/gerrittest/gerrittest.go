// Package gerrittest is a simulated Gerrit for tests and for `deploybot
// shell`. It speaks the REST API the way Gerrit does, with answers built
// from payloads recorded from Gerrit's documentation and source (testdata/,
// sources in testdata/SOURCES.md): the ")]}'" prefix, /a/ paths with basic
// auth, plain-text errors (401 Unauthorized, 403 for an anonymous write or a
// restricted vote, 404 "Not found: <id>", 409 for a change that is not ready
// or already merged), votes that show up in LABELS, and submit. It also
// writes the events Gerrit would send (StreamEvent, WebhookEvent) and serves
// `gerrit stream-events` over SSH (StartSSH).
package gerrittest

import (
	"crypto/sha1"
	"crypto/tls"
	"embed"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

//go:embed testdata/*.json testdata/*.txt
var payloads embed.FS

// Options shape the simulated Gerrit. The zero value is a Gerrit that takes
// any credentials on /a/ paths.
type Options struct {
	// User and Password, when User is set, are required as HTTP basic auth
	// on /a/ paths.
	User, Password string
	// Account is the authenticated user, who votes and submits. Zero means
	// the recorded CI account, with User as its username.
	Account Account
	// ContextPath serves Gerrit below a path, e.g. "/r".
	ContextPath string
	// StrictLabels makes a review with an unknown label or value fail with
	// 400, as gerrit.config change.strictLabels does; by default such votes
	// are dropped silently.
	StrictLabels bool
	// Now gives the time of new changes, votes and submits; nil means
	// time.Now.
	Now func() time.Time
	// TLS, when set, serves HTTPS with this config (e.g. to require client
	// certificates).
	TLS *tls.Config
}

// Account is a Gerrit account.
type Account struct {
	ID                    int64
	Name, Email, Username string
	// ServiceUser marks a bot account (tag SERVICE_USER).
	ServiceUser bool
}

// Change is a change to serve. Project and Number are required; other zero
// fields take the recorded scenario's values (branch main, owner Ann,
// uploader Upe, status NEW, patch set 1) or are derived from the number.
type Change struct {
	Project  string
	Number   int
	Branch   string
	ChangeID string
	Subject  string
	Status   string
	Owner    Account
	Uploader Account
	PatchSet int
	// Revision is the current patch set's commit sha.
	Revision string
	Votes    []Vote
}

// Vote is one account's vote on a label.
type Vote struct {
	Label string
	Value int
	By    Account
	Tag   string
}

// Review is a review as the server received it.
type Review struct {
	Project string
	Number  int
	// Revision is as it was in the URL: a sha or "current".
	Revision string
	// PatchSet is the patch set the review applied to.
	PatchSet int
	// By is the username of the account that posted it.
	By      string
	Message string
	Labels  map[string]int
	Tag     string
	Notify  string
}

// Server is a running simulated Gerrit.
type Server struct {
	// URL is the Gerrit root (with the context path), with a trailing
	// slash.
	URL  string
	srv  *httptest.Server
	opts Options
	// labels and accounts come from the recorded payloads; they do not
	// change after Start.
	labels   map[string]labelDef
	accounts recorded

	mu         sync.Mutex
	changes    map[string]*change // "project~number"
	restricted map[string][2]int
	faults     []*fault
	requests   []string
}

type change struct {
	Change
	created, updated, submitted time.Time
	submitter                   *Account
	votes                       map[string]map[int64]*vote // label → account
	reviewers                   []Account
	submittable                 *bool
	reviews                     []Review
}

type vote struct {
	value int
	date  time.Time
	tag   string
}

type fault struct {
	method, prefix string
	status, times  int
}

// Start runs a simulated Gerrit; Close stops it. It panics if the embedded
// recordings are unreadable, which is a bug in this package.
func Start(opts Options) *Server {
	s := &Server{
		opts:       opts,
		changes:    map[string]*change{},
		restricted: map[string][2]int{},
	}
	s.labels, s.accounts = mustLoadScenario()
	if s.opts.Account == (Account{}) {
		s.opts.Account = s.accounts.ci
		if opts.User != "" {
			s.opts.Account.Username = opts.User
		}
	}
	s.opts.ContextPath = "/" + strings.Trim(opts.ContextPath, "/")
	if s.opts.ContextPath == "/" {
		s.opts.ContextPath = ""
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	if opts.TLS != nil {
		s.srv.TLS = opts.TLS
		s.srv.StartTLS()
	} else {
		s.srv.Start()
	}
	s.URL = s.srv.URL + s.opts.ContextPath + "/"
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Client returns an HTTP client that trusts the server (for TLS servers).
func (s *Server) Client() *http.Client { return s.srv.Client() }

func (s *Server) now() time.Time {
	if s.opts.Now != nil {
		return s.opts.Now().UTC()
	}
	return time.Now().UTC()
}

func key(project string, number int) string { return fmt.Sprintf("%s~%d", project, number) }

// AddChange serves c, replacing a change with the same project and number.
// Keep numbers unique across projects, as Gerrit does: a request by bare
// number finds any change with that number.
func (s *Server) AddChange(c Change) {
	if c.Project == "" || c.Number <= 0 {
		panic("gerrittest: a change needs a project and a positive number")
	}
	c.Branch = orDefault(c.Branch, "main")
	c.Status = orDefault(c.Status, "NEW")
	c.Subject = orDefault(c.Subject, s.accounts.subject)
	c.ChangeID = orDefault(c.ChangeID, "I"+digest("change", key(c.Project, c.Number)))
	c.PatchSet = max(c.PatchSet, 1)
	c.Revision = orDefault(c.Revision, digest("revision", key(c.Project, c.Number), fmt.Sprint(c.PatchSet)))
	if c.Owner == (Account{}) {
		c.Owner = s.accounts.ann
	}
	if c.Uploader == (Account{}) {
		c.Uploader = s.accounts.upe
	}
	now := s.now()
	ch := &change{Change: c, created: now, updated: now, votes: map[string]map[int64]*vote{}}
	for _, v := range c.Votes {
		ch.setVote(v.Label, v.By, v.Value, v.Tag, now)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.changes[key(c.Project, c.Number)] = ch
}

func (c *change) setVote(label string, by Account, value int, tag string, at time.Time) {
	if !containsAccount(c.reviewers, by.ID) {
		c.reviewers = append(c.reviewers, by)
	}
	if value == 0 {
		delete(c.votes[label], by.ID)
		return
	}
	if c.votes[label] == nil {
		c.votes[label] = map[int64]*vote{}
	}
	c.votes[label][by.ID] = &vote{value: value, date: at, tag: tag}
}

func containsAccount(list []Account, id int64) bool {
	for _, a := range list {
		if a.ID == id {
			return true
		}
	}
	return false
}

// SetSubmittable overrides whether submitting the change succeeds. Without
// it, a change is submittable when every label has a maximum vote and no
// minimum one, as with Gerrit's default submit requirements.
func (s *Server) SetSubmittable(project string, number int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.changes[key(project, number)]; c != nil {
		c.submittable = &ok
	}
}

// RestrictLabel limits the authenticated account's votes on label to
// [min, max]; other votes get 403 "Applying label … is restricted".
func (s *Server) RestrictLabel(label string, min, max int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.restricted[label] = [2]int{min, max}
}

// Fail makes the next times requests whose method matches ("" matches any)
// and whose escaped path, below the context path, starts with prefix answer
// status with a plain-text body.
func (s *Server) Fail(method, prefix string, status, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{method: method, prefix: prefix, status: status, times: times})
}

// Reviews returns the reviews posted on a change, in order.
func (s *Server) Reviews(project string, number int) []Review {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.changes[key(project, number)]; c != nil {
		return append([]Review(nil), c.reviews...)
	}
	return nil
}

// Status returns a change's status: NEW, MERGED or ABANDONED; "" for an
// unknown change.
func (s *Server) Status(project string, number int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.changes[key(project, number)]; c != nil {
		return c.Status
	}
	return ""
}

// Requests lists "METHOD path?query" of every request served, in order,
// with the path escaped as sent and below the context path.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// digest makes stable 40-hex values (Change-Ids, shas) for a change.
func digest(parts ...string) string {
	sum := sha1.Sum([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:])
}
