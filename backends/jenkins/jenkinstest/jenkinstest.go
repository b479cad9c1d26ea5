// Package jenkinstest is a simulated Jenkins for tests and for
// `deploybot shell`. It speaks the remote access API the way Jenkins does,
// with answers built from payloads recorded from Jenkins (testdata/, sources
// in testdata/SOURCES.md): queue items that move from WaitingItem through
// BuildableItem to LeftItem, builds that run and then succeed or fail and
// may leave a description and archived artifacts behind, and the awkward
// parts — relative queue URLs in JSON, 303 for a merged request, 404 once a
// left item expires, 409 for a disabled job, 400 for buildWithParameters on
// an unparameterized job, and 403 without a crumb bound to the session when
// crumbs are required.
//
// Time is counted in polls, not seconds, so tests are deterministic.
package jenkinstest

import (
	"crypto/tls"
	"embed"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"time"
)

//go:embed testdata/*.json testdata/*.html
var payloads embed.FS

// Options shape the simulated Jenkins. The zero value is a Jenkins without
// authentication whose builds succeed.
type Options struct {
	// User and Token, when User is set, are required as HTTP basic auth.
	User, Token string
	// RequireCrumb makes POSTs need a crumb from /crumbIssuer/api/json, sent
	// with the session cookie it was issued under (Jenkins with password
	// auth, or with the API-token exemption turned off).
	RequireCrumb bool
	// QuietPolls is how many reads a new item stays in its quiet period
	// (WaitingItem); ExecutorPolls how many more it waits for an executor
	// (BuildableItem); BuildPolls how many reads a build keeps running.
	QuietPolls, ExecutorPolls, BuildPolls int
	// LeftPolls, when positive, makes a left item vanish (404) after that
	// many reads, as Jenkins forgets left items after five minutes.
	LeftPolls int
	// Outcome decides a finished build's result; nil means SUCCESS. It is
	// called once per build, after Finish, when Finish leaves the result
	// empty.
	Outcome func(job string, params url.Values, number int) string
	// Finish, when set, decides what a build left behind when it finished:
	// its result, description, archived artifacts and parameter values. It
	// is called once per build, with the parameters the build ran with,
	// while the server is locked: it must not call the Server's methods.
	Finish func(job string, params url.Values, number int) Finished
	// TLS, when set, serves HTTPS with this config (e.g. to require client
	// certificates).
	TLS *tls.Config
}

// Finished is what a build left behind, as a test decides it.
type Finished struct {
	// Result is SUCCESS, UNSTABLE, FAILURE, NOT_BUILT or ABORTED; empty
	// leaves it to Options.Outcome, and to SUCCESS without one.
	Result string
	// Description is what the job set as the build's description, e.g.
	// "image: registry.example.com/api:1.4.2"; empty leaves it null.
	Description string
	// Artifacts are the files the job archived, by path under the archive
	// ("image.txt", "dist/api-1.4.2.tar.gz"), with their contents. The build
	// lists them, and serves each at …/N/artifact/<path>.
	Artifacts map[string][]byte
	// Params overrides the values the build's ParametersAction shows, for
	// example one the request left to its default. Names the job does not
	// define are dropped, as Jenkins drops them (SECURITY-170).
	Params url.Values
}

// Server is a running simulated Jenkins.
type Server struct {
	// URL is the Jenkins root, with a trailing slash.
	URL  string
	srv  *httptest.Server
	opts Options

	mu       sync.Mutex
	jobs     map[string]*job
	items    map[int64]*item
	nextItem int64
	sessions map[string]string // session cookie value → crumb
	faults   []*fault
	created  int
	requests []string
}

type job struct {
	path     string
	params   []string
	disabled bool
	next     int
	builds   map[int]*build
}

type item struct {
	id        int64
	job       *job
	params    url.Values
	polls     int
	leftPolls int
	cancelled bool
	build     *build
	expired   bool
}

type build struct {
	number int
	params url.Values
	queue  int64
	polls  int
	result string
	// finished is what the build left behind, once it has finished.
	finished *Finished
	// authors are the e-mail addresses of the build's commits, if set.
	authors []string
}

type fault struct {
	method, prefix string
	status, times  int
	stall          time.Duration
}

// Start runs a simulated Jenkins; Close stops it.
func Start(opts Options) *Server {
	s := &Server{
		opts:     opts,
		jobs:     map[string]*job{},
		items:    map[int64]*item{},
		nextItem: 41,
		sessions: map[string]string{},
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	if opts.TLS != nil {
		s.srv.TLS = opts.TLS
		s.srv.StartTLS()
	} else {
		s.srv.Start()
	}
	s.URL = s.srv.URL + "/"
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Certificate is the server's certificate when it serves TLS.
func (s *Server) Certificate() *tls.Config { return s.srv.TLS }

// Client returns an HTTP client that trusts the server (for TLS servers).
func (s *Server) Client() *http.Client { return s.srv.Client() }

// AddJob defines a job at path ("api-build" or "folder/api-build") with the
// given parameter names; with none, the job is not parameterized.
func (s *Server) AddJob(path string, params ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jobs[path] = &job{path: path, params: params, next: 1, builds: map[int]*build{}}
}

// AddBuild records a finished build of job (history that happened before
// the test), with the commits of authors (e-mail addresses) in its change
// set. The job's next build number moves past it.
func (s *Server) AddBuild(path string, number int, result string, authors ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.jobs[path]
	if authors == nil {
		authors = []string{} // no commits, rather than the recorded payload's
	}
	b := &build{number: number, result: result, polls: 1 << 30, authors: authors, params: url.Values{}}
	if result != "" {
		b.finished = &Finished{Result: result} // history: Finish is not asked
	}
	j.builds[number] = b
	if number >= j.next {
		j.next = number + 1
	}
}

// DisableJob makes the job answer 409 to build requests.
func (s *Server) DisableJob(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jobs[path].disabled = true
}

// Fail makes the next times requests whose method matches and whose path
// starts with prefix answer status instead.
func (s *Server) Fail(method, prefix string, status, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{method: method, prefix: prefix, status: status, times: times})
}

// Stall makes the next times requests whose method matches and whose path
// starts with prefix wait d before they are answered: a Jenkins too slow for
// the client's timeout.
func (s *Server) Stall(method, prefix string, d time.Duration, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{method: method, prefix: prefix, stall: d, times: times})
}

// Cancel cancels a queued item, as a user would from the Jenkins UI.
func (s *Server) Cancel(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if it := s.items[id]; it != nil && it.build == nil {
		it.cancelled = true
	}
}

// QueueItemsCreated counts build requests that created a queue item (merged
// requests are not counted).
func (s *Server) QueueItemsCreated() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.created
}

// Builds returns how many builds job has had.
func (s *Server) Builds(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j := s.jobs[path]; j != nil {
		return len(j.builds)
	}
	return 0
}

// BuildParams returns the parameters build number of job ran with.
func (s *Server) BuildParams(path string, number int) url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j := s.jobs[path]; j != nil && j.builds[number] != nil {
		return j.builds[number].params
	}
	return nil
}

// Requests lists "METHOD path" of every request served, in order.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}
