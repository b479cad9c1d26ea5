// Package jenkins is a client of the Jenkins remote access API: trigger a
// job (buildWithParameters or build), follow its queue item until it becomes
// a build, and read the build's result. It handles nested folders, API-token
// basic auth, and CSRF crumbs bound to the web session when a Jenkins asks
// for them.
//
// API calls always go to the configured base URL, built from the job path,
// the queue item ID and the build number; URLs Jenkins returns are only
// shown to people, never called with our credentials.
package jenkins

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/seed-5eb4e92e/deploybot/backends/internal/endpoint"
)

// Config says which Jenkins to call and as whom.
type Config struct {
	// URL is the Jenkins root, e.g. "https://jenkins.example.com/" or
	// "https://ci.example.com/jenkins/".
	URL string
	// User and APIToken authenticate with HTTP basic auth. Jenkins exempts
	// API-token requests from CSRF crumbs; with a password, the client
	// fetches a crumb when Jenkins asks for one.
	User     string
	APIToken string
}

// Client calls one Jenkins. It is safe for concurrent use.
type Client struct {
	base *url.URL
	cfg  Config
	hc   *http.Client
	log  *slog.Logger

	mu    sync.Mutex
	crumb *crumb
}

type crumb struct {
	Field string `json:"crumbRequestField"`
	Value string `json:"crumb"`
}

