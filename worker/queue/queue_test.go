package queue_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
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

// slowProxy forwards connections to the test's Redis, holding back every
// chunk that carries a script call for delay: a blocking fake for "Redis was
// too slow to answer", which slows only this client, not the shared server.
func slowProxy(t *testing.T, target string, delay time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			go func() { _, _ = io.Copy(in, out); in.Close() }()
			go func() {
				defer out.Close()
				buf := make([]byte, 64<<10)
				for {
					n, err := in.Read(buf)
					if n > 0 {
						if bytes.Contains(bytes.ToUpper(buf[:n]), []byte("EVAL")) {
							time.Sleep(delay)
						}
						if _, werr := out.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func TestEnqueueRefusedAfterDeadline(t *testing.T) {
	t.Parallel()
	url, prefix := queuetest.URL(t)
	// Every script call reaches Redis 1.2 s late. The caller's deadline is
	// 1.5 s away: the write arrives after the last moment it may start (the
	// deadline minus a third of the time left) and must be refused, while
	// the reply still comes back before the caller gives up.
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	slowOpts := *opts // copied before NewClient fills in a dialer bound to opts
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	slowOpts.Addr = slowProxy(t, opts.Addr, 1200*time.Millisecond)
	slowOpts.ContextTimeoutEnabled = true
	slow := redis.NewClient(&slowOpts)
	t.Cleanup(func() { slow.Close() })
	q, err := queue.New(queue.Config{Prefix: prefix, WriteMargin: time.Hour}, slow, nil)
	if err != nil {
		t.Fatal(err)
	}
	check, _ := queue.New(queue.Config{Prefix: prefix}, rdb, nil)
	if err := check.Init(context.Background()); err != nil { // loads the scripts: one slow round trip, not two
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	job := buildJob("api", "main")
	job.ID = queue.NewID(time.Now())
	if _, err := q.Enqueue(ctx, job, queue.Dedupe{Key: "k", TTL: time.Minute}); !errors.Is(err, queue.ErrLate) {
		t.Fatalf("Enqueue = %v, want ErrLate", err)
	}
	if n, _ := check.Depth(context.Background()); n != 0 {
		t.Fatalf("a late write left %d jobs", n)
	}
	if _, err := check.Record(context.Background(), job.ID); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("a late write left a record: %v", err)
	}
	if keys, _ := rdb.Keys(context.Background(), "{"+prefix+"}:dedupe:*").Result(); len(keys) != 0 {
		t.Fatalf("a late write left dedupe keys %v", keys)
	}
}

func TestShortDeadlineStillWrites(t *testing.T) {
	t.Parallel()
	q, _, _ := queuetest.New(t, queue.Config{WriteMargin: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := q.Enqueue(ctx, buildJob("api", "main"), queue.Dedupe{}); err != nil {
		t.Fatalf("a prompt write under a deadline was refused: %v", err)
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
	// A retry waiting its turn still counts.
	d := mustNext(t, q, "w")
	if err := q.Retry(ctx, d, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Enqueue(ctx, buildJob("api", "main"), queue.Dedupe{}); !errors.Is(err, queue.ErrFull) {
		t.Fatalf("third Enqueue = %v, want ErrFull", err)
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
	task := queue.LiveTask{Service: "api", Env: "staging", Task: "migrate", State: "TASK_RUNNING", Job: ids[3], User: "U9", Since: base.UTC()}
	rec.LiveTasks, rec.LiveTasksError = []queue.LiveTask{task}, "Mesos could not be asked."
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
		back.RetriedAs != ids[3] || back.RetriedBy != "U9" || back.Started.UnixMilli() != base.UnixMilli() ||
		len(back.LiveTasks) != 1 || back.LiveTasks[0] != task || back.LiveTasksError != rec.LiveTasksError {
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
	for _, bad := range []string{"", "01JDEMO", "8ZZZZZZZZZZZZZZZZZZZZZZZZZ", "01JD000000000000000000000I", "01jd0000000000000000000000", "01JD00000000000000000000/0"} {
		if queue.ValidID(bad) {
			t.Errorf("ValidID(%q) = true", bad)
		}
	}
}
