package authz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Named errors of the policy store.
var (
	// ErrNoChange: a grant that is already there, or a revoke of one that
	// is not. Nothing was saved.
	ErrNoChange = errors.New("the policy already says that")
	// ErrNoVersion: the version asked for was never saved.
	ErrNoVersion = errors.New("no such policy version")
	// ErrNoPolicy: no version has been saved yet (the store was not seeded).
	ErrNoPolicy = errors.New("no policy has been saved")
)

// Version is one saved state of the policy. Versions are never edited: a
// change saves a new one, and a rollback saves an old one's rules again.
type Version struct {
	N     int64  `json:"version"`
	Rules []Rule `json:"rules"`
	// By is the Slack user who made the change, or "config" for the seed.
	By string    `json:"by"`
	At time.Time `json:"at"`
	// Change says what changed, e.g. "grant sre deploy:prod:*".
	Change string `json:"change"`
}

// PolicyStore keeps the policy in Redis, versioned. Every responder and
// worker reads the same one, so a revoke stops work that is already
// queued.
type PolicyStore struct {
	rdb redis.UniversalClient
	tag string
	now func() time.Time

	mu     sync.Mutex
	cached Version
	// checked is when cached was last known to be the version in force.
	checked time.Time
}

// NewPolicyStore returns the store under the key prefix ("{prefix}:policy:…").
func NewPolicyStore(rdb redis.UniversalClient, prefix string) *PolicyStore {
	return &PolicyStore{rdb: rdb, tag: "{" + prefix + "}", now: time.Now}
}

func (s *PolicyStore) currentKey() string { return s.tag + ":policy:current" }
func (s *PolicyStore) versionKey(n int64) string {
	return s.tag + ":policy:v:" + strconv.FormatInt(n, 10)
}

// Seed saves rules as version 1 when no policy has been saved yet, and
// reports whether it did. Later starts leave the stored policy alone: from
// then on it is changed from Slack.
func (s *PolicyStore) Seed(ctx context.Context, rules []Rule) (bool, error) {
	if err := CheckRules(rules); err != nil {
		return false, err
	}
	_, err := s.change(ctx, "config", "seeded from the config file", func(cur []Rule, n int64) ([]Rule, error) {
		if n > 0 {
			return nil, ErrNoChange
		}
		return rules, nil
	})
	if errors.Is(err, ErrNoChange) {
		return false, nil
	}
	return err == nil, err
}

// Current returns the policy in force. It costs one small read when the
// version has not changed since the last call.
func (s *PolicyStore) Current(ctx context.Context) (Version, error) {
	n, err := s.rdb.Get(ctx, s.currentKey()).Int64()
	if errors.Is(err, redis.Nil) {
		return Version{}, ErrNoPolicy
	}
	if err != nil {
		return Version{}, fmt.Errorf("authz: read policy version: %w", err)
	}
	s.mu.Lock()
	c := s.cached
	if c.N == n {
		s.checked = s.now()
	}
	s.mu.Unlock()
	if c.N == n {
		return c, nil
	}
	v, err := s.Version(ctx, n)
	if err != nil {
		return Version{}, err
	}
	s.remember(v)
	return v, nil
}

// remember keeps v as the version in force, unless a newer one is known.
func (s *PolicyStore) remember(v Version) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v.N >= s.cached.N {
		s.cached, s.checked = v, s.now()
	}
}

// Within is a view of the store that trusts the version it last read for
// maxAge before asking Redis again. The responder asks through it: one
// Redis round trip fewer on every request, at the price that a change made
// in another process reaches it up to maxAge later. Changes made through
// this store show at once, and the worker, which asks the store itself,
// checks every job against the version in force when it runs.
func (s *PolicyStore) Within(maxAge time.Duration) PolicySource {
	return policyWithin{s: s, maxAge: maxAge}
}

type policyWithin struct {
	s      *PolicyStore
	maxAge time.Duration
}

func (p policyWithin) Current(ctx context.Context) (Version, error) {
	p.s.mu.Lock()
	c, at := p.s.cached, p.s.checked
	p.s.mu.Unlock()
	if c.N > 0 && p.s.now().Sub(at) < p.maxAge {
		return c, nil
	}
	return p.s.Current(ctx)
}

