package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Pending is a job to a protected environment that is not queued yet: it
// waits for its requester to confirm it, and then perhaps for someone else
// to approve it.
type Pending struct {
	ID  string `json:"id"`
	Job Job    `json:"job"`
	// Approval is set when a second person must approve; Confirmed once
	// the requester has confirmed and the request waits for them.
	Approval  bool `json:"approval,omitempty"`
	Confirmed bool `json:"confirmed,omitempty"`
	// Expires is when the request lapses; its key expires with it.
	Expires time.Time `json:"expires"`
}

// ErrNoPending: the request was decided already, or it expired.
var ErrNoPending = errors.New("queue: no such pending request")

func (q *Queue) pendingKey(id string) string { return q.key("pending", id) }

// SavePending keeps p until p.Expires.
func (q *Queue) SavePending(ctx context.Context, p Pending) error {
	ttl := time.Until(p.Expires)
	if ttl <= 0 {
		return fmt.Errorf("queue: pending request %s has already expired", p.ID)
	}
	raw, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if err := q.rdb.Set(ctx, q.pendingKey(p.ID), raw, ttl).Err(); err != nil {
		return fmt.Errorf("queue: save pending request %s: %w", p.ID, err)
	}
	return nil
}

// Pending reads a pending request without deciding it.
func (q *Queue) Pending(ctx context.Context, id string) (Pending, error) {
	return q.readPending(ctx, id, q.rdb.Get(ctx, q.pendingKey(id)))
}

// TakePending reads and removes a pending request, at most once: of two
// people deciding it at the same moment, one gets it and the other
// ErrNoPending.
func (q *Queue) TakePending(ctx context.Context, id string) (Pending, error) {
	return q.readPending(ctx, id, q.rdb.GetDel(ctx, q.pendingKey(id)))
}

func (q *Queue) readPending(_ context.Context, id string, cmd *redis.StringCmd) (Pending, error) {
	raw, err := cmd.Bytes()
	if errors.Is(err, redis.Nil) {
		return Pending{}, ErrNoPending
	}
	if err != nil {
		return Pending{}, fmt.Errorf("queue: pending request %s: %w", id, err)
	}
	var p Pending
	if err := json.Unmarshal(raw, &p); err != nil {
		return Pending{}, fmt.Errorf("queue: pending request %s: %w", id, err)
	}
	return p, nil
}
