package bot

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/seed-5eb4e92e/deploybot/authz"
	"github.com/seed-5eb4e92e/deploybot/commands"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
	"github.com/seed-5eb4e92e/deploybot/worker/queue/queuetest"
)

// deployCatalog is a catalog deploybot deploys with: api goes dev →
// staging → prod, web only to staging and prod.
var deployCatalog = commands.Catalog{
	Services: []commands.Service{
		{Name: "api", Envs: []string{"dev", "staging", "prod"}},
		{Name: "web", Envs: []string{"staging", "prod"}},
	},
	Environments: []string{"dev", "staging", "prod"},
}

// newDeployFixture is a responder that deploys: its Envs are the queue's
// locks and history. Its clock stands still at the returned time, so lock
// texts can be predicted; Redis still expires locks by its own clock.
func newDeployFixture(t *testing.T, auth Authorizer) (*fixture, time.Time) {
	t.Helper()
	q, _, reg := queuetest.New(t, queue.Config{})
	f := newFixtureWith(t, q, reg, auth, Config{}, deployCatalog, q)
	now := time.Now()
	f.r.now = func() time.Time { return now }
	return f, now
}

// deployPolicy: U_DEV may deploy to dev and staging, promote to staging,
// roll back staging and lock staging; the SREs U_ANN and U_BOB may build, deploy, roll back and
// lock anything.
func deployPolicy(t *testing.T) Authorizer {
	t.Helper()
	p, err := authz.NewStatic(authz.Policy{
		Groups: map[string][]string{"dev": {"U_DEV"}, "sre": {"U_ANN", "U_BOB"}},
		Rules: []authz.Rule{
			{Group: "dev", Allow: []string{"deploy:dev:*", "deploy:staging:*", "promote:staging:*", "rollback:staging:*", "lock:staging"}},
			{Group: "sre", Allow: []string{"build:*", "deploy:*", "promote:*", "rollback:*", "lock:*"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// command sends a slash command as user and decodes the answer, which must
// be of responseType.
func (f *fixture) command(t *testing.T, text, user, responseType string) ephemeralAnswer {
	t.Helper()
	return answerAs(t, f.do(t, "/slack/commands", slashBody(t, text, user), nil), responseType)
}

// sectionTexts are the mrkdwn texts of an answer's section blocks, as
// Slack shows them (unlike the raw JSON, which escapes < and >).
func sectionTexts(t *testing.T, a ephemeralAnswer) []string {
	t.Helper()
	var out []string
	for _, b := range decodeBlocks(t, a) {
		if s, ok := b.(*slack.SectionBlock); ok && s.Text != nil {
			out = append(out, s.Text.Text)
		}
	}
	return out
}

func decodeBlocks(t *testing.T, a ephemeralAnswer) []slack.Block {
	t.Helper()
	raw, err := json.Marshal(a.Blocks)
	if err != nil {
		t.Fatal(err)
	}
	var bs slack.Blocks
	if err := json.Unmarshal(raw, &bs); err != nil {
		t.Fatalf("blocks %s: %v", raw, err)
	}
	return bs.BlockSet
}

// buttons are an answer's buttons.
func buttons(t *testing.T, a ephemeralAnswer) []*slack.ButtonBlockElement {
	t.Helper()
	var out []*slack.ButtonBlockElement
	for _, b := range decodeBlocks(t, a) {
		if ab, ok := b.(*slack.ActionBlock); ok {
			for _, e := range ab.Elements.ElementSet {
				if btn, ok := e.(*slack.ButtonBlockElement); ok {
					out = append(out, btn)
				}
			}
		}
	}
	return out
}

func envLock(t *testing.T, q *queue.Queue, env string) (queue.EnvLock, bool) {
	t.Helper()
	l, found, err := q.EnvLock(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	return l, found
}

// until is how lock texts show the end of a lock taken at now for d.
func until(now time.Time, d time.Duration) string {
	return now.Add(d).UTC().Format("Jan 2 15:04") + " UTC"
}

func TestLockAnnouncesWhoWhyAndUntil(t *testing.T) {
	t.Parallel()
	f, now := newDeployFixture(t, deployPolicy(t))
	tests := []struct {
		name, text, env, reason, want string
		d                             time.Duration
	}{
		{"reason and duration", "lock prod release freeze for 2h", "prod", "release freeze",
			"🔒 *prod* is locked by <@U_ANN> until " + until(now, 2*time.Hour) + ": release freeze. " +
				"Deploys by anyone else are refused, or wait, until `/deploy unlock prod`.", 2 * time.Hour},
		{"defaults", "lock staging", "staging", "",
			"🔒 *staging* is locked by <@U_ANN> until " + until(now, commands.DefaultLockFor) + ". " +
				"Deploys by anyone else are refused, or wait, until `/deploy unlock staging`.", commands.DefaultLockFor},
		{"reason that would ping everyone", "lock dev <!channel> &amp; <@U1> for 90m", "dev", "<!channel> & <@U1>",
			"🔒 *dev* is locked by <@U_ANN> until " + until(now, 90*time.Minute) + ": &lt;!channel&gt; &amp; &lt;@U1&gt;. " +
				"Deploys by anyone else are refused, or wait, until `/deploy unlock dev`.", 90 * time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := f.command(t, tc.text, "U_ANN", "in_channel")
			if a.Text != tc.want {
				t.Fatalf("answer\n %q\nwant\n %q", a.Text, tc.want)
			}
			if s := sectionTexts(t, a); len(s) != 1 || s[0] != tc.want {
				t.Fatalf("blocks say %q, want the same as the text", s)
			}
			l, found := envLock(t, f.q, tc.env)
			if !found || l.User != "U_ANN" || l.Reason != tc.reason || !l.Since.Equal(now) || !l.Until.Equal(now.Add(tc.d)) {
				t.Fatalf("lock = %+v (found %v), want U_ANN's for %s: %q", l, found, tc.d, tc.reason)
			}
		})
	}
	if n := depth(t, f.q); n != 0 {
		t.Fatalf("locking queued %d jobs", n)
	}
}

func TestLockHeldBySomeoneElseIsRefused(t *testing.T) {
	t.Parallel()
	f, now := newDeployFixture(t, deployPolicy(t))
	f.command(t, "lock prod release freeze for 2h", "U_ANN", "in_channel")

	a := f.command(t, "lock prod hotfix for 30m", "U_BOB", "ephemeral")
	want := "🔒 Not yours to lock: *prod* is locked by <@U_ANN> until " + until(now, 2*time.Hour) + ": release freeze."
	if a.Text != want {
		t.Fatalf("second lock answered\n %q\nwant\n %q", a.Text, want)
	}
	if l, _ := envLock(t, f.q, "prod"); l.User != "U_ANN" || l.Reason != "release freeze" {
		t.Fatalf("the refused lock changed the lock to %+v", l)
	}

	// The holder may extend their own lock.
	a = f.command(t, "lock prod release freeze for 4h", "U_ANN", "in_channel")
	if !strings.Contains(a.Text, "locked by <@U_ANN> until "+until(now, 4*time.Hour)+": release freeze.") {
		t.Fatalf("renewal answered %q", a.Text)
	}
	if l, _ := envLock(t, f.q, "prod"); !l.Until.Equal(now.Add(4 * time.Hour)) {
		t.Fatalf("renewed lock = %+v, want it to last 4h", l)
	}
}

func TestLockNeedsPermission(t *testing.T) {
	t.Parallel()
	f, _ := newDeployFixture(t, deployPolicy(t))
	a := f.command(t, "lock prod", "U_DEV", "ephemeral")
	if !strings.Contains(a.Text, "Not allowed") || !strings.Contains(a.Text, "`lock:prod`") {
		t.Fatalf("lock without permission answered %q", a.Text)
	}
	if _, found := envLock(t, f.q, "prod"); found {
		t.Fatal("a denied lock was taken")
	}
	f.command(t, "lock staging demo", "U_DEV", "in_channel") // lock:staging is granted
}

// TestUnlock follows the code's rule, which the README states: the
// permission to lock an environment is the permission to unlock it,
// whoever holds the lock; the channel is told whose lock was lifted.
func TestUnlock(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, user, responseType string
		want                     []string // all in the answer
		lifted                   bool
	}{
		{"by the holder", "U_ANN", "in_channel",
			[]string{"🔓 <@U_ANN> unlocked *prod*. Deploys queued behind it start when they next look, within 15 seconds."}, true},
		{"by someone else who may lock it", "U_BOB", "in_channel",
			[]string{"🔓 <@U_BOB> unlocked *prod* (it was locked by <@U_ANN>: release &lt;freeze&gt;). Deploys queued behind it start when they next look, within 15 seconds."}, true},
		{"by someone who may not lock it", "U_DEV", "ephemeral",
			[]string{"⛔ Not allowed: ", "`lock:prod`"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, _ := newDeployFixture(t, deployPolicy(t))
			f.command(t, "lock prod release &lt;freeze&gt; for 2h", "U_ANN", "in_channel")
			a := f.command(t, "unlock prod", tc.user, tc.responseType)
			for _, w := range tc.want {
				if !strings.Contains(a.Text, w) {
					t.Fatalf("unlock answered\n %q\nwant it to say\n %q", a.Text, w)
				}
			}
			if _, found := envLock(t, f.q, "prod"); found == tc.lifted {
				t.Fatalf("lock still held: %v, want %v", found, !tc.lifted)
			}
		})
	}
	t.Run("not locked", func(t *testing.T) {
		t.Parallel()
		f, _ := newDeployFixture(t, deployPolicy(t))
		if a := f.command(t, "unlock prod", "U_ANN", "ephemeral"); a.Text != "*prod* is not locked." {
			t.Fatalf("unlocking a free environment answered %q", a.Text)
		}
	})
}

func TestLockWithoutDeploysIsExplained(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, Config{})
	if a := answer(t, f.do(t, "/slack/commands", slashBody(t, "lock prod", ""), nil)); !strings.Contains(a.Text, "nothing to lock") {
		t.Fatalf("lock on a responder that deploys nothing answered %q", a.Text)
	}
	if a := answer(t, f.do(t, "/slack/commands", slashBody(t, "history api", ""), nil)); !strings.Contains(a.Text, "no history") {
		t.Fatalf("history on a responder that deploys nothing answered %q", a.Text)
	}
}

func TestDeployToLockedEnvironmentIsRefused(t *testing.T) {
	t.Parallel()
	f, now := newDeployFixture(t, deployPolicy(t))
	f.command(t, "lock prod release freeze for 2h", "U_ANN", "in_channel")
	held := "*prod* is locked by <@U_ANN> until " + until(now, 2*time.Hour) + ": release freeze"
	for _, text := range []string{"api main to prod", "deploy web v2 to prod", "promote api staging to prod", "rollback api prod"} {
		a := f.command(t, text, "U_BOB", "ephemeral")
		if want := "🔒 Not started: " + held + "."; a.Text != want {
			t.Errorf("%q answered\n %q\nwant\n %q", text, a.Text, want)
		}
		s := sectionTexts(t, a)
		// Nothing is queued until the button is clicked, and the answer
		// must not suggest otherwise.
		if len(s) != 1 || !strings.HasSuffix(s[0], held+". Nothing was queued; *Queue it behind the lock* to have it start when the lock is lifted or expires.") {
			t.Errorf("%q: blocks say %q", text, s)
		}
		b := buttons(t, a)
		if len(b) != 1 || b[0].ActionID != ActionWaitForLock || b[0].Value != text || b[0].Text.Text != "Queue it behind the lock" {
			t.Errorf("%q: buttons %+v, want one that queues %q behind the lock", text, b, text)
		}
	}
	if n := depth(t, f.q); n != 0 {
		t.Fatalf("refused deploys queued %d jobs", n)
	}
	// Other environments, and builds, are not held up.
	for _, text := range []string{"api main to staging", "build api main"} {
		if a := f.command(t, text, "U_BOB", "ephemeral"); !strings.HasPrefix(a.Text, "⏳ Queued") {
			t.Errorf("%q answered %q", text, a.Text)
		}
	}
}

func TestLockHoldersOwnDeployIsQueued(t *testing.T) {
	t.Parallel()
	f, _ := newDeployFixture(t, deployPolicy(t))
	f.command(t, "lock prod release freeze", "U_ANN", "in_channel")
	a := f.command(t, "api v1.8.0 to prod", "U_ANN", "ephemeral")
	if !strings.HasPrefix(a.Text, "⏳ Queued deploy of api@v1.8.0 to prod — job `") {
		t.Fatalf("holder's deploy answered %q", a.Text)
	}
	rec, err := f.q.Record(context.Background(), jobIDRE.FindStringSubmatch(a.Text)[1])
	if err != nil {
		t.Fatal(err)
	}
	req := rec.Job.Request
	if req.Kind != "deploy" || req.Service != "api" || req.Ref != "v1.8.0" || req.Env != "prod" || rec.Job.User != "U_ANN" || rec.Job.WaitForLock {
		t.Fatalf("queued job = %+v", rec.Job)
	}
}

// jobIDs are the job IDs an answer's blocks name, in order.
func jobIDs(t *testing.T, a ephemeralAnswer) []string {
	t.Helper()
	var ids []string
	for _, s := range sectionTexts(t, a) {
		for _, m := range jobIDRE.FindAllStringSubmatch(s, -1) {
			ids = append(ids, m[1])
		}
	}
	return ids
}
