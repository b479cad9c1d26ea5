package bot

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/seed-5eb4e92e/deploybot/commands"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

const testArtifact = "registry.example.com/api:1.8.0-3f9c2ab"

// deployJob is a deploy of api@main to env by user, as /deploy queues it.
func deployJob(env, user string, created time.Time) queue.Job {
	return queue.Job{
		Request: commands.Request{Kind: "deploy", Action: "deploy", Service: "api", Ref: "main", Env: env},
		Text:    "/deploy api main to " + env, User: user, Channel: "C111", CreatedAt: created,
	}
}

// finished runs job through the queue as a worker would, leaving its
// record as edit makes it, and returns its ID.
func finished(t *testing.T, q *queue.Queue, job queue.Job, edit func(*queue.Record)) string {
	t.Helper()
	ctx := context.Background()
	res, err := q.Enqueue(ctx, job, queue.Dedupe{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := q.Next(ctx, "test", time.Millisecond)
	if err != nil || d == nil || d.Job.ID != res.ID {
		t.Fatalf("Next = %+v, %v; want job %s", d, err, res.ID)
	}
	rec, err := q.Record(ctx, res.ID)
	if err != nil {
		t.Fatal(err)
	}
	edit(&rec)
	if err := q.Save(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := q.Done(ctx, d, string(rec.State)); err != nil {
		t.Fatal(err)
	}
	return res.ID
}

// live is a deploy that went live with testArtifact; its Promote button
// goes to promoteTo.
func live(promoteTo string) func(*queue.Record) {
	return func(r *queue.Record) {
		r.State, r.Result, r.Artifact, r.PromoteTo = queue.StateSucceeded, "LIVE", testArtifact, promoteTo
	}
}

// messageButton is the button with action on the message of job id, as
// the worker would render it now.
func messageButton(t *testing.T, q *queue.Queue, id, action string) *slack.ButtonBlockElement {
	t.Helper()
	rec, err := q.Record(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	blocks, _ := JobMessage(rec)
	for _, b := range blocks {
		if ab, ok := b.(*slack.ActionBlock); ok {
			for _, e := range ab.Elements.ElementSet {
				if btn, ok := e.(*slack.ButtonBlockElement); ok && btn.ActionID == action {
					return btn
				}
			}
		}
	}
	t.Fatalf("job %s's message has no %s button: %s", id, action, BlocksText(blocks))
	return nil
}

// click sends a click on the button action with value, by user, and waits
// for the follow-ups it sends.
func (f *fixture) click(t *testing.T, action, value, user, responseURL string) {
	t.Helper()
	if rec := f.do(t, "/slack/interactions", buttonClickBody(t, action, value, user, responseURL), nil); rec.Code != http.StatusOK {
		t.Fatalf("click on %s %s: status %d", action, value, rec.Code)
	}
	f.r.Wait()
}

// queuedJob is the job a follow-up names.
func queuedJob(t *testing.T, f *fixture, text string) queue.Job {
	t.Helper()
	m := jobIDRE.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("follow-up %q names no job", text)
	}
	rec, err := f.q.Record(context.Background(), m[1])
	if err != nil {
		t.Fatal(err)
	}
	return rec.Job
}

func TestPromoteClickQueuesThePromotion(t *testing.T) {
	t.Parallel()
	f, _ := newDeployFixture(t, deployPolicy(t))
	src := finished(t, f.q, deployJob("staging", "U_DEV", time.Now()), live("prod"))
	btn := messageButton(t, f.q, src, ActionPromote)
	resp := f.slack.ResponseURL("promote")
	f.click(t, btn.ActionID, btn.Value, "U_BOB", resp)

	texts := waitResponses(t, f, 1)
	if !strings.HasPrefix(texts[0], "⏳ Queued promote of api to prod — job `") {
		t.Fatalf("follow-up %q", texts[0])
	}
	job := queuedJob(t, f, texts[0])
	want := commands.Request{Kind: "promote", Action: "promote", Service: "api", From: "staging", Env: "prod"}
	if job.Request != want || job.Source != src || job.User != "U_BOB" || job.Channel != "C111" || job.ResponseURL != resp || job.WaitForLock {
		t.Fatalf("queued job = %+v\nwant a promotion of %+v from job %s by U_BOB", job, want, src)
	}
	// The job carries no artifact of its own: the worker promotes the one
	// its Source verified, never a rebuild.
	rec, err := f.q.Record(context.Background(), job.Source)
	if err != nil || rec.Artifact != testArtifact {
		t.Fatalf("source record = %+v, %v; want artifact %s", rec, err, testArtifact)
	}
}

func TestRollbackClickQueuesTheRollback(t *testing.T) {
	t.Parallel()
	f, _ := newDeployFixture(t, deployPolicy(t))
	src := finished(t, f.q, deployJob("prod", "U_ANN", time.Now()), live(""))
	btn := messageButton(t, f.q, src, ActionRollback)
	resp := f.slack.ResponseURL("rollback")
	f.click(t, btn.ActionID, btn.Value, "U_BOB", resp)

	texts := waitResponses(t, f, 1)
	if !strings.HasPrefix(texts[0], "⏳ Queued rollback of api in prod — job `") {
		t.Fatalf("follow-up %q", texts[0])
	}
	job := queuedJob(t, f, texts[0])
	want := commands.Request{Kind: "rollback", Action: "rollback", Service: "api", Env: "prod"}
	if job.Request != want || job.Source != src || job.User != "U_BOB" || job.Channel != "C111" || job.ResponseURL != resp {
		t.Fatalf("queued job = %+v\nwant a rollback %+v of job %s by U_BOB", job, want, src)
	}
}

func TestDeployClickDeliveredAgainQueuesOnce(t *testing.T) {
	t.Parallel()
	f, _ := newDeployFixture(t, deployPolicy(t))
	src := finished(t, f.q, deployJob("staging", "U_DEV", time.Now()), live("prod"))
	body := buttonClickBody(t, ActionPromote, src, "U_BOB", f.slack.ResponseURL("promote"))
	for i := 0; i < 3; i++ { // a double click, and Slack delivering it again
		if rec := f.do(t, "/slack/interactions", body, nil); rec.Code != http.StatusOK {
			t.Fatalf("delivery %d: status %d", i, rec.Code)
		}
	}
	if n := depth(t, f.q); n != 1 {
		t.Fatalf("%d jobs queued for three deliveries of one click, want 1", n)
	}
	texts := waitResponses(t, f, 3)
	sort.SliceStable(texts, func(i, j int) bool { return strings.HasPrefix(texts[i], "⏳ Queued") })
	id := queuedJob(t, f, texts[0]).ID
	for _, txt := range texts[1:] {
		if want := "Already queued: promote of api to prod — job `" + id + "`."; txt != want {
			t.Fatalf("later follow-up %q, want %q", txt, want)
		}
	}
	// Someone else clicking the same button is pointed at the same job.
	f.click(t, ActionPromote, src, "U_ANN", f.slack.ResponseURL("other"))
	if got := waitResponses(t, f, 4)[3]; !strings.Contains(got, "Already queued") || !strings.Contains(got, id) {
		t.Fatalf("another user's click answered %q", got)
	}
	// Roll back is another button on the same message: a job of its own.
	f.click(t, ActionRollback, src, "U_BOB", f.slack.ResponseURL("rollback"))
	if got := waitResponses(t, f, 5)[4]; !strings.HasPrefix(got, "⏳ Queued rollback of api in staging") {
		t.Fatalf("rollback click answered %q", got)
	}
	if n := depth(t, f.q); n != 2 {
		t.Fatalf("depth %d, want the promotion and the rollback", n)
	}
}

// TestDeployClickPermissions: a click needs the permission the command
// would, on the environment the new job changes.
func TestDeployClickPermissions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, user, action, env, promoteTo, want string
	}{
		{"promote to prod without promote:prod", "U_DEV", ActionPromote, "staging", "prod",
			"⛔ Not allowed: you may not promote api in prod (needs `promote:prod:api`); your groups: dev."},
		{"roll back prod without rollback:prod", "U_DEV", ActionRollback, "prod", "",
			"⛔ Not allowed: you may not rollback api in prod (needs `rollback:prod:api`); your groups: dev."},
		{"promote to staging with promote:staging", "U_DEV", ActionPromote, "dev", "staging", "⏳ Queued promote of api to staging"},
		{"roll back staging with rollback:staging", "U_DEV", ActionRollback, "staging", "prod", "⏳ Queued rollback of api in staging"},
		{"nobody", "U_NOBODY", ActionRollback, "dev", "staging",
			"⛔ Not allowed: you may not rollback api in dev (needs `rollback:dev:api`); you are in no deploybot group."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, _ := newDeployFixture(t, deployPolicy(t))
			src := finished(t, f.q, deployJob(tc.env, "U_ANN", time.Now()), live(tc.promoteTo))
			f.click(t, tc.action, src, tc.user, f.slack.ResponseURL("click"))
			if got := waitResponses(t, f, 1)[0]; !strings.HasPrefix(got, tc.want) {
				t.Fatalf("click answered\n %q\nwant\n %q", got, tc.want)
			}
			wantDepth := int64(0)
			if strings.HasPrefix(tc.want, "⏳") {
				wantDepth = 1
			}
			if n := depth(t, f.q); n != wantDepth {
				t.Fatalf("depth %d, want %d", n, wantDepth)
			}
		})
	}
}

