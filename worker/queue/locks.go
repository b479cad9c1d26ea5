package queue

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

var unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// ErrBusy means a lock stayed taken for as long as the caller would wait.
// It is temporary: the work can be tried again later.
var ErrBusy error = busyError{}

type busyError struct{}

func (busyError) Error() string   { return "queue: lock is busy" }
func (busyError) Temporary() bool { return true }

// ErrLockLost means a lock lapsed while its holder still worked: Redis
// did not answer the renewals in time. It is temporary: work done under
// a lock must be safe to do again.
var ErrLockLost error = lostError{}

type lostError struct{}

func (lostError) Error() string   { return "queue: lock lost" }
func (lostError) Temporary() bool { return true }

var renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`)

// WithLock runs fn holding the lock called name, so workers handling
// events about the same thing do not race. It waits up to wait for the
// lock. The lock is renewed every ttl/3 while fn runs and lapses after ttl
// if its holder dies; if a renewal fails, fn's context is cancelled and
// WithLock returns ErrLockLost.
func (q *Queue) WithLock(ctx context.Context, name string, ttl, wait time.Duration, fn func(context.Context) error) error {
	return q.WithOwnedLock(ctx, name, "", ttl, wait, fn)
}

// WithOwnedLock is WithLock with the holder's name (a job ID) kept in the
// lock, so that whoever finds it busy can say who holds it (LockOwner).
func (q *Queue) WithOwnedLock(ctx context.Context, name, owner string, ttl, wait time.Duration, fn func(context.Context) error) error {
	var tok [16]byte
	_, _ = rand.Read(tok[:])
	token := hex.EncodeToString(tok[:])
	if owner != "" {
		token = owner + " " + token
	}
	key := q.key("lock", name)
	if err := q.acquire(ctx, key, token, name, ttl, wait); err != nil {
		return err
	}
	defer unlockScript.Run(context.WithoutCancel(ctx), q.rdb, []string{key}, token)
	held, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := make(chan struct{})
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(max(ttl/3, time.Millisecond))
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			n, err := renewScript.Run(held, q.rdb, []string{key}, token, ttl.Milliseconds()).Int()
			switch {
			case err == nil && n == 1:
				last = time.Now()
			case err != nil && time.Since(last) < ttl*2/3:
				// Redis hiccuped; the lock still has time to be renewed.
			default:
				cancel(fmt.Errorf("%w: %s", ErrLockLost, name))
				return
			}
		}
	}()
	err := fn(held)
	lost := context.Cause(held) // before stopping: a loss after fn returned does not matter
	close(stop)
	<-renewed
	if errors.Is(lost, ErrLockLost) {
		return lost
	}
	return err
}

func (q *Queue) acquire(ctx context.Context, key, token, name string, ttl, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		ok, err := q.rdb.SetNX(ctx, key, token, ttl).Result()
		if err != nil {
			return fmt.Errorf("queue: lock %s: %w", name, err)
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %s", ErrBusy, name)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// LockOwner returns the owner of lock name, as WithOwnedLock was given it;
// held is false when the lock is free.
func (q *Queue) LockOwner(ctx context.Context, name string) (owner string, held bool, err error) {
	tok, err := q.rdb.Get(ctx, q.key("lock", name)).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("queue: read lock %s: %w", name, err)
	}
	owner, _, _ = strings.Cut(tok, " ")
	if owner == tok {
		owner = "" // an anonymous lock's token is one word
	}
	return owner, true, nil
}
