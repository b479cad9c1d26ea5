package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/seed-5eb4e92e/deploybot/bot"
)

const testSecret = "8f742231b10e8888abcd99yyyzzz85a5"

// testRedis returns a client for REDIS_URL when it is set (CI's real Redis,
// which must answer) and for an in-process miniredis otherwise.
func testRedis(t *testing.T) *redis.Client {
	t.Helper()
	u := os.Getenv("REDIS_URL")
	if u == "" {
		u = "redis://" + miniredis.RunT(t).Addr()
	}
	opt, err := redis.ParseURL(u)
	if err != nil {
		t.Fatalf("parse REDIS_URL: %v", err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("redis at %s does not answer: %v", opt.Addr, err)
	}
	return rdb
}

// newTestServer returns a server writing to a stream of the test's own,
// removed when the test ends.
func newTestServer(t *testing.T, rdb *redis.Client, now time.Time) *server {
	t.Helper()
	stream := fmt.Sprintf("{bench}:floor:test:%s:%d", t.Name(), time.Now().UnixNano())
	t.Cleanup(func() { _ = rdb.Del(context.Background(), stream).Err() })
	return &server{secret: []byte(testSecret), rdb: rdb, stream: stream, now: func() time.Time { return now }}
}

func TestSignedRequests(t *testing.T) {
	t.Parallel()
	rdb := testRedis(t)
	now := time.Unix(1_700_000_000, 0)
	command := url.Values{
		"token": {"x"}, "team_id": {"T1"}, "user_id": {"U1"}, "channel_id": {"C1"},
		"command": {"/deploy"}, "text": {"build api main"}, "response_url": {"https://hooks.slack.test/r"},
		"trigger_id": {"1.2.3"},
	}.Encode()
	payload := `{"type":"block_actions","user":{"id":"U2"},"actions":[{"action_id":"retry","value":"job-1"}]}`
	click := url.Values{"payload": {payload}}.Encode()

	tests := []struct {
		name     string
		path     string
		body     string
		secret   string
		signedAt time.Time
		wantCode int
		wantJob  job // zero when nothing may be queued
	}{
		{"command", "/slack/commands", command, testSecret, now, http.StatusOK,
			job{Type: "command", UserID: "U1", Command: "/deploy", Text: "build api main"}},
		{"click", "/slack/interactions", click, testSecret, now, http.StatusOK,
			job{Type: "block_actions", UserID: "U2", Payload: json.RawMessage(payload)}},
		{"inside window", "/slack/commands", command, testSecret, now.Add(-4 * time.Minute), http.StatusOK,
			job{Type: "command", UserID: "U1", Command: "/deploy", Text: "build api main"}},
		{"bad signature", "/slack/commands", command, "not-the-secret", now, http.StatusUnauthorized, job{}},
		{"bad signature click", "/slack/interactions", click, "not-the-secret", now, http.StatusUnauthorized, job{}},
		{"old timestamp", "/slack/commands", command, testSecret, now.Add(-6 * time.Minute), http.StatusUnauthorized, job{}},
		{"future timestamp", "/slack/commands", command, testSecret, now.Add(6 * time.Minute), http.StatusUnauthorized, job{}},
		{"unsigned", "/slack/commands", command, "", now, http.StatusUnauthorized, job{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newTestServer(t, rdb, now)
			req := httptest.NewRequest(http.MethodPost, tc.path, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.secret != "" {
				bot.Sign(req.Header, tc.secret, []byte(tc.body), tc.signedAt)
			}
			rec := httptest.NewRecorder()
			s.handler().ServeHTTP(rec, req)
			if rec.Code != tc.wantCode {
				t.Fatalf("status = %d, want %d; body %q", rec.Code, tc.wantCode, rec.Body.String())
			}
			entries, err := rdb.XRange(context.Background(), s.stream, "-", "+").Result()
			if err != nil {
				t.Fatalf("XRANGE: %v", err)
			}
			if tc.wantJob.Type == "" {
				if len(entries) != 0 {
					t.Fatalf("stream has %d entries, want none: %v", len(entries), entries)
				}
				return
			}
			if rec.Body.String() != string(ack) {
				t.Errorf("body = %q, want %q", rec.Body.String(), ack)
			}
			if len(entries) != 1 {
				t.Fatalf("stream has %d entries, want exactly one: %v", len(entries), entries)
			}
			var got job
			if err := json.Unmarshal([]byte(fmt.Sprint(entries[0].Values["job"])), &got); err != nil {
				t.Fatalf("job field %q: %v", entries[0].Values["job"], err)
			}
			if got.Type != tc.wantJob.Type || got.UserID != tc.wantJob.UserID || got.Command != tc.wantJob.Command ||
				got.Text != tc.wantJob.Text || string(got.Payload) != string(tc.wantJob.Payload) {
				t.Errorf("job = %+v, want %+v", got, tc.wantJob)
			}
		})
	}
}

// TestRedisDown checks that a failed XADD is never acknowledged as queued.
func TestRedisDown(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	mr.Close()
	now := time.Now()
	s := &server{secret: []byte(testSecret), rdb: rdb, stream: "{bench}:floor:down", now: func() time.Time { return now }}
	body := url.Values{"user_id": {"U1"}, "command": {"/deploy"}, "text": {"help"}}.Encode()
	req := httptest.NewRequest(http.MethodPost, "/slack/commands", strings.NewReader(body))
	bot.Sign(req.Header, testSecret, []byte(body), now)
	rec := httptest.NewRecorder()
	s.handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want %d; body %q", rec.Code, http.StatusServiceUnavailable, rec.Body.String())
	}
	if strings.Contains(rec.Body.String(), "Queued") {
		t.Errorf("body %q claims the job was queued", rec.Body.String())
	}
}

func TestHealthz(t *testing.T) {
	t.Parallel()
	s := &server{now: time.Now}
	rec := httptest.NewRecorder()
	s.handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200", rec.Code)
	}
}

// FuzzVerify checks that no header or body the fuzzer makes up passes the
// signature check unless it is the real signature.
func FuzzVerify(f *testing.F) {
	now := time.Unix(1_700_000_000, 0)
	f.Add("1700000000", "v0=00", []byte("user_id=U1"))
	f.Add("", "", []byte{})
	f.Add("-9223372036854775808", "v0=", []byte("payload={}"))
	s := &server{secret: []byte(testSecret), now: func() time.Time { return now }}
	f.Fuzz(func(t *testing.T, ts, sig string, body []byte) {
		h := http.Header{}
		h.Set("X-Slack-Request-Timestamp", ts)
		h.Set("X-Slack-Signature", sig)
		if !s.verify(h, body) {
			return
		}
		sec, err := strconv.ParseInt(ts, 10, 64)
		if err != nil {
			t.Fatalf("accepted unparsable timestamp %q", ts)
		}
		want := http.Header{}
		bot.Sign(want, testSecret, body, time.Unix(sec, 0))
		if sig != want.Get("X-Slack-Signature") || ts != want.Get("X-Slack-Request-Timestamp") {
			t.Fatalf("accepted ts=%q sig=%q for body %q", ts, sig, body)
		}
	})
}
