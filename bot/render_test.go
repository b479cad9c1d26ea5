package bot

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/seed-5eb4e92e/deploybot/commands"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
	}
	if string(got) != string(want) {
		t.Fatalf("%s differs from its golden file (go test -update rewrites it)\n got: %s\nwant: %s", name, got, want)
	}
}

func blocksJSON(t *testing.T, blocks []slack.Block) []byte {
	t.Helper()
	raw, err := json.Marshal(slack.Blocks{BlockSet: blocks})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		t.Fatal(err)
	}
	b.WriteByte('\n')
	// The same JSON, with <, > and & unescaped so links read as Slack shows them.
	return []byte(strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(b.String()))
}

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func baseRecord() queue.Record {
	return queue.Record{
		Job: queue.Job{
			ID:        "01KAQ0W4J0Z8Y6B2XN3M5P7R9T",
			Request:   commands.Request{Kind: "build", Action: "build", Service: "api", Ref: "feature/login"},
			User:      "U2147483697",
			Channel:   "C2147483705",
			Attempt:   1,
			CreatedAt: t0,
		},
		Created: t0,
	}
}

func TestJobMessageGolden(t *testing.T) {
	t.Parallel()
	link := "https://jenkins.example.com/job/api-build/42/"
	tests := []struct {
		name string
		edit func(*queue.Record)
	}{
		{"queued", func(r *queue.Record) { r.State = queue.StateQueued }},
		{"waiting", func(r *queue.Record) { r.State, r.Stage = queue.StateRunning, "waiting for an executor" }},
		{"building", func(r *queue.Record) {
			r.State, r.Stage, r.Link, r.LinkText = queue.StateRunning, "building", link, "#42"
		}},
		{"success", func(r *queue.Record) {
			r.State, r.Result, r.Link, r.LinkText = queue.StateSucceeded, "SUCCESS", link, "#42"
			r.Started, r.Finished = t0, t0.Add(92*time.Second)
		}},
		{"failure", func(r *queue.Record) {
			r.State, r.Result, r.Link, r.LinkText = queue.StateFailed, "FAILURE", link, "#42"
		}},
		{"aborted", func(r *queue.Record) {
			r.State, r.Result, r.Link, r.LinkText = queue.StateFailed, "ABORTED", link, "#42"
		}},
		{"error", func(r *queue.Record) {
			r.State, r.Error = queue.StateFailed, "Jenkins says api-build is not buildable; is it disabled?"
		}},
		{"dead", func(r *queue.Record) {
			r.State, r.Error = queue.StateDead, "Gave up after 5 attempts. Last error: Jenkins answered 503 Service Unavailable."
			r.Job.Attempt = 5
		}},
		{"retried", func(r *queue.Record) {
			r.State, r.Result, r.Link, r.LinkText = queue.StateFailed, "FAILURE", link, "#42"
			r.RetriedAs, r.RetriedBy = "01KAQ0XS1B7QWERTY0123456AB", "U0BOB"
		}},
		{"retry-running", func(r *queue.Record) {
			r.State, r.Stage = queue.StateRunning, "retrying in 4s (attempt 2 of 5): Jenkins answered 502 Bad Gateway."
			r.Job.RetryOf, r.Job.Attempt = "01KAQ0VZZZ0000000000000000", 2
		}},
		{"hostile-ref", func(r *queue.Record) {
			r.State = queue.StateQueued
			r.Job.Request.Ref = "<!channel>&<@U1>"
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := baseRecord()
			tc.edit(&rec)
			blocks, text := JobMessage(rec)
			if text == "" {
				t.Fatal("no fallback text")
			}
			golden(t, filepath.Join("golden", "job-"+tc.name+".json"), blocksJSON(t, blocks))
		})
	}
}

func TestRetryButtonOnlyOnFailures(t *testing.T) {
	t.Parallel()
	for _, st := range []queue.State{queue.StateQueued, queue.StateRunning, queue.StateSucceeded, queue.StateFailed, queue.StateDead} {
		rec := baseRecord()
		rec.State = st
		blocks, _ := JobMessage(rec)
		has := strings.Contains(BlocksText(blocks), "click retry "+rec.Job.ID)
		want := st == queue.StateFailed || st == queue.StateDead
		if has != want {
			t.Errorf("state %s: retry button %v, want %v", st, has, want)
		}
	}
}

func TestStatusMessageGolden(t *testing.T) {
	t.Parallel()
	a := baseRecord()
	a.State, a.Result, a.Link, a.LinkText = queue.StateSucceeded, "SUCCESS", "https://jenkins.example.com/job/api-build/42/", "#42"
	b := baseRecord()
	b.Job.ID, b.Job.Request.Ref, b.Job.CreatedAt = "01KAQ0ZZ000000000000000000", "main", t0.Add(-3*time.Hour)
	b.State, b.Stage = queue.StateRunning, "waiting for an executor"
	now := t0.Add(5 * time.Minute)
	golden(t, filepath.Join("golden", "status-api.json"), blocksJSON(t, StatusMessage("api", []queue.Record{a, b}, now)))
	golden(t, filepath.Join("golden", "status-empty.json"), blocksJSON(t, StatusMessage("web", nil, now)))
}

