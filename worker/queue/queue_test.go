package queue_test

import (
	"context"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/seed-5eb4e92e/deploybot/commands"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
	"github.com/seed-5eb4e92e/deploybot/worker/queue/queuetest"
)

func buildJob(svc, ref string) queue.Job {
	return queue.Job{
		Request: commands.Request{Kind: "build", Action: "build", Service: svc, Ref: ref},
		User:    "U1",
		Channel: "C1",
	}
}

func mustNext(t *testing.T, q *queue.Queue, consumer string) *queue.Delivery {
	t.Helper()
	d, err := q.Next(context.Background(), consumer, 10*time.Millisecond)
	if err != nil {
		t.Fatalf("Next(%s): %v", consumer, err)
	}
	if d == nil {
		t.Fatalf("Next(%s) found no job", consumer)
	}
	return d
}

func mustEmpty(t *testing.T, q *queue.Queue, consumer string) {
	t.Helper()
	d, err := q.Next(context.Background(), consumer, 10*time.Millisecond)
	if err != nil {
		t.Fatalf("Next(%s): %v", consumer, err)
	}
	if d != nil {
		t.Fatalf("Next(%s) = job %s, want none", consumer, d.Job.ID)
	}
}

func jobsTotal(reg *prometheus.Registry, event string) float64 {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "deploybot_jobs_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "event" && l.GetValue() == event {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return -1
}

