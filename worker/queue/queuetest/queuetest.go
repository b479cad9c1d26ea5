// Package queuetest gives tests a Redis to run the queue against: the real
// server named by REDIS_URL when it is set (as in CI), otherwise an
// in-process miniredis so `go test ./...` works on a fresh machine. With
// DEPLOYBOT_REQUIRE_REDIS=1 a test fails instead of falling back.
package queuetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// Redis returns a client for the test and a key prefix of its own. Keys
// under the prefix are deleted when the test ends.
func Redis(t testing.TB) (redis.UniversalClient, string) {
	t.Helper()
	url, prefix := URL(t)
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("REDIS_URL: %v", err)
	}
	opts.ContextTimeoutEnabled = true
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	return rdb, prefix
}

// URL returns a Redis URL for the test and a key prefix of its own: the
// server in REDIS_URL, or a new in-process one. Keys under the prefix are
// deleted when the test ends.
func URL(t testing.TB) (url, prefix string) {
	t.Helper()
	prefix = Prefix(t)
	url = os.Getenv("REDIS_URL")
	if url == "" {
		if os.Getenv("DEPLOYBOT_REQUIRE_REDIS") == "1" {
			t.Fatal("DEPLOYBOT_REQUIRE_REDIS=1 but REDIS_URL is not set")
		}
		return "redis://" + miniredis.RunT(t).Addr(), prefix
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("REDIS_URL: %v", err)
	}
	rdb := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		t.Fatalf("REDIS_URL=%s does not answer: %v", url, err)
	}
	t.Cleanup(func() {
		defer rdb.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		iter := rdb.Scan(ctx, 0, "{"+prefix+"}:*", 500).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
	})
	return url, prefix
}

// Real reports whether tests run against a real Redis server.
func Real() bool { return os.Getenv("REDIS_URL") != "" }

var unsafe = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// Prefix returns a key prefix unique to this test run.
func Prefix(t testing.TB) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := unsafe.ReplaceAllString(t.Name(), "_")
	if len(name) > 40 {
		name = name[:40]
	}
	return "t-" + strings.ToLower(name) + "-" + hex.EncodeToString(b[:])
}

// New returns a queue on the test's Redis with cfg (Prefix is filled in)
// and its own metrics registry.
func New(t testing.TB, cfg queue.Config) (*queue.Queue, redis.UniversalClient, *prometheus.Registry) {
	t.Helper()
	rdb, prefix := Redis(t)
	cfg.Prefix = prefix
	reg := prometheus.NewRegistry()
	q, err := queue.New(cfg, rdb, reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	return q, rdb, reg
}