func TestBlocksText(t *testing.T) {
	t.Parallel()
	rec := baseRecord()
	rec.State, rec.Result, rec.Link, rec.LinkText = queue.StateFailed, "FAILURE", "https://j/job/api/42/", "#42"
	blocks, _ := JobMessage(rec)
	got := BlocksText(blocks)
	want := "Build `api` @ `feature/login` — ❌ *failure* #42 (https://j/job/api/42/) — console (https://j/job/api/42/console)\n" +
		"  Requested by @U2147483697 · job `01KAQ0W4J0Z8Y6B2XN3M5P7R9T`\n" +
		"  [Retry: click retry 01KAQ0W4J0Z8Y6B2XN3M5P7R9T]"
	if got != want {
		t.Fatalf("BlocksText =\n%s\nwant\n%s", got, want)
	}
	if got := PlainText("a &lt;b&gt; <!here> <#C1|dev> <https://x>"); got != "a <b> @here #dev https://x" {
		t.Fatalf("PlainText = %q", got)
	}
}

func TestShortDuration(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		0: "0s", 42 * time.Second: "42s", 192 * time.Second: "3m12s", 125 * time.Minute: "2h05m", 80 * time.Hour: "3d",
	} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestNoticeMessageGolden(t *testing.T) {
	t.Parallel()
	change := &queue.NoticeChange{Project: "platform/api", Number: 1503, PatchSet: 2, Subject: "Add rate limiting <fast>", URL: "https://gerrit.example.com/c/platform/api/+/1503"}
	gating := queue.Notice{
		ID: "e93ba977c4355c6e6f0bff07a4f4f2f1", Subject: "change:platform/api:1503", Channel: "CAPI01", State: "failing",
		Title: "change 1503", Gating: true, Change: change,
		Links:    []queue.Link{{Text: "platform-api-verify #87", URL: "https://jenkins.example.com/job/platform-api-verify/87/"}},
		Breakers: []queue.Person{{SlackID: "U0ANN", Name: "Ann Owner", Email: "ann@example.com", Reason: "owner of change 1503"}},
		Failures: []string{"Verified-1 by CI Bot on patch set 2"}, Retry: queue.RetryTarget{Kind: "recheck", Project: "platform/api", Change: 1503},
	}
	job := queue.Notice{
		ID: "0123456789abcdef0123456789abcdef", Subject: "job:api-postmerge", Channel: "CAPI01", State: "failing",
		Title: "api-postmerge #87", Job: "api-postmerge",
		Breakers: []queue.Person{
			{Name: "Stranger", Email: "stranger@example.org", Reason: "committed to api-postmerge #86, the first failing build"},
			{SlackID: "U0ALICE", Reason: "committed to api-postmerge #86, the first failing build"},
		},
		Failures: []string{"api-postmerge #86", "api-postmerge #87"}, Retry: queue.RetryTarget{Kind: "rebuild", Job: "api-postmerge"},
		RetriedBy: "U0BOB", MutedUntil: t0.Add(30 * time.Minute), MutedBy: "U0CAROL",
	}
	fixed := job
	fixed.State, fixed.FixedIn, fixed.FixedBy = "fixed", "#88", []queue.Person{{SlackID: "U0CAROL", Reason: "committed to api-postmerge #88"}}
	nobody := gating
	nobody.Breakers = nil
	abandoned := gating
	abandoned.State, abandoned.FixedBy = queue.StateAbandoned, []queue.Person{{SlackID: "U0ANN", Reason: "abandoned the change"}}
	for name, n := range map[string]queue.Notice{"gating": gating, "job-muted": job, "job-fixed": fixed, "nobody": nobody, "abandoned": abandoned} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			blocks, text := NoticeMessage(n, t0)
			if text == "" {
				t.Fatal("no fallback text")
			}
			golden(t, filepath.Join("golden", "notice-"+name+".json"), blocksJSON(t, blocks))
		})
	}
}

// TestLinksFromWebhooksCannotBreakOut: a URL that came from a build
// parameter is linked only if it is a plain http(s) URL.
func TestLinksFromWebhooksCannotBreakOut(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"https://gerrit.example.com/c/platform/api/+/1503": "<https://gerrit.example.com/c/platform/api/+/1503|change>",
		"http://jenkins:8080/job/a/1/?x=1&y=2":             "<http://jenkins:8080/job/a/1/?x=1&y=2|change>",
		"https://x.example.com/|<!channel>":                "change",
		"https://x.example.com/> <!here":                   "change",
		"javascript:alert(1)":                              "change",
		"https:///no-host":                                 "change",
		"ftp://files.example.com/":                         "change",
		"":                                                 "change",
	} {
		if got := link(raw, "change"); got != want {
			t.Errorf("link(%q) = %q, want %q", raw, got, want)
		}
	}
}
