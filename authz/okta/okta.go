// Package okta finds a Slack user's Okta groups through the Okta
// management API, by e-mail: the e-mail Slack gives for the user names an
// Okta user (GET /api/v1/users?search=profile.email eq "…"), and that user's
// groups (GET /api/v1/users/{id}/groups) are what the policy is matched
// against.
//
// It exists so that deploybot can authorize people who never signed in to
// it: their Okta groups are the ones the company already manages. The client
// only speaks HTTP; package authz decides what to cache and for how long.
//
// Okta limits the rate of API calls per endpoint bucket and says so in
// X-Rate-Limit-* headers. The client remembers, per bucket, when Okta said
// no calls were left, and until the reset time answers *RateLimited at once
// without calling. It never sleeps waiting for a reset: the caller decides
// whether to wait, retry later or fail.
package okta

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-resty/resty/v2"
)

// DefaultTimeout is the per-request timeout when Config.Timeout is zero.
const DefaultTimeout = 5 * time.Second

// Config says which Okta org to ask and how. Zero values work where a
// default is documented on the field.
type Config struct {
	// URL is the Okta org's URL, e.g. https://acme.okta.com. Required.
	// It must be https, except http on a loopback host (for tests), and
	// have no path, query or user info.
	URL string
	// Token is an Okta API token, sent as "Authorization: SSWS <token>".
	// Required. It is never logged and never put in an error's text.
	Token string
	// Timeout bounds each HTTP request; zero means DefaultTimeout.
	Timeout time.Duration
}

// Client asks one Okta org for users' groups. Its methods are safe for
// concurrent use.
type Client struct {
	rc     *resty.Client
	base   *url.URL
	token  string
	log    *slog.Logger
	limits *limiter
	// now is the clock the rate limits are kept by; tests replace it.
	now func() time.Time
}

// User is the Okta user an e-mail address was found to belong to.
type User struct {
	// ID is the Okta user ID, e.g. 00ub0oNGTSWTBKOLGLNR.
	ID string
	// Login is the Okta username (profile.login).
	Login string
	// Email is the user's primary e-mail (profile.email) as Okta has it.
	Email string
	// Status is the user's lifecycle status; always ACTIVE for a user
	// UserGroups returns.
	Status string
}

// New checks cfg and returns a client for the org. hc is the HTTP client
// to send requests with (nil: a new default one); it is copied, never
// changed. log nil discards the client's logs.
func New(cfg Config, hc *http.Client, log *slog.Logger) (*Client, error) {
	base, err := checkOrgURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("okta: url: %w", err)
	}
	if cfg.Token == "" {
		return nil, fmt.Errorf("okta: the API token is empty")
	}
	if strings.ContainsFunc(cfg.Token, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return nil, fmt.Errorf("okta: the API token has spaces or control characters")
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("okta: timeout %v is negative", cfg.Timeout)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var own http.Client
	if hc != nil {
		own = *hc
	}
	rc := resty.NewWithClient(&own).
		SetBaseURL(base.String()).
		SetTimeout(cfg.Timeout).
		SetRedirectPolicy(resty.NoRedirectPolicy()).
		SetHeader("Accept", "application/json").
		SetHeader("Content-Type", "application/json").
		SetHeader("User-Agent", "deploybot-authz-okta").
		SetAuthScheme("SSWS").
		SetAuthToken(cfg.Token).
		SetResponseBodyLimit(maxBody).
		SetDisableWarn(true).
		SetLogger(restyLog{log})
	return &Client{rc: rc, base: base, token: cfg.Token, log: log, limits: newLimiter(), now: time.Now}, nil
}

// UserGroups finds the ACTIVE Okta user whose primary e-mail is email and
// returns them with the names (profile.name) of their groups, every page
// of them. The e-mail is compared case-insensitively, as Okta's search does.
//
// It returns an error wrapping ErrNoUser when no ACTIVE user has the
// e-mail, or when several do; a *RateLimited when Okta's rate limit for
// either endpoint is used up (no request is sent then); an *HTTPError when
// Okta answers with an error. A malformed e-mail is refused before
// anything is sent. Groups are never returned partially.
func (c *Client) UserGroups(ctx context.Context, email string) (User, []string, error) {
	if err := checkEmail(email); err != nil {
		return User{}, nil, fmt.Errorf("okta: %w", err)
	}
	if err := c.limits.check(c.now(), bucketUsers, bucketGroups); err != nil {
		return User{}, nil, fmt.Errorf("okta: user %s: %w", email, err)
	}
	u, err := c.findUser(ctx, email)
	if err != nil {
		return User{}, nil, err
	}
	groups, err := c.groups(ctx, u.ID)
	if err != nil {
		return User{}, nil, err
	}
	return u, groups, nil
}

// findUser searches users by e-mail and picks the one ACTIVE user among
// them. Okta recommends search over filter; its string values compare
// case-insensitively and it returns users of every status, DEPROVISIONED
// included, so the status is checked here.
func (c *Client) findUser(ctx context.Context, email string) (User, error) {
	q := url.Values{"search": {`profile.email eq "` + email + `"`}}
	var found []User
	err := c.list(ctx, bucketUsers, usersPath, q, func(body []byte) error {
		us, err := decodeUsers(body)
		found = append(found, us...)
		return err
	})
	if err != nil {
		return User{}, fmt.Errorf("okta: user %s: %w", email, err)
	}
	u, err := pickActive(email, found)
	if err != nil {
		return User{}, fmt.Errorf("okta: user %s: %w", email, err)
	}
	return u, nil
}

// pickActive returns the one ACTIVE user whose e-mail is email. Users the
// server returned with another e-mail are ignored.
func pickActive(email string, users []User) (User, error) {
	var active []User
	var others []string
	for _, u := range users {
		if !strings.EqualFold(u.Email, email) {
			continue
		}
		if u.Status == "ACTIVE" {
			active = append(active, u)
		} else {
			others = append(others, u.ID+" is "+u.Status)
		}
	}
	switch {
	case len(active) == 1:
		return active[0], nil
	case len(active) > 1:
		ids := make([]string, len(active))
		for i, u := range active {
			ids[i] = u.ID
		}
		return User{}, fmt.Errorf("%w: %d active users share it (%s)", ErrNoUser, len(active), strings.Join(ids, ", "))
	case len(others) > 0:
		return User{}, fmt.Errorf("%w: %s", ErrNoUser, strings.Join(others, ", "))
	}
	return User{}, fmt.Errorf("%w: %w", ErrNoUser, ErrUnknownUser)
}

// groups lists the names of the groups of the user with Okta ID id.
func (c *Client) groups(ctx context.Context, id string) ([]string, error) {
	if err := checkID(id); err != nil {
		return nil, fmt.Errorf("okta: groups of %q: %w", id, err)
	}
	var names []string
	path := usersPath + "/" + id + "/groups"
	err := c.list(ctx, bucketGroups, path, nil, func(body []byte) error {
		gs, err := decodeGroups(body)
		names = append(names, gs...)
		return err
	})
	if err != nil {
		if he, ok := asHTTPError(err); ok && he.Status == http.StatusNotFound {
			// The user went away between the two calls.
			return nil, fmt.Errorf("okta: groups of %s: %w: %w", id, ErrNoUser, err)
		}
		return nil, fmt.Errorf("okta: groups of %s: %w", id, err)
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}
