package jenkins

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// ErrArtifactTooLarge means an artifact is bigger than the caller's limit;
// Artifact is for small files such as a version or image tag.
var ErrArtifactTooLarge = errors.New("jenkins: artifact is larger than the limit")

// ErrArtifactRedirected means Jenkins sent the artifact somewhere else: it
// does so for every file when a resource root URL is configured
// (ResourceDomainRootAction) and when an artifact manager keeps files in
// external storage. The client does not follow, because it only calls the
// configured Jenkins URL.
var ErrArtifactRedirected = errors.New("jenkins: artifact is served from another address, which this client does not follow")

var escapedRE = regexp.MustCompile(`%[0-9A-Fa-f]{2}`)

// ArtifactPath checks an artifact's relative path, unescaped as in
// Artifact.RelativePath ("dist/api-1.4.2.tar.gz"), and returns it escaped
// for a URL. It refuses what would make Jenkins serve something other than
// that one file, or would leave the archive: empty, "." and ".." elements;
// a leading or trailing "/"; backslashes; "*" and "?" (Jenkins' directory
// browser reads them as a glob, and "*zip*" and "*view*" as commands); ";"
// (a path parameter to Jetty); control characters; a scheme or drive
// letter ("https:", "C:"); anything already percent-encoded, such as
// "%2F", rather than escape it a second time; and more than 1024 bytes.
func ArtifactPath(relativePath string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("jenkins: bad artifact path %q: %s", relativePath, why)
	}
	switch {
	case relativePath == "":
		return bad("empty")
	case len(relativePath) > 1024:
		return bad("too long")
	case strings.HasPrefix(relativePath, "/"):
		return bad("absolute")
	case strings.ContainsAny(relativePath, `\*?;`):
		return bad(`it has \, *, ? or ;`)
	case strings.ContainsFunc(relativePath, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return bad("control character")
	case escapedRE.MatchString(relativePath):
		return bad("already escaped")
	}
	segs := strings.Split(relativePath, "/")
	if strings.Contains(segs[0], ":") {
		return bad("scheme or drive letter")
	}
	for i, seg := range segs {
		if seg == "" || seg == "." || seg == ".." {
			return bad("empty, . or .. element")
		}
		segs[i] = url.PathEscape(seg)
	}
	return strings.Join(segs, "/"), nil
}

// Artifact reads a small file that build number of job archived, at
// relativePath under its archive (GET …/N/artifact/<path>), for example the
// image tag a job wrote to "image.txt". It fails with ErrArtifactTooLarge
// when the file has more than maxBytes bytes, with an *HTTPError with
// status 404 when there is no such artifact, and with ErrArtifactRedirected
// when Jenkins serves it from another address.
func (c *Client) Artifact(ctx context.Context, job string, number int, relativePath string, maxBytes int64) ([]byte, error) {
	bp, err := buildPath(job, number)
	if err != nil {
		return nil, err
	}
	ap, err := ArtifactPath(relativePath)
	if err != nil {
		return nil, err
	}
	if maxBytes <= 0 {
		return nil, fmt.Errorf("jenkins: artifact limit must be positive, not %d", maxBytes)
	}
	path := bp + "artifact/" + ap
	req, err := c.newRequest(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "*/*")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jenkins: GET %s: %w", path, err)
	}
	defer drain(resp)
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return nil, redirectError(resp, relativePath)
	case resp.StatusCode != http.StatusOK:
		return nil, c.httpError(resp)
	case resp.ContentLength > maxBytes:
		return nil, fmt.Errorf("jenkins: artifact %s: %d bytes: %w (%d)", relativePath, resp.ContentLength, ErrArtifactTooLarge, maxBytes)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("jenkins: GET %s: %w", path, err)
	}
	if int64(len(body)) > maxBytes {
		return nil, fmt.Errorf("jenkins: artifact %s: %w (%d)", relativePath, ErrArtifactTooLarge, maxBytes)
	}
	return body, nil
}

// redirectError explains a redirect without repeating its Location, which
// for a resource root URL carries an access token.
func redirectError(resp *http.Response, relativePath string) error {
	loc, err := resp.Location()
	if err == nil && loc.Host == resp.Request.URL.Host && loc.Path == resp.Request.URL.Path+"/" {
		return fmt.Errorf("jenkins: artifact %s is a directory", relativePath)
	}
	host := "an unreadable Location"
	if err == nil {
		host = loc.Host
	}
	return fmt.Errorf("jenkins: artifact %s: %d to %s: %w", relativePath, resp.StatusCode, host, ErrArtifactRedirected)
}