func TestEnqueueRunDone(t *testing.T) {
	t.Parallel()
	q, _, reg := queuetest.New(t, queue.Config{})
	ctx := context.Background()
	res, err := q.Enqueue(ctx, buildJob("api", "main"), queue.Dedupe{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Duplicate || !queue.ValidID(res.ID) {
		t.Fatalf("Enqueue = %+v, want a new valid ID", res)
	}
	rec, err := q.Record(ctx, res.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != queue.StateQueued || rec.Job.Request.Ref != "main" || rec.Job.Attempt != 1 {
		t.Fatalf("record after enqueue = %+v", rec)
	}
	if n, _ := q.Depth(ctx); n != 1 {
		t.Fatalf("Depth = %d, want 1", n)
	}
	d := mustNext(t, q, "w1")
	if d.Job.ID != res.ID || d.Reclaimed {
		t.Fatalf("delivery = %+v, want job %s, not reclaimed", d, res.ID)
	}
	mustEmpty(t, q, "w2")
	if err := q.Done(ctx, d, "succeeded"); err != nil {
		t.Fatal(err)
	}
	if n, _ := q.Depth(ctx); n != 0 {
		t.Fatalf("Depth after Done = %d, want 0", n)
	}
	for event, want := range map[string]float64{"enqueued": 1, "started": 1, "succeeded": 1, "failed": 0} {
		if got := jobsTotal(reg, event); got != want {
			t.Errorf("jobs_total{event=%q} = %v, want %v", event, got, want)
		}
	}
	if n, err := testutil.GatherAndCount(reg, "deploybot_queue_depth"); err != nil || n != 1 {
		t.Errorf("queue depth gauge: %d series, %v", n, err)
	}
}

func TestDedupe(t *testing.T) {
	t.Parallel()
	q, _, _ := queuetest.New(t, queue.Config{})
	ctx := context.Background()
	dd := queue.Dedupe{Key: "cmd:U1:build api main", TTL: time.Minute}
	first, err := q.Enqueue(ctx, buildJob("api", "main"), dd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		again, err := q.Enqueue(ctx, buildJob("api", "main"), dd)
		if err != nil {
			t.Fatal(err)
		}
		if !again.Duplicate || again.ID != first.ID {
			t.Fatalf("repeat %d = %+v, want duplicate of %s", i, again, first.ID)
		}
	}
	if n, _ := q.Depth(ctx); n != 1 {
		t.Fatalf("Depth = %d, want exactly one job", n)
	}
	other, err := q.Enqueue(ctx, buildJob("api", "main"), queue.Dedupe{Key: "cmd:U2:build api main", TTL: time.Minute})
	if err != nil || other.Duplicate {
		t.Fatalf("another key = %+v, %v; want a new job", other, err)
	}
}

func TestEnqueueRefusedAfterDeadline(t *testing.T) {
	t.Parallel()
	q, rdb, _ := queuetest.New(t, queue.Config{WriteMargin: time.Hour})
	// The deadline minus the margin is already past when the script runs,
	// as if Redis had been too slow to answer in time.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	job := buildJob("api", "main")
	job.ID = queue.NewID(time.Now())
	_, err := q.Enqueue(ctx, job, queue.Dedupe{Key: "k", TTL: time.Minute})
	if !errors.Is(err, queue.ErrLate) {
		t.Fatalf("Enqueue = %v, want ErrLate", err)
	}
	if n, _ := q.Depth(context.Background()); n != 0 {
		t.Fatalf("a late write left %d jobs", n)
	}
	if _, err := q.Record(context.Background(), job.ID); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("a late write left a record: %v", err)
	}
	keys, _ := rdb.Keys(context.Background(), "*dedupe*").Result()
	for _, k := range keys {
		if strings.Contains(k, q.Config().Prefix) {
			t.Fatalf("a late write left dedupe key %s", k)
		}
	}
}

func TestBacklogFull(t *testing.T) {
	t.Parallel()
	q, _, _ := queuetest.New(t, queue.Config{MaxBacklog: 2})
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if _, err := q.Enqueue(ctx, buildJob("api", "main"), queue.Dedupe{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := q.Enqueue(ctx, buildJob("api", "main"), queue.Dedupe{}); !errors.Is(err, queue.ErrFull) {
		t.Fatalf("third Enqueue = %v, want ErrFull", err)
	}
}

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

func TestRecordsAndRecent(t *testing.T) {
	t.Parallel()
	q, _, _ := queuetest.New(t, queue.Config{Recent: 3})
	ctx := context.Background()
	var ids []string
	base := time.Now()
	for i := 0; i < 5; i++ {
		job := buildJob("api", "main")
		job.CreatedAt = base.Add(time.Duration(i) * time.Second)
		res, err := q.Enqueue(ctx, job, queue.Dedupe{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.ID)
	}
	web := buildJob("web", "main")
	web.CreatedAt = base.Add(10 * time.Second)
	if _, err := q.Enqueue(ctx, web, queue.Dedupe{}); err != nil {
		t.Fatal(err)
	}
	recent, err := q.Recent(ctx, "api", 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recent {
		got = append(got, r.Job.ID)
	}
	want := []string{ids[4], ids[3], ids[2]}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("Recent(api) = %v, want newest three %v", got, want)
	}
	all, _ := q.Recent(ctx, "", 10)
	if len(all) != 3 || all[0].Job.Request.Service != "web" {
		t.Fatalf("Recent(all) = %d records, first %+v", len(all), all)
	}

	rec, err := q.Record(ctx, ids[4])
	if err != nil {
		t.Fatal(err)
	}
	rec.State, rec.Stage, rec.Link, rec.LinkText = queue.StateRunning, "building", "http://j/job/api/7/", "#7"
	rec.Channel, rec.MessageTS, rec.Started = "C1", "1700000000.000100", base
	if err := q.Save(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := q.MarkRetried(ctx, ids[4], ids[3], "U9"); err != nil {
		t.Fatal(err)
	}
	back, err := q.Record(ctx, ids[4])
	if err != nil {
		t.Fatal(err)
	}
	if back.Stage != "building" || back.LinkText != "#7" || back.MessageTS != rec.MessageTS ||
		back.RetriedAs != ids[3] || back.RetriedBy != "U9" || back.Started.UnixMilli() != base.UnixMilli() {
		t.Fatalf("record round trip = %+v", back)
	}
	if _, err := q.Record(ctx, "not-an-id"); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("Record(bad id) = %v, want ErrNotFound", err)
	}
}

func TestSteps(t *testing.T) {
	t.Parallel()
	q, _, _ := queuetest.New(t, queue.Config{})
	ctx := context.Background()
	res, _ := q.Enqueue(ctx, buildJob("api", "main"), queue.Dedupe{})
	st := q.Steps(res.ID)
	if v, err := st.Get(ctx, "queue_url"); err != nil || v != "" {
		t.Fatalf("unset step = %q, %v", v, err)
	}
	if err := st.Set(ctx, "queue_url", "http://j/queue/item/4/"); err != nil {
		t.Fatal(err)
	}
	if v, _ := q.Steps(res.ID).Get(ctx, "queue_url"); v != "http://j/queue/item/4/" {
		t.Fatalf("step = %q", v)
	}
	// Saving the record must not wipe the steps.
	rec, _ := q.Record(ctx, res.ID)
	rec.Stage = "building"
	if err := q.Save(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if v, _ := st.Get(ctx, "queue_url"); v == "" {
		t.Fatal("Save wiped a step")
	}
}

func TestAllKeysShareOneHashTag(t *testing.T) {
	t.Parallel()
	q, rdb, _ := queuetest.New(t, queue.Config{Visibility: 10 * time.Millisecond, MaxDeliveries: 1})
	ctx := context.Background()
	res, _ := q.Enqueue(ctx, buildJob("api", "main"), queue.Dedupe{Key: "x", TTL: time.Minute})
	_ = q.Steps(res.ID).Set(ctx, "s", "v")
	d := mustNext(t, q, "w")
	_ = q.Retry(ctx, d, time.Hour)
	prefix := q.Config().Prefix
	keys, err := rdb.Keys(ctx, "*"+prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(keys)
	if len(keys) < 5 {
		t.Fatalf("expected stream, record, indexes, dedupe and delayed keys; got %v", keys)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "{"+prefix+"}:") {
			t.Errorf("key %q is outside the hash tag {%s}", k, prefix)
		}
	}
}

func TestNewRejectsBadPrefix(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"a{b", "a:b", "a b"} {
		if _, err := queue.New(queue.Config{Prefix: p}, nil, nil); err == nil {
			t.Errorf("New accepted prefix %q", p)
		}
	}
}

func TestIDs(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	prev := ""
	base := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for i := 0; i < 1000; i++ {
		id := queue.NewID(base.Add(time.Duration(i) * time.Millisecond))
		if !queue.ValidID(id) {
			t.Fatalf("NewID produced invalid %q", id)
		}
		if seen[id] {
			t.Fatalf("duplicate ID %q", id)
		}
		seen[id] = true
		if id[:10] < prev {
			t.Fatalf("IDs not time-ordered: %q after %q", id[:10], prev)
		}
		prev = id[:10]
	}
	if got := queue.NewID(time.UnixMilli(0))[:10]; got != "0000000000" {
		t.Fatalf("time part of epoch = %q", got)
	}
	if got := queue.NewID(time.UnixMilli(1<<48 - 1))[:10]; got != "7ZZZZZZZZZ" {
		t.Fatalf("time part of max = %q", got)
	}
	for _, bad := range []string{"", "01JDEMO", "8ZZZZZZZZZZZZZZZZZZZZZZZZZ", "01JD0000000000000000000000I", "01jd0000000000000000000000", "01JD00000000000000000000/0"} {
		if queue.ValidID(bad) {
			t.Errorf("ValidID(%q) = true", bad)
		}
	}
}
