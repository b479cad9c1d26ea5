// Package gerrit is a client of Gerrit Code Review: read a change and its
// votes, query changes, post a review (a vote and a message, such as a
// "recheck"), submit a change, and understand Gerrit's events, whether they
// arrive from `gerrit stream-events` over SSH or as webhooks-plugin POSTs.
//
// REST calls always go to the configured base URL, built from a validated
// project name, a change number and a revision; URLs Gerrit returns (such as
// a change's web URL) are only shown to people, never called with our
// credentials. With credentials, calls go to the authenticated /a/ paths
// with HTTP basic auth, as Gerrit requires for anything that writes.
package gerrit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/seed-5eb4e92e/deploybot/backends/internal/endpoint"
)

// Config says which Gerrit to call and as whom. The zero value of each
// credential field means anonymous access, which can read what anonymous
// users may see and cannot vote or submit.
type Config struct {
	// URL is the Gerrit root, e.g. "https://gerrit.example.com/" or, behind
	// a context path, "https://example.com/r/".
	URL string
	// User is the Gerrit username (not the email) and Password its HTTP
	// password or authentication token. When User is set, requests go to
	// /a/… with HTTP basic auth.
	User     string
	Password string
}

// Client calls one Gerrit. It is safe for concurrent use.
type Client struct {
	base *url.URL
	cfg  Config
	hc   *http.Client
	log  *slog.Logger
}

// Response size caps: a query answer may be large, an error body is a
// sentence.
const (
	maxJSONBody  = 16 << 20
	maxErrorBody = 64 << 10
)

// New returns a client for cfg. hc carries the transport (and its TLS client
// certificate); nil means a default client with a 30 s timeout. The client
// never follows redirects: a redirect could carry the basic-auth header to
// another host, and Gerrit's REST API does not redirect.
func New(cfg Config, hc *http.Client, log *slog.Logger) (*Client, error) {
	base, err := endpoint.Base("gerrit", cfg.URL, "user and password")
	if err != nil {
		return nil, err
	}
	if cfg.Password != "" && cfg.User == "" {
		return nil, errors.New("gerrit: password without user")
	}
	c := endpoint.Client(hc, 30*time.Second)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{base: base, cfg: cfg, hc: c, log: log.With("backend", "gerrit")}, nil
}

// HTTPError is a Gerrit answer with an unexpected status. Body is an excerpt
// for logs; Reason is the part meant for people, taken from Body only when
// the client built the error from a plain-text answer.
type HTTPError struct {
	Method string
	Path   string
	Status int
	Body   string
	// plain is set when Gerrit answered in plain text, which is what its
	// own errors are; only then is Body a candidate for Reason.
	plain bool
}

// Error gives the request, the status and an excerpt of the body.
func (e *HTTPError) Error() string {
	body := strings.ReplaceAll(e.Body, "\n", " / ")
	return fmt.Sprintf("gerrit: %s %s: %d %s: %s", e.Method, e.Path, e.Status, http.StatusText(e.Status), body)
}

// Temporary reports whether trying again later may help: server errors and
// rate limiting (Gerrit answers 429 when a quota is exhausted).
func (e *HTTPError) Temporary() bool {
	return e.Status >= 500 || e.Status == http.StatusTooManyRequests
}

// Reason is Gerrit's own explanation, fit to show a user in Slack: for a
// 4xx its plain-text message ("Change 1503 is not ready: submit requirement
// 'Verified' is unsatisfied.", "Applying label \"Verified\": -1 is
// restricted"), at most about 200 characters; otherwise, or when the body
// is not Gerrit's plain text (a proxy's HTML page, a JSON answer), the
// HTTP status text.
func (e *HTTPError) Reason() string {
	fallback := http.StatusText(e.Status)
	if fallback == "" {
		fallback = fmt.Sprintf("HTTP status %d", e.Status)
	}
	if !e.plain || e.Status < 400 || e.Status >= 500 {
		return fallback
	}
	s := strings.TrimSpace(e.Body)
	lines := strings.Split(s, "\n")
	// Submit failures list one problem per change after a heading:
	// "Failed to submit 1 change due to the following problems:\n
	// Change 1503: Change 1503 is not ready: …".
	if len(lines) > 1 && strings.HasSuffix(strings.TrimSpace(lines[0]), "following problems:") {
		var problems []string
		for _, l := range lines[1:] {
			if l = strings.TrimSpace(l); l != "" {
				problems = append(problems, dropChangePrefix(l))
			}
		}
		s = strings.Join(problems, "; ")
	} else {
		s = lines[0]
	}
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "…"
	}
	if s == "" {
		return fallback
	}
	return s
}

