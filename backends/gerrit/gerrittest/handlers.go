package gerrittest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	path, ok := strings.CutPrefix(r.URL.EscapedPath(), s.opts.ContextPath)
	if !ok || !strings.HasPrefix(path, "/") {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	req := r.Method + " " + path
	if r.URL.RawQuery != "" {
		req += "?" + r.URL.RawQuery
	}
	s.requests = append(s.requests, req)
	for _, f := range s.faults {
		if f.times > 0 && (f.method == "" || f.method == r.Method) && strings.HasPrefix(path, f.prefix) {
			f.times--
			writeText(w, f.status, http.StatusText(f.status)+"\n")
			return
		}
	}
	path, authed := strings.CutPrefix(path, "/a/")
	if authed {
		if !s.authorized(r) {
			// Jetty writes the reason phrase, in ISO-8859-1, without a newline.
			w.Header().Set("WWW-Authenticate", `Basic realm="Gerrit Code Review"`)
			w.Header().Set("Content-Type", "text/plain; charset=ISO-8859-1")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, recordedText("error-401.txt"))
			return
		}
	} else {
		path = strings.TrimPrefix(path, "/")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			writeText(w, http.StatusForbidden, recordedText("error-403-authentication-required.txt"))
			return
		}
	}
	s.route(w, r, strings.Split(path, "/"))
}

func (s *Server) authorized(r *http.Request) bool {
	if s.opts.User == "" {
		return true
	}
	u, p, ok := r.BasicAuth()
	return ok && u == s.opts.User && p == s.opts.Password
}