func TestDeployClickRefusals(t *testing.T) {
	t.Parallel()
	f, now := newDeployFixture(t, deployPolicy(t))
	f.command(t, "lock prod release freeze for 2h", "U_ANN", "in_channel")
	held := "*prod* is locked by <@U_ANN> until " + until(now, 2*time.Hour) + ": release freeze"
	staging := finished(t, f.q, deployJob("staging", "U_DEV", time.Now()), live("prod"))
	prod := finished(t, f.q, deployJob("prod", "U_ANN", time.Now()), live(""))
	failed := finished(t, f.q, deployJob("staging", "U_DEV", time.Now()), func(r *queue.Record) {
		r.State, r.Error = queue.StateFailed, "The new version did not become healthy."
	})
	running := finished(t, f.q, deployJob("staging", "U_DEV", time.Now()), func(r *queue.Record) { r.State, r.Stage = queue.StateRunning, "deploying" })
	build := finished(t, f.q, queue.Job{Request: commands.Request{Kind: "build", Action: "build", Service: "api", Ref: "main"}, User: "U_DEV", Channel: "C111"},
		func(r *queue.Record) { r.State, r.Result = queue.StateSucceeded, "SUCCESS" })
	rollback := finished(t, f.q, queue.Job{Request: commands.Request{Kind: "rollback", Action: "rollback", Service: "api", Env: "staging"}, User: "U_DEV", Channel: "C111"},
		func(r *queue.Record) { r.State, r.Result = queue.StateSucceeded, "ROLLED BACK" })
	tests := []struct{ action, value, want string }{
		{ActionPromote, "01JDEMO0000000000000000000", "That button does not name a job I know."},
		{ActionRollback, queue.NewID(now), "is no longer known"},
		{ActionRollback, failed, "Job `" + failed + "` is not a finished deploy."},
		{ActionPromote, running, "Job `" + running + "` is not a finished deploy."},
		{ActionPromote, build, "Job `" + build + "` is not a finished deploy."},
		{ActionRollback, rollback, "Job `" + rollback + "` is not a finished deploy."},
		{ActionPromote, prod, "prod is the last environment of api; there is nowhere to promote to."},
		{ActionPromote, staging, "🔒 Not started: " + held + ". Use `/deploy unlock prod` if it should end."},
		{ActionRollback, prod, "🔒 Not started: " + held + ". Use `/deploy unlock prod` if it should end."},
	}
	for i, tc := range tests {
		f.click(t, tc.action, tc.value, "U_BOB", f.slack.ResponseURL("r"+tc.value))
		if got := waitResponses(t, f, i+1)[i]; !strings.Contains(got, tc.want) {
			t.Errorf("%s on %s answered\n %q\nwant\n %q", tc.action, tc.value, got, tc.want)
		}
	}
	if n := depth(t, f.q); n != 0 {
		t.Fatalf("refused clicks queued %d jobs", n)
	}
	// The lock's holder may promote into it.
	f.click(t, ActionPromote, staging, "U_ANN", f.slack.ResponseURL("holder"))
	if got := waitResponses(t, f, len(tests)+1)[len(tests)]; !strings.HasPrefix(got, "⏳ Queued promote of api to prod") {
		t.Fatalf("the holder's click answered %q", got)
	}
}

