package bot

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/seed-5eb4e92e/deploybot/commands"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

func TestHistoryListsRecentDeploysNewestFirst(t *testing.T) {
	t.Parallel()
	f, now := newDeployFixture(t, deployPolicy(t))
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	first := finished(t, f.q, deployJob("prod", "U_ANN", ago(3*time.Hour)), live(""))
	staging := finished(t, f.q, deployJob("staging", "U_DEV", ago(2*time.Hour)), live("prod"))
	failed := finished(t, f.q, deployJob("prod", "U_BOB", ago(time.Hour)), func(r *queue.Record) {
		r.State, r.Error = queue.StateFailed, "The new version did not become healthy."
	})
	rb := deployJob("prod", "U_BOB", ago(30*time.Minute))
	rb.Request = commands.Request{Kind: "rollback", Action: "rollback", Service: "api", Env: "prod"}
	rollback := finished(t, f.q, rb, func(r *queue.Record) { r.State, r.Result = queue.StateSucceeded, "ROLLED BACK" })
	build := deployJob("", "U_DEV", ago(20*time.Minute))
	build.Request, build.Text = commands.Request{Kind: "build", Action: "build", Service: "api", Ref: "main"}, "/deploy build api main"
	finished(t, f.q, build, func(r *queue.Record) { r.State = queue.StateSucceeded })
	web := deployJob("prod", "U_ANN", ago(10*time.Minute))
	web.Request.Service = "web"
	finished(t, f.q, web, live(""))
	// One still waits to run.
	res, err := f.q.Enqueue(context.Background(), deployJob("prod", "U_ANN", ago(time.Minute)), queue.Dedupe{})
	if err != nil {
		t.Fatal(err)
	}
	queued := res.ID

	tests := []struct {
		text, head string
		ids        []string
	}{
		{"history api prod", "*Deploys of `api` to `prod`*", []string{queued, rollback, failed, first}},
		{"history api", "*Deploys of `api`*", []string{queued, rollback, failed, staging, first}},
		{"history web staging", "*Deploys of `web` to `staging`*\nNone yet.", nil},
	}
	for _, tc := range tests {
		// History is read-only: anyone may ask.
		a := f.command(t, tc.text, "U_NOBODY", "ephemeral")
		if s := sectionTexts(t, a); len(s) == 0 || s[0] != tc.head {
			t.Errorf("%q: head %q, want %q", tc.text, s, tc.head)
		}
		if got := jobIDs(t, a); !slices.Equal(got, tc.ids) {
			t.Errorf("%q lists jobs\n %v\nwant, newest first,\n %v", tc.text, got, tc.ids)
		}
	}
	a := f.command(t, "history api prod", "U_NOBODY", "ephemeral")
	if got := sectionTexts(t, a)[2]; !strings.HasPrefix(got, "• rollback `prod` — ✅ *rolled back* · <@U_BOB> · 30m00s ago") {
		t.Errorf("the rollback is listed as %q", got)
	}
}

// liveJob finds the job that asks Marathon what runs where: it has no
// message of its own, so it is listed nowhere but the stream.
func liveJob(t *testing.T, q *queue.Queue) queue.Job {
	t.Helper()
	d, err := q.Next(context.Background(), "test", time.Millisecond)
	if err != nil || d == nil {
		t.Fatalf("Next = %v, %v; want the live job", d, err)
	}
	return d.Job
}

