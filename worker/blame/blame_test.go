package blame_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-5eb4e92e/deploybot/backends/gerrit"
	"github.com/seed-5eb4e92e/deploybot/backends/jenkins"
	"github.com/seed-5eb4e92e/deploybot/backends/jenkins/jenkinstest"
	"github.com/seed-5eb4e92e/deploybot/worker/blame"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
	"github.com/seed-5eb4e92e/deploybot/worker/queue/queuetest"
)

// notifier records what would be shown in Slack.
type notifier struct {
	mu    sync.Mutex
	shown []queue.Notice
	dms   []string
	posts int
}

// Show resolves a "#name" channel to an ID, as Slack's chat.postMessage
// does.
func (n *notifier) Show(_ context.Context, notice queue.Notice) (string, string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.shown = append(n.shown, notice)
	if notice.MessageTS != "" {
		return notice.Channel, notice.MessageTS, nil
	}
	n.posts++
	channel := notice.Channel
	if name, ok := strings.CutPrefix(channel, "#"); ok {
		channel = "C_" + strings.ToUpper(name)
	}
	return channel, fmt.Sprintf("1700000000.%06d", n.posts), nil
}

func (n *notifier) DM(_ context.Context, user string, _ queue.Notice) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.dms = append(n.dms, user)
	return nil
}

func (n *notifier) last() queue.Notice {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.shown[len(n.shown)-1]
}

// directory is Slack's users.lookupByEmail, in memory.
type directory map[string]string

func (d directory) LookupEmail(_ context.Context, email string) (string, bool, error) {
	id, ok := d[email]
	return id, ok, nil
}

type env struct {
	engine  *blame.Engine
	notify  *notifier
	jenkins *jenkinstest.Server
	q       *queue.Queue
	changes *changes
}

// changes records recheck comments, as Gerrit would receive them.
type changes struct {
	mu       sync.Mutex
	rechecks []string
}

func (c *changes) Recheck(_ context.Context, project string, number int, comment string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rechecks = append(c.rechecks, fmt.Sprintf("%s %d %s", project, number, comment))
	return nil
}

func newEnv(t *testing.T, cfg blame.Config) *env {
	t.Helper()
	q, _, _ := queuetest.New(t, queue.Config{})
	sim := jenkinstest.Start(jenkinstest.Options{})
	t.Cleanup(sim.Close)
	sim.AddJob("platform-api-verify", "GERRIT_REFSPEC")
	sim.AddJob("api-postmerge")
	jc, err := jenkins.New(jenkins.Config{URL: sim.URL}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Services == nil {
		cfg.Services = []blame.Service{{Name: "api", Channel: "C_API", Project: "platform/api", Jobs: []string{"api-postmerge"}}}
	}
	if cfg.CIAccounts == nil {
		cfg.CIAccounts = []string{"ci"}
	}
	n := &notifier{}
	dir := directory{"ann@example.com": "U_ANN", "upe@example.com": "U_UPE", "alice@example.com": "U_ALICE", "carol@example.com": "U_CAROL"}
	ch := &changes{}
	deps := blame.Deps{Builds: jc, Changes: ch, Directory: dir, Notifier: n, Store: q}
	return &env{engine: blame.New(cfg, deps, nil), notify: n, jenkins: sim, q: q, changes: ch}
}

func recorded(t *testing.T, name string) jenkins.Notification {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "backends", "jenkins", "jenkinstest", "testdata", "notification", name))
	if err != nil {
		t.Fatal(err)
	}
	n, err := jenkins.ParseNotification(raw)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (e *env) handle(t *testing.T, r blame.Result) {
	t.Helper()
	if err := e.engine.Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
}

