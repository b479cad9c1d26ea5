// Package endpoint is what every backend client does with its configured
// address before the first call: check it, and make an HTTP client that
// never follows a redirect with our credentials.
package endpoint

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Base parses raw as the root of backend's API: an absolute http(s) URL
// without credentials (they belong in the settings named by where, such
// as "user and password"), ending in a slash, with no query or fragment.
// Its errors never quote raw, which could carry a password.
func Base(backend, raw, where string) (*url.URL, error) {
	base, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: url is not a valid URL", backend)
	}
	if base.Scheme != "http" && base.Scheme != "https" || base.Host == "" {
		return nil, fmt.Errorf("%s: url must be an absolute http(s) URL", backend)
	}
	if base.User != nil {
		return nil, fmt.Errorf("%s: put credentials in %s, not in the URL", backend, where)
	}
	if !strings.HasSuffix(base.Path, "/") {
		base.Path += "/"
	}
	base.RawPath, base.RawQuery, base.Fragment = "", "", ""
	return base, nil
}

// Client is a copy of hc (or of a client with timeout, when hc is nil)
// that hands redirects back to the caller instead of following them: a
// Location header must not be able to send our credentials to another
// host.
func Client(hc *http.Client, timeout time.Duration) *http.Client {
	if hc == nil {
		hc = &http.Client{Timeout: timeout}
	}
	c := *hc
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}
