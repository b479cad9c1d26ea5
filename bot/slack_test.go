package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/slack-go/slack"

	"github.com/seed-5eb4e92e/deploybot/bot/slacktest"
	"github.com/seed-5eb4e92e/deploybot/commands"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// gatedSleep stands in for the timer: each wait is reported on waits and
// lasts until the test sends on release. Pacing and Retry-After are checked
// by the durations asked for, not by the clock.
type gatedSleep struct {
	waits   chan time.Duration
	release chan struct{}
}

func newGatedSleep() *gatedSleep {
	return &gatedSleep{waits: make(chan time.Duration, 16), release: make(chan struct{})}
}

func (g *gatedSleep) sleep(ctx context.Context, d time.Duration) error {
	g.waits <- d
	select {
	case <-g.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func newTestSlack(t *testing.T, interval time.Duration) (*Slack, *slacktest.Server, *gatedSleep) {
	t.Helper()
	fake := slacktest.Start("xoxb-test")
	t.Cleanup(fake.Close)
	reg := prometheus.NewRegistry()
	s, err := NewSlack(SlackConfig{Token: "xoxb-test", APIURL: fake.URL, Interval: interval}, nil, NewMetrics(reg), nil)
	if err != nil {
		t.Fatal(err)
	}
	g := newGatedSleep()
	s.sleep = g.sleep
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		s.Stop(ctx)
	})
	return s, fake, g
}

func sectionBlocks(text string) []slack.Block { return []slack.Block{section(text)} }

func TestUpdatesArePacedAndCoalesced(t *testing.T) {
	t.Parallel()
	s, fake, g := newTestSlack(t, time.Hour)
	ts, err := s.Post(context.Background(), "C1", "v0", sectionBlocks("v0"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		v := fmt.Sprintf("v%d", i)
		s.Update("C1", ts, v, sectionBlocks(v))
	}
	if d := <-g.waits; d < 59*time.Minute {
		t.Fatalf("waited %v before the next call, want about the 1h interval", d)
	}
	g.release <- struct{}{}
	s.Stop(context.Background())
	if n := fake.Calls("chat.update"); n != 1 {
		t.Fatalf("%d chat.update calls for 5 rapid updates, want 1", n)
	}
	msgs := fake.Messages("C1")
	if len(msgs) != 1 || msgs[0].Text != "v5" || !strings.Contains(msgs[0].Blocks, "v5") {
		t.Fatalf("messages = %+v, want one showing the last update", msgs)
	}
	if got := testutil.ToFloat64(s.metrics.slackCoalesced); got != 4 {
		t.Fatalf("coalesced = %v, want 4", got)
	}
}

func TestRateLimitIsWaitedOutInOrder(t *testing.T) {
	t.Parallel()
	s, fake, g := newTestSlack(t, time.Nanosecond)
	fake.RateLimit("chat.postMessage", 1, 7)
	done := make(chan string, 2)
	go func() {
		ts, err := s.Post(context.Background(), "C1", "first", nil)
		if err != nil {
			t.Error(err)
		}
		done <- ts
	}()
	if d := <-g.waits; d != 7*time.Second {
		t.Fatalf("waited %v after a 429 with Retry-After: 7, want 7s", d)
	}
	s.Reply("C1", "1700000000.000001", "second") // queued behind the limited post
	g.release <- struct{}{}
	if ts := <-done; ts == "" {
		t.Fatal("the rate-limited post never went out")
	}
	for {
		select {
		case <-g.waits: // pacing between the two calls
			g.release <- struct{}{}
			continue
		default:
		}
		if len(fake.Replies("C1", "1700000000.000001")) == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if got := testutil.ToFloat64(s.metrics.slackRateLimited.WithLabelValues("chat.postMessage")); got != 1 {
		t.Fatalf("rate-limited counter = %v", got)
	}
	msgs := fake.Messages("C1")
	if len(msgs) != 1 || msgs[0].Text != "first" {
		t.Fatalf("messages = %+v", msgs)
	}
}

func TestReporterPostsThenUpdates(t *testing.T) {
	t.Parallel()
	s, fake, _ := newTestSlack(t, time.Nanosecond)
	s.sleep = sleepCtx
	rep := NewReporter(s, nil)
	rec := queue.Record{
		Job:   queue.Job{ID: queue.NewID(time.Now()), Request: commands.Request{Kind: "build", Service: "api", Ref: "main"}, User: "U1"},
		State: queue.StateRunning, Stage: "starting", Channel: "C9",
	}
	ts, err := rep.Report(context.Background(), rec)
	if err != nil || ts == "" {
		t.Fatalf("Report = %q, %v", ts, err)
	}
	rec.MessageTS, rec.State, rec.Result = ts, queue.StateSucceeded, "SUCCESS"
	if got, err := rep.Report(context.Background(), rec); err != nil || got != ts {
		t.Fatalf("second Report = %q, %v; want the same message", got, err)
	}
	if err := rep.Note(context.Background(), rec, "details"); err != nil {
		t.Fatal(err)
	}
	s.Stop(context.Background())
	msgs := fake.Messages("C9")
	if len(msgs) != 1 || msgs[0].Edits != 1 || !strings.Contains(msgs[0].Blocks, "success") {
		t.Fatalf("messages = %+v", msgs)
	}
	if r := fake.Replies("C9", ts); len(r) != 1 || r[0].Text != "details" {
		t.Fatalf("thread = %+v", r)
	}
}

func TestReporterFallsBackToResponseURL(t *testing.T) {
	t.Parallel()
	s, fake, _ := newTestSlack(t, time.Nanosecond)
	s.sleep = sleepCtx
	fake.Block("CPRIVATE")
	rep := NewReporter(s, nil)
	rec := queue.Record{
		Job: queue.Job{ID: queue.NewID(time.Now()), Request: commands.Request{Kind: "build", Service: "api", Ref: "main"},
			User: "U1", ResponseURL: fake.ResponseURL("cmd")},
		State: queue.StateRunning, Stage: "starting", Channel: "CPRIVATE",
	}
	if _, err := rep.Report(context.Background(), rec); !ChannelUnavailable(err) {
		t.Fatalf("Report = %v, want a channel error", err)
	}
	rec.State, rec.Stage, rec.Result = queue.StateFailed, "", "FAILURE"
	_, _ = rep.Report(context.Background(), rec)
	resp := fake.Responses()
	if len(resp) != 2 || !strings.Contains(resp[0].Message.Text, "/invite @deploybot") || resp[1].Message.Blocks == nil {
		t.Fatalf("follow-ups = %+v; want an invite hint, then the result", resp)
	}
}

func TestNewSlackRejectsBadURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"slack.com/api", "ftp://x/"} {
		if _, err := NewSlack(SlackConfig{APIURL: u}, nil, nil, nil); err == nil {
			t.Errorf("NewSlack accepted %q", u)
		}
	}
}

