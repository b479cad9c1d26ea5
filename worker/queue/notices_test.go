package queue_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-5eb4e92e/deploybot/worker/queue"
	"github.com/seed-5eb4e92e/deploybot/worker/queue/queuetest"
)

func TestNoticeRoundTrip(t *testing.T) {
	t.Parallel()
	q, _, _ := queuetest.New(t, queue.Config{})
	ctx := context.Background()
	n := queue.Notice{Subject: "change:platform/api:1503", Service: "api", Channel: "C1", State: "failing", Failures: []string{"x"}}
	if err := q.SaveNotice(ctx, n); err != nil {
		t.Fatal(err)
	}
	back, err := q.Notice(ctx, queue.NoticeID(n.Subject))
	if err != nil || back.ID != queue.NoticeID(n.Subject) || back.Service != "api" || !back.Open() {
		t.Fatalf("read back %+v, %v", back, err)
	}
	for _, id := range []string{queue.NoticeID("job:never"), "not-an-id", "../../etc"} {
		if _, err := q.Notice(ctx, id); !errors.Is(err, queue.ErrNotFound) {
			t.Errorf("Notice(%q) = %v, want ErrNotFound", id, err)
		}
	}
}

func TestRememberEventIsBounded(t *testing.T) {
	t.Parallel()
	var n queue.Notice
	for i := 0; i < 60; i++ {
		n.RememberEvent(fmt.Sprintf("k%d", i))
		n.RememberEvent(fmt.Sprintf("k%d", i)) // twice counts once
	}
	if len(n.Seen) != 50 || !n.SawEvent("k59") || n.SawEvent("k9") || !n.SawEvent("k10") {
		t.Fatalf("seen %d keys, first %q", len(n.Seen), n.Seen[0])
	}
}

func TestNoticePermission(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		n    queue.Notice
		want string
	}{
		{queue.Notice{Service: "api", Retry: queue.RetryTarget{Kind: "recheck"}}, "recheck:api"},
		{queue.Notice{Service: "api", Retry: queue.RetryTarget{Kind: "rebuild"}}, "build:api"},
		{queue.Notice{Retry: queue.RetryTarget{Kind: "rebuild"}}, "build:*"},
	} {
		if got := queue.NoticePermission(tc.n); got.String() != tc.want || got.AnyService() {
			t.Errorf("NoticePermission(%+v) = %s, want %s (exact)", tc.n, got, tc.want)
		}
	}
}

// TestLockExcludesAndIsBusyForLater: a second holder waits, then gives up
// with ErrBusy, which a worker treats as temporary.
func TestLockExcludesAndIsBusyForLater(t *testing.T) {
	t.Parallel()
	q, _, _ := queuetest.New(t, queue.Config{})
	ctx := context.Background()
	var inside atomic.Int32
	held := make(chan struct{})
	release := make(chan struct{})
	go func() {
		_ = q.WithLock(ctx, "n", time.Minute, time.Second, func(context.Context) error {
			inside.Add(1)
			close(held)
			<-release
			return nil
		})
	}()
	<-held
	err := q.WithLock(ctx, "n", time.Minute, 50*time.Millisecond, func(context.Context) error {
		inside.Add(1)
		return nil
	})
	var tmp interface{ Temporary() bool }
	if !errors.Is(err, queue.ErrBusy) || !errors.As(err, &tmp) || !tmp.Temporary() {
		t.Fatalf("second holder = %v; want a temporary ErrBusy", err)
	}
	close(release)
	sentinel := errors.New("from fn")
	if err := q.WithLock(ctx, "n", time.Minute, time.Second, func(context.Context) error { return sentinel }); !errors.Is(err, sentinel) {
		t.Fatalf("after release = %v; want fn's error", err)
	}
	if inside.Load() != 1 {
		t.Fatalf("%d holders ran while the lock was held", inside.Load())
	}
}

// TestLockIsRenewedWhileHeld: work longer than the lock's ttl keeps it.
func TestLockIsRenewedWhileHeld(t *testing.T) {
	t.Parallel()
	q, _, _ := queuetest.New(t, queue.Config{})
	ctx := context.Background()
	done := make(chan error, 1)
	go func() {
		done <- q.WithLock(ctx, "slow", 300*time.Millisecond, time.Second, func(ctx context.Context) error {
			select {
			case <-time.After(time.Second): // three ttls
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	time.Sleep(600 * time.Millisecond) // twice the ttl: without renewal it has lapsed
	if err := q.WithLock(ctx, "slow", time.Minute, 0, func(context.Context) error { return nil }); !errors.Is(err, queue.ErrBusy) {
		t.Fatalf("the lock lapsed while held: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("holder: %v", err)
	}
}

// TestLostLockCancelsItsHolder: when the lock is taken away (it lapsed
// while Redis was unreachable), the holder's context ends and WithLock
// says so.
func TestLostLockCancelsItsHolder(t *testing.T) {
	t.Parallel()
	q, rdb, _ := queuetest.New(t, queue.Config{})
	ctx := context.Background()
	name := fmt.Sprintf("lost-%d", time.Now().UnixNano())
	err := q.WithLock(ctx, name, 150*time.Millisecond, time.Second, func(ctx context.Context) error {
		keys, err := rdb.Keys(ctx, "*lock:"+name).Result()
		if err != nil || len(keys) != 1 {
			return fmt.Errorf("lock keys %v, %v", keys, err)
		}
		rdb.Del(ctx, keys[0])
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Second):
			return errors.New("the holder was not told")
		}
	})
	var tmp interface{ Temporary() bool }
	if !errors.Is(err, queue.ErrLockLost) || !errors.As(err, &tmp) || !tmp.Temporary() {
		t.Fatalf("WithLock = %v; want a temporary ErrLockLost", err)
	}
}