// New returns a client for cfg. hc carries the transport (and its TLS client
// certificate); nil means a default client with a 30 s timeout. The client
// keeps its own cookie jar, for the session a crumb is bound to, and does
// not follow redirects, because Jenkins answers a merged build request with
// 303 to the existing queue item.
func New(cfg Config, hc *http.Client, log *slog.Logger) (*Client, error) {
	base, err := endpoint.Base("jenkins", cfg.URL, "user and api_token")
	if err != nil {
		return nil, err
	}
	c := endpoint.Client(hc, 30*time.Second)
	if c.Jar == nil {
		c.Jar, _ = cookiejar.New(nil) // New never fails without options
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{base: base, cfg: cfg, hc: c, log: log.With("backend", "jenkins")}, nil
}

// HTTPError is a Jenkins answer with an unexpected status. Body is an
// excerpt for logs; it is not meant for Slack.
type HTTPError struct {
	Method string
	Path   string
	Status int
	Body   string
}

// Error gives the request, the status and an excerpt of the body.
func (e *HTTPError) Error() string {
	return fmt.Sprintf("jenkins: %s %s: %d %s: %s", e.Method, e.Path, e.Status, http.StatusText(e.Status), e.Body)
}

// Temporary reports whether trying again later may help: server errors and
// rate limiting.
func (e *HTTPError) Temporary() bool {
	return e.Status >= 500 || e.Status == http.StatusTooManyRequests
}

// ErrNotQueued means Jenkins accepted a build request but did not point at a
// queue item, which is what /build does for a parameterized job.
var ErrNotQueued = errors.New("jenkins: the answer did not name a queue item")

var segmentRE = regexp.MustCompile(`^[^/\x00-\x1f\x7f]+$`)

// JobPath turns "folder/api-build" into "job/folder/job/api-build/",
// escaping each name.
func JobPath(job string) (string, error) {
	if job == "" {
		return "", errors.New("jenkins: empty job name")
	}
	var b strings.Builder
	for _, seg := range strings.Split(job, "/") {
		if !segmentRE.MatchString(seg) || seg == "." || seg == ".." {
			return "", fmt.Errorf("jenkins: bad job name %q", job)
		}
		b.WriteString("job/" + url.PathEscape(seg) + "/")
	}
	return b.String(), nil
}

var paramNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,127}$`)

// CheckParams rejects parameter names Jenkins could not define and values
// with control characters.
func CheckParams(params map[string]string) error {
	for k, v := range params {
		if !paramNameRE.MatchString(k) {
			return fmt.Errorf("jenkins: bad parameter name %q", k)
		}
		if strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) || len(v) > 4096 {
			return fmt.Errorf("jenkins: parameter %s has control characters or is too long", k)
		}
	}
	return nil
}

var queueItemRE = regexp.MustCompile(`/queue/item/([0-9]+)/?$`)

// Trigger queues job with params and returns the queue item's ID. With no
// params it POSTs to /build, otherwise to /buildWithParameters. When an
// identical request is still queued, Jenkins merges the two and this
// returns the existing item.
func (c *Client) Trigger(ctx context.Context, job string, params map[string]string) (int64, error) {
	jp, err := JobPath(job)
	if err != nil {
		return 0, err
	}
	if err := CheckParams(params); err != nil {
		return 0, err
	}
	endpoint := jp + "build"
	form := url.Values{}
	if len(params) > 0 {
		endpoint = jp + "buildWithParameters"
		keys := make([]string, 0, len(params))
		for k := range params {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			form.Set(k, params[k])
		}
	}
	resp, err := c.post(ctx, endpoint, form)
	if err != nil {
		return 0, err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusSeeOther {
		return 0, c.httpError(resp)
	}
	id, err := QueueItemID(resp.Header.Get("Location"))
	if err != nil {
		return 0, err
	}
	c.log.InfoContext(ctx, "jenkins build queued", "job", job, "queue_item", id, "merged", resp.StatusCode == http.StatusSeeOther)
	return id, nil
}

// QueueItemID reads the queue item ID from the Location Jenkins answers a
// build request with: "http://jenkins/queue/item/42/" (absolute, though a
// relative one is accepted too).
func QueueItemID(location string) (int64, error) {
	if location == "" {
		return 0, fmt.Errorf("%w (no Location)", ErrNotQueued)
	}
	loc, err := url.Parse(location)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrNotQueued, err)
	}
	m := queueItemRE.FindStringSubmatch(loc.Path)
	if m == nil {
		return 0, fmt.Errorf("%w: Location %q", ErrNotQueued, loc.Path)
	}
	id, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%w: Location %q", ErrNotQueued, loc.Path)
	}
	return id, nil
}

// post sends a form POST, fetching a crumb and retrying once if Jenkins
// refuses the request for want of one.
func (c *Client) post(ctx context.Context, path string, form url.Values) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		req, err := c.newRequest(ctx, http.MethodPost, path, strings.NewReader(form.Encode()))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		c.mu.Lock()
		if cr := c.crumb; cr != nil {
			req.Header.Set(cr.Field, cr.Value)
		}
		c.mu.Unlock()
		resp, err := c.hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("jenkins: POST %s: %w", path, err)
		}
		if resp.StatusCode != http.StatusForbidden || attempt > 0 {
			return resp, nil
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		drain(resp)
		if !strings.Contains(strings.ToLower(string(body)), "crumb") {
			return nil, &HTTPError{Method: http.MethodPost, Path: path, Status: resp.StatusCode, Body: excerpt(body)}
		}
		if err := c.fetchCrumb(ctx); err != nil {
			return nil, err
		}
	}
}

func (c *Client) fetchCrumb(ctx context.Context) error {
	var cr crumb
	if err := c.getJSON(ctx, "crumbIssuer/api/json", &cr); err != nil {
		return fmt.Errorf("jenkins: crumb: %w", err)
	}
	if cr.Field == "" || cr.Value == "" {
		return errors.New("jenkins: crumb: empty crumb")
	}
	c.mu.Lock()
	c.crumb = &cr
	c.mu.Unlock()
	return nil
}

func (c *Client) newRequest(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	// path is already escaped (JobPath escapes each name).
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, body)
	if err != nil {
		return nil, fmt.Errorf("jenkins: %s %s: %w", method, path, err)
	}
	if c.cfg.User != "" {
		req.SetBasicAuth(c.cfg.User, c.cfg.APIToken)
	}
	req.Header.Set("Accept", "application/json")
	return req, nil
}

func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	req, err := c.newRequest(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("jenkins: GET %s: %w", path, err)
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return c.httpError(resp)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(v); err != nil {
		return fmt.Errorf("jenkins: GET %s: decode: %w", path, err)
	}
	return nil
}

func (c *Client) httpError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	path := strings.TrimPrefix(resp.Request.URL.Path, c.base.Path)
	return &HTTPError{Method: resp.Request.Method, Path: "/" + path, Status: resp.StatusCode, Body: excerpt(body)}
}

var tagRE = regexp.MustCompile(`<[^>]*>`)

// excerpt keeps the gist of an error body for logs: Jenkins error pages are
// HTML around one message.
func excerpt(body []byte) string {
	s := tagRE.ReplaceAllString(string(body), " ")
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
}