func TestGatingFailureFromJenkins(t *testing.T) {
	t.Parallel()
	e := newEnv(t, blame.Config{DM: true})
	r, ok := blame.FromNotification(recorded(t, "finalized-failure.json"))
	if !ok || !r.Gating || r.Change == nil || r.Change.Number != 1503 {
		t.Fatalf("result = %+v", r)
	}
	for i := 0; i < 3; i++ { // Jenkins may deliver it more than once
		e.handle(t, r)
	}
	if e.notify.posts != 1 || len(e.notify.shown) != 1 {
		t.Fatalf("%d posts, %d shows; want one notice", e.notify.posts, len(e.notify.shown))
	}
	n := e.notify.last()
	if n.Channel != "C_API" || len(n.Breakers) != 1 || n.Breakers[0].SlackID != "U_UPE" ||
		n.Breakers[0].Reason != "uploaded patch set 2 of change 1503" || n.Retry.Kind != "recheck" {
		t.Fatalf("notice = %+v", n)
	}
	if strings.Join(e.notify.dms, ",") != "U_UPE" {
		t.Fatalf("DMs = %v", e.notify.dms)
	}
	if _, ok := blame.FromNotification(recorded(t, "completed-failure.json")); ok {
		t.Fatal("a COMPLETED message was taken as the final result")
	}
}

func TestJenkinsAndGerritReportOneFailure(t *testing.T) {
	t.Parallel()
	e := newEnv(t, blame.Config{})
	r, _ := blame.FromNotification(recorded(t, "finalized-failure.json"))
	e.handle(t, r)
	vote := blame.Result{Status: "FAILURE", Gating: true, Vote: "Verified-1 by CI Bot", Change: r.Change, Key: "gerrit:vote-1"}
	e.handle(t, vote)
	e.handle(t, vote) // by the webhooks plugin and by stream-events
	if e.notify.posts != 1 {
		t.Fatalf("%d posts for one failure reported by Jenkins and by Gerrit", e.notify.posts)
	}
	if n := e.notify.last(); len(n.Failures) != 2 {
		t.Fatalf("the update should list both reports: %v", n.Failures)
	}
	// A CI vote of +1 on a new patch set fixes it.
	fixed := *r.Change
	fixed.PatchSet, fixed.Uploader = 3, blame.Account{Name: "Ann Owner", Email: "ann@example.com", Username: "ann"}
	e.handle(t, blame.Result{Status: "SUCCESS", Gating: true, Vote: "Verified+1 by CI Bot", Change: &fixed})
	n := e.notify.last()
	if n.State != "fixed" || n.FixedIn != "patch set 3" || len(n.FixedBy) != 1 || n.FixedBy[0].SlackID != "U_ANN" {
		t.Fatalf("after the fix = %+v", n)
	}
}

func TestOwnerWhenCIStartedTheBuild(t *testing.T) {
	t.Parallel()
	e := newEnv(t, blame.Config{})
	r, _ := blame.FromNotification(recorded(t, "finalized-failure.json"))
	r.EventType, r.EventAccount = "comment-added", blame.Account{Name: "CI Bot", Email: "ci@example.com", Username: "ci"}
	e.handle(t, r)
	if b := e.notify.last().Breakers; len(b) != 1 || b[0].SlackID != "U_ANN" || b[0].Reason != "owner of change 1503" {
		t.Fatalf("breakers = %+v", b)
	}
}

