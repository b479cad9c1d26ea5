package okta

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-5eb4e92e/deploybot/authz/okta/oktatest"
)

// rateLimited asserts err is a *RateLimited until want.
func rateLimited(t *testing.T, err error, want time.Time) {
	t.Helper()
	var rl *RateLimited
	if !errors.As(err, &rl) || !errors.Is(err, ErrRateLimited) {
		t.Fatalf("err = %v, want *RateLimited", err)
	}
	if !rl.Until.Equal(want) {
		t.Fatalf("RateLimited until %v, want %v", rl.Until, want)
	}
}

// TestUsedUpLimitSendsNothingUntilReset: once a response says no calls are
// left, the next call is refused without a request until the reset, then
// goes through.
func TestUsedUpLimitSendsNothingUntilReset(t *testing.T) {
	t.Parallel()
	for _, b := range []oktatest.Bucket{oktatest.Users, oktatest.UserGroups} {
		t.Run(string(b), func(t *testing.T) {
			t.Parallel()
			srv, c, clock := org(t, oktatest.Options{Users: staff})
			ctx := context.Background()
			reset := t0.Add(40 * time.Second)
			srv.SetRateLimit(b, 1, reset)
			if _, _, err := c.UserGroups(ctx, "ann@example.com"); err != nil {
				t.Fatalf("the last call left: %v", err)
			}
			users, groups := srv.Requests(oktatest.Users), srv.Requests(oktatest.UserGroups)
			clock.Advance(39 * time.Second)
			_, _, err := c.UserGroups(ctx, "ann@example.com")
			rateLimited(t, err, reset)
			if srv.Requests(oktatest.Users) != users || srv.Requests(oktatest.UserGroups) != groups {
				t.Fatalf("requests sent while rate limited: users %d→%d, groups %d→%d",
					users, srv.Requests(oktatest.Users), groups, srv.Requests(oktatest.UserGroups))
			}
			clock.Advance(time.Second)
			if _, g, err := c.UserGroups(ctx, "ann@example.com"); err != nil || len(g) != 3 {
				t.Fatalf("after the reset: %v, %v", g, err)
			}
			if srv.Requests(oktatest.Users) != users+1 || srv.Requests(oktatest.UserGroups) != groups+1 {
				t.Errorf("after the reset: users %d, groups %d requests; want one more each",
					srv.Requests(oktatest.Users), srv.Requests(oktatest.UserGroups))
			}
		})
	}
}

func TestTooManyRequests(t *testing.T) {
	t.Parallel()
	srv, c, clock := org(t, oktatest.Options{Users: staff})
	reset := t0.Add(25 * time.Second)
	srv.SetRateLimit(oktatest.Users, 0, reset)
	_, _, err := c.UserGroups(context.Background(), "ann@example.com")
	rateLimited(t, err, reset)
	var he *HTTPError
	if srv.Requests(oktatest.Users) != 1 || errors.As(err, &he) {
		t.Fatalf("%d requests, err %v; want one, answered 429", srv.Requests(oktatest.Users), err)
	}
	clock.Advance(10 * time.Second)
	_, _, err = c.UserGroups(context.Background(), "ann@example.com")
	rateLimited(t, err, reset)
	if srv.Requests(oktatest.Users) != 1 {
		t.Errorf("a call went out before the reset: %d requests", srv.Requests(oktatest.Users))
	}
}

// TestLimitReachedMidwayReturnsNoGroups: when the groups' limit runs out
// between pages, the caller gets RateLimited, never a part of the groups.
func TestLimitReachedMidwayReturnsNoGroups(t *testing.T) {
	t.Parallel()
	srv, c, _ := org(t, oktatest.Options{Users: staff, PageSize: 2})
	reset := t0.Add(time.Minute)
	srv.SetRateLimit(oktatest.UserGroups, 1, reset)
	u, groups, err := c.UserGroups(context.Background(), "ann@example.com")
	rateLimited(t, err, reset)
	if groups != nil || u.ID != "" {
		t.Errorf("got %+v %v with the error", u, groups)
	}
	if n := srv.Requests(oktatest.UserGroups); n != 1 {
		t.Errorf("%d group requests, want 1 (the second page waits)", n)
	}
}

func TestResetTime(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 2, 10, 0, 0, 500e6, time.UTC)
	at := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).Unix(), 10) }
	date := func(d time.Duration) string { return now.Add(d).Format(http.TimeFormat) }
	tests := []struct {
		name        string
		reset, date string
		want        time.Time
	}{
		{"reset in 30s", at(30 * time.Second), "", time.Unix(now.Add(30*time.Second).Unix(), 0)},
		{"clocks agree", at(30 * time.Second), date(0), time.Unix(now.Add(30*time.Second).Unix(), 0)},
		{"server clock 5 minutes ahead", at(5*time.Minute + 30*time.Second), date(5 * time.Minute), time.Unix(now.Add(5*time.Minute+30*time.Second).Unix(), 0).Add(-5 * time.Minute).Add(500 * time.Millisecond)},
		{"no reset", "", "", now.Add(fallbackWait)},
		{"garbage reset", "soon", "", now.Add(fallbackWait)},
		{"negative reset", "-5", "", now.Add(fallbackWait)},
		{"reset in the past", at(-time.Hour), "", now.Add(minWait)},
		{"reset far away", at(24 * time.Hour), "", now.Add(maxWait)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			if tt.reset != "" {
				h.Set("X-Rate-Limit-Reset", tt.reset)
			}
			if tt.date != "" {
				h.Set("Date", tt.date)
			}
			if got := resetTime(now, h); !got.Equal(tt.want) {
				t.Errorf("resetTime = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestConcurrencyLimit429: Okta's concurrent-request 429 has limit and
// remaining 0 and an estimated reset; it is handled like any 429.
func TestConcurrencyLimit429(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	reset := t0.Add(3 * time.Second)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Date", t0.Format(http.TimeFormat))
		w.Header().Set("X-Rate-Limit-Limit", "0")
		w.Header().Set("X-Rate-Limit-Remaining", "0")
		w.Header().Set("X-Rate-Limit-Reset", strconv.FormatInt(reset.Unix(), 10))
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	t.Cleanup(srv.Close)
	clock := oktatest.NewClock(t0)
	c := client(t, srv.URL, token, clock)
	for range 3 {
		_, _, err := c.UserGroups(context.Background(), "ann@example.com")
		rateLimited(t, err, reset)
	}
	if hits.Load() != 1 {
		t.Errorf("%d requests, want 1", hits.Load())
	}
}

func TestLimiterKeepsBucketsApart(t *testing.T) {
	t.Parallel()
	l := newLimiter()
	h := http.Header{"X-Rate-Limit-Remaining": {"0"}, "X-Rate-Limit-Reset": {strconv.FormatInt(t0.Add(time.Minute).Unix(), 10)}}
	if until := l.observe(t0, bucketGroups, http.StatusOK, h); !until.Equal(t0.Add(time.Minute)) {
		t.Fatalf("observe = %v", until)
	}
	if err := l.check(t0, bucketUsers); err != nil {
		t.Errorf("users blocked by the groups' limit: %v", err)
	}
	if err := l.check(t0, bucketUsers, bucketGroups); err == nil {
		t.Error("groups' limit not seen")
	}
	h.Set("X-Rate-Limit-Remaining", "7")
	if until := l.observe(t0, bucketUsers, http.StatusOK, h); !until.IsZero() {
		t.Errorf("observe with calls left = %v, want zero", until)
	}
	if err := l.check(t0.Add(time.Minute), bucketGroups); err != nil {
		t.Errorf("still blocked at the reset: %v", err)
	}
}