// route dispatches "changes/…" by its escaped segments.
func (s *Server) route(w http.ResponseWriter, r *http.Request, seg []string) {
	if len(seg) < 2 || seg[0] != "changes" {
		http.NotFound(w, r)
		return
	}
	if seg[1] == "" && len(seg) == 2 {
		s.allow(w, r, http.MethodGet, func() { s.serveQuery(w, r) })
		return
	}
	c := s.find(seg[1])
	if c == nil {
		writeText(w, http.StatusNotFound, notFound(seg[1]))
		return
	}
	switch rest := strings.Join(seg[2:], "/"); {
	case rest == "":
		s.allow(w, r, http.MethodGet, func() { s.serveChange(w, r, c) })
	case rest == "submit":
		s.allow(w, r, http.MethodPost, func() { s.serveSubmit(w, c) })
	case len(seg) == 5 && seg[2] == "revisions" && seg[4] == "review":
		s.allow(w, r, http.MethodPost, func() { s.serveReview(w, r, c, seg[3]) })
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) allow(w http.ResponseWriter, r *http.Request, method string, serve func()) {
	if r.Method != method {
		writeText(w, http.StatusMethodNotAllowed, "Method Not Allowed\n")
		return
	}
	serve()
}

// notFound is ResourceNotFoundException's text: "Not found: " and the id
// as IdString.get decodes it (form decoding, so "+" is a space).
func notFound(encoded string) string {
	return strings.Replace(recordedText("error-404-change.txt"), "platform/api~1503", decodeKey(encoded), 1)
}

// find resolves "project~number" or a bare number, as ChangeFinder.find
// does for the forms the client uses: it splits the id as sent, at its last
// "~", and decodes only the project, with KeyUtil.decode.
func (s *Server) find(encoded string) *change {
	project, num, hasProject := cutLast(encoded, "~")
	if !hasProject {
		num = encoded
	}
	n, err := strconv.Atoi(num)
	if err != nil || n <= 0 {
		return nil
	}
	if hasProject {
		return s.changes[key(decodeKey(project), n)]
	}
	for _, c := range s.changes {
		if c.Number == n {
			return c
		}
	}
	return nil
}

func cutLast(s, sep string) (before, after string, found bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}

// decodeKey decodes a key from a URL path the way Gerrit's KeyUtil.decode
// (and IdString.get) do: a "%" that does not start an escape stays a "%",
// "%XX" is a byte and "+" is a space, as in a form. A client that sends
// "libs/c++" unescaped reaches the project "libs/c  ", as with Gerrit.
func decodeKey(encoded string) string {
	var b strings.Builder
	for i := 0; i < len(encoded); i++ {
		b.WriteByte(encoded[i])
		if encoded[i] == '%' && !(i+2 < len(encoded) && isHex(encoded[i+1]) && isHex(encoded[i+2])) {
			b.WriteString("25")
		}
	}
	s, err := url.QueryUnescape(b.String())
	if err != nil {
		return encoded // unreachable: every "%" now starts an escape
	}
	return s
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func options(r *http.Request) map[string]bool {
	opts := map[string]bool{}
	for _, o := range r.URL.Query()["o"] {
		opts[strings.ToUpper(o)] = true
	}
	return opts
}

func (s *Server) serveChange(w http.ResponseWriter, r *http.Request, c *change) {
	m, err := s.renderChange(c, options(r))
	if err != nil {
		writeText(w, http.StatusInternalServerError, err.Error()+"\n")
		return
	}
	writeJSON(w, m)
}

// serveQuery answers the operators the double knows — change:, project:,
// branch:, status: (open, closed, merged, abandoned, new), commit:, owner:
// and is:open/is:closed — ANDed; other operators get 400 with
// QueryBuilder's "Unsupported operator" text.
func (s *Server) serveQuery(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, _ := strconv.Atoi(q.Get("n"))
	var matched []*change
	for _, c := range s.changes {
		ok, bad := matches(c, q.Get("q"))
		if bad != "" {
			writeText(w, http.StatusBadRequest, bad)
			return
		}
		if ok {
			matched = append(matched, c)
		}
	}
	slices.SortFunc(matched, func(a, b *change) int {
		if d := b.updated.Compare(a.updated); d != 0 {
			return d
		}
		return b.Number - a.Number
	})
	more := limit > 0 && len(matched) > limit
	if more {
		matched = matched[:limit]
	}
	out := []any{}
	for i, c := range matched {
		m, err := s.renderChange(c, options(r))
		if err != nil {
			writeText(w, http.StatusInternalServerError, err.Error()+"\n")
			return
		}
		if more && i == len(matched)-1 {
			m["_more_changes"] = true
		}
		out = append(out, m)
	}
	writeJSON(w, out)
}

// matches reports whether c matches query, or why the query is bad.
func matches(c *change, query string) (bool, string) {
	ok := true
	for _, term := range strings.Fields(query) {
		op, val, _ := strings.Cut(term, ":")
		switch op {
		case "change":
			ok = ok && (val == strconv.Itoa(c.Number) || val == c.ChangeID)
		case "project":
			ok = ok && val == c.Project
		case "branch":
			ok = ok && (val == c.Branch || val == "refs/heads/"+c.Branch)
		case "commit":
			ok = ok && len(val) >= 4 && strings.HasPrefix(c.Revision, strings.ToLower(val))
		case "owner":
			ok = ok && (val == c.Owner.Username || val == c.Owner.Email)
		case "status", "is":
			open := c.Status == "NEW"
			switch strings.ToLower(val) {
			case "open", "new", "pending":
				ok = ok && open
			case "closed":
				ok = ok && !open
			case "merged", "abandoned":
				ok = ok && strings.EqualFold(val, c.Status)
			default:
				return false, "Unrecognized value: " + val + "\n" // ChangeStatusPredicate.parse
			}
		default:
			return false, strings.Replace(recordedText("error-400-query-operator.txt"), "deploy:staging", op+":"+val, 1)
		}
	}
	return ok, ""
}

type reviewInput struct {
	Message string         `json:"message"`
	Labels  map[string]int `json:"labels"`
	Tag     string         `json:"tag"`
	Notify  string         `json:"notify"`
}

func (s *Server) serveReview(w http.ResponseWriter, r *http.Request, c *change, rev string) {
	if rev != "current" && !strings.EqualFold(rev, c.Revision) && rev != strconv.Itoa(c.PatchSet) {
		writeText(w, http.StatusNotFound, "Not found: "+rev+"\n")
		return
	}
	var in reviewInput
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&in); err != nil {
		writeText(w, http.StatusBadRequest, "Invalid application/json in request\n")
		return
	}
	applied, status, msg := s.checkLabels(in.Labels)
	if status != 0 {
		writeText(w, status, msg)
		return
	}
	now := s.now()
	for label, v := range applied {
		c.setVote(label, s.opts.Account, v, in.Tag, now)
	}
	c.updated = now
	c.reviews = append(c.reviews, Review{
		Project: c.Project, Number: c.Number, Revision: rev, PatchSet: c.PatchSet,
		By: s.opts.Account.Username, Message: in.Message, Labels: in.Labels, Tag: in.Tag, Notify: in.Notify,
	})
	m, err := readObject("review-response.json")
	if err != nil {
		writeText(w, http.StatusInternalServerError, err.Error()+"\n")
		return
	}
	m["labels"] = applied
	if ci, ok := m["change_info"].(map[string]any); ok {
		editCommon(ci, c, false)
	}
	writeJSON(w, m)
}

// checkLabels does what PostReview.checkLabels does: unknown labels and
// values are dropped (or refused with strict labels), 0 always passes, and
// votes beyond the account's range are refused with 403.
func (s *Server) checkLabels(in map[string]int) (map[string]int, int, string) {
	applied := map[string]int{}
	for label, v := range in {
		def, ok := s.labels[label]
		switch {
		case !ok && s.opts.StrictLabels:
			msg := strings.Replace(recordedText("error-400-label-not-configured.txt"), `"Verify"`, strconv.Quote(label), 1)
			return nil, http.StatusBadRequest, msg
		case !ok:
			continue
		case v == 0:
			applied[label] = 0
			continue
		case v < def.min || v > def.max:
			if s.opts.StrictLabels {
				msg := strings.Replace(recordedText("error-400-label-invalid-value.txt"), `"Verified": 2`, fmt.Sprintf("%q: %d", label, v), 1)
				return nil, http.StatusBadRequest, msg
			}
			continue
		}
		if rng, ok := s.restricted[label]; ok && (v < rng[0] || v > rng[1]) {
			msg := strings.Replace(recordedText("error-403-label-restricted.txt"), `"Verified": -1`, fmt.Sprintf("%q: %d", label, v), 1)
			return nil, http.StatusForbidden, msg
		}
		applied[label] = v
	}
	return applied, 0, ""
}

func (s *Server) serveSubmit(w http.ResponseWriter, c *change) {
	if c.Status != "NEW" {
		writeText(w, http.StatusConflict, "change is "+strings.ToLower(c.Status)+"\n")
		return
	}
	label := s.unsatisfied(c)
	if (c.submittable != nil && !*c.submittable) || (c.submittable == nil && label != "") {
		if label == "" {
			label = "Code-Review"
		}
		msg := recordedText("submit-409-not-ready.txt")
		msg = strings.ReplaceAll(msg, "1503", strconv.Itoa(c.Number))
		msg = strings.Replace(msg, "'Verified'", "'"+label+"'", 1)
		writeText(w, http.StatusConflict, msg)
		return
	}
	now := s.now()
	c.Status, c.submitted, c.updated = "MERGED", now, now
	by := s.opts.Account
	c.submitter = &by
	m, err := readObject("submit-response.json")
	if err != nil {
		writeText(w, http.StatusInternalServerError, err.Error()+"\n")
		return
	}
	editCommon(m, c, false)
	m["submission_id"] = strconv.Itoa(c.Number)
	writeJSON(w, m)
}