// TestFirstFailingBuildAfterSuccess: #85 passed, #86 (alice's commit)
// failed, #87 (bob's) failed too: alice broke it, not everyone since.
// #88 (carol's) passes: fixed by carol.
func TestFirstFailingBuildAfterSuccess(t *testing.T) {
	t.Parallel()
	e := newEnv(t, blame.Config{})
	e.jenkins.AddBuild("api-postmerge", 85, "SUCCESS", "dave@example.com")
	e.jenkins.AddBuild("api-postmerge", 86, "FAILURE", "alice@example.com")
	e.jenkins.AddBuild("api-postmerge", 87, "FAILURE", "bob@example.com")
	e.jenkins.AddBuild("api-postmerge", 88, "SUCCESS", "carol@example.com")
	url := e.jenkins.URL + "job/api-postmerge/87/"
	e.handle(t, blame.Result{Job: "api-postmerge", Number: 87, Status: "FAILURE", URL: url})
	n := e.notify.last()
	if len(n.Breakers) != 1 || n.Breakers[0].SlackID != "U_ALICE" || !strings.Contains(n.Breakers[0].Reason, "api-postmerge #86, the first failing build") {
		t.Fatalf("breakers = %+v", n.Breakers)
	}
	if n.Retry.Kind != "rebuild" || n.Retry.Job != "api-postmerge" {
		t.Fatalf("retry = %+v", n.Retry)
	}
	e.handle(t, blame.Result{Job: "api-postmerge", Number: 88, Status: "SUCCESS"})
	n = e.notify.last()
	if n.State != "fixed" || n.FixedIn != "#88" || len(n.FixedBy) != 1 || n.FixedBy[0].SlackID != "U_CAROL" {
		t.Fatalf("after the fix = %+v", n)
	}
	if e.notify.posts != 1 {
		t.Fatalf("%d posts; the fix must update the notice", e.notify.posts)
	}
	// A success with nothing open says nothing.
	e.handle(t, blame.Result{Job: "api-postmerge", Number: 89, Status: "SUCCESS"})
	if len(e.notify.shown) != 2 {
		t.Fatalf("%d shows", len(e.notify.shown))
	}
}

func TestCulpritsAndUnknownPeople(t *testing.T) {
	t.Parallel()
	e := newEnv(t, blame.Config{Aliases: map[string]string{"Zed": "U0ZED"}})
	e.jenkins.AddBuild("api-postmerge", 5, "FAILURE")
	e.handle(t, blame.Result{Job: "api-postmerge", Number: 5, Status: "FAILURE", Culprits: []string{"zed", "yan"}})
	b := e.notify.last().Breakers
	if len(b) != 2 || b[0].SlackID != "U0ZED" || b[1].SlackID != "" || b[1].Name != "yan" || !strings.Contains(b[1].Reason, "culprit") {
		t.Fatalf("breakers = %+v", b)
	}
}

func TestUnknownEmailIsNamedInPlainText(t *testing.T) {
	t.Parallel()
	e := newEnv(t, blame.Config{})
	e.jenkins.AddBuild("api-postmerge", 7, "FAILURE", "stranger@example.org")
	e.handle(t, blame.Result{Job: "api-postmerge", Number: 7, Status: "FAILURE"})
	b := e.notify.last().Breakers
	if len(b) != 1 || b[0].SlackID != "" || b[0].Email != "stranger@example.org" {
		t.Fatalf("breakers = %+v", b)
	}
}

func TestMutedAndUnrouted(t *testing.T) {
	t.Parallel()
	e := newEnv(t, blame.Config{})
	subject := "job:api-postmerge"
	if err := e.q.SaveNotice(context.Background(), queue.Notice{Subject: subject, State: "fixed", MutedUntil: time.Now().Add(time.Hour), MutedBy: "U1"}); err != nil {
		t.Fatal(err)
	}
	e.jenkins.AddBuild("api-postmerge", 9, "FAILURE")
	e.handle(t, blame.Result{Job: "api-postmerge", Number: 9, Status: "FAILURE"})
	e.handle(t, blame.Result{Job: "unknown-job", Number: 1, Status: "FAILURE"})
	if len(e.notify.shown) != 0 {
		t.Fatalf("shown %d notices for a muted job and an unrouted one", len(e.notify.shown))
	}
	n, err := e.q.Notice(context.Background(), queue.NoticeID(subject))
	if err != nil || !n.Open() || n.MessageTS != "" {
		t.Fatalf("the muted failure should still be tracked, quietly: %+v, %v", n, err)
	}
}

