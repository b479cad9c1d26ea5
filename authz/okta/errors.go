package okta

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ErrNoUser is what UserGroups' error wraps when no ACTIVE Okta user has
// the e-mail, or when several do (the wrapping error says which).
var ErrNoUser = errors.New("no active user with that email")

// ErrUnknownUser is wrapped, with ErrNoUser, when Okta has no user with
// the e-mail at all, as opposed to only inactive or several active ones:
// a caller may then fall back to another source of groups, which it must
// not do for someone Okta has deactivated.
var ErrUnknownUser = errors.New("okta has no user with that email")

// ErrRateLimited is what every *RateLimited unwraps to.
var ErrRateLimited = errors.New("rate limit reached")

// errBadEmail is wrapped by the error for an e-mail refused before any
// request is sent.
var errBadEmail = errors.New("bad email")

// RateLimited says Okta's rate limit for an endpoint is used up, and when
// it resets. Until then the client sends that endpoint nothing.
type RateLimited struct {
	// Until is when Okta's limit resets, on the client's clock.
	Until time.Time
}

// Error says until when.
func (e *RateLimited) Error() string {
	return ErrRateLimited.Error() + " until " + e.Until.UTC().Format(time.RFC3339)
}

// Unwrap returns ErrRateLimited.
func (e *RateLimited) Unwrap() error { return ErrRateLimited }

// HTTPError is an error answer from Okta, with the fields of Okta's error
// object. Only Code is meant for deciding what to do; Summary is for
// people and may change.
type HTTPError struct {
	// Status is the HTTP status code.
	Status int
	// Code is Okta's errorCode, e.g. E0000011 for an invalid token.
	Code string
	// Summary is Okta's errorSummary, cleaned of control characters, cut
	// short and with the API token, should it appear, masked.
	Summary string
	// ID is Okta's errorId, which Okta support can look up.
	ID string
}

// Error gives the status, code and summary; never the API token.
func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("HTTP %d", e.Status)
	if t := http.StatusText(e.Status); t != "" {
		msg += " " + t
	}
	if e.Code != "" {
		msg += ": " + e.Code
	}
	if e.Summary != "" {
		msg += " " + e.Summary
	}
	if e.ID != "" {
		msg += " (errorId " + e.ID + ")"
	}
	return msg
}

// maxSummary bounds the length of HTTPError.Summary in bytes.
const maxSummary = 300

// httpError makes an *HTTPError of an error answer. The body is Okta's
// error object when it can be read as one; its strings are cleaned and the
// token masked, since a summary can echo what was sent.
func httpError(status int, body []byte, token string) *HTTPError {
	var obj struct {
		Code    string `json:"errorCode"`
		Summary string `json:"errorSummary"`
		ID      string `json:"errorId"`
	}
	he := &HTTPError{Status: status}
	if json.Unmarshal(body, &obj) != nil {
		return he
	}
	he.Code = clean(obj.Code, token, 32)
	he.Summary = clean(obj.Summary, token, maxSummary)
	he.ID = clean(obj.ID, token, 64)
	return he
}

// clean masks token in s, drops control characters and cuts s to at most
// max bytes, on a rune boundary.
func clean(s, token string, max int) string {
	if token != "" {
		s = strings.ReplaceAll(s, token, "[token]")
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return -1
		}
		return r
	}, s)
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func asHTTPError(err error) (*HTTPError, bool) {
	var he *HTTPError
	ok := errors.As(err, &he)
	return he, ok
}