func TestRateLimitWithoutUsefulRetryAfter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		retryAfter int
	}{{"Retry-After: 0", 0}, {"no Retry-After", -1}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, fake, g := newTestSlack(t, time.Nanosecond)
			fake.RateLimit("chat.postMessage", 1, tc.retryAfter)
			done := make(chan error, 1)
			go func() {
				_, err := s.Post(context.Background(), "C1", "x", nil)
				done <- err
			}()
			if d := <-g.waits; d != time.Second {
				t.Fatalf("waited %v, want a second, not a tight loop and not a drop", d)
			}
			g.release <- struct{}{}
			if err := <-done; err != nil {
				t.Fatalf("Post = %v", err)
			}
			if len(fake.Messages("C1")) != 1 {
				t.Fatal("the message was lost")
			}
		})
	}
}

func TestSlackOutageIsRetried(t *testing.T) {
	t.Parallel()
	s, fake, g := newTestSlack(t, time.Nanosecond)
	fake.Fail("chat.postMessage", 2, 503)
	done := make(chan error, 1)
	go func() {
		_, err := s.Post(context.Background(), "C1", "x", nil)
		done <- err
	}()
	for _, want := range []time.Duration{time.Second, 2 * time.Second} {
		if d := <-g.waits; d != want {
			t.Fatalf("backoff %v, want %v", d, want)
		}
		g.release <- struct{}{}
	}
	if err := <-done; err != nil || len(fake.Messages("C1")) != 1 {
		t.Fatalf("Post after two 503s = %v, messages %d", err, len(fake.Messages("C1")))
	}
	fake.Fail("chat.postMessage", 10, 500)
	go func() {
		_, err := s.Post(context.Background(), "C1", "y", nil)
		done <- err
	}()
	for i := 0; i < transientTries; i++ {
		<-g.waits
		g.release <- struct{}{}
	}
	if err := <-done; err == nil {
		t.Fatal("a Slack that keeps failing was reported as a success")
	}
}

func TestReporterNotesAreInert(t *testing.T) {
	t.Parallel()
	s, fake, _ := newTestSlack(t, time.Nanosecond)
	s.sleep = sleepCtx
	rep := NewReporter(s, nil)
	rec := queue.Record{Job: queue.Job{ID: queue.NewID(time.Now())}, Channel: "C1", MessageTS: "1700000000.000001"}
	if err := rep.Note(context.Background(), rec, "Asked with: /deploy build api x`<!channel>`"); err != nil {
		t.Fatal(err)
	}
	s.Stop(context.Background())
	r := fake.Replies("C1", rec.MessageTS)
	if len(r) != 1 || strings.Contains(r[0].Text, "<!channel>") || !strings.Contains(r[0].Text, "&lt;!channel&gt;") {
		t.Fatalf("thread note = %+v; a mention got through", r)
	}
}

