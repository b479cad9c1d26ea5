// Package mesos runs one-off tasks on Apache Mesos — a schema migration in a
// Docker image before a deploy — as a short-lived framework speaking the v1
// scheduler HTTP API, and reads the state of tasks and of the cluster
// through the v1 operator API (GET_TASKS, GET_STATE).
//
// A run is idempotent by task ID: before launching, RunTask asks the master
// whether it already knows the ID, so a job picked up again after its worker
// died follows the task the first worker started instead of starting a
// second one. Both APIs are called with JSON (not protobuf), against any
// master of the cluster: a master that is not the leader answers 307 with the
// leader's address, which the client follows, sending its credentials on.
package mesos

import (
	"bytes"
	"context"
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

// Config says which Mesos to use and how the framework presents itself. The
// zero value of every field but URL works.
type Config struct {
	// URL is a master, e.g. "http://mesos.example.com:5050/". It need not be
	// the leader: requests are redirected to the leading master.
	URL string
	// Principal and Secret are HTTP basic-auth credentials, for masters run
	// with --authenticate_http_frameworks; Principal is also set as the
	// framework's principal, which the master checks against them.
	Principal, Secret string
	// Role receives the offers. Default "*".
	Role string
	// FrameworkName is shown in the Mesos web UI. Default "deploybot".
	FrameworkName string
	// User is the Unix user tasks run as. Default "root": with container
	// images the user must exist inside the image with the same uid as on
	// the agent host, and only root is sure to (nobody is 65534 on Debian
	// and Alpine but 99 on older RHEL hosts). Set it to an account your
	// images and agents share to run with less privilege.
	User string
	// FailoverTimeout is how long the master keeps the framework and its
	// task after the worker that ran it disconnects, so another worker can
	// re-subscribe and follow the task; past it the master kills the task.
	// Make it longer than a job can wait to be claimed again. Default 1h.
	FailoverTimeout time.Duration
	// OfferTimeout bounds the wait for an offer the task fits in before
	// RunTask gives up with ErrNoOffers. Default 5m.
	OfferTimeout time.Duration
}

// Client runs tasks on one Mesos cluster. It is safe for concurrent use;
// each RunTask is its own framework.
type Client struct {
	base   *url.URL
	cfg    Config
	hc     *http.Client // calls: bounded by a timeout
	stream *http.Client // the subscription: open as long as the run
	log    *slog.Logger
	retry  retryPolicy
}

// retryPolicy bounds re-subscribing after the connection to the master is
// lost: the docs recommend exponential backoff up to about 15 s.
type retryPolicy struct {
	min, max time.Duration
	attempts int
}

// Named errors callers branch on.
var (
	// ErrNoOffers means no offer the task fits in came within
	// Config.OfferTimeout; the error text says what was missing.
	ErrNoOffers = errors.New("mesos: no offer fits the task")
	// ErrFrameworkRemoved means the framework a task belongs to was torn
	// down or outlived its failover timeout, so it cannot be followed.
	ErrFrameworkRemoved = errors.New("mesos: framework has been removed")
	// ErrFailedOver means another scheduler subscribed as this framework —
	// another worker took the job over — and this one must stop.
	ErrFailedOver = errors.New("mesos: framework failed over to another scheduler")
	// ErrRefused is any other ERROR event: the master ended the
	// subscription (authorization, invalid framework, rate limiting).
	ErrRefused = errors.New("mesos: master refused the framework")
)

// Mesos's own messages behind ErrFrameworkRemoved and ErrFailedOver
// (src/master/master.cpp).
const (
	msgFrameworkRemoved = "Framework has been removed"
	msgFailedOver       = "Framework failed over"
)

const (
	schedulerPath = "api/v1/scheduler"
	operatorPath  = "api/v1"
	// contentJSON must be sent exactly: the master compares the header
	// with "application/json" as a plain string.
	contentJSON  = "application/json"
	maxRedirects = 3
	maxJSONBody  = 128 << 20 // GET_TASKS and GET_STATE list every task the master keeps
	maxErrorBody = 64 << 10
)

// New returns a client for cfg. hc carries the transport (and its TLS client
// certificate); nil means a default client with a 75 s timeout, as the
// scheduler API docs suggest for calls. The subscription uses the same
// transport without the timeout, since it stays open for the whole run.
func New(cfg Config, hc *http.Client, log *slog.Logger) (*Client, error) {
	base, err := endpoint.Base("mesos", cfg.URL, "principal and secret")
	if err != nil {
		return nil, err
	}
	if cfg.Secret != "" && cfg.Principal == "" {
		return nil, errors.New("mesos: secret without principal")
	}
	cfg.Role = orDefault(cfg.Role, "*")
	cfg.FrameworkName = orDefault(cfg.FrameworkName, "deploybot")
	cfg.User = orDefault(cfg.User, "root")
	if cfg.FailoverTimeout <= 0 {
		cfg.FailoverTimeout = time.Hour
	}
	if cfg.OfferTimeout <= 0 {
		cfg.OfferTimeout = 5 * time.Minute
	}
	calls := endpoint.Client(hc, 75*time.Second)
	stream := *calls
	stream.Timeout = 0
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{
		base: base, cfg: cfg, hc: calls, stream: &stream, log: log.With("backend", "mesos"),
		retry: retryPolicy{min: 100 * time.Millisecond, max: 15 * time.Second, attempts: 10},
	}, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// HTTPError is a master's answer with an unexpected status. Mesos explains
// 4xx answers in a plain-text body ("Framework is not subscribed"); Body is
// an excerpt, for logs rather than for Slack.
type HTTPError struct {
	Method string
	Path   string
	Status int
	Body   string
}

// Error gives the request, the status and the excerpt.
func (e *HTTPError) Error() string {
	return fmt.Sprintf("mesos: %s %s: %d %s: %s", e.Method, e.Path, e.Status, http.StatusText(e.Status), e.Body)
}

// Temporary reports whether trying again later may help: server errors,
// among them 503 while a master recovers or no leader is elected.
func (e *HTTPError) Temporary() bool {
	return e.Status >= 500 || e.Status == http.StatusTooManyRequests
}

// post sends body to path below base and follows 307 redirects to the
// leading master. It returns the answer and the base URL of the master that
// gave it, where later calls of the same subscription must go.
func (c *Client) post(ctx context.Context, hc *http.Client, base *url.URL, path string, body []byte, streamID string) (*http.Response, *url.URL, error) {
	target := base.ResolveReference(&url.URL{Path: path})
	for hops := 0; ; hops++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, target.String(), bytes.NewReader(body))
		if err != nil {
			return nil, nil, fmt.Errorf("mesos: POST /%s: %w", path, err)
		}
		req.Header.Set("Content-Type", contentJSON)
		req.Header.Set("Accept", contentJSON)
		if streamID != "" {
			req.Header.Set("Mesos-Stream-Id", streamID)
		}
		if c.cfg.Principal != "" {
			req.SetBasicAuth(c.cfg.Principal, c.cfg.Secret)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, nil, fmt.Errorf("mesos: POST %s: %w", target.Redacted(), err)
		}
		if resp.StatusCode != http.StatusTemporaryRedirect {
			return resp, masterBase(target, path), nil
		}
		loc := resp.Header.Get("Location")
		drain(resp)
		next, err := target.Parse(loc) // Mesos sends "//leader:5050/api/v1/…"
		switch {
		case err != nil || loc == "" || next.Host == "":
			return nil, nil, fmt.Errorf("mesos: POST %s: redirect to %q is not a master", target.Redacted(), loc)
		case next.Scheme != target.Scheme:
			return nil, nil, fmt.Errorf("mesos: POST %s: refusing redirect from %s to %s", target.Redacted(), target.Scheme, next.Scheme)
		case hops == maxRedirects:
			return nil, nil, fmt.Errorf("mesos: POST %s: more than %d redirects", target.Redacted(), maxRedirects)
		}
		c.log.Debug("mesos: following redirect to the leading master", "to", next.Host)
		target = next
	}
}

// masterBase is target without the API path: the master's root URL.
func masterBase(target *url.URL, path string) *url.URL {
	b := *target
	b.RawQuery, b.Fragment, b.RawPath = "", "", ""
	if p, ok := strings.CutSuffix(b.Path, path); ok {
		b.Path = p
	} else {
		b.Path = "/"
	}
	return &b
}

func (c *Client) httpError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	return &HTTPError{Method: resp.Request.Method, Path: resp.Request.URL.Path, Status: resp.StatusCode, Body: excerpt(body)}
}

var spaceRE = regexp.MustCompile(`\s+`)

// excerpt keeps the gist of an error body on one line.
func excerpt(body []byte) string {
	s := strings.TrimSpace(spaceRE.ReplaceAllString(strings.ToValidUTF8(string(body), ""), " "))
	if len(s) > 500 {
		s = strings.ToValidUTF8(s[:500], "") + "…"
	}
	return s
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
}
