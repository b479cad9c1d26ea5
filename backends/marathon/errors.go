package marathon

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"unicode"
)

// HTTPError is a Marathon answer with an unexpected status. Marathon's own
// errors are JSON: {"message": …}, with "details" for validation failures
// and "deployments" when a deployment locks the app. Reason is the part fit
// for Slack; Error is for logs.
type HTTPError struct {
	Method string
	// Path is the request path below the configured base, e.g.
	// "/v2/apps/shop/api".
	Path   string
	Status int
	// Message is Marathon's "message", or for a non-JSON answer (a Jetty or
	// proxy error page) an excerpt of its text.
	Message string
	// Details are the validation failures of a 422 (and of a 400 from
	// older Marathons): which field, and what is wrong with it.
	Details []Detail
	// Deployments are the deployments that lock the app, from a 409.
	Deployments []DeploymentRef
	// parseDetail is the details string of a 400 "Invalid JSON" (a
	// Jackson parser message, for logs only).
	parseDetail string
	// fromMarathon is set when the body was Marathon's JSON error, so its
	// message may be shown to people.
	fromMarathon bool
}

// Detail is one validation failure: Path is a JSON pointer such as
// "/container/docker/image", Errors what is wrong with that field.
type Detail struct {
	Path   string   `json:"path"`
	Errors []string `json:"errors"`
}

// Error gives the request, the status and Marathon's message.
func (e *HTTPError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "marathon: %s %s: %d %s", e.Method, e.Path, e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if len(e.Details) > 0 {
		b.WriteString(" (" + e.details(0) + ")")
	}
	if e.parseDetail != "" {
		b.WriteString(" (" + e.parseDetail + ")")
	}
	if ids := e.deploymentIDs(); ids != "" {
		b.WriteString(" (deployments " + ids + ")")
	}
	return b.String()
}

// Temporary reports whether trying again later may help: server errors
// (502 while Marathon elects a leader, 503 when it is overloaded or its
// storage times out) and rate limiting. Marathon answers a path it has no
// resource for with 500 "URI not found"; that is a wrong URL, not passing
// trouble.
func (e *HTTPError) Temporary() bool {
	if e.unknownURI() {
		return false
	}
	return e.Status >= 500 || e.Status == http.StatusTooManyRequests
}

func (e *HTTPError) unknownURI() bool {
	return e.fromMarathon && e.Status == http.StatusInternalServerError && e.Message == "URI not found"
}

// Is makes errors.Is(err, ErrNotFound), ErrLocked and ErrExists work.
func (e *HTTPError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrLocked:
		return e.Status == http.StatusConflict && (len(e.Deployments) > 0 || strings.HasPrefix(e.Message, "App is locked"))
	case ErrExists:
		return e.Status == http.StatusConflict && strings.Contains(e.Message, "already exists")
	}
	return false
}

// Reason says what went wrong in words fit to show a user in Slack, never
// a raw body: the failed fields of an invalid definition
// ("container.docker.image: must not be empty"), the deployment that locks
// the app, Marathon's message for other 4xx answers, and a fixed sentence
// for server errors. At most about 300 characters.
func (e *HTTPError) Reason() string {
	status := http.StatusText(e.Status)
	if status == "" {
		status = fmt.Sprintf("HTTP status %d", e.Status)
	}
	var s string
	switch {
	case e.Is(ErrLocked):
		s = "the app is locked by a running deployment"
		if ids := e.deploymentIDs(); ids != "" {
			s += " (" + ids + ")"
		}
		s += "; wait for it to finish or cancel it"
	case len(e.Details) > 0:
		s = "Marathon rejected the app definition: " + e.details(300)
	case e.parseDetail != "":
		s = "Marathon could not parse the request (invalid JSON)"
	case e.unknownURI():
		s = "Marathon has no such API path; check deploybot's Marathon URL"
	case e.Status == http.StatusBadGateway && strings.Contains(e.Message, "current leader"):
		s = "Marathon has no leader right now; try again shortly"
	case e.Status >= 500 || e.Status == http.StatusTooManyRequests:
		s = "Marathon is unavailable (" + status + "); try again shortly"
	case e.Status == http.StatusUnauthorized:
		s = "Marathon did not accept deploybot's credentials"
	case e.Status == http.StatusForbidden && !e.fromMarathon:
		s = "Marathon does not allow deploybot to do this"
	case e.fromMarathon && e.Message != "":
		s = e.Message
	default:
		s = status
	}
	return clip(s, 300)
}

