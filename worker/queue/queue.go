// Package queue is deploybot's job queue and shared job state, kept in Redis.
//
// Jobs go into one stream read by a consumer group (at-least-once delivery).
// A job held by a worker that stopped heartbeating is claimed by another
// (XAUTOCLAIM); retryable failures wait in a sorted set until they are due;
// jobs that keep failing end in a dead-letter stream. Every key starts with
// one hash tag, "{prefix}", so multi-key scripts work on Redis Cluster.
package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Config tunes the queue. The zero value works; defaults are on the fields.
type Config struct {
	// Prefix names every key, wrapped in a hash tag: "{deploybot}:jobs".
	// Default "deploybot".
	Prefix string
	// Group is the consumer group workers share. Default "workers".
	Group string
	// Visibility is how long a job may go without a heartbeat before another
	// worker claims it. Default 1m.
	Visibility time.Duration
	// MaxDeliveries is how many times a job may be handed to a worker that
	// then vanished before it is dead-lettered. Default 5.
	MaxDeliveries int64
	// MaxBacklog refuses new jobs while this many wait, run or wait for a
	// retry. Default 10000.
	MaxBacklog int64
	// WriteMargin is kept free before the caller's deadline: a write that
	// reaches Redis later than deadline-WriteMargin is refused, so a caller
	// that gave up can truthfully say nothing started. It is capped at a
	// third of the time left. Default 300ms.
	WriteMargin time.Duration
	// RecordTTL is how long job records and dedupe keys of retries are kept.
	// Default 30 days.
	RecordTTL time.Duration
	// Recent is how many jobs per service /deploy status remembers. Default 50.
	Recent int64
	// DeadMaxLen trims the dead-letter stream. Default 10000.
	DeadMaxLen int64
}

func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = "deploybot"
	}
	if c.Group == "" {
		c.Group = "workers"
	}
	if c.Visibility <= 0 {
		c.Visibility = time.Minute
	}
	if c.MaxDeliveries <= 0 {
		c.MaxDeliveries = 5
	}
	if c.MaxBacklog <= 0 {
		c.MaxBacklog = 10000
	}
	if c.WriteMargin <= 0 {
		c.WriteMargin = 300 * time.Millisecond
	}
	if c.RecordTTL <= 0 {
		c.RecordTTL = 30 * 24 * time.Hour
	}
	if c.Recent <= 0 {
		c.Recent = 50
	}
	if c.DeadMaxLen <= 0 {
		c.DeadMaxLen = 10000
	}
	return c
}

// Named errors callers branch on.
var (
	// ErrLate means the write reached Redis after the caller's deadline and
	// was refused: nothing was queued.
	ErrLate = errors.New("queue: write arrived after its deadline; nothing was queued")
	// ErrFull means MaxBacklog jobs are already waiting.
	ErrFull = errors.New("queue: backlog is full")
	// ErrNotFound means no record exists for a job ID (never, or expired).
	ErrNotFound = errors.New("queue: no such job")
	// ErrLost means the worker no longer holds a delivery: another worker
	// claimed it after the visibility timeout.
	ErrLost = errors.New("queue: delivery was claimed by another worker")
)

// Queue is a handle on the Redis queue; it is safe for concurrent use.
type Queue struct {
	rdb     redis.UniversalClient
	cfg     Config
	tag     string
	metrics *metrics

	mu      sync.Mutex
	cursors map[string]string // consumer → XAUTOCLAIM cursor
}

// New returns a queue on rdb. Metrics are registered on reg when it is not
// nil.
func New(cfg Config, rdb redis.UniversalClient, reg prometheus.Registerer) (*Queue, error) {
	cfg = cfg.withDefaults()
	if strings.ContainsAny(cfg.Prefix, "{}: \t\r\n") {
		return nil, fmt.Errorf("queue: prefix %q may not contain braces, colons or spaces", cfg.Prefix)
	}
	q := &Queue{rdb: rdb, cfg: cfg, tag: "{" + cfg.Prefix + "}", cursors: map[string]string{}}
	m, err := newMetrics(q, reg)
	if err != nil {
		return nil, err
	}
	q.metrics = m
	return q, nil
}

// Config returns the queue's configuration with defaults applied.
func (q *Queue) Config() Config { return q.cfg }