// Version returns saved version n.
func (s *PolicyStore) Version(ctx context.Context, n int64) (Version, error) {
	raw, err := s.rdb.Get(ctx, s.versionKey(n)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Version{}, fmt.Errorf("%w: %d", ErrNoVersion, n)
	}
	if err != nil {
		return Version{}, fmt.Errorf("authz: read policy version %d: %w", n, err)
	}
	var v Version
	if err := json.Unmarshal(raw, &v); err != nil {
		return Version{}, fmt.Errorf("authz: policy version %d: %w", n, err)
	}
	return v, nil
}

// History returns up to n versions, newest first.
func (s *PolicyStore) History(ctx context.Context, n int) ([]Version, error) {
	cur, err := s.Current(ctx)
	if err != nil {
		return nil, err
	}
	out := []Version{cur}
	for k := cur.N - 1; k >= 1 && len(out) < n; k-- {
		v, err := s.Version(ctx, k)
		if err != nil {
			return out, err
		}
		out = append(out, v)
	}
	return out, nil
}

// Grant adds pattern to group's allow list, or to its deny list when deny
// is set, as user by.
func (s *PolicyStore) Grant(ctx context.Context, by, group, pattern string, deny bool) (Version, error) {
	if err := CheckPattern(pattern); err != nil {
		return Version{}, err
	}
	verb := "grant"
	if deny {
		verb = "deny"
	}
	return s.change(ctx, by, verb+" "+group+" "+pattern, func(cur []Rule, _ int64) ([]Rule, error) {
		next, changed := withGrant(cur, group, pattern, deny)
		if !changed {
			return nil, ErrNoChange
		}
		return next, nil
	})
}

// Revoke removes pattern from group's allow and deny lists.
func (s *PolicyStore) Revoke(ctx context.Context, by, group, pattern string) (Version, error) {
	return s.change(ctx, by, "revoke "+group+" "+pattern, func(cur []Rule, _ int64) ([]Rule, error) {
		next, found := withoutGrant(cur, group, pattern)
		if !found {
			return nil, ErrNoChange
		}
		return next, nil
	})
}

// Rollback saves version n's rules as a new version.
func (s *PolicyStore) Rollback(ctx context.Context, by string, n int64) (Version, error) {
	old, err := s.Version(ctx, n)
	if err != nil {
		return Version{}, err
	}
	return s.change(ctx, by, fmt.Sprintf("rollback to version %d", n), func(_ []Rule, cur int64) ([]Rule, error) {
		if cur == n {
			return nil, ErrNoChange
		}
		return old.Rules, nil
	})
}

// change saves edit's result as the next version. Two SREs changing the
// policy at once both succeed, one after the other: the loser of the race
// re-reads and applies its edit to the winner's version.
func (s *PolicyStore) change(ctx context.Context, by, what string, edit func([]Rule, int64) ([]Rule, error)) (Version, error) {
	var saved Version
	txf := func(tx *redis.Tx) error {
		n, err := tx.Get(ctx, s.currentKey()).Int64()
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		var cur Version
		if n > 0 {
			if cur, err = s.Version(ctx, n); err != nil {
				return err
			}
		}
		rules, err := edit(cur.Rules, n)
		if err != nil {
			return err
		}
		saved = Version{N: n + 1, Rules: cloneRules(rules), By: by, At: s.now().UTC(), Change: what}
		raw, err := json.Marshal(saved)
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.SetNX(ctx, s.versionKey(saved.N), raw, 0)
			p.Set(ctx, s.currentKey(), saved.N, 0)
			return nil
		})
		return err
	}
	for range 10 {
		err := s.rdb.Watch(ctx, txf, s.currentKey())
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		if err != nil {
			return Version{}, fmt.Errorf("authz: %s: %w", what, err)
		}
		s.remember(saved)
		return saved, nil
	}
	return Version{}, fmt.Errorf("authz: %s: the policy kept changing under me; try again", what)
}