func TestWaitForLockClickQueuesBehindTheLock(t *testing.T) {
	t.Parallel()
	f, _ := newDeployFixture(t, deployPolicy(t))
	f.command(t, "lock prod release freeze", "U_ANN", "in_channel")
	refused := f.command(t, "api main to prod", "U_BOB", "ephemeral")
	btn := buttons(t, refused)[0]
	resp := f.slack.ResponseURL("wait")
	f.click(t, btn.ActionID, btn.Value, "U_BOB", resp)
	f.click(t, btn.ActionID, btn.Value, "U_BOB", resp) // delivered again

	texts := waitResponses(t, f, 2)
	if !strings.HasPrefix(texts[0], "⏳ Queued deploy of api@main to prod behind the lock — job `") ||
		!strings.HasSuffix(texts[0], "It starts when the lock is lifted or expires; its message in the channel says what it waits for.") {
		t.Fatalf("follow-up %q", texts[0])
	}
	job := queuedJob(t, f, texts[0])
	if want := "Already queued: deploy of api@main to prod — job `" + job.ID + "`."; texts[1] != want {
		t.Fatalf("second delivery answered %q, want %q", texts[1], want)
	}
	want := commands.Request{Kind: "deploy", Action: "deploy", Service: "api", Ref: "main", Env: "prod"}
	if job.Request != want || !job.WaitForLock || job.User != "U_BOB" || job.Channel != "C111" ||
		job.Text != "/deploy api main to prod" || job.ResponseURL != resp || job.Source != "" {
		t.Fatalf("queued job = %+v, want %+v waiting for the lock", job, want)
	}
	if n := depth(t, f.q); n != 1 {
		t.Fatalf("depth %d, want 1", n)
	}
	if l, found := envLock(t, f.q, "prod"); !found || l.User != "U_ANN" {
		t.Fatalf("queueing behind the lock changed it: %+v %v", l, found)
	}
}

