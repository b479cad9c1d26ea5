package oktatest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Recorded error objects, served as they are.
const (
	errInvalidToken  = "testdata/error-invalid-token.json"
	errRateLimited   = "testdata/error-rate-limited.json"
	errNotFound      = "testdata/error-not-found.json"
	errInvalidSearch = "testdata/error-invalid-search.json"
)

// endpoint wraps an endpoint's handler with what every Okta answer has:
// counting, the token check, the rate limit and its headers.
func (s *Server) endpoint(b Bucket, serve func(http.ResponseWriter, *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		now := s.opts.Now()
		authorized := r.Header.Get("Authorization") == "SSWS "+s.opts.Token
		s.mu.Lock()
		s.requests[b]++
		s.served++
		redirect := s.redirect
		win := s.window(b, now)
		limited := authorized && win.remaining <= 0
		if authorized && !limited {
			win.remaining--
		}
		h := w.Header()
		h.Set("Date", now.UTC().Format(http.TimeFormat))
		h.Set("X-Okta-Request-Id", fmt.Sprintf("reqOktatest%09d", s.served))
		h.Set("X-Rate-Limit-Limit", strconv.Itoa(win.limit))
		h.Set("X-Rate-Limit-Remaining", strconv.Itoa(max(win.remaining, 0)))
		h.Set("X-Rate-Limit-Reset", strconv.FormatInt(win.reset.Unix(), 10))
		s.mu.Unlock()
		switch {
		case redirect != "":
			http.Redirect(w, r, redirect+r.URL.RequestURI(), http.StatusFound)
		case !authorized:
			writeError(w, http.StatusUnauthorized, errInvalidToken, nil)
		case limited:
			writeError(w, http.StatusTooManyRequests, errRateLimited, nil)
		default:
			serve(w, r)
		}
	}
}

// window returns bucket's window at now, starting a new one when the last
// has reset. s.mu is held.
func (s *Server) window(b Bucket, now time.Time) *window {
	w := s.windows[b]
	if w == nil || !now.Before(w.reset) {
		w = &window{limit: s.opts.Limit, remaining: s.opts.Limit, reset: now.Truncate(time.Second).Add(Window)}
		s.windows[b] = w
	}
	return w
}

