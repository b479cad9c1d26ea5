// Package jenkinstest is a simulated Jenkins for tests and for
// `deploybot shell`. It speaks the remote access API the way Jenkins does,
// with answers built from payloads recorded from Jenkins (testdata/, sources
// in testdata/SOURCES.md): queue items that move from WaitingItem through
// BuildableItem to LeftItem, builds that run and then succeed or fail, and
// the awkward parts — relative queue URLs in JSON, 303 for a merged request,
// 404 once a left item expires, 409 for a disabled job, 400 for
// buildWithParameters on an unparameterized job, and 403 without a crumb
// bound to the session when crumbs are required.
//
// Time is counted in polls, not seconds, so tests are deterministic.
package jenkinstest

import (
	"crypto/rand"
	"crypto/tls"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
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
	// called once per build.
	Outcome func(job string, params url.Values, number int) string
	// TLS, when set, serves HTTPS with this config (e.g. to require client
	// certificates).
	TLS *tls.Config
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
}

type fault struct {
	method, prefix string
	status, times  int
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

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, r.Method+" "+r.URL.Path)
	for _, f := range s.faults {
		if f.times > 0 && (f.method == "" || f.method == r.Method) && strings.HasPrefix(r.URL.Path, f.prefix) {
			f.times--
			http.Error(w, http.StatusText(f.status), f.status)
			return
		}
	}
	if s.opts.User != "" {
		u, p, ok := r.BasicAuth()
		if !ok || u != s.opts.User || p != s.opts.Token {
			w.Header().Set("WWW-Authenticate", `Basic realm="Jenkins"`)
			http.Error(w, "Invalid password/token for user: "+u, http.StatusUnauthorized)
			return
		}
	}
	path := r.URL.Path
	switch {
	case path == "/crumbIssuer/api/json":
		s.serveCrumb(w, r)
	case strings.HasPrefix(path, "/queue/item/"):
		s.serveQueueItem(w, r)
	case strings.HasPrefix(path, "/job/"):
		s.serveJob(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) serveCrumb(w http.ResponseWriter, r *http.Request) {
	if !s.opts.RequireCrumb {
		http.NotFound(w, r) // CSRF protection off: no crumb issuer
		return
	}
	session := randomHex(16)
	crumb := randomHex(32)
	s.sessions[session] = crumb
	// The jenkins.war launcher renames the session cookie per start.
	http.SetCookie(w, &http.Cookie{Name: "JSESSIONID.3f9a1c2b", Value: session, Path: "/", HttpOnly: true})
	writeTemplate(w, "crumb.json", func(m map[string]any) { m["crumb"] = crumb })
}

func (s *Server) crumbOK(r *http.Request) bool {
	if !s.opts.RequireCrumb {
		return true
	}
	c, err := r.Cookie("JSESSIONID.3f9a1c2b")
	if err != nil {
		return false
	}
	want, ok := s.sessions[c.Value]
	return ok && r.Header.Get("Jenkins-Crumb") == want
}

// splitJobURL turns "/job/a/job/b/7/api/json" into ("a/b", "7/api/json").
func splitJobURL(p string) (string, string) {
	var names []string
	rest := strings.TrimPrefix(p, "/")
	for strings.HasPrefix(rest, "job/") {
		rest = strings.TrimPrefix(rest, "job/")
		i := strings.IndexByte(rest, '/')
		if i < 0 {
			names = append(names, rest)
			rest = ""
			break
		}
		names = append(names, rest[:i])
		rest = rest[i+1:]
	}
	return strings.Join(names, "/"), rest
}

func (s *Server) serveJob(w http.ResponseWriter, r *http.Request) {
	name, rest := splitJobURL(r.URL.Path)
	j := s.jobs[name]
	if j == nil {
		http.NotFound(w, r)
		return
	}
	switch {
	case rest == "build" || rest == "buildWithParameters":
		s.serveTrigger(w, r, j, rest)
	case rest == "api/json":
		writeTemplate(w, "job.json", func(m map[string]any) {
			m["name"], m["fullName"], m["url"] = lastName(j.path), j.path, s.jobURL(j)
			m["buildable"], m["nextBuildNumber"] = !j.disabled, j.next
		})
	case strings.HasSuffix(rest, "/api/json"):
		n, err := strconv.Atoi(strings.TrimSuffix(rest, "/api/json"))
		b := j.builds[n]
		if err != nil || b == nil {
			http.NotFound(w, r)
			return
		}
		s.serveBuild(w, j, b)
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) serveTrigger(w http.ResponseWriter, r *http.Request, j *job, endpoint string) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "This URL requires POST", http.StatusMethodNotAllowed)
		return
	}
	if !s.crumbOK(r) {
		body, _ := payloads.ReadFile("testdata/error-403-no-valid-crumb.html")
		w.Header().Set("Content-Type", "text/html;charset=iso-8859-1")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write(body)
		return
	}
	if j.disabled {
		http.Error(w, j.path+" is not buildable", http.StatusConflict)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	params := url.Values{}
	switch {
	case endpoint == "buildWithParameters" && len(j.params) == 0:
		http.Error(w, j.path+" is not parameterized", http.StatusBadRequest)
		return
	case endpoint == "build" && len(j.params) > 0:
		http.Error(w, "Nothing is submitted", http.StatusBadRequest)
		return
	}
	for _, p := range j.params {
		// Jenkins takes only defined parameters and ignores the rest.
		params.Set(p, r.PostForm.Get(p))
	}
	for _, it := range s.items {
		if it.job == j && it.build == nil && !it.cancelled && equalValues(it.params, params) {
			w.Header().Set("Location", s.base(r)+fmt.Sprintf("queue/item/%d/", it.id))
			status := http.StatusSeeOther
			if endpoint == "build" {
				status = http.StatusCreated // JENKINS-66105: /build still answers 201
			}
			w.WriteHeader(status)
			return
		}
	}
	s.nextItem++
	s.created++
	it := &item{id: s.nextItem, job: j, params: params}
	s.items[it.id] = it
	w.Header().Set("Location", s.base(r)+fmt.Sprintf("queue/item/%d/", it.id))
	w.WriteHeader(http.StatusCreated)
}

