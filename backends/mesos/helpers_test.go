package mesos

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/seed-5eb4e92e/deploybot/backends/mesos/mesostest"
)

// failAfter bounds how long a test waits for something that should happen
// at once; it is a deadline for a broken test, not a speed requirement.
const failAfter = 20 * time.Second

// Heartbeat intervals: a slow one where nothing depends on heartbeats, so
// a loaded machine does not make the client re-subscribe when a test
// counts subscriptions; a fast one where missing heartbeats is the test.
const (
	slowHeartbeat = time.Second
	fastHeartbeat = 20 * time.Millisecond
)

func startMaster(t *testing.T, opts mesostest.Options) *mesostest.Server {
	t.Helper()
	if opts.HeartbeatInterval == 0 {
		opts.HeartbeatInterval = slowHeartbeat
	}
	srv := mesostest.Start(opts)
	t.Cleanup(srv.Close)
	return srv
}

func newClient(t *testing.T, cfg Config, srv *mesostest.Server) *Client {
	t.Helper()
	if cfg.URL == "" {
		cfg.URL = srv.URL
	}
	c, err := New(cfg, srv.Client(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.retry = retryPolicy{min: time.Millisecond, max: 10 * time.Millisecond, attempts: 5}
	return c
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), failAfter)
	t.Cleanup(cancel)
	return ctx
}

// reports collects what RunTask reports, for a test to read while the run
// goes on.
type reports struct {
	mu     sync.Mutex
	states []string
	seen   chan TaskStatus
}

func newReports() *reports { return &reports{seen: make(chan TaskStatus, 100)} }

func (r *reports) add(s TaskStatus) {
	r.mu.Lock()
	r.states = append(r.states, s.State)
	r.mu.Unlock()
	r.seen <- s
}

func (r *reports) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.states...)
}

// waitState waits until a report with state arrives.
func (r *reports) waitState(t *testing.T, state string) TaskStatus {
	t.Helper()
	timeout := time.After(failAfter)
	for {
		select {
		case s := <-r.seen:
			if s.State == state {
				return s
			}
		case <-timeout:
			t.Fatalf("no %s report; saw %v", state, r.list())
		}
	}
}

// eventually polls cond until it holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(failAfter)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: did not happen", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func spec(id string) TaskSpec {
	return TaskSpec{
		ID: id, Name: "migrate api", Image: "registry.example.com/api:1.4.2", Command: "bin/migrate up",
		Env: map[string]string{"DATABASE_URL": "postgres://db.example.com/api"}, CPUs: 0.5, MemMB: 256,
		Labels: map[string]string{"deploybot.job": "42"},
	}
}

// runAsync runs RunTask in a goroutine and returns its result channel.
func runAsync(ctx context.Context, c *Client, s TaskSpec, rep *reports) <-chan runResult {
	out := make(chan runResult, 1)
	go func() {
		st, err := c.RunTask(ctx, s, rep.add)
		out <- runResult{st, err}
	}()
	return out
}

type runResult struct {
	status TaskStatus
	err    error
}

func wait(t *testing.T, ch <-chan runResult) runResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(failAfter):
		t.Fatal("RunTask did not return")
		return runResult{}
	}
}
