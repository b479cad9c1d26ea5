package signin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrUnknownState is what States return for a state they do not hold: never
// issued, already used, or expired.
var ErrUnknownState = errors.New("signin: unknown or expired sign-in state")

// Pending is a sign-in that was started and not yet finished. It is stored as
// JSON under its state, so its JSON form is part of the stored format.
type Pending struct {
	// SlackUser is who ran /deploy login; the identity is linked to them.
	SlackUser string `json:"slack_user"`
	// Nonce is sent to the provider and must come back in the ID token.
	Nonce string `json:"nonce"`
	// Verifier is the PKCE code verifier; only its S256 challenge leaves the
	// bot before the code exchange.
	Verifier string `json:"verifier"`
	// Expires is when the sign-in link stops working.
	Expires time.Time `json:"expires"`
}

// States is where pending sign-ins live, keyed by their state. A state is
// single use: Take removes it.
type States interface {
	// Put saves p under state for ttl.
	Put(ctx context.Context, state string, p Pending, ttl time.Duration) error
	// Take returns and deletes the pending sign-in, or ErrUnknownState.
	Take(ctx context.Context, state string) (Pending, error)
	// Peek returns the pending sign-in without deleting it, or
	// ErrUnknownState.
	Peek(ctx context.Context, state string) (Pending, error)
}

// RedisStates keeps pending sign-ins in Redis, each under its own key with
// a TTL, so that every responder can finish a sign-in another one started.
type RedisStates struct {
	rdb    redis.UniversalClient
	prefix string
}

// NewRedisStates returns States under the key prefix
// ("{prefix}:oidc:state:<state>").
func NewRedisStates(rdb redis.UniversalClient, prefix string) *RedisStates {
	return &RedisStates{rdb: rdb, prefix: "{" + prefix + "}:oidc:state:"}
}

func (s *RedisStates) key(state string) string { return s.prefix + state }

// Put saves p under state for ttl. It refuses to overwrite a state that is
// already there.
func (s *RedisStates) Put(ctx context.Context, state string, p Pending, ttl time.Duration) error {
	if state == "" {
		return errors.New("signin: state store: put: empty state")
	}
	if ttl <= 0 {
		return fmt.Errorf("signin: state store: put: ttl %v is not positive", ttl)
	}
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("signin: state store: put: %w", err)
	}
	ok, err := s.rdb.SetNX(ctx, s.key(state), b, ttl).Result()
	if err != nil {
		return fmt.Errorf("signin: state store: put: %w", err)
	}
	if !ok {
		return errors.New("signin: state store: put: state already in use")
	}
	return nil
}

// Take returns and deletes the pending sign-in under state (GETDEL, so two
// callbacks racing for one state cannot both have it).
func (s *RedisStates) Take(ctx context.Context, state string) (Pending, error) {
	return decodePending(s.rdb.GetDel(ctx, s.key(state)))
}

// Peek returns the pending sign-in under state and leaves it there.
func (s *RedisStates) Peek(ctx context.Context, state string) (Pending, error) {
	return decodePending(s.rdb.Get(ctx, s.key(state)))
}

func decodePending(cmd *redis.StringCmd) (Pending, error) {
	b, err := cmd.Bytes()
	if errors.Is(err, redis.Nil) {
		return Pending{}, ErrUnknownState
	}
	if err != nil {
		return Pending{}, fmt.Errorf("signin: state store: get: %w", err)
	}
	var p Pending
	if err := json.Unmarshal(b, &p); err != nil {
		return Pending{}, fmt.Errorf("signin: state store: get: %w", err)
	}
	return p, nil
}