func TestWaitForLockClickRefusals(t *testing.T) {
	t.Parallel()
	f, _ := newDeployFixture(t, deployPolicy(t))
	tests := []struct{ value, user, want string }{
		{"api main to prod", "U_DEV", "⛔ Not allowed: you may not deploy api in prod (needs `deploy:prod:api`); your groups: dev."},
		{"status api", "U_BOB", "That button does not carry a deploy I can read."},
		{"api main to moon", "U_BOB", "That button does not carry a deploy I can read."},
		{"lock prod", "U_BOB", "That button does not carry a deploy I can read."},
	}
	for i, tc := range tests {
		f.click(t, ActionWaitForLock, tc.value, tc.user, f.slack.ResponseURL("w"))
		if got := waitResponses(t, f, i+1)[i]; got != tc.want {
			t.Errorf("wait click with %q by %s answered\n %q\nwant\n %q", tc.value, tc.user, got, tc.want)
		}
	}
	if n := depth(t, f.q); n != 0 {
		t.Fatalf("refused clicks queued %d jobs", n)
	}
}

// TestDeployClickAfterItsJobFailed: a button whose job failed (a lock was
// taken before it ran, say) is not spent; the next click queues the job
// again, once however often it is delivered.
func TestDeployClickAfterItsJobFailed(t *testing.T) {
	t.Parallel()
	f, _ := newDeployFixture(t, deployPolicy(t))
	ctx := context.Background()
	src := finished(t, f.q, deployJob("staging", "U_DEV", time.Now()), live("prod"))
	f.click(t, ActionPromote, src, "U_BOB", f.slack.ResponseURL("first"))
	first := queuedJob(t, f, waitResponses(t, f, 1)[0])
	rec, err := f.q.Record(ctx, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	rec.State, rec.Error = queue.StateFailed, "Not started: prod is locked"
	if err := f.q.Save(ctx, rec); err != nil {
		t.Fatal(err)
	}
	body := buttonClickBody(t, ActionPromote, src, "U_BOB", f.slack.ResponseURL("again"))
	for range 2 {
		if rec := f.do(t, "/slack/interactions", body, nil); rec.Code != http.StatusOK {
			t.Fatalf("status %d", rec.Code)
		}
	}
	if n := depth(t, f.q); n != 2 {
		t.Fatalf("depth %d; want the failed promotion and one new one", n)
	}
	texts := waitResponses(t, f, 3)[1:]
	sort.SliceStable(texts, func(i, j int) bool { return strings.HasPrefix(texts[i], "⏳ Queued") })
	second := queuedJob(t, f, texts[0])
	if second.ID == first.ID || second.Source != src || !strings.Contains(texts[1], "Already queued") || !strings.Contains(texts[1], second.ID) {
		t.Fatalf("answers %q; want a new promotion, then a pointer to it", texts)
	}
}
