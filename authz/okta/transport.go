package okta

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-resty/resty/v2"
)

const (
	usersPath = "/api/v1/users"
	// maxPages caps the pages one listing follows, so a server whose next
	// links never end cannot keep the client busy forever.
	maxPages = 50
	// maxBody caps a response body.
	maxBody = 16 << 20
)

// list GETs path with query q from the org, then every page the Link
// headers point to as rel="next", giving each body to page. The first
// error stops it.
func (c *Client) list(ctx context.Context, b bucket, path string, q url.Values, page func(body []byte) error) error {
	target := path
	seen := map[string]bool{}
	for n := 1; ; n++ {
		if n > maxPages {
			return fmt.Errorf("more than %d pages; stopped", maxPages)
		}
		if err := c.limits.check(c.now(), b); err != nil {
			return err
		}
		resp, err := c.get(ctx, b, target, q)
		if err != nil {
			return err
		}
		if err := page(resp.Body()); err != nil {
			return fmt.Errorf("page %d: %w", n, err)
		}
		sent := resp.Request.RawRequest.URL
		seen[sent.String()] = true
		next, err := c.next(resp.Header().Values("Link"), sent, path)
		if err != nil {
			return fmt.Errorf("page %d: %w", n, err)
		}
		if next == nil {
			return nil
		}
		if seen[next.String()] {
			return fmt.Errorf("page %d: its next link goes back to a page already read", n)
		}
		target, q = next.String(), nil
	}
}

// get sends one GET and returns a 200 response. It notes the rate-limit
// headers of whatever comes back.
func (c *Client) get(ctx context.Context, b bucket, target string, q url.Values) (*resty.Response, error) {
	req := c.rc.R().SetContext(ctx)
	if q != nil {
		req.SetQueryParamsFromValues(q)
	}
	resp, err := req.Get(target)
	if err != nil {
		return nil, requestError(resp, err)
	}
	status := resp.StatusCode()
	if until := c.limits.observe(c.now(), b, status, resp.Header()); !until.IsZero() {
		if status == http.StatusTooManyRequests {
			return nil, &RateLimited{Until: until}
		}
		c.log.Warn("okta: rate limit used up; no calls until it resets",
			"bucket", string(b), "until", until, "limit", resp.Header().Get("X-Rate-Limit-Limit"))
	}
	if status != http.StatusOK {
		return nil, httpError(status, resp.Body(), c.token)
	}
	return resp, nil
}

// requestError is err without the request URL *url.Error carries, saying
// so plainly when the error is a redirect the client refused.
func requestError(resp *resty.Response, err error) error {
	if errors.Is(err, resty.ErrAutoRedirectDisabled) {
		what := "a redirect"
		if resp != nil && resp.RawResponse != nil {
			what = fmt.Sprintf("%d, a redirect", resp.RawResponse.StatusCode)
			if loc, lerr := resp.RawResponse.Location(); lerr == nil {
				what += " to " + loc.Scheme + "://" + loc.Host
			}
		}
		return fmt.Errorf("answered %s, not followed: %w", what, resty.ErrAutoRedirectDisabled)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", strings.ToLower(ue.Op), ue.Err)
	}
	return err
}

// next returns the rel="next" link among the Link header values, resolved
// against the URL of the page that carried it; nil when there is none. A
// link anywhere but path on the org's own scheme and host is refused: the
// token goes with every request.
func (c *Client) next(links []string, page *url.URL, path string) (*url.URL, error) {
	ref, err := nextLink(links)
	if err != nil || ref == "" {
		return nil, err
	}
	u, err := page.Parse(ref)
	if err != nil {
		return nil, fmt.Errorf("next link: not a URL")
	}
	if u.Scheme != c.base.Scheme || !sameHost(u, c.base) || u.User != nil {
		return nil, fmt.Errorf("next link to %s://%s refused: not the org's %s", u.Scheme, u.Host, c.base)
	}
	if u.Path != path {
		return nil, fmt.Errorf("next link to path %q refused: not %s", u.Path, path)
	}
	u.Fragment, u.RawFragment = "", ""
	return u, nil
}

// sameHost compares hosts case-insensitively, a default port being the
// same as none.
func sameHost(a, b *url.URL) bool {
	norm := func(u *url.URL) string {
		port := u.Port()
		if (u.Scheme == "https" && port == "443") || (u.Scheme == "http" && port == "80") {
			port = ""
		}
		return strings.ToLower(u.Hostname()) + ":" + port
	}
	return norm(a) == norm(b)
}

// nextLink finds the target of the link with relation "next" in Link
// header values (RFC 8288: `<uri>; rel="next", <uri>; rel="self"`); ""
// when there is none.
func nextLink(values []string) (string, error) {
	var next string
	for _, v := range values {
		for v = strings.TrimLeft(v, " \t,"); v != ""; v = strings.TrimLeft(v, " \t,") {
			if v[0] != '<' {
				return "", fmt.Errorf("malformed Link header")
			}
			end := strings.IndexByte(v, '>')
			if end < 0 {
				return "", fmt.Errorf("malformed Link header")
			}
			target := v[1:end]
			params, rest := splitLinkParams(v[end+1:])
			if p := strings.TrimSpace(params); strings.Contains(target, "<") || (p != "" && p[0] != ';') {
				return "", fmt.Errorf("malformed Link header")
			}
			if hasRel(params, "next") {
				if next != "" && next != target {
					return "", fmt.Errorf("several different next links")
				}
				next = target
			}
			v = rest
		}
	}
	return next, nil
}

// splitLinkParams returns the parameters of one link, up to the comma that
// ends it outside quotes, and what follows that comma.
func splitLinkParams(s string) (params, rest string) {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if quoted {
				i++
			}
		case '"':
			quoted = !quoted
		case ',':
			if !quoted {
				return s[:i], s[i+1:]
			}
		}
	}
	return s, ""
}

// hasRel says whether params (`; rel="next"; title="x"`) has a rel
// parameter listing relation.
func hasRel(params, relation string) bool {
	for _, p := range strings.Split(params, ";") {
		name, value, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(name), "rel") {
			continue
		}
		value = strings.Trim(strings.TrimSpace(value), `"`)
		for _, r := range strings.Fields(value) {
			if strings.EqualFold(r, relation) {
				return true
			}
		}
	}
	return false
}

// restyLog sends resty's own log lines to slog at debug level: whatever
// resty reports as an error is also returned to the caller.
type restyLog struct{ l *slog.Logger }

func (r restyLog) Errorf(format string, v ...any) { r.l.Debug("resty: " + fmt.Sprintf(format, v...)) }
func (r restyLog) Warnf(format string, v ...any)  { r.l.Debug("resty: " + fmt.Sprintf(format, v...)) }
func (r restyLog) Debugf(format string, v ...any) { r.l.Debug("resty: " + fmt.Sprintf(format, v...)) }