func TestGatingStaysOpenWhileAnotherJobFails(t *testing.T) {
	t.Parallel()
	e := newEnv(t, blame.Config{})
	r, _ := blame.FromNotification(recorded(t, "finalized-failure.json"))
	lint := r
	lint.Job, lint.Number, lint.Key = "platform-api-lint", 12, "jenkins:lint-12"
	e.handle(t, r)
	e.handle(t, lint)
	pass := r
	pass.Status, pass.Number, pass.Key = "SUCCESS", 88, "jenkins:verify-88"
	e.handle(t, pass)
	n, _ := e.q.Notice(context.Background(), queue.NoticeID("change:platform/api:1503"))
	if !n.Open() || strings.Join(n.Failing, ",") != "platform-api-lint" {
		t.Fatalf("notice = %+v; lint still fails", n)
	}
}

func TestRetryAndMute(t *testing.T) {
	t.Parallel()
	e := newEnv(t, blame.Config{})
	ctx := context.Background()
	r, _ := blame.FromNotification(recorded(t, "finalized-failure.json"))
	e.handle(t, r)
	id := e.notify.last().ID
	if id != queue.NoticeID("change:platform/api:1503") {
		t.Fatalf("notice ID %q", id)
	}
	n, err := e.engine.Retry(ctx, id, "U_CLICK", nil)
	if err != nil || n.RetriedBy != "U_CLICK" {
		t.Fatalf("Retry = %+v, %v", n, err)
	}
	if _, err := e.engine.Retry(ctx, id, "U_OTHER", nil); !errors.Is(err, blame.ErrAlreadyRetried) {
		t.Fatalf("a second Retry for the same failure = %v", err)
	}
	if strings.Join(e.changes.rechecks, ";") != "platform/api 1503 recheck" {
		t.Fatalf("rechecks = %v", e.changes.rechecks)
	}
	if last := e.notify.last(); last.RetriedBy != "U_CLICK" || last.MessageTS == "" {
		t.Fatalf("the notice was not updated: %+v", last)
	}
	m, err := e.engine.Mute(ctx, id, "U_MUTE", time.Hour)
	if err != nil || !m.Muted(time.Now()) || m.MutedBy != "U_MUTE" {
		t.Fatalf("Mute = %+v, %v", m, err)
	}
	// A mute quiets new notices; it does not hide the fix of this one.
	fix := *r.Change
	fix.PatchSet = 3
	e.handle(t, blame.Result{Status: "SUCCESS", Gating: true, Vote: "Verified+1", Change: &fix})
	if last := e.notify.last(); last.State != "fixed" {
		t.Fatalf("the muted notice's fix was not shown: %+v", last)
	}
	// Post-merge jobs are run again with the same parameters.
	e.jenkins.AddBuild("api-postmerge", 3, "FAILURE")
	e.handle(t, blame.Result{Job: "api-postmerge", Number: 3, Status: "FAILURE", Params: map[string]string{"GIT_REF": "main"}})
	before := e.jenkins.QueueItemsCreated()
	if _, err := e.engine.Retry(ctx, queue.NoticeID("job:api-postmerge"), "U_CLICK", nil); err != nil {
		t.Fatal(err)
	}
	if e.jenkins.QueueItemsCreated() != before+1 {
		t.Fatal("the job was not started again")
	}
	if _, err := e.engine.Retry(ctx, queue.NoticeID("job:nothing"), "U_CLICK", nil); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("Retry of an unknown notice = %v", err)
	}
}

// TestChannelFallbackAndResolvedName: a service without a channel of its
// own reports to the default channel, and a #name is kept as the ID Slack
// answered with, which chat.update needs.
func TestChannelFallbackAndResolvedName(t *testing.T) {
	t.Parallel()
	e := newEnv(t, blame.Config{Channel: "#ci-breakages", Services: []blame.Service{{Name: "api", Jobs: []string{"api-postmerge"}}}})
	e.jenkins.AddBuild("api-postmerge", 4, "FAILURE")
	e.handle(t, blame.Result{Job: "api-postmerge", Number: 4, Status: "FAILURE"})
	if e.notify.posts != 1 || e.notify.last().Channel != "#ci-breakages" {
		t.Fatalf("%d posts, last to %q; want the default channel", e.notify.posts, e.notify.last().Channel)
	}
	n, err := e.q.Notice(context.Background(), queue.NoticeID("job:api-postmerge"))
	if err != nil || n.Channel != "C_CI-BREAKAGES" || n.Service != "api" {
		t.Fatalf("saved notice channel %q service %q (%v); want the resolved ID", n.Channel, n.Service, err)
	}
}

