package okta

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// bucket is an Okta rate-limit bucket: endpoints that share one quota.
// Listing users (GET /api/v1/users) has a bucket of its own in Okta's
// management rate limits; a user's groups are counted apart from it.
type bucket string

const (
	bucketUsers  bucket = "users"
	bucketGroups bucket = "user groups"
)

const (
	// fallbackWait is how long to stay away when Okta says stop but gives
	// no usable reset time.
	fallbackWait = time.Minute
	// maxWait caps a reset time: Okta's windows are a minute long, so a
	// reset far away is a broken header, not a reason to stop for hours.
	maxWait = 10 * time.Minute
	// minWait is the least time to stay away after being told to stop.
	minWait = time.Second
	// skewTolerance is the difference between the server's Date and our
	// clock below which the clocks are taken to agree (Date has one-second
	// resolution).
	skewTolerance = 2 * time.Second
)

// limiter remembers, per bucket, until when Okta said no calls are left.
type limiter struct {
	mu    sync.Mutex
	until map[bucket]time.Time
}

func newLimiter() *limiter { return &limiter{until: map[bucket]time.Time{}} }

// check returns a *RateLimited when any of the buckets is used up at now,
// with the latest of their reset times.
func (l *limiter) check(now time.Time, buckets ...bucket) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var until time.Time
	for _, b := range buckets {
		if u := l.until[b]; now.Before(u) && u.After(until) {
			until = u
		}
	}
	if until.IsZero() {
		return nil
	}
	return &RateLimited{Until: until}
}

// observe reads the rate-limit headers of a response from bucket b. When
// the response is a 429, or says no calls are left, it remembers the reset
// time and returns it; otherwise it returns the zero time.
func (l *limiter) observe(now time.Time, b bucket, status int, h http.Header) time.Time {
	remaining, ok := headerInt(h, "X-Rate-Limit-Remaining")
	if status != http.StatusTooManyRequests && (!ok || remaining > 0) {
		return time.Time{}
	}
	until := resetTime(now, h)
	l.mu.Lock()
	defer l.mu.Unlock()
	if until.After(l.until[b]) {
		l.until[b] = until
	}
	return until
}

// resetTime is X-Rate-Limit-Reset (UTC epoch seconds) on our clock: when
// the server's Date header shows its clock differs from ours by more than
// skewTolerance, the reset is moved by the difference, as Okta's own SDK
// does. Without a usable reset it is fallbackWait from now; it is kept
// between minWait and maxWait from now.
func resetTime(now time.Time, h http.Header) time.Time {
	reset, ok := headerInt(h, "X-Rate-Limit-Reset")
	if !ok || reset <= 0 || reset > 1<<40 {
		return now.Add(fallbackWait)
	}
	until := time.Unix(reset, 0)
	if date, err := http.ParseTime(h.Get("Date")); err == nil {
		if skew := now.Sub(date); skew > skewTolerance || skew < -skewTolerance {
			until = until.Add(skew)
		}
	}
	switch {
	case until.Sub(now) > maxWait:
		return now.Add(maxWait)
	case until.Sub(now) < minWait:
		return now.Add(minWait)
	}
	return until
}

func headerInt(h http.Header, key string) (int64, bool) {
	v := strings.TrimSpace(h.Get(key))
	if v == "" {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}