func TestLongStatusStaysWithinSlackLimits(t *testing.T) {
	t.Parallel()
	s, _, _ := newTestSlack(t, time.Nanosecond)
	s.sleep = sleepCtx
	var recs []queue.Record
	for i := 0; i < 10; i++ {
		r := baseRecord()
		r.State, r.Error = queue.StateFailed, strings.Repeat("Jenkins answered something long. ", 20)
		r.Job.Request.Ref = strings.Repeat("feature/very-long-branch-name-", 6)
		recs = append(recs, r)
	}
	if _, err := s.Post(context.Background(), "C1", "status", StatusMessage("api", recs, t0)); err != nil {
		t.Fatalf("Slack refused the status list: %v", err)
	}
	long := baseRecord()
	long.State, long.Error = queue.StateFailed, strings.Repeat("x", 5000)
	blocks, text := JobMessage(long)
	if _, err := s.Post(context.Background(), "C1", text, blocks); err != nil {
		t.Fatalf("Slack refused a job message with a long error: %v", err)
	}
}

// TestNoticesInANamedChannel: Slack resolves "#name" when posting and
// answers with the ID, which chat.update needs; Show hands that ID back.
func TestNoticesInANamedChannel(t *testing.T) {
	t.Parallel()
	s, fake, _ := newTestSlack(t, time.Nanosecond)
	s.sleep = sleepCtx
	fake.AddChannel("#ci-breakages", "C0BREAK")
	ns := NewNotices(s)
	n := queue.Notice{Subject: "job:api-postmerge", Channel: "#ci-breakages", State: "failing", Title: "api-postmerge #3", Failures: []string{"api-postmerge #3"}}
	channel, ts, err := ns.Show(context.Background(), n)
	if err != nil || channel != "C0BREAK" || ts == "" {
		t.Fatalf("Show = %q %q %v; want the channel's ID", channel, ts, err)
	}
	n.State, n.MessageTS, n.FixedIn = "fixed", ts, "#4"
	if _, _, err := ns.Show(context.Background(), n); err == nil {
		t.Fatal("chat.update took a channel name; Slack refuses them")
	}
	n.Channel = channel
	if _, _, err := ns.Show(context.Background(), n); err != nil {
		t.Fatalf("update by ID: %v", err)
	}
	if m := fake.Messages("C0BREAK"); len(m) != 1 || m[0].Edits != 1 {
		t.Fatalf("messages = %+v", m)
	}
	if _, _, err := ns.Show(context.Background(), queue.Notice{Channel: "#nowhere", State: "failing"}); err == nil {
		t.Fatal("a post to an unknown channel name succeeded")
	}
}

// TestAbandonedPostIsNotSent: a post whose caller gave up while it waited
// its turn is dropped; sending it later would duplicate the message the
// caller's retry posts.
func TestAbandonedPostIsNotSent(t *testing.T) {
	t.Parallel()
	s, fake, g := newTestSlack(t, time.Hour)
	if _, err := s.Post(context.Background(), "C1", "first", nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := s.Post(ctx, "C1", "second", nil)
		done <- err
	}()
	<-g.waits // the second post waits out the pacing interval
	cancel()
	if err := <-done; err == nil {
		t.Fatal("an abandoned post reported success")
	}
	g.release <- struct{}{}
	s.Stop(context.Background())
	if m := fake.Messages("C1"); len(m) != 1 {
		t.Fatalf("%d messages; the abandoned post was sent", len(m))
	}
}

func TestSlackOutageIsTemporaryForNotices(t *testing.T) {
	t.Parallel()
	var tmp interface{ Temporary() bool }
	if err := retryLater(slack.StatusCodeError{Code: 503, Status: "503 Service Unavailable"}); !errors.As(err, &tmp) || !tmp.Temporary() {
		t.Fatalf("a 503 is not temporary: %v", err)
	}
	if err := retryLater(slack.SlackErrorResponse{Err: "channel_not_found"}); errors.As(err, &tmp) {
		t.Fatalf("channel_not_found was made temporary: %v", err)
	}
}

// TestPostAbandonedDuringRateLimitIsNotSent: a caller that gives up while
// its post waits out a 429 gets an error, and the post is not sent later.
func TestPostAbandonedDuringRateLimitIsNotSent(t *testing.T) {
	t.Parallel()
	s, fake, g := newTestSlack(t, time.Nanosecond)
	fake.RateLimit("chat.postMessage", 1, 30)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := s.Post(ctx, "C1", "late", nil)
		done <- err
	}()
	if d := <-g.waits; d != 30*time.Second {
		t.Fatalf("waited %v, want Retry-After's 30s", d)
	}
	cancel()
	if err := <-done; err == nil {
		t.Fatal("an abandoned post reported success")
	}
	g.release <- struct{}{}
	s.Stop(context.Background())
	if m := fake.Messages("C1"); len(m) != 0 {
		t.Fatalf("%d messages; the abandoned post was sent after the rate limit", len(m))
	}
}