// TestBreakageThatOutlastsItsMute: failures during a mute are tracked
// quietly; the first one after the mute lapses is posted.
func TestBreakageThatOutlastsItsMute(t *testing.T) {
	t.Parallel()
	e := newEnv(t, blame.Config{})
	ctx := context.Background()
	id := queue.NoticeID("job:api-postmerge")
	if err := e.q.SaveNotice(ctx, queue.Notice{Subject: "job:api-postmerge", State: "fixed", MutedUntil: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	e.jenkins.AddBuild("api-postmerge", 9, "FAILURE")
	e.handle(t, blame.Result{Job: "api-postmerge", Number: 9, Status: "FAILURE"})
	if e.notify.posts != 0 {
		t.Fatal("posted while muted")
	}
	n, _ := e.q.Notice(ctx, id)
	n.MutedUntil = time.Now().Add(-time.Minute) // the hour is over
	if err := e.q.SaveNotice(ctx, n); err != nil {
		t.Fatal(err)
	}
	e.handle(t, blame.Result{Job: "api-postmerge", Number: 10, Status: "FAILURE"})
	if e.notify.posts != 1 || len(e.notify.last().Failures) != 2 {
		t.Fatalf("%d posts, failures %v; want the breakage posted with both failures", e.notify.posts, e.notify.last().Failures)
	}
}

// TestResultsOutOfOrder: builds of one job can finish, and be reported,
// out of order. An older success does not fix a newer failure, and an
// older failure after the fix opens nothing.
func TestResultsOutOfOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t, blame.Config{})
	e.jenkins.AddBuild("api-postmerge", 86, "SUCCESS")
	e.jenkins.AddBuild("api-postmerge", 87, "FAILURE")
	fail87 := blame.Result{Job: "api-postmerge", Number: 87, Status: "FAILURE", Key: "jenkins:87"}
	e.handle(t, fail87)
	e.handle(t, blame.Result{Job: "api-postmerge", Number: 86, Status: "SUCCESS", Key: "jenkins:86"})
	if n := e.notify.last(); !n.Open() {
		t.Fatal("#86 passing, reported late, closed #87's breakage")
	}
	e.handle(t, blame.Result{Job: "api-postmerge", Number: 88, Status: "SUCCESS", Key: "jenkins:88"})
	e.handle(t, fail87)                                                            // delivered again
	e.handle(t, blame.Result{Job: "api-postmerge", Number: 87, Status: "FAILURE"}) // deploybot's own follow-up
	if e.notify.posts != 1 || e.notify.last().State != "fixed" {
		t.Fatalf("%d posts, last state %q; want the one notice, fixed", e.notify.posts, e.notify.last().State)
	}
	// A change's verdicts: patch set 2's -1 arriving after patch set 3's
	// +1 is stale too.
	r, _ := blame.FromNotification(recorded(t, "finalized-failure.json"))
	newer := *r.Change
	newer.PatchSet = 3
	e.handle(t, blame.Result{Status: "SUCCESS", Gating: true, Vote: "Verified+1", Change: &newer, Key: "gerrit:ps3"})
	e.handle(t, r)
	if e.notify.posts != 1 {
		t.Fatalf("%d posts; a stale -1 opened a notice", e.notify.posts)
	}
}

