package signin

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seed-5eb4e92e/deploybot/worker/queue/queuetest"
)

// testPending is what the RedisStates tests store.
func testPending() Pending {
	return Pending{SlackUser: "U123", Nonce: "n", Verifier: "v", Expires: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func TestRedisStates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		run  func(t *testing.T, s *RedisStates, rdb redis.UniversalClient, prefix string)
	}{
		{name: "put peek take", run: putPeekTake},
		{name: "unknown", run: unknownStates},
		{name: "key and ttl", run: keyAndTTL},
		{name: "no overwrite", run: noOverwrite},
		{name: "bad put", run: badPut},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rdb, prefix := queuetest.Redis(t)
			tt.run(t, NewRedisStates(rdb, prefix), rdb, prefix)
		})
	}
}

func putPeekTake(t *testing.T, s *RedisStates, _ redis.UniversalClient, _ string) {
	mustPut(t, s, "st", testPending(), time.Minute)
	for _, get := range []func() (Pending, error){
		func() (Pending, error) { return s.Peek(t.Context(), "st") },
		func() (Pending, error) { return s.Peek(t.Context(), "st") },
		func() (Pending, error) { return s.Take(t.Context(), "st") },
	} {
		if got, err := get(); err != nil || !samePending(got, testPending()) {
			t.Fatalf("got %+v, %v; want %+v", got, err, testPending())
		}
	}
	if _, err := s.Take(t.Context(), "st"); !errors.Is(err, ErrUnknownState) {
		t.Errorf("second Take: %v, want ErrUnknownState", err)
	}
	if _, err := s.Peek(t.Context(), "st"); !errors.Is(err, ErrUnknownState) {
		t.Errorf("Peek after Take: %v, want ErrUnknownState", err)
	}
}

func unknownStates(t *testing.T, s *RedisStates, _ redis.UniversalClient, _ string) {
	for _, state := range []string{"never-put", ""} {
		if _, err := s.Take(t.Context(), state); !errors.Is(err, ErrUnknownState) {
			t.Errorf("Take(%q): %v", state, err)
		}
		if _, err := s.Peek(t.Context(), state); !errors.Is(err, ErrUnknownState) {
			t.Errorf("Peek(%q): %v", state, err)
		}
	}
}

func keyAndTTL(t *testing.T, s *RedisStates, rdb redis.UniversalClient, prefix string) {
	mustPut(t, s, "st", testPending(), 90*time.Second)
	key := "{" + prefix + "}:oidc:state:st"
	ttl, err := rdb.TTL(t.Context(), key).Result()
	if err != nil || ttl <= 0 || ttl > 90*time.Second {
		t.Errorf("TTL of %s = %v, %v; want (0, 90s]", key, ttl, err)
	}
	var stored map[string]any
	b, err := rdb.Get(t.Context(), key).Bytes()
	if err != nil || json.Unmarshal(b, &stored) != nil {
		t.Fatalf("stored %q, %v", b, err)
	}
	if stored["slack_user"] != "U123" || stored["nonce"] != "n" || stored["verifier"] != "v" || stored["expires"] != "2030-01-02T03:04:05Z" {
		t.Errorf("stored JSON %s", b)
	}
}

func noOverwrite(t *testing.T, s *RedisStates, _ redis.UniversalClient, _ string) {
	mustPut(t, s, "st", testPending(), time.Minute)
	other := testPending()
	other.SlackUser = "UEVIL"
	if err := s.Put(t.Context(), "st", other, time.Minute); err == nil {
		t.Error("Put over a pending state succeeded")
	}
	if got, _ := s.Peek(t.Context(), "st"); got.SlackUser != "U123" {
		t.Errorf("state now belongs to %q", got.SlackUser)
	}
}

func badPut(t *testing.T, s *RedisStates, _ redis.UniversalClient, _ string) {
	if err := s.Put(t.Context(), "st", testPending(), 0); err == nil {
		t.Error("Put without a TTL succeeded")
	}
	if err := s.Put(t.Context(), "", testPending(), time.Minute); err == nil {
		t.Error("Put of an empty state succeeded")
	}
}

func TestRedisStatesDown(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { rdb.Close() })
	s := NewRedisStates(rdb, "down")
	if _, err := s.Take(t.Context(), "st"); err == nil || errors.Is(err, ErrUnknownState) {
		t.Errorf("Take: %v, want a store error, not ErrUnknownState", err)
	}
	if err := s.Put(t.Context(), "st", Pending{}, time.Minute); err == nil {
		t.Error("Put succeeded against a dead server")
	}
}

func mustPut(t *testing.T, s *RedisStates, state string, p Pending, ttl time.Duration) {
	t.Helper()
	if err := s.Put(t.Context(), state, p, ttl); err != nil {
		t.Fatal(err)
	}
}

func samePending(a, b Pending) bool {
	return a.SlackUser == b.SlackUser && a.Nonce == b.Nonce && a.Verifier == b.Verifier && a.Expires.Equal(b.Expires)
}