var changePrefixRE = regexp.MustCompile(`^Change [0-9]+: (Change [0-9]+ .*)$`)

// dropChangePrefix turns "Change 1503: Change 1503 is not ready: …" into
// "Change 1503 is not ready: …".
func dropChangePrefix(l string) string {
	if m := changePrefixRE.FindStringSubmatch(l); m != nil {
		return m[1]
	}
	return l
}

// do sends a request to path (relative to the base, already escaped, without
// the /a/ prefix) and decodes a 200 answer into out, if out is not nil.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("gerrit: %s %s: encode: %w", method, path, err)
		}
		body = bytes.NewReader(raw)
	}
	if c.cfg.User != "" {
		path = "a/" + path
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, body)
	if err != nil {
		return fmt.Errorf("gerrit: %s %s: %w", method, path, err)
	}
	if c.cfg.User != "" {
		req.SetBasicAuth(c.cfg.User, c.cfg.Password)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json; charset=UTF-8")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("gerrit: %s /%s: %w", method, path, err)
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return c.httpError(resp)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxJSONBody+1))
	if err != nil {
		return fmt.Errorf("gerrit: %s /%s: read: %w", method, path, err)
	}
	if len(raw) > maxJSONBody {
		return fmt.Errorf("gerrit: %s /%s: answer larger than %d bytes", method, path, maxJSONBody)
	}
	if out == nil {
		return nil
	}
	if err := decode(raw, out); err != nil {
		return fmt.Errorf("gerrit: %s /%s: %w", method, path, err)
	}
	return nil
}

// xssiPrefix starts every JSON answer of Gerrit's REST API, to stop the
// answer from being run as a script by another site.
const xssiPrefix = ")]}'"

// decode strips Gerrit's ")]}'" line and decodes the JSON after it. A body
// without the prefix is refused: it did not come from Gerrit's REST API
// (a proxy's page, or a URL that points elsewhere).
func decode(raw []byte, v any) error {
	rest, ok := bytes.CutPrefix(raw, []byte(xssiPrefix))
	if !ok {
		return errors.New("decode: answer does not start with Gerrit's )]}' line")
	}
	if err := json.Unmarshal(rest, v); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	return nil
}

func (c *Client) httpError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	path := strings.TrimPrefix(resp.Request.URL.EscapedPath(), c.base.EscapedPath())
	plain := strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain")
	return &HTTPError{Method: resp.Request.Method, Path: "/" + path, Status: resp.StatusCode, Body: excerpt(body), plain: plain}
}

var tagRE = regexp.MustCompile(`<[^>]*>`)

// excerpt keeps the gist of an error body for logs. Gerrit's own errors are
// plain text; a proxy in front of it may answer with HTML. Line breaks are
// kept so that Reason can find Gerrit's first line.
func excerpt(body []byte) string {
	s := strings.ToValidUTF8(string(body), "")
	if strings.Contains(s, "<") {
		s = tagRE.ReplaceAllString(s, " ")
	}
	lines := strings.Split(s, "\n")
	kept := lines[:0]
	for _, l := range lines {
		if l = strings.Join(strings.Fields(l), " "); l != "" {
			kept = append(kept, l)
		}
	}
	s = strings.Join(kept, "\n")
	if len(s) > 500 {
		s = strings.ToValidUTF8(s[:500], "") + "…"
	}
	return s
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
}