// writeError sends a recorded error object, edit changing it first.
func writeError(w http.ResponseWriter, status int, name string, edit func(map[string]any)) {
	b, err := testdata.ReadFile(name)
	if err == nil && edit != nil {
		var obj map[string]any
		if err = json.Unmarshal(b, &obj); err == nil {
			edit(obj)
			b, err = json.Marshal(obj)
		}
	}
	if err != nil {
		http.Error(w, "oktatest: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

// serveUsers lists users: by search or filter expression, by q, or all
// but the DEPROVISIONED ones, as Okta documents each.
func (s *Server) serveUsers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var match func(User) bool
	pageSize := s.opts.PageSize
	switch {
	case q.Has("search") || q.Has("filter"):
		search := q.Has("search")
		expr := q.Get("filter")
		if search {
			expr = q.Get("search")
		}
		clauses, err := parseExpr(expr, search)
		if err != nil {
			writeError(w, http.StatusBadRequest, errInvalidSearch, nil)
			return
		}
		match = func(u User) bool { return matchAll(clauses, u, search) }
	case q.Has("q"):
		// q matches the start of firstName, lastName or email, leaves out
		// DEPROVISIONED users, is not paged and defaults to 10 results.
		prefix := strings.ToLower(q.Get("q"))
		match = func(u User) bool {
			return u.Status != "DEPROVISIONED" && (hasPrefixFold(u.FirstName, prefix) ||
				hasPrefixFold(u.LastName, prefix) || hasPrefixFold(u.Email, prefix))
		}
		pageSize = min(10, pageSize)
	default:
		match = func(u User) bool { return u.Status != "DEPROVISIONED" }
	}
	var found []User
	for _, u := range s.users {
		if match(u) {
			found = append(found, u)
		}
	}
	ids := make([]string, len(found))
	for i, u := range found {
		ids[i] = u.ID
	}
	s.writePage(w, r, ids, pageSize, q.Has("q"), func(i int) (any, error) { return s.renderUser(found[i]) })
}

func hasPrefixFold(s, lowerPrefix string) bool {
	return strings.HasPrefix(strings.ToLower(s), lowerPrefix)
}

// serveGroups lists the groups of the user named by ID or login.
func (s *Server) serveGroups(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var user *User
	for i, u := range s.users {
		if u.ID == id || strings.EqualFold(u.Login, id) {
			user = &s.users[i]
			break
		}
	}
	if user == nil {
		writeError(w, http.StatusNotFound, errNotFound, func(obj map[string]any) {
			obj["errorSummary"] = "Not found: Resource not found: " + id + " (User)"
		})
		return
	}
	ids := make([]string, len(user.Groups))
	for i, g := range user.Groups {
		ids[i] = GroupID(g)
	}
	s.writePage(w, r, ids, s.opts.PageSize, false, func(i int) (any, error) { return s.renderGroup(user.Groups[i]) })
}

// writePage sends the page of objects (named by ids) that the request's
// after cursor and limit select, with Link headers to this page and, when
// more follow and paging is on, to the next.
func (s *Server) writePage(w http.ResponseWriter, r *http.Request, ids []string, pageSize int, noPaging bool, render func(int) (any, error)) {
	q := r.URL.Query()
	if n, err := strconv.Atoi(q.Get("limit")); err == nil && n > 0 {
		pageSize = min(n, pageSize)
	}
	start := 0
	if after := q.Get("after"); after != "" && !noPaging {
		start = len(ids)
		for i, id := range ids {
			if id == after {
				start = i + 1
				break
			}
		}
	}
	end := min(start+pageSize, len(ids))
	page := make([]any, 0, end-start)
	for i := start; i < end; i++ {
		obj, err := render(i)
		if err != nil {
			http.Error(w, "oktatest: "+err.Error(), http.StatusInternalServerError)
			return
		}
		page = append(page, obj)
	}
	body, err := json.Marshal(page)
	if err != nil {
		http.Error(w, "oktatest: "+err.Error(), http.StatusInternalServerError)
		return
	}
	s.mu.Lock()
	base := s.linkBase
	s.mu.Unlock()
	if base == "" {
		base = s.URL
	}
	w.Header().Add("Link", "<"+base+r.URL.RequestURI()+`>; rel="self"`)
	if end < len(ids) && !noPaging {
		q.Set("after", ids[end-1])
		q.Set("limit", strconv.Itoa(pageSize))
		w.Header().Add("Link", "<"+base+r.URL.Path+"?"+q.Encode()+`>; rel="next"`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

// renderUser fills the recorded User object in with u.
func (s *Server) renderUser(u User) (any, error) {
	obj, err := s.fromTemplate(s.userT, recordedUserID, u.ID)
	if err != nil {
		return nil, err
	}
	obj["status"] = u.Status
	profile, _ := obj["profile"].(map[string]any)
	if profile == nil {
		return nil, fmt.Errorf("recorded user has no profile")
	}
	profile["email"], profile["login"] = u.Email, u.Login
	profile["firstName"], profile["lastName"] = u.FirstName, u.LastName
	return obj, nil
}

// renderGroup fills the recorded Group object in with the group name.
func (s *Server) renderGroup(name string) (any, error) {
	obj, err := s.fromTemplate(s.groupT, recordedGroupID, GroupID(name))
	if err != nil {
		return nil, err
	}
	profile, _ := obj["profile"].(map[string]any)
	if profile == nil {
		return nil, fmt.Errorf("recorded group has no profile")
	}
	profile["name"], profile["description"] = name, ""
	return obj, nil
}

// fromTemplate decodes a recorded object with the org's origin and the
// object's ID put in place of the recorded ones.
func (s *Server) fromTemplate(tmpl []byte, recordedID, id string) (map[string]any, error) {
	origin, err := json.Marshal(s.URL)
	if err != nil {
		return nil, err
	}
	text := strings.ReplaceAll(string(tmpl), recordedOrigin, strings.Trim(string(origin), `"`))
	text = strings.ReplaceAll(text, recordedID, url.PathEscape(id))
	var obj map[string]any
	if err := json.Unmarshal([]byte(text), &obj); err != nil {
		return nil, err
	}
	return obj, nil
}
