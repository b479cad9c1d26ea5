package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Delivery is a job handed to one worker. The worker must end it with Done,
// Retry, Bury or Release, and call Extend while it runs.
type Delivery struct {
	Job Job
	// EntryID is the job's stream entry.
	EntryID string
	// Consumer is the worker holding it.
	Consumer string
	// Reclaimed is true when an earlier holder vanished and this worker took
	// the job over: steps already done must not be done again.
	Reclaimed bool
}

var promoteScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, m in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', 'job', m)
  redis.call('ZREM', KEYS[1], m)
end
return #due
`)

// Next returns the next job for consumer, waiting up to block for one. It
// first moves retries that are due back into the stream and claims jobs
// whose holder stopped heartbeating. It returns (nil, nil) when there was
// nothing to do.
func (q *Queue) Next(ctx context.Context, consumer string, block time.Duration) (*Delivery, error) {
	if err := promoteScript.Run(ctx, q.rdb, []string{q.delayedKey(), q.streamKey()}, 100).Err(); err != nil {
		return nil, fmt.Errorf("queue: promote retries: %w", err)
	}
	d, err := q.claim(ctx, consumer)
	if d != nil || err != nil {
		return d, err
	}
	res, err := q.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group:    q.cfg.Group,
		Consumer: consumer,
		Streams:  []string{q.streamKey(), ">"},
		Count:    1,
		Block:    block,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil && strings.HasPrefix(err.Error(), "NOGROUP") {
		if err := q.Init(ctx); err != nil {
			return nil, err
		}
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("queue: read: %w", err)
	}
	for _, s := range res {
		for _, msg := range s.Messages {
			return q.deliver(ctx, msg, consumer, false)
		}
	}
	return nil, nil
}

// claimScanCalls bounds how many XAUTOCLAIM calls one Next makes. Redis
// examines at most ten pending entries per call, so a job abandoned behind
// many live ones is still found within a few calls.
const claimScanCalls = 10

// claim takes over one job whose holder has been silent for longer than the
// visibility timeout. It follows XAUTOCLAIM's cursor, remembered per
// consumer, so it walks the whole pending list rather than its head.
func (q *Queue) claim(ctx context.Context, consumer string) (*Delivery, error) {
	q.mu.Lock()
	start := q.cursors[consumer]
	q.mu.Unlock()
	if start == "" {
		start = "0-0"
	}
	for i := 0; i < claimScanCalls; i++ {
		msgs, next, err := q.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream:   q.streamKey(),
			Group:    q.cfg.Group,
			Consumer: consumer,
			MinIdle:  q.cfg.Visibility,
			Start:    start,
			Count:    1,
		}).Result()
		if err != nil {
			if strings.HasPrefix(err.Error(), "NOGROUP") {
				return nil, q.Init(ctx)
			}
			return nil, fmt.Errorf("queue: claim: %w", err)
		}
		q.mu.Lock()
		q.cursors[consumer] = next
		q.mu.Unlock()
		for _, msg := range msgs {
			return q.claimed(ctx, msg, consumer)
		}
		if next == "0-0" || next == "" {
			return nil, nil // the whole list was scanned
		}
		start = next
	}
	return nil, nil
}

// claimed finishes a claim: a job that keeps losing its workers is
// dead-lettered instead of handed out again.
func (q *Queue) claimed(ctx context.Context, msg redis.XMessage, consumer string) (*Delivery, error) {
	pend, err := q.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: q.streamKey(), Group: q.cfg.Group, Start: msg.ID, End: msg.ID, Count: 1,
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("queue: pending %s: %w", msg.ID, err)
	}
	if len(pend) == 1 && pend[0].RetryCount > q.cfg.MaxDeliveries {
		job, derr := decodeJob(msg)
		if derr != nil {
			return nil, q.dropCorrupt(ctx, msg, consumer, derr)
		}
		d := &Delivery{Job: job, EntryID: msg.ID, Consumer: consumer, Reclaimed: true}
		reason := fmt.Sprintf("%d workers stopped while holding it", pend[0].RetryCount-1)
		if err := q.Bury(ctx, d, reason); err != nil {
			return nil, err
		}
		return nil, &PoisonError{Job: job, Reason: reason}
	}
	return q.deliver(ctx, msg, consumer, true)
}

// PoisonError reports a job that Next dead-lettered because the workers
// holding it kept vanishing. The caller should tell its requester.
type PoisonError struct {
	Job    Job
	Reason string
}

// Error says which job died and why.
func (e *PoisonError) Error() string {
	return fmt.Sprintf("queue: job %s dead-lettered: %s", e.Job.ID, e.Reason)
}

func (q *Queue) deliver(ctx context.Context, msg redis.XMessage, consumer string, reclaimed bool) (*Delivery, error) {
	job, err := decodeJob(msg)
	if err != nil {
		return nil, q.dropCorrupt(ctx, msg, consumer, err)
	}
	q.metrics.jobs.WithLabelValues("started").Inc()
	q.metrics.picked(job, reclaimed, time.Now())
	return &Delivery{Job: job, EntryID: msg.ID, Consumer: consumer, Reclaimed: reclaimed}, nil
}

// dropCorrupt moves an entry that cannot be decoded to the dead-letter
// stream as it is, so it is kept for a human and never blocks the queue.
func (q *Queue) dropCorrupt(ctx context.Context, msg redis.XMessage, consumer string, cause error) error {
	raw, _ := msg.Values["job"].(string)
	err := buryScript.Run(ctx, q.rdb, []string{q.streamKey(), q.deadKey()},
		q.cfg.Group, msg.ID, consumer, raw, "undecodable entry: "+cause.Error(), q.cfg.DeadMaxLen).Err()
	if err != nil {
		return fmt.Errorf("queue: dead-letter undecodable %s: %w", msg.ID, err)
	}
	q.metrics.jobs.WithLabelValues("dead").Inc()
	return cause
}

// owns is the Lua prelude every script that ends or extends a delivery
// starts with: the caller must still hold the entry (ARGV[1] group, ARGV[2]
// entry ID, ARGV[3] consumer). A worker whose job was claimed by another
// gets 0 back and must stop.
const owns = `
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #p == 0 or p[1][2] ~= ARGV[3] then return 0 end
`

var extendScript = redis.NewScript(owns + `
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, ARGV[2], 'JUSTID')
return 1
`)

// runOwned runs an ownership-checked script and turns its 0 into ErrLost.
func (q *Queue) runOwned(ctx context.Context, script *redis.Script, keys []string, d *Delivery, args ...any) error {
	argv := append([]any{q.cfg.Group, d.EntryID, d.Consumer}, args...)
	ok, err := script.Run(ctx, q.rdb, keys, argv...).Int()
	if err != nil {
		return err
	}
	if ok == 0 {
		return ErrLost
	}
	return nil
}

// Extend is the worker's heartbeat: it resets the delivery's idle time so no
// one claims it. It returns ErrLost if someone already has.
func (q *Queue) Extend(ctx context.Context, d *Delivery) error {
	if err := q.runOwned(ctx, extendScript, []string{q.streamKey()}, d); err != nil {
		return fmt.Errorf("queue: extend %s: %w", d.Job.ID, err)
	}
	return nil
}

var finishScript = redis.NewScript(owns + `
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
`)

// Done removes a finished job from the queue; outcome ("succeeded" or
// "failed") is counted in metrics. It returns ErrLost if another worker
// holds the job now.
func (q *Queue) Done(ctx context.Context, d *Delivery, outcome string) error {
	if err := q.runOwned(ctx, finishScript, []string{q.streamKey()}, d); err != nil {
		return fmt.Errorf("queue: ack %s: %w", d.Job.ID, err)
	}
	q.metrics.jobs.WithLabelValues(outcome).Inc()
	q.metrics.ended(d.Job, outcome, time.Now())
	return nil
}

var retryScript = redis.NewScript(owns + `
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[5]), ARGV[4])
return 1
`)

// Retry takes the job off the stream and puts it back after delay, with its
// attempt counter raised.
func (q *Queue) Retry(ctx context.Context, d *Delivery, delay time.Duration) error {
	job := d.Job
	job.Attempt++
	body, err := json.Marshal(job)
	if err != nil {
		return fmt.Errorf("queue: encode job %s: %w", job.ID, err)
	}
	err = q.runOwned(ctx, retryScript, []string{q.streamKey(), q.delayedKey()}, d, string(body), delay.Milliseconds())
	if err != nil {
		return fmt.Errorf("queue: retry %s: %w", job.ID, err)
	}
	q.metrics.jobs.WithLabelValues("retried").Inc()
	return nil
}

// Postpone puts the job back after delay without counting an attempt: it
// is waiting (for a lock, for another deploy), not failing.
func (q *Queue) Postpone(ctx context.Context, d *Delivery, delay time.Duration) error {
	job := d.Job
	job.Requeued = true
	body, err := json.Marshal(job)
	if err != nil {
		return fmt.Errorf("queue: encode job %s: %w", d.Job.ID, err)
	}
	if err := q.runOwned(ctx, retryScript, []string{q.streamKey(), q.delayedKey()}, d, string(body), delay.Milliseconds()); err != nil {
		return fmt.Errorf("queue: postpone %s: %w", d.Job.ID, err)
	}
	q.metrics.jobs.WithLabelValues("postponed").Inc()
	return nil
}

var buryScript = redis.NewScript(owns + `
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'job', ARGV[4], 'reason', ARGV[5])
return 1
`)

// Bury moves the job to the dead-letter stream with the reason it died.
func (q *Queue) Bury(ctx context.Context, d *Delivery, reason string) error {
	body, err := json.Marshal(d.Job)
	if err != nil {
		return fmt.Errorf("queue: encode job %s: %w", d.Job.ID, err)
	}
	err = q.runOwned(ctx, buryScript, []string{q.streamKey(), q.deadKey()}, d, string(body), reason, q.cfg.DeadMaxLen)
	if err != nil {
		return fmt.Errorf("queue: dead-letter %s: %w", d.Job.ID, err)
	}
	q.metrics.jobs.WithLabelValues("dead").Inc()
	q.metrics.ended(d.Job, "dead", time.Now())
	return nil
}

var releaseScript = redis.NewScript(owns + `
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('XADD', KEYS[1], '*', 'job', ARGV[4])
return 1
`)

// Release hands an unfinished job back so another worker can pick it up at
// once, instead of after the visibility timeout. The worker uses it when it
// shuts down; the job's recorded steps make the next run resume.
func (q *Queue) Release(ctx context.Context, d *Delivery) error {
	job := d.Job
	job.Requeued = true
	body, err := json.Marshal(job)
	if err != nil {
		return fmt.Errorf("queue: encode job %s: %w", d.Job.ID, err)
	}
	if err := q.runOwned(ctx, releaseScript, []string{q.streamKey()}, d, string(body)); err != nil {
		return fmt.Errorf("queue: release %s: %w", d.Job.ID, err)
	}
	return nil
}

var leaveScript = redis.NewScript(`
local p = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #p > 0 then return 0 end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 1
`)

// Leave removes consumer from the group if it holds nothing, so the group
// does not collect the names of every worker that ever ran. A consumer that
// still holds jobs is kept: deleting it would make them unclaimable.
func (q *Queue) Leave(ctx context.Context, consumer string) error {
	q.mu.Lock()
	delete(q.cursors, consumer)
	q.mu.Unlock()
	if err := leaveScript.Run(ctx, q.rdb, []string{q.streamKey()}, q.cfg.Group, consumer).Err(); err != nil {
		return fmt.Errorf("queue: leave %s: %w", consumer, err)
	}
	return nil
}

// Prune removes consumers that hold nothing and have been idle for longer
// than idle (any idle time when idle <= 0): workers that stopped without
// leaving.
func (q *Queue) Prune(ctx context.Context, idle time.Duration) error {
	cs, err := q.rdb.XInfoConsumers(ctx, q.streamKey(), q.cfg.Group).Result()
	if err != nil {
		return fmt.Errorf("queue: list consumers: %w", err)
	}
	for _, c := range cs {
		if c.Pending == 0 && (idle <= 0 || c.Idle > idle) {
			if err := leaveScript.Run(ctx, q.rdb, []string{q.streamKey()}, q.cfg.Group, c.Name).Err(); err != nil {
				return fmt.Errorf("queue: prune %s: %w", c.Name, err)
			}
		}
	}
	return nil
}

// DeadLetter is an entry of the dead-letter stream.
type DeadLetter struct {
	Job    Job
	Reason string
}

// Dead returns up to n dead-lettered jobs, newest first.
func (q *Queue) Dead(ctx context.Context, n int64) ([]DeadLetter, error) {
	msgs, err := q.rdb.XRevRangeN(ctx, q.deadKey(), "+", "-", n).Result()
	if err != nil {
		return nil, fmt.Errorf("queue: read dead letters: %w", err)
	}
	out := make([]DeadLetter, 0, len(msgs))
	for _, m := range msgs {
		reason, _ := m.Values["reason"].(string)
		var job Job
		raw, _ := m.Values["job"].(string)
		_ = json.Unmarshal([]byte(raw), &job) // an undecodable entry is still listed, with its reason
		out = append(out, DeadLetter{Job: job, Reason: reason})
	}
	return out, nil
}