func (q *Queue) key(parts ...string) string { return q.tag + ":" + strings.Join(parts, ":") }

func (q *Queue) streamKey() string  { return q.key("jobs") }
func (q *Queue) delayedKey() string { return q.key("delayed") }
func (q *Queue) deadKey() string    { return q.key("dead") }
func (q *Queue) recordKey(id string) string {
	return q.key("job", id)
}

// Ping checks that Redis answers.
func (q *Queue) Ping(ctx context.Context) error { return q.rdb.Ping(ctx).Err() }

// Dedupe asks Enqueue to refuse a second job under Key for TTL; the
// duplicate is answered with the first job's ID instead.
type Dedupe struct {
	Key string
	TTL time.Duration
}

// Enqueued is the result of Enqueue.
type Enqueued struct {
	// ID is the new job's ID, or the existing one's for a duplicate.
	ID        string
	Duplicate bool
}

var enqueueScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local deadline = tonumber(ARGV[4])
if deadline > 0 and now > deadline then return {'late', ''} end
local dedupeTTL = tonumber(ARGV[3])
if dedupeTTL > 0 then
  local existing = redis.call('GET', KEYS[3])
  if existing then return {'dup', existing} end
end
if redis.call('XLEN', KEYS[1]) + redis.call('ZCARD', KEYS[4]) >= tonumber(ARGV[8]) then return {'full', ''} end
if dedupeTTL > 0 then redis.call('SET', KEYS[3], ARGV[2], 'PX', dedupeTTL) end
redis.call('HSET', KEYS[2], 'job', ARGV[1], 'state', 'queued', 'created', ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[6])
for i = 5, #KEYS do
  redis.call('ZADD', KEYS[i], ARGV[5], ARGV[2])
  redis.call('ZREMRANGEBYRANK', KEYS[i], 0, -(tonumber(ARGV[7]) + 1))
  redis.call('EXPIRE', KEYS[i], ARGV[6])
end
redis.call('XADD', KEYS[1], '*', 'job', ARGV[1])
return {'ok', ARGV[2]}
`)

// Enqueue writes job durably and returns its ID; the job is not queued
// unless it returns a nil error. When ctx has a deadline, Redis refuses the
// write if it arrives later than the deadline minus WriteMargin (ErrLate),
// so a caller that timed out can say that nothing started.
func (q *Queue) Enqueue(ctx context.Context, job Job, dd Dedupe) (Enqueued, error) {
	if job.CreatedAt.IsZero() {
		job.CreatedAt = time.Now()
	}
	if job.ID == "" {
		job.ID = NewID(job.CreatedAt)
	}
	if job.Attempt == 0 {
		job.Attempt = 1
	}
	body, err := json.Marshal(job)
	if err != nil {
		return Enqueued{}, fmt.Errorf("queue: encode job: %w", err)
	}
	var deadline int64
	if d, ok := ctx.Deadline(); ok {
		// Keep the margin for the reply's trip back, but never more than a
		// third of the time left, so short deadlines still leave room.
		margin := max(0, min(q.cfg.WriteMargin, time.Until(d)/3))
		deadline = d.Add(-margin).UnixMilli()
	}
	dedupeKey := q.key("dedupe", "-")
	var dedupeTTL int64
	if dd.Key != "" && dd.TTL > 0 {
		dedupeKey = q.key("dedupe", dd.Key)
		dedupeTTL = dd.TTL.Milliseconds()
	}
	keys := append([]string{q.streamKey(), q.recordKey(job.ID), dedupeKey, q.delayedKey()}, q.indexes(job)...)
	res, err := enqueueScript.Run(ctx, q.rdb, keys,
		string(body), job.ID, dedupeTTL, deadline, job.CreatedAt.UnixMilli(),
		int64(q.cfg.RecordTTL/time.Second), q.cfg.Recent, q.cfg.MaxBacklog).StringSlice()
	if err != nil {
		return Enqueued{}, fmt.Errorf("queue: enqueue %s: %w", job.ID, err)
	}
	switch res[0] {
	case "ok":
		q.metrics.jobs.WithLabelValues("enqueued").Inc()
		return Enqueued{ID: job.ID}, nil
	case "dup":
		return Enqueued{ID: res[1], Duplicate: true}, nil
	case "late":
		return Enqueued{}, ErrLate
	case "full":
		return Enqueued{}, ErrFull
	}
	return Enqueued{}, fmt.Errorf("queue: enqueue %s: unexpected answer %q", job.ID, res[0])
}

// indexes are the lists a job is listed in. Jobs with a message of their
// own are listed by /deploy status; background ones (webhook events,
// notice buttons) are not. Deploys, promotions and rollbacks are also
// listed by /deploy history, per service and per environment.
func (q *Queue) indexes(job Job) []string {
	if job.Channel == "" {
		return nil
	}
	req := job.Request
	keys := []string{q.key("recent")}
	if req.Service != "" {
		keys = append(keys, q.key("svc", req.Service))
	}
	if req.Service != "" && req.Env != "" && deployKinds[req.Kind] {
		keys = append(keys, q.key("deploys", req.Service), q.key("deploys", req.Service, req.Env))
	}
	return keys
}

// deployKinds are the requests that change what runs in an environment.
var deployKinds = map[string]bool{"deploy": true, "promote": true, "rollback": true}

// ChangesEnv reports whether a request of kind changes what runs in an
// environment: a deploy, promote or rollback.
func ChangesEnv(kind string) bool { return deployKinds[kind] }

// scripts are loaded by Init, so the first request does not pay for a
// NOSCRIPT round trip.
var scripts = []*redis.Script{enqueueScript, promoteScript, extendScript, finishScript, retryScript, buryScript, releaseScript, leaveScript, unlockScript, renewScript, lockEnvScript}

// Init creates the consumer group (and the stream) if they do not exist and
// loads the queue's scripts into Redis.
func (q *Queue) Init(ctx context.Context) error {
	err := q.rdb.XGroupCreateMkStream(ctx, q.streamKey(), q.cfg.Group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("queue: create group %s: %w", q.cfg.Group, err)
	}
	for _, s := range scripts {
		if err := s.Load(ctx, q.rdb).Err(); err != nil {
			return fmt.Errorf("queue: load scripts: %w", err)
		}
	}
	return nil
}

// Depth is how many jobs wait or run, including retries not yet due.
func (q *Queue) Depth(ctx context.Context) (int64, error) {
	pipe := q.rdb.Pipeline()
	n := pipe.XLen(ctx, q.streamKey())
	d := pipe.ZCard(ctx, q.delayedKey())
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return 0, fmt.Errorf("queue: depth: %w", err)
	}
	return n.Val() + d.Val(), nil
}

// OldestWaiting is how long the oldest job no worker has picked up yet has
// waited: 0 when none waits. Retries not yet due do not count.
func (q *Queue) OldestWaiting(ctx context.Context) (time.Duration, error) {
	after := "-"
	groups, err := q.rdb.XInfoGroups(ctx, q.streamKey()).Result()
	if err != nil && !isNoStream(err) {
		return 0, fmt.Errorf("queue: oldest waiting: %w", err)
	}
	for _, g := range groups {
		if g.Name == q.cfg.Group {
			after = "(" + g.LastDeliveredID
		}
	}
	msgs, err := q.rdb.XRangeN(ctx, q.streamKey(), after, "+", 1).Result()
	if err != nil || len(msgs) == 0 {
		return 0, err
	}
	ms, err := strconv.ParseInt(strings.SplitN(msgs[0].ID, "-", 2)[0], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("queue: stream entry id %q: %w", msgs[0].ID, err)
	}
	return max(time.Since(time.UnixMilli(ms)), 0), nil
}

// isNoStream is Redis' answer to XINFO on a stream that does not exist yet.
func isNoStream(err error) bool {
	return strings.Contains(err.Error(), "no such key") || errors.Is(err, redis.Nil)
}

func decodeJob(msg redis.XMessage) (Job, error) {
	raw, _ := msg.Values["job"].(string)
	var job Job
	if err := json.Unmarshal([]byte(raw), &job); err != nil {
		return Job{}, fmt.Errorf("queue: decode entry %s: %w", msg.ID, err)
	}
	if !ValidID(job.ID) {
		return Job{}, fmt.Errorf("queue: entry %s has a bad job ID %q", msg.ID, job.ID)
	}
	return job, nil
}

func formatMillis(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixMilli(), 10)
}

func parseMillis(s string) time.Time {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}
