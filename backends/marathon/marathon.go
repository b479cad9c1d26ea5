// Package marathon is a client of Marathon's /v2 REST API: read an app with
// its tasks and health, change its image, environment, labels or instance
// count, roll it back to an earlier version, create and delete apps (what a
// blue/green deployment needs), and follow or cancel deployments.
//
// Every change is a Marathon deployment. The client returns the deployment's
// id and the new version at once; callers follow the deployment through
// Deployments or App. Marathon refuses a change to an app that a deployment
// still holds (ErrLocked) unless Config.Force is set.
//
// Requests always go to the configured base URL, built from app ids that
// CheckAppID accepted; URLs Marathon returns (Location) are never called.
// Marathon's PUT is a partial update that replaces whole top-level fields, so
// Update reads the app first and sends complete container, env and label
// objects with only the asked-for values changed (see Update).
package marathon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/seed-5eb4e92e/deploybot/backends/internal/endpoint"
)

// Config says which Marathon to call and how.
type Config struct {
	// URL is the Marathon root, e.g. "https://marathon.example.com:8443/"
	// or, behind DC/OS Admin Router, "https://dcos.example.com/service/marathon/".
	URL string
	// User and Password, when User is set, are sent as HTTP basic auth
	// (Marathon's --http_credentials). Client certificates come with the
	// *http.Client given to New.
	User, Password string
	// Force sends ?force=true on changes, so that a change replaces a
	// deployment that holds the app instead of failing with ErrLocked.
	// Marathon's docs say to force only to repair a failed deployment, so
	// it is off by default.
	Force bool
}

// Client calls one Marathon. It is safe for concurrent use.
type Client struct {
	base *url.URL
	cfg  Config
	hc   *http.Client
	log  *slog.Logger
}

// Size caps: an app with many tasks is large, an error is a sentence.
const (
	maxJSONBody  = 16 << 20
	maxErrorBody = 64 << 10
)

// ErrNotFound means Marathon has no such app, app version or deployment.
// It matches a 404 *HTTPError with errors.Is.
var ErrNotFound = errors.New("marathon: not found")

// ErrLocked means a running deployment holds the app, so Marathon refused
// the change (409, "App is locked by one or more deployments"). Wait for the
// deployment, cancel it, or set Config.Force. It matches such an *HTTPError
// with errors.Is; the error's Deployments name the deployments.
var ErrLocked = errors.New("marathon: app is locked by a deployment")

// ErrExists means Create found an app with that id already (409).
var ErrExists = errors.New("marathon: app already exists")

// New returns a client for cfg. hc carries the transport (and its TLS client
// certificate); nil means a default client with a 30 s timeout. The client
// copies hc and never follows redirects: Marathon proxies API requests to its
// leader itself and only redirects the event stream, and a redirect could
// carry the basic-auth header elsewhere.
func New(cfg Config, hc *http.Client, log *slog.Logger) (*Client, error) {
	base, err := endpoint.Base("marathon", cfg.URL, "user and password")
	if err != nil {
		return nil, err
	}
	if cfg.Password != "" && cfg.User == "" {
		return nil, errors.New("marathon: password without user")
	}
	c := endpoint.Client(hc, 30*time.Second)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{base: base, cfg: cfg, hc: c, log: log.With("backend", "marathon")}, nil
}

// reply is a successful answer.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// call sends a request to path (relative to the base, already safe: built
// from checked ids) and returns the answer when its status is one of ok.
func (c *Client) call(ctx context.Context, method, path string, q url.Values, in []byte, ok ...int) (reply, error) {
	target := c.base.String() + path
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	var body io.Reader
	if in != nil {
		body = bytes.NewReader(in)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return reply{}, fmt.Errorf("marathon: %s /%s: %w", method, path, err)
	}
	if c.cfg.User != "" {
		req.SetBasicAuth(c.cfg.User, c.cfg.Password)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return reply{}, fmt.Errorf("marathon: %s /%s: %w", method, path, err)
	}
	defer drain(resp)
	for _, s := range ok {
		if resp.StatusCode == s {
			raw, err := io.ReadAll(io.LimitReader(resp.Body, maxJSONBody+1))
			if err != nil {
				return reply{}, fmt.Errorf("marathon: %s /%s: read: %w", method, path, err)
			}
			if len(raw) > maxJSONBody {
				return reply{}, fmt.Errorf("marathon: %s /%s: answer larger than %d bytes", method, path, maxJSONBody)
			}
			return reply{status: resp.StatusCode, header: resp.Header, body: raw}, nil
		}
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	return reply{}, newHTTPError(method, "/"+path, resp.StatusCode, resp.Header.Get("Content-Type"), raw)
}

// writeQuery is the query of a change: force when configured. Marathon's
// DELETE /v2/apps/{id} defaults force to true, so it is always sent.
func (c *Client) writeQuery() url.Values {
	return url.Values{"force": {fmt.Sprint(c.cfg.Force)}}
}

func appPath(id string) string { return "v2/apps" + id }

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
}