func (s *Server) serveQueueItem(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/queue/item/")
	idText, tail, _ := strings.Cut(rest, "/")
	id, err := strconv.ParseInt(idText, 10, 64)
	it := s.items[id]
	if err != nil || it == nil || it.expired {
		http.NotFound(w, r)
		return
	}
	if tail == "" {
		w.Header().Set("Content-Type", "text/plain;charset=UTF-8")
		fmt.Fprintf(w, "Queue item exists. For details check, for example, %sapi/json?tree=cancelled,executable[url]\n", r.URL.Path)
		return
	}
	if tail != "api/json" {
		http.NotFound(w, r)
		return
	}
	it.polls++
	quiet, waitExec := max(s.opts.QuietPolls, 1), max(s.opts.ExecutorPolls, 1)
	if it.build == nil && !it.cancelled && it.polls > quiet+waitExec {
		j := it.job
		b := &build{number: j.next, params: it.params, queue: it.id}
		j.builds[b.number] = b
		j.next++
		it.build = b
	}
	if it.build != nil || it.cancelled {
		it.leftPolls++
		if s.opts.LeftPolls > 0 && it.leftPolls >= s.opts.LeftPolls {
			it.expired = true
		}
	}
	switch {
	case it.cancelled:
		s.writeItem(w, "queue-cancelled.json", it, nil)
	case it.build != nil:
		s.writeItem(w, "queue-left.json", it, func(m map[string]any) {
			m["executable"] = map[string]any{
				"_class": "hudson.model.FreeStyleBuild",
				"number": it.build.number,
				"url":    s.buildURL(it.job, it.build.number),
			}
		})
	case it.polls <= quiet:
		s.writeItem(w, "queue-waiting.json", it, nil)
	default:
		s.writeItem(w, "queue-buildable.json", it, nil)
	}
}

func (s *Server) writeItem(w http.ResponseWriter, name string, it *item, edit func(map[string]any)) {
	writeTemplate(w, name, func(m map[string]any) {
		m["id"] = it.id
		m["url"] = fmt.Sprintf("queue/item/%d/", it.id) // relative, as Jenkins sends it
		m["params"] = paramsString(it.params)
		setParameters(m, it.params)
		if task, ok := m["task"].(map[string]any); ok {
			task["name"], task["url"] = lastName(it.job.path), s.jobURL(it.job)
		}
		if edit != nil {
			edit(m)
		}
	})
}

func (s *Server) serveBuild(w http.ResponseWriter, j *job, b *build) {
	b.polls++
	name := "build-running.json"
	if b.polls > max(s.opts.BuildPolls, 1) {
		if b.result == "" {
			b.result = "SUCCESS"
			if s.opts.Outcome != nil {
				b.result = s.opts.Outcome(j.path, b.params, b.number)
			}
		}
		switch b.result {
		case "FAILURE":
			name = "build-failure.json"
		case "ABORTED":
			name = "build-aborted.json"
		default:
			name = "build-success.json"
		}
	}
	writeTemplate(w, name, func(m map[string]any) {
		m["number"], m["id"], m["queueId"] = b.number, strconv.Itoa(b.number), b.queue
		m["url"] = s.buildURL(j, b.number)
		m["displayName"] = fmt.Sprintf("#%d", b.number)
		m["fullDisplayName"] = fmt.Sprintf("%s #%d", strings.ReplaceAll(j.path, "/", " » "), b.number)
		if b.result != "" {
			m["result"] = b.result
		}
		setParameters(m, b.params)
	})
}

func (s *Server) base(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/"
}

func (s *Server) jobURL(j *job) string {
	var b strings.Builder
	b.WriteString(s.URL)
	for _, seg := range strings.Split(j.path, "/") {
		b.WriteString("job/" + url.PathEscape(seg) + "/")
	}
	return b.String()
}

func (s *Server) buildURL(j *job, n int) string { return fmt.Sprintf("%s%d/", s.jobURL(j), n) }

func writeTemplate(w http.ResponseWriter, name string, edit func(map[string]any)) {
	raw, err := payloads.ReadFile("testdata/" + name)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	edit(m)
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	_ = json.NewEncoder(w).Encode(m)
}

// setParameters replaces the values in the payload's ParametersAction.
func setParameters(m map[string]any, params url.Values) {
	actions, _ := m["actions"].([]any)
	for _, a := range actions {
		am, _ := a.(map[string]any)
		if am["_class"] != "hudson.model.ParametersAction" {
			continue
		}
		var list []any
		for _, k := range sortedKeys(params) {
			list = append(list, map[string]any{"_class": "hudson.model.StringParameterValue", "name": k, "value": params.Get(k)})
		}
		am["parameters"] = list
	}
}

func paramsString(params url.Values) string {
	var b strings.Builder
	for _, k := range sortedKeys(params) {
		b.WriteString("\n" + k + "=" + params.Get(k))
	}
	return b.String()
}

func sortedKeys(v url.Values) []string {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func equalValues(a, b url.Values) bool { return paramsString(a) == paramsString(b) }

func lastName(path string) string { return path[strings.LastIndexByte(path, '/')+1:] }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
