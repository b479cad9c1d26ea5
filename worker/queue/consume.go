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

// claim takes over one job whose holder has been silent for longer than the
// visibility timeout.
func (q *Queue) claim(ctx context.Context, consumer string) (*Delivery, error) {
	msgs, _, err := q.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream:   q.streamKey(),
		Group:    q.cfg.Group,
		Consumer: consumer,
		MinIdle:  q.cfg.Visibility,
		Start:    "0",
		Count:    1,
	}).Result()
	if err != nil {
		if strings.HasPrefix(err.Error(), "NOGROUP") {
			return nil, q.Init(ctx)
		}
		return nil, fmt.Errorf("queue: claim: %w", err)
	}
	for _, msg := range msgs {
		pend, err := q.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
			Stream: q.streamKey(), Group: q.cfg.Group, Start: msg.ID, End: msg.ID, Count: 1,
		}).Result()
		if err != nil {
			return nil, fmt.Errorf("queue: pending %s: %w", msg.ID, err)
		}
		if len(pend) == 1 && pend[0].RetryCount > q.cfg.MaxDeliveries {
			d := &Delivery{EntryID: msg.ID, Consumer: consumer, Reclaimed: true}
			job, derr := decodeJob(msg)
			d.Job = job
			if derr != nil {
				return nil, q.dropCorrupt(ctx, msg, derr)
			}
			reason := fmt.Sprintf("%d workers stopped while holding it", pend[0].RetryCount-1)
			if err := q.Bury(ctx, d, reason); err != nil {
				return nil, err
			}
			return nil, &PoisonError{Job: job, Reason: reason}
		}
		return q.deliver(ctx, msg, consumer, true)
	}
	return nil, nil
}

// PoisonError reports a job that Next dead-lettered because the workers
// holding it kept vanishing. The caller should tell its requester.
type PoisonError struct {
	Job    Job
	Reason string
}

func (e *PoisonError) Error() string {
	return fmt.Sprintf("queue: job %s dead-lettered: %s", e.Job.ID, e.Reason)
}

func (q *Queue) deliver(ctx context.Context, msg redis.XMessage, consumer string, reclaimed bool) (*Delivery, error) {
	job, err := decodeJob(msg)
	if err != nil {
		return nil, q.dropCorrupt(ctx, msg, err)
	}
	q.metrics.jobs.WithLabelValues("started").Inc()
	return &Delivery{Job: job, EntryID: msg.ID, Consumer: consumer, Reclaimed: reclaimed}, nil
}

// dropCorrupt moves an entry that cannot be decoded to the dead-letter
// stream as it is, so it is kept for a human and never blocks the queue.
func (q *Queue) dropCorrupt(ctx context.Context, msg redis.XMessage, cause error) error {
	raw, _ := msg.Values["job"].(string)
	err := buryScript.Run(ctx, q.rdb, []string{q.streamKey(), q.deadKey()},
		q.cfg.Group, msg.ID, raw, "undecodable entry: "+cause.Error(), q.cfg.DeadMaxLen).Err()
	if err != nil {
		return fmt.Errorf("queue: dead-letter undecodable %s: %w", msg.ID, err)
	}
	q.metrics.jobs.WithLabelValues("dead").Inc()
	return cause
}

var extendScript = redis.NewScript(`
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #p == 0 or p[1][2] ~= ARGV[3] then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, ARGV[2], 'JUSTID')
return 1
`)

// Extend is the worker's heartbeat: it resets the delivery's idle time so no
// one claims it. It returns ErrLost if someone already has.
func (q *Queue) Extend(ctx context.Context, d *Delivery) error {
	ok, err := extendScript.Run(ctx, q.rdb, []string{q.streamKey()}, q.cfg.Group, d.EntryID, d.Consumer).Int()
	if err != nil {
		return fmt.Errorf("queue: extend %s: %w", d.Job.ID, err)
	}
	if ok == 0 {
		return ErrLost
	}
	return nil
}

var finishScript = redis.NewScript(`
local n = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return n
`)

// Done removes a finished job from the queue; outcome ("succeeded" or
// "failed") is counted in metrics.
func (q *Queue) Done(ctx context.Context, d *Delivery, outcome string) error {
	if err := finishScript.Run(ctx, q.rdb, []string{q.streamKey()}, q.cfg.Group, d.EntryID).Err(); err != nil {
		return fmt.Errorf("queue: ack %s: %w", d.Job.ID, err)
	}
	q.metrics.jobs.WithLabelValues(outcome).Inc()
	return nil
}

var retryScript = redis.NewScript(`
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[3])
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
	err = retryScript.Run(ctx, q.rdb, []string{q.streamKey(), q.delayedKey()},
		q.cfg.Group, d.EntryID, string(body), delay.Milliseconds()).Err()
	if err != nil {
		return fmt.Errorf("queue: retry %s: %w", job.ID, err)
	}
	q.metrics.jobs.WithLabelValues("retried").Inc()
	return nil
}

var buryScript = redis.NewScript(`
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'job', ARGV[3], 'reason', ARGV[4])
return 1
`)

// Bury moves the job to the dead-letter stream with the reason it died.
func (q *Queue) Bury(ctx context.Context, d *Delivery, reason string) error {
	body, err := json.Marshal(d.Job)
	if err != nil {
		return fmt.Errorf("queue: encode job %s: %w", d.Job.ID, err)
	}
	err = buryScript.Run(ctx, q.rdb, []string{q.streamKey(), q.deadKey()},
		q.cfg.Group, d.EntryID, string(body), reason, q.cfg.DeadMaxLen).Err()
	if err != nil {
		return fmt.Errorf("queue: dead-letter %s: %w", d.Job.ID, err)
	}
	q.metrics.jobs.WithLabelValues("dead").Inc()
	return nil
}

var releaseScript = redis.NewScript(`
local n = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
if n == 0 then return 0 end
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('XADD', KEYS[1], '*', 'job', ARGV[3])
return 1
`)

// Release hands an unfinished job back so another worker can pick it up at
// once, instead of after the visibility timeout. The worker uses it when it
// shuts down; the job's recorded steps make the next run resume.
func (q *Queue) Release(ctx context.Context, d *Delivery) error {
	body, err := json.Marshal(d.Job)
	if err != nil {
		return fmt.Errorf("queue: encode job %s: %w", d.Job.ID, err)
	}
	err = releaseScript.Run(ctx, q.rdb, []string{q.streamKey()}, q.cfg.Group, d.EntryID, string(body)).Err()
	if err != nil {
		return fmt.Errorf("queue: release %s: %w", d.Job.ID, err)
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
