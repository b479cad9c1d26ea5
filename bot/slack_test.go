package bot

import (
	"context"
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

func section(text string) []slack.Block {
	return []slack.Block{slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil)}
}

func TestUpdatesArePacedAndCoalesced(t *testing.T) {
	t.Parallel()
	s, fake, g := newTestSlack(t, time.Hour)
	ts, err := s.Post(context.Background(), "C1", "v0", section("v0"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		v := fmt.Sprintf("v%d", i)
		s.Update("C1", ts, v, section(v))
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