func TestStatusAsksWhatRunsWhere(t *testing.T) {
	t.Parallel()
	f, _ := newDeployFixture(t, deployPolicy(t))
	a := f.command(t, "status api", "U_NOBODY", "ephemeral")
	if s := sectionTexts(t, a); len(s) != 2 || s[0] != "*Recent jobs for `api`*\nNo jobs yet." ||
		s[1] != "_Asking Marathon and Mesos what runs where; the answer follows here._" {
		t.Fatalf("status answered %q", s)
	}
	f.command(t, "status api", "U_NOBODY", "ephemeral") // asked again at once: one lookup
	if n := depth(t, f.q); n != 1 {
		t.Fatalf("depth %d, want one live job", n)
	}
	job := liveJob(t, f.q)
	want := commands.Request{Kind: "live", Service: "api"}
	if job.Request != want || job.User != "U_NOBODY" || job.Channel != "" || job.ResponseURL != "https://hooks.slack.com/commands/1234/5678" {
		t.Fatalf("live job = %+v, want %+v answering the asker through the response_url", job, want)
	}
	if recent, err := f.q.Recent(context.Background(), "", 10); err != nil || len(recent) != 0 {
		t.Fatalf("the live job is listed among recent jobs: %v %v", recent, err)
	}

	f.command(t, "status", "U_NOBODY", "ephemeral") // every service
	if job := liveJob(t, f.q); job.Request.Service != "" || job.Request.Kind != "live" {
		t.Fatalf("live job for every service = %+v", job)
	}
}

func TestStatusWithoutDeploysQueuesNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, Config{}) // its services have no environments
	a := answer(t, f.do(t, "/slack/commands", slashBody(t, "status api", ""), nil))
	if strings.Contains(a.all(), "Marathon") {
		t.Fatalf("status promised a lookup: %s", a.all())
	}
	if n := depth(t, f.q); n != 0 {
		t.Fatalf("status queued %d jobs", n)
	}
}

func TestReporterAnswersLiveJobsThroughTheResponseURL(t *testing.T) {
	t.Parallel()
	s, fake, _ := newTestSlack(t, time.Nanosecond)
	s.sleep = sleepCtx
	rep := NewReporter(s, nil)
	apps := []queue.LiveApp{
		{Service: "api", Env: "prod", Artifact: testArtifact, Healthy: 4, Running: 4, Instances: 4, User: "U_ANN"},
		{Service: "api", Env: "dev", Error: "Marathon could not be asked just now."},
	}
	job := queue.Job{ID: queue.NewID(time.Now()), Request: commands.Request{Kind: "live", Service: "api"}, User: "U1"}
	tests := []struct {
		name  string
		state queue.State
		apps  []queue.LiveApp
		err   string
		url   bool
		want  string // the follow-up's text; "" for none
	}{
		{"found", queue.StateSucceeded, apps, "", true, "What runs where"},
		{"failed", queue.StateFailed, nil, "Not allowed <here>", true, "⚠️ Not allowed &lt;here&gt;"},
		{"no response_url", queue.StateSucceeded, apps, "", false, ""},
		{"running", queue.StateRunning, nil, "", true, ""},
	}
	for _, tc := range tests {
		j := job
		if tc.url {
			j.ResponseURL = fake.ResponseURL(tc.name)
		}
		rec := queue.Record{Job: j, State: tc.state, Live: tc.apps, Error: tc.err}
		if ts, err := rep.Report(context.Background(), rec); ts != "" || err != nil {
			t.Fatalf("%s: Report = %q, %v; a live job has no message", tc.name, ts, err)
		}
		var got []string
		for _, r := range fake.Responses() {
			if r.Name == tc.name {
				got = append(got, r.Message.Text)
				if tc.name == "found" {
					checkLiveBlocks(t, r.Message.Blocks)
				}
			}
		}
		if (tc.want == "" && len(got) != 0) || (tc.want != "" && !slices.Equal(got, []string{tc.want})) {
			t.Errorf("%s: follow-ups %q, want %q", tc.name, got, tc.want)
		}
	}
	if n := fake.Calls("chat.postMessage") + fake.Calls("chat.update"); n != 0 {
		t.Fatalf("live jobs made %d message calls; they have no message", n)
	}
}

func checkLiveBlocks(t *testing.T, blocks any) {
	t.Helper()
	raw, err := json.Marshal(blocks)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"*What runs where*",
		"• `api` in *prod*: ✅ `" + testArtifact + "` — 4/4 healthy · deployed by <@U_ANN>",
		"• `api` in *dev*: ⚠️ Marathon could not be asked just now.",
	} {
		w, _ := json.Marshal(want)
		if !strings.Contains(string(raw), strings.Trim(string(w), `"`)) {
			t.Errorf("live follow-up %s does not say %q", raw, want)
		}
	}
}