// TestSecondVerdictCanBeRetried: CI votes -1, someone retries, CI votes -1
// again on the same patch set. That is a new failure, which may be retried
// once more; the same vote delivered twice is not.
func TestSecondVerdictCanBeRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t, blame.Config{})
	ctx := context.Background()
	r, _ := blame.FromNotification(recorded(t, "finalized-failure.json"))
	vote := func(key string) blame.Result {
		return blame.Result{Status: "FAILURE", Gating: true, Vote: "Verified-1 by CI Bot", Change: r.Change, Key: key}
	}
	e.handle(t, vote("gerrit:first"))
	id := queue.NoticeID("change:platform/api:1503")
	if _, err := e.engine.Retry(ctx, id, "U_ONE", nil); err != nil {
		t.Fatal(err)
	}
	e.handle(t, vote("gerrit:second"))
	e.handle(t, vote("gerrit:second"))
	if _, err := e.engine.Retry(ctx, id, "U_TWO", nil); err != nil {
		t.Fatalf("retry of the second verdict: %v", err)
	}
	if _, err := e.engine.Retry(ctx, id, "U_THREE", nil); !errors.Is(err, blame.ErrAlreadyRetried) {
		t.Fatalf("third retry = %v", err)
	}
	if got := len(e.changes.rechecks); got != 2 {
		t.Fatalf("%d rechecks, want 2", got)
	}
}

// steps is a job's recorded steps.
type steps map[string]string

func (s steps) Get(_ context.Context, name string) (string, error) { return s[name], nil }
func (s steps) Set(_ context.Context, name, v string) error        { s[name] = v; return nil }

// TestRetryJobRunAgain: a notice-retry job whose worker died after the
// recheck and is run again does not recheck twice.
func TestRetryJobRunAgain(t *testing.T) {
	t.Parallel()
	e := newEnv(t, blame.Config{})
	ctx := context.Background()
	r, _ := blame.FromNotification(recorded(t, "finalized-failure.json"))
	e.handle(t, r)
	id := queue.NoticeID("change:platform/api:1503")
	job := steps{}
	if _, err := e.engine.Retry(ctx, id, "U_ONE", job); err != nil {
		t.Fatal(err)
	}
	// The save was lost with the worker: the notice does not know.
	n, _ := e.q.Notice(ctx, id)
	n.RetriedAt, n.RetriedBy = 0, ""
	if err := e.q.SaveNotice(ctx, n); err != nil {
		t.Fatal(err)
	}
	if n, err := e.engine.Retry(ctx, id, "U_ONE", job); err != nil || n.RetriedBy != "U_ONE" {
		t.Fatalf("the job run again = %+v, %v", n, err)
	}
	if got := len(e.changes.rechecks); got != 1 {
		t.Fatalf("%d rechecks, want 1", got)
	}
}

// TestNewPatchSetMakesOldVerdictsStale: after patch set 3 is uploaded, a
// -1 on patch set 2 arriving late opens nothing.
func TestNewPatchSetMakesOldVerdictsStale(t *testing.T) {
	t.Parallel()
	e := newEnv(t, blame.Config{})
	raw, err := os.ReadFile(filepath.Join("..", "..", "backends", "gerrit", "gerrittest", "testdata", "patchset-created.json"))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := gerrit.ParseEvent(raw)
	if err != nil {
		t.Fatal(err)
	}
	ev.PatchSet.Number = 3
	up, ok := e.engine.FromGerritEvent(ev)
	if !ok || up.Status != blame.StatusUploaded {
		t.Fatalf("patchset-created = %+v, %v", up, ok)
	}
	e.handle(t, up)
	r, _ := blame.FromNotification(recorded(t, "finalized-failure.json")) // patch set 2
	e.handle(t, r)
	if e.notify.posts != 0 {
		t.Fatal("a verdict on a superseded patch set was posted")
	}
}

// TestPusherOfADirectPush: a post-merge build started by ref-updated
// (a push that skipped review) names the pusher.
func TestPusherOfADirectPush(t *testing.T) {
	t.Parallel()
	e := newEnv(t, blame.Config{})
	e.jenkins.AddBuild("api-postmerge", 12, "FAILURE", "bob@example.com")
	e.handle(t, blame.Result{Job: "api-postmerge", Number: 12, Status: "FAILURE", EventType: "ref-updated",
		EventAccount: blame.Account{Name: "Carol", Email: "carol@example.com", Username: "carol"},
		Params:       map[string]string{"GERRIT_REFNAME": "refs/heads/main"}})
	b := e.notify.last().Breakers
	if len(b) != 1 || b[0].SlackID != "U_CAROL" || b[0].Reason != "pushed to main, which api-postmerge #12 built" {
		t.Fatalf("breakers = %+v", b)
	}
}

// TestAbandonedChangeClosesItsNotice: Gerrit's change-abandoned closes
// the change's open notice (its Recheck button goes) without a new post.
func TestAbandonedChangeClosesItsNotice(t *testing.T) {
	t.Parallel()
	e := newEnv(t, blame.Config{})
	r, _ := blame.FromNotification(recorded(t, "finalized-failure.json"))
	e.handle(t, r)
	raw, err := os.ReadFile(filepath.Join("..", "..", "backends", "gerrit", "gerrittest", "testdata", "change-abandoned.json"))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := gerrit.ParseEvent(raw)
	if err != nil {
		t.Fatal(err)
	}
	res, ok := e.engine.FromGerritEvent(ev)
	if !ok || res.Status != blame.StatusAbandoned {
		t.Fatalf("change-abandoned = %+v, %v", res, ok)
	}
	e.handle(t, res)
	n := e.notify.last()
	if e.notify.posts != 1 || n.State != queue.StateAbandoned || n.Open() || len(n.FixedBy) != 1 || n.FixedBy[0].SlackID != "U_ANN" {
		t.Fatalf("%d posts; notice %+v", e.notify.posts, n)
	}
}

// TestRenumberedJobIsStillHeard: a job recreated in Jenkins starts again
// at #1; its queue IDs still grow, so its failures are news.
func TestRenumberedJobIsStillHeard(t *testing.T) {
	t.Parallel()
	e := newEnv(t, blame.Config{})
	e.jenkins.AddBuild("api-postmerge", 1, "FAILURE")
	e.handle(t, blame.Result{Job: "api-postmerge", Number: 500, Status: "SUCCESS", QueueID: 9000})
	e.handle(t, blame.Result{Job: "api-postmerge", Number: 499, Status: "FAILURE", QueueID: 8990}) // late: stale
	e.handle(t, blame.Result{Job: "api-postmerge", Number: 1, Status: "FAILURE", QueueID: 9100})
	if e.notify.posts != 1 || e.notify.last().Title != "api-postmerge #1" {
		t.Fatalf("%d posts; want the renumbered job's failure, not the stale one", e.notify.posts)
	}
}

// TestOnlyAVerdictClosesAChange: with CI's -1 standing, a gating job
// passing (or one that names no patch set) does not close the notice.
func TestOnlyAVerdictClosesAChange(t *testing.T) {
	t.Parallel()
	e := newEnv(t, blame.Config{})
	r, _ := blame.FromNotification(recorded(t, "finalized-failure.json"))
	ps := *r.Change
	e.handle(t, blame.Result{Status: "FAILURE", Gating: true, Vote: "Verified-1 by CI Bot", Change: &ps, Key: "gerrit:vote"})
	pass := r
	pass.Status, pass.Number, pass.Key, pass.QueueID = "SUCCESS", 88, "jenkins:88", r.QueueID+1
	e.handle(t, pass)
	noPatchSet := ps
	noPatchSet.PatchSet = 0
	e.handle(t, blame.Result{Job: "platform-api-verify", Number: 89, Status: "SUCCESS", Gating: true, Change: &noPatchSet, Key: "jenkins:89"})
	n, _ := e.q.Notice(context.Background(), queue.NoticeID("change:platform/api:1503"))
	if !n.Open() {
		t.Fatalf("notice %+v closed while CI's -1 stands", n)
	}
	e.handle(t, blame.Result{Status: "SUCCESS", Gating: true, Vote: "Verified+1 by CI Bot", Change: &ps, Key: "gerrit:vote+1"})
	if n := e.notify.last(); n.State != "fixed" {
		t.Fatalf("CI's +1 did not close it: %+v", n)
	}
}