func (e *HTTPError) deploymentIDs() string {
	ids := make([]string, 0, len(e.Deployments))
	for _, d := range e.Deployments {
		if d.ID != "" {
			ids = append(ids, clip(d.ID, 64))
		}
	}
	return strings.Join(ids, ", ")
}

// details renders the validation failures as "a.b: err; c[0]: err2",
// stopping near limit characters (0: no limit).
func (e *HTTPError) details(limit int) string {
	var parts []string
	n := 0
	for _, d := range e.Details {
		errs := strings.Join(d.Errors, ", ")
		p := readablePath(d.Path)
		if p != "" {
			errs = p + ": " + errs
		}
		errs = clip(errs, 200)
		if limit > 0 && n > 0 && n+len(errs) > limit {
			parts = append(parts, "…")
			break
		}
		parts = append(parts, errs)
		n += len(errs) + 2
	}
	return strings.Join(parts, "; ")
}

var indexRE = regexp.MustCompile(`\(([0-9]+)\)`)

// readablePath turns Marathon's "/healthChecks(0)/path" into
// "healthChecks[0].path"; the root "/" becomes "".
func readablePath(p string) string {
	p = strings.Trim(p, "/")
	p = indexRE.ReplaceAllString(p, "[$1]")
	return strings.ReplaceAll(p, "/", ".")
}

// errorBody is Marathon's error JSON. details is an array of Detail for
// validation failures but a string for a body that is not JSON at all.
type errorBody struct {
	Message     *string         `json:"message"`
	Details     json.RawMessage `json:"details"`
	Deployments []DeploymentRef `json:"deployments"`
}

func newHTTPError(method, path string, status int, contentType string, body []byte) *HTTPError {
	e := &HTTPError{Method: method, Path: path, Status: status}
	var eb errorBody
	if json.Unmarshal(body, &eb) == nil && eb.Message != nil {
		e.fromMarathon = true
		e.Message = clip(*eb.Message, 500)
		e.Deployments = eb.Deployments
		var details []Detail
		var text string
		switch {
		case json.Unmarshal(eb.Details, &details) == nil:
			for _, d := range details {
				d.Path = clip(d.Path, 200)
				for i := range d.Errors {
					d.Errors[i] = clip(d.Errors[i], 200)
				}
				e.Details = append(e.Details, d)
			}
		case json.Unmarshal(eb.Details, &text) == nil:
			e.parseDetail = clip(text, 300)
		}
		return e
	}
	e.Message = excerpt(body, contentType)
	return e
}

var (
	tagRE = regexp.MustCompile(`<[^>]*>`)
	preRE = regexp.MustCompile(`(?s)<pre>(.*?)</pre>`)
)

// excerpt keeps the gist of a non-JSON error body for logs. Jetty's error
// pages put the reason in <pre>.
func excerpt(body []byte, contentType string) string {
	s := strings.ToValidUTF8(string(body), "")
	if strings.Contains(contentType, "html") || strings.Contains(s, "<") {
		if m := preRE.FindStringSubmatch(s); m != nil {
			s = m[1]
		}
		s = tagRE.ReplaceAllString(s, " ")
	}
	return clip(s, 300)
}

// clip collapses white space, drops control characters and cuts s to about
// n bytes, on a rune boundary.
func clip(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, ""))
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8Start(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }
