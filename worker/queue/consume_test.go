package queue_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/seed-5eb4e92e/deploybot/worker/queue"
	"github.com/seed-5eb4e92e/deploybot/worker/queue/queuetest"
)

// waitClaim polls Next until consumer gets a job; the visibility timeout is
// short, so this is waiting for a condition, not measuring time.
func waitClaim(t *testing.T, q *queue.Queue, consumer string) (*queue.Delivery, error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		d, err := q.Next(context.Background(), consumer, 10*time.Millisecond)
		if d != nil || err != nil {
			return d, err
		}
	}
	t.Fatalf("%s never claimed the job", consumer)
	return nil, nil
}

func TestReclaimAfterWorkerVanishes(t *testing.T) {
	t.Parallel()
	q, _, _ := queuetest.New(t, queue.Config{Visibility: 50 * time.Millisecond})
	ctx := context.Background()
	res, err := q.Enqueue(ctx, buildJob("api", "main"), queue.Dedupe{})
	if err != nil {
		t.Fatal(err)
	}
	a := mustNext(t, q, "worker-a")
	// worker-a stops heartbeating; worker-b takes the job over.
	b, err := waitClaim(t, q, "worker-b")
	if err != nil {
		t.Fatal(err)
	}
	if b.Job.ID != res.ID || !b.Reclaimed {
		t.Fatalf("claimed %+v, want job %s reclaimed", b, res.ID)
	}
	if err := q.Extend(ctx, a); !errors.Is(err, queue.ErrLost) {
		t.Fatalf("the old holder's Extend = %v, want ErrLost", err)
	}
	if err := q.Extend(ctx, b); err != nil {
		t.Fatalf("the new holder's Extend = %v", err)
	}
}

func TestExtendResetsIdleTime(t *testing.T) {
	t.Parallel()
	q, rdb, _ := queuetest.New(t, queue.Config{})
	ctx := context.Background()
	if _, err := q.Enqueue(ctx, buildJob("api", "main"), queue.Dedupe{}); err != nil {
		t.Fatal(err)
	}
	d := mustNext(t, q, "w")
	idle := func() time.Duration {
		p, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
			Stream: "{" + q.Config().Prefix + "}:jobs", Group: q.Config().Group, Start: d.EntryID, End: d.EntryID, Count: 1,
		}).Result()
		if err != nil || len(p) != 1 {
			t.Fatalf("XPENDING: %v %v", p, err)
		}
		return p[0].Idle
	}
	time.Sleep(30 * time.Millisecond)
	before := idle()
	if err := q.Extend(ctx, d); err != nil {
		t.Fatal(err)
	}
	if after := idle(); after >= before {
		t.Fatalf("idle %v after Extend, %v before; want it reset", after, before)
	}
}

func TestPoisonJobIsDeadLettered(t *testing.T) {
	t.Parallel()
	q, _, reg := queuetest.New(t, queue.Config{Visibility: 20 * time.Millisecond, MaxDeliveries: 1})
	ctx := context.Background()
	res, err := q.Enqueue(ctx, buildJob("api", "main"), queue.Dedupe{})
	if err != nil {
		t.Fatal(err)
	}
	mustNext(t, q, "w1") // w1 vanishes
	_, err = waitClaim(t, q, "w2")
	var poison *queue.PoisonError
	if !errors.As(err, &poison) || poison.Job.ID != res.ID {
		t.Fatalf("claim = %v, want PoisonError for %s", err, res.ID)
	}
	dead, err := q.Dead(ctx, 10)
	if err != nil || len(dead) != 1 || dead[0].Job.ID != res.ID {
		t.Fatalf("dead letters = %+v, %v", dead, err)
	}
	if n, _ := q.Depth(ctx); n != 0 {
		t.Fatalf("Depth = %d after dead-lettering", n)
	}
	if got := jobsTotal(reg, "dead"); got != 1 {
		t.Fatalf("jobs_total{dead} = %v", got)
	}
}

func TestRetryLaterAndNow(t *testing.T) {
	t.Parallel()
	q, _, reg := queuetest.New(t, queue.Config{})
	ctx := context.Background()
	if _, err := q.Enqueue(ctx, buildJob("api", "main"), queue.Dedupe{}); err != nil {
		t.Fatal(err)
	}
	d := mustNext(t, q, "w")
	if err := q.Retry(ctx, d, time.Hour); err != nil {
		t.Fatal(err)
	}
	mustEmpty(t, q, "w")
	if n, _ := q.Depth(ctx); n != 1 {
		t.Fatalf("Depth = %d; a retry not yet due still counts", n)
	}
	if _, err := q.Enqueue(ctx, buildJob("web", "main"), queue.Dedupe{}); err != nil {
		t.Fatal(err)
	}
	d2 := mustNext(t, q, "w")
	if err := q.Retry(ctx, d2, 0); err != nil {
		t.Fatal(err)
	}
	again := mustNext(t, q, "w")
	if again.Job.ID != d2.Job.ID || again.Job.Attempt != 2 {
		t.Fatalf("retried delivery = %+v, want job %s attempt 2", again.Job, d2.Job.ID)
	}
	if got := jobsTotal(reg, "retried"); got != 2 {
		t.Fatalf("jobs_total{retried} = %v, want 2", got)
	}
}

func TestReleaseHandsBackAtOnce(t *testing.T) {
	t.Parallel()
	q, _, _ := queuetest.New(t, queue.Config{Visibility: time.Hour})
	ctx := context.Background()
	res, _ := q.Enqueue(ctx, buildJob("api", "main"), queue.Dedupe{})
	d := mustNext(t, q, "stopping")
	if err := q.Release(ctx, d); err != nil {
		t.Fatal(err)
	}
	other := mustNext(t, q, "other")
	if other.Job.ID != res.ID || other.Job.Attempt != 1 {
		t.Fatalf("released job came back as %+v", other.Job)
	}
}

func TestCorruptEntryIsSetAside(t *testing.T) {
	t.Parallel()
	q, rdb, _ := queuetest.New(t, queue.Config{})
	ctx := context.Background()
	stream := "{" + q.Config().Prefix + "}:jobs"
	if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: map[string]any{"job": "{not json"}}).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Next(ctx, "w", 10*time.Millisecond); err == nil {
		t.Fatal("Next returned no error for a corrupt entry")
	}
	mustEmpty(t, q, "w")
	dead, _ := q.Dead(ctx, 10)
	if len(dead) != 1 || !strings.Contains(dead[0].Reason, "undecodable") {
		t.Fatalf("dead letters = %+v", dead)
	}
}

// TestReclaimBehindManyLiveJobs: Redis examines only ten pending entries per
// XAUTOCLAIM call, so a job abandoned behind eleven live, heartbeating ones
// is found only if the claim follows the cursor. (miniredis has no such
// limit; this test earns its keep against a real Redis, as in CI.)
func TestReclaimBehindManyLiveJobs(t *testing.T) {
	t.Parallel()
	q, _, _ := queuetest.New(t, queue.Config{Visibility: 300 * time.Millisecond})
	ctx := context.Background()
	var ids []string
	for i := 0; i < 12; i++ {
		res, err := q.Enqueue(ctx, buildJob("api", fmt.Sprintf("r%d", i)), queue.Dedupe{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.ID)
	}
	var live []*queue.Delivery
	for i := 0; i < 11; i++ {
		live = append(live, mustNext(t, q, "live"))
	}
	abandoned := mustNext(t, q, "ghost")
	if abandoned.Job.ID != ids[11] {
		t.Fatalf("ghost got %s, want the last job", abandoned.Job.ID)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				for _, d := range live {
					_ = q.Extend(ctx, d)
				}
			}
		}
	}()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		d, err := q.Next(ctx, "rescuer", 10*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if d != nil && d.Job.ID == abandoned.Job.ID {
			if !d.Reclaimed {
				t.Fatal("the rescued job is not marked reclaimed")
			}
			return
		}
	}
	t.Fatal("the abandoned job behind eleven live ones was never reclaimed")
}

func TestLostWorkerCannotEndTheJob(t *testing.T) {
	t.Parallel()
	q, _, _ := queuetest.New(t, queue.Config{Visibility: 50 * time.Millisecond})
	ctx := context.Background()
	if _, err := q.Enqueue(ctx, buildJob("api", "main"), queue.Dedupe{}); err != nil {
		t.Fatal(err)
	}
	a := mustNext(t, q, "a")
	b, err := waitClaim(t, q, "b")
	if err != nil {
		t.Fatal(err)
	}
	for name, end := range map[string]func() error{
		"Done":    func() error { return q.Done(ctx, a, "succeeded") },
		"Retry":   func() error { return q.Retry(ctx, a, 0) },
		"Bury":    func() error { return q.Bury(ctx, a, "x") },
		"Release": func() error { return q.Release(ctx, a) },
		"Extend":  func() error { return q.Extend(ctx, a) },
	} {
		if err := end(); !errors.Is(err, queue.ErrLost) {
			t.Errorf("the old holder's %s = %v, want ErrLost", name, err)
		}
	}
	if n, _ := q.Depth(ctx); n != 1 {
		t.Fatalf("Depth = %d; the old holder changed the queue", n)
	}
	if err := q.Done(ctx, b, "succeeded"); err != nil {
		t.Fatalf("the new holder's Done = %v", err)
	}
}

func TestLeaveAndPrune(t *testing.T) {
	t.Parallel()
	q, rdb, _ := queuetest.New(t, queue.Config{})
	ctx := context.Background()
	stream := "{" + q.Config().Prefix + "}:jobs"
	consumers := func() map[string]int64 {
		cs, err := rdb.XInfoConsumers(ctx, stream, q.Config().Group).Result()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int64{}
		for _, c := range cs {
			out[c.Name] = c.Pending
		}
		return out
	}
	if _, err := q.Enqueue(ctx, buildJob("api", "main"), queue.Dedupe{}); err != nil {
		t.Fatal(err)
	}
	d := mustNext(t, q, "holder")
	mustEmpty(t, q, "idle")
	if err := q.Leave(ctx, "holder"); err != nil {
		t.Fatal(err)
	}
	if err := q.Leave(ctx, "idle"); err != nil {
		t.Fatal(err)
	}
	if got := consumers(); got["holder"] != 1 || len(got) != 1 {
		t.Fatalf("consumers = %v; want only the one holding a job", got)
	}
	if err := q.Done(ctx, d, "succeeded"); err != nil {
		t.Fatal(err)
	}
	if err := q.Prune(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if got := consumers(); len(got) != 0 {
		t.Fatalf("consumers after Prune = %v", got)
	}
}

// TestOldestWaiting: the queue-age gauge counts jobs no worker has picked
// up, and only those.
func TestOldestWaiting(t *testing.T) {
	t.Parallel()
	q, _, _ := queuetest.New(t, queue.Config{})
	ctx := context.Background()
	if age, err := q.OldestWaiting(ctx); err != nil || age != 0 {
		t.Fatalf("empty queue: %v, %v", age, err)
	}
	before := time.Now()
	for _, ref := range []string{"a", "b"} {
		if _, err := q.Enqueue(ctx, buildJob("api", ref), queue.Dedupe{}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(30 * time.Millisecond) // a lower bound only: the jobs have waited at least this
	age, err := q.OldestWaiting(ctx)
	if err != nil || age < 30*time.Millisecond || age > time.Since(before)+time.Second {
		t.Fatalf("two waiting for 30ms: %v, %v", age, err)
	}
	mustNext(t, q, "w")
	if age, err := q.OldestWaiting(ctx); err != nil || age > time.Since(before)+time.Second {
		t.Fatalf("one picked up, one waiting: %v, %v", age, err)
	}
	mustNext(t, q, "w")
	if age, err := q.OldestWaiting(ctx); err != nil || age != 0 {
		t.Fatalf("both picked up: %v, %v; want 0", age, err)
	}
}

// histogramCount is how many observations a histogram of reg holds, for
// the series with label=value ("" for an unlabelled histogram).
func histogramCount(t *testing.T, reg *prometheus.Registry, name, label, value string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label == "" {
				return m.GetHistogram().GetSampleCount()
			}
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}

// The wait histogram counts a job's first pickup only: not a release at
// shutdown, a postponement or a retry; the job histogram counts each end.
func TestWaitAndJobHistograms(t *testing.T) {
	t.Parallel()
	q, _, reg := queuetest.New(t, queue.Config{Visibility: time.Hour})
	ctx := context.Background()
	job := buildJob("api", "main")
	job.CreatedAt = time.Now()
	if _, err := q.Enqueue(ctx, job, queue.Dedupe{}); err != nil {
		t.Fatal(err)
	}
	d := mustNext(t, q, "w1")
	if err := q.Release(ctx, d); err != nil {
		t.Fatal(err)
	}
	d = mustNext(t, q, "w2")
	if err := q.Postpone(ctx, d, 0); err != nil {
		t.Fatal(err)
	}
	d = mustNext(t, q, "w3")
	if err := q.Retry(ctx, d, 0); err != nil {
		t.Fatal(err)
	}
	d = mustNext(t, q, "w4")
	if err := q.Done(ctx, d, "succeeded"); err != nil {
		t.Fatal(err)
	}
	if n := histogramCount(t, reg, "deploybot_queue_wait_seconds", "", ""); n != 1 {
		t.Errorf("queue wait observed %d times for one job picked up four times, want 1", n)
	}
	if n := histogramCount(t, reg, "deploybot_job_seconds", "outcome", "succeeded"); n != 1 {
		t.Errorf("job time observed %d times for succeeded, want 1", n)
	}
}