// TestOneRunOneRetry: a change's failing job and CI's -1 that follows are
// one run, retried once; a job queued after the retry starts the next run.
func TestOneRunOneRetry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, blame.Config{})
	ctx := context.Background()
	id := queue.NoticeID("change:platform/api:1503")
	r, _ := blame.FromNotification(recorded(t, "finalized-failure.json"))
	e.handle(t, r)
	if _, err := e.engine.Retry(ctx, id, "U_ONE", nil); err != nil {
		t.Fatal(err)
	}
	e.handle(t, blame.Result{Status: "FAILURE", Gating: true, Vote: "Verified-1 by CI Bot", Change: r.Change, Key: "gerrit:run1"})
	if _, err := e.engine.Retry(ctx, id, "U_TWO", nil); !errors.Is(err, blame.ErrAlreadyRetried) {
		t.Fatalf("retry after the same run's vote = %v", err)
	}
	again := r
	again.Number, again.Key, again.QueueID = 88, "jenkins:88", r.QueueID+10
	e.handle(t, again)
	if _, err := e.engine.Retry(ctx, id, "U_THREE", nil); err != nil {
		t.Fatalf("retry of the next run: %v", err)
	}
	if got := len(e.changes.rechecks); got != 2 {
		t.Fatalf("%d rechecks, want 2", got)
	}
}

// TestFeatureBranchBuildsOfTheBuildJob: the Notification plugin reports
// every build of the service's build job; only default-ref builds count.
func TestFeatureBranchBuildsOfTheBuildJob(t *testing.T) {
	t.Parallel()
	e := newEnv(t, blame.Config{Services: []blame.Service{{Name: "api", Channel: "C_API", Jobs: []string{"api-build"},
		BuildJob: "api-build", RefParam: "BRANCH", DefaultRef: "main"}}})
	e.jenkins.AddJob("api-build", "BRANCH")
	e.jenkins.AddBuild("api-build", 7, "FAILURE")
	e.jenkins.AddBuild("api-build", 8, "FAILURE")
	e.handle(t, blame.Result{Job: "api-build", Number: 7, Status: "FAILURE", Params: map[string]string{"BRANCH": "feature/login"}})
	if e.notify.posts != 0 {
		t.Fatal("a feature branch's failure opened a notice")
	}
	e.handle(t, blame.Result{Job: "api-build", Number: 8, Status: "FAILURE", Params: map[string]string{"BRANCH": "origin/main"}})
	if e.notify.posts != 1 {
		t.Fatalf("%d posts; the default branch's failure must open one", e.notify.posts)
	}
}

// TestGatingResultWithoutPatchSetIsStale: once a change's patch set is
// known, a gating build that names none cannot close its notice.
func TestGatingResultWithoutPatchSetIsStale(t *testing.T) {
	t.Parallel()
	e := newEnv(t, blame.Config{})
	r, _ := blame.FromNotification(recorded(t, "finalized-failure.json"))
	e.handle(t, r)
	pass := r
	noPatchSet := *r.Change
	noPatchSet.PatchSet = 0
	pass.Status, pass.Number, pass.Key, pass.QueueID, pass.Change = "SUCCESS", 88, "jenkins:88", r.QueueID+1, &noPatchSet
	e.handle(t, pass)
	if n := e.notify.last(); !n.Open() || len(e.notify.shown) != 1 {
		t.Fatalf("a build naming no patch set closed the notice: %+v", n)
	}
}
