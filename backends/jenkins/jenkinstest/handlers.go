package jenkinstest

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if d := s.stallFor(r); d > 0 {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, r.Method+" "+r.URL.Path)
	for _, f := range s.faults {
		if f.stall == 0 && f.times > 0 && (f.method == "" || f.method == r.Method) && strings.HasPrefix(r.URL.Path, f.prefix) {
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

func (s *Server) stallFor(r *http.Request) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.faults {
		if f.stall > 0 && f.times > 0 && (f.method == "" || f.method == r.Method) && strings.HasPrefix(r.URL.Path, f.prefix) {
			f.times--
			return f.stall
		}
	}
	return 0
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
	default:
		s.serveBuildPath(w, r, j, rest)
	}
}

// serveBuildPath serves "N/api/json" and "N/artifact/…".
func (s *Server) serveBuildPath(w http.ResponseWriter, r *http.Request, j *job, rest string) {
	numText, tail, _ := strings.Cut(rest, "/")
	n, err := strconv.Atoi(numText)
	b := j.builds[n]
	switch {
	case err != nil || b == nil:
		http.NotFound(w, r)
	case tail == "api/json":
		s.serveBuild(w, j, b)
	case tail == "artifact" || strings.HasPrefix(tail, "artifact/"):
		s.serveArtifact(w, r, b, strings.TrimPrefix(tail, "artifact"))
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
		setParameters(m, it.job.params, it.params)
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
		s.finish(j, b)
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
		shown := url.Values{}
		for _, p := range j.params {
			shown.Set(p, b.params.Get(p))
		}
		if f := b.finished; f != nil {
			for k, vs := range f.Params {
				if shown.Has(k) {
					shown[k] = vs
				}
			}
			if f.Description != "" {
				m["description"] = f.Description
			}
			m["artifacts"] = artifactList(f.Artifacts)
		}
		setParameters(m, j.params, shown)
		if b.authors != nil {
			setChangeSet(m, b.number, b.authors)
		}
	})
}

// finish decides, once, how a build ended.
func (s *Server) finish(j *job, b *build) {
	if b.finished != nil {
		return
	}
	var f Finished
	if s.opts.Finish != nil {
		f = s.opts.Finish(j.path, b.params, b.number)
	}
	if f.Result == "" {
		f.Result = "SUCCESS"
		if s.opts.Outcome != nil {
			f.Result = s.opts.Outcome(j.path, b.params, b.number)
		}
	}
	b.result = f.Result
	b.finished = &f
}
