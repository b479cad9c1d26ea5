package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// EnvLock is a person's hold on an environment: while it lasts, only
// their deploys go there.
type EnvLock struct {
	Env    string    `json:"env"`
	User   string    `json:"user"`
	Reason string    `json:"reason,omitempty"`
	Since  time.Time `json:"since"`
	Until  time.Time `json:"until"`
	// UntilMS is Until for the script that takes locks.
	UntilMS int64 `json:"until_ms"`
}

// Holds reports whether the lock stops user's deploys at now.
func (l EnvLock) Holds(user string, now time.Time) bool {
	return l.User != user && now.Before(l.Until)
}

var lockEnvScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then
  local held = cjson.decode(cur)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if held.user ~= ARGV[2] and tonumber(held.until_ms) > now then return {0, cur} end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return {1, ARGV[1]}
`)

// LockEnv takes (or renews) l. When someone else holds the environment,
// it returns their lock and false.
func (q *Queue) LockEnv(ctx context.Context, l EnvLock) (EnvLock, bool, error) {
	ttl := time.Until(l.Until)
	if ttl <= 0 {
		return EnvLock{}, false, fmt.Errorf("queue: lock %s: already expired", l.Env)
	}
	l.UntilMS = l.Until.UnixMilli()
	raw, _ := json.Marshal(l) // EnvLock has only marshalable fields
	res, err := lockEnvScript.Run(ctx, q.rdb, []string{q.key("envlock", l.Env)}, string(raw), l.User, ttl.Milliseconds()).Slice()
	if err != nil {
		return EnvLock{}, false, fmt.Errorf("queue: lock %s: %w", l.Env, err)
	}
	var got EnvLock
	s, _ := res[1].(string)
	if err := json.Unmarshal([]byte(s), &got); err != nil {
		return EnvLock{}, false, fmt.Errorf("queue: lock %s: %w", l.Env, err)
	}
	ok, _ := res[0].(int64)
	return got, ok == 1, nil
}

// EnvLock returns the lock on env; found is false when there is none (or
// it has expired).
func (q *Queue) EnvLock(ctx context.Context, env string) (l EnvLock, found bool, err error) {
	raw, err := q.rdb.Get(ctx, q.key("envlock", env)).Bytes()
	if errors.Is(err, redis.Nil) {
		return EnvLock{}, false, nil
	}
	if err != nil {
		return EnvLock{}, false, fmt.Errorf("queue: read lock on %s: %w", env, err)
	}
	if err := json.Unmarshal(raw, &l); err != nil {
		return EnvLock{}, false, fmt.Errorf("queue: decode lock on %s: %w", env, err)
	}
	return l, time.Now().Before(l.Until), nil
}

// UnlockEnv lifts the lock on env and returns it; found is false when
// there was none.
func (q *Queue) UnlockEnv(ctx context.Context, env string) (l EnvLock, found bool, err error) {
	raw, err := q.rdb.GetDel(ctx, q.key("envlock", env)).Bytes()
	if errors.Is(err, redis.Nil) {
		return EnvLock{}, false, nil
	}
	if err != nil {
		return EnvLock{}, false, fmt.Errorf("queue: unlock %s: %w", env, err)
	}
	_ = json.Unmarshal(raw, &l) // what was lifted is only reported
	return l, true, nil
}
