package bot

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/seed-5eb4e92e/deploybot/commands"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// Links a deploy's message carries, as the worker records them.
var (
	buildLink   = "https://jenkins.example.com/job/api-build/57/"
	appLink     = queue.Link{Kind: "app", Text: "/platform/api", URL: "https://marathon.example.com/ui/#/apps/%2Fplatform%2Fapi"}
	greenLink   = queue.Link{Kind: "app", Text: "/platform/api-green", URL: "https://marathon.example.com/ui/#/apps/%2Fplatform%2Fapi-green"}
	sandboxLink = queue.Link{Kind: "task", Text: "migrate sandbox",
		URL: "https://mesos.example.com/#/agents/a1-S0/frameworks/f1-0001/executors/migrate-01K/tasks/migrate-01K/browse"}
	previousArtifact = "registry.example.com/api:1.7.3-9d1e0f2"
)

// deployRecord is a deploy of api@main to env, requested by U0ANN.
func deployRecord(env string) queue.Record {
	rec := baseRecord()
	rec.Job.ID = "01KAQ1B2C3D4E5F6G7H8J9K0M1"
	rec.Job.Request = commands.Request{Kind: "deploy", Action: "deploy", Service: "api", Ref: "main", Env: env}
	rec.Job.User = "U0ANN"
	rec.Link, rec.LinkText, rec.Artifact = buildLink, "#57", testArtifact
	return rec
}

func deployMessageCases() map[string]queue.Record {
	success := deployRecord("staging")
	success.State, success.Result, success.PromoteTo = queue.StateSucceeded, "LIVE", "prod"
	success.Links = []queue.Link{sandboxLink, appLink}
	success.Started, success.Finished = t0, t0.Add(4*time.Minute+12*time.Second)

	promoted := deployRecord("prod")
	promoted.Job.Request = commands.Request{Kind: "promote", Action: "deploy", Service: "api", From: "staging", Env: "prod"}
	promoted.Job.Source, promoted.Link, promoted.LinkText = success.Job.ID, "", ""
	promoted.State, promoted.Result, promoted.Links = queue.StateSucceeded, "LIVE", []queue.Link{appLink}
	promoted.Started, promoted.Finished = t0, t0.Add(95*time.Second)

	rolledBack := deployRecord("prod")
	rolledBack.State, rolledBack.Links = queue.StateFailed, []queue.Link{appLink}
	rolledBack.Error = "The new version did not become healthy: 1 of 4 new tasks healthy after 5m0s (health check: HTTP 503 from /health). " +
		"Rolled back to `" + previousArtifact + "`."

	blueGreen := deployRecord("prod")
	blueGreen.State, blueGreen.Stage, blueGreen.Links = queue.StateRunning, "blue/green: green 2/4 healthy, blue 2", []queue.Link{greenLink}

	waiting := deployRecord("prod")
	waiting.Artifact, waiting.Link, waiting.LinkText, waiting.Job.WaitForLock = "", "", "", true
	waiting.State = queue.StateRunning
	waiting.Stage = "waiting for the lock on prod: prod is locked by " + queue.Mention("U0BOB") + " until Nov 23 14:00 UTC: release <freeze>"

	rollingBack := deployRecord("prod")
	rollingBack.Job.Request = commands.Request{Kind: "rollback", Action: "rollback", Service: "api", Env: "prod"}
	rollingBack.Job.Source, rollingBack.Link, rollingBack.LinkText = success.Job.ID, "", ""
	rollingBack.State, rollingBack.Stage, rollingBack.Artifact = queue.StateRunning, "rolling back to `"+previousArtifact+"`", previousArtifact

	rolledBackOK := rollingBack
	rolledBackOK.State, rolledBackOK.Stage, rolledBackOK.Result, rolledBackOK.Links = queue.StateSucceeded, "", "ROLLED BACK", []queue.Link{appLink}
	rolledBackOK.Started, rolledBackOK.Finished = t0, t0.Add(48*time.Second)

	hostile := success
	hostile.Artifact = "registry.example.com/api:<!channel>"
	hostile.Links = []queue.Link{{Kind: "app", Text: "<@U0EVE> & co", URL: "https://x.example.com/|<!here>"}}
	return map[string]queue.Record{
		"deploy-success": success, "promote-success": promoted, "deploy-rolled-back": rolledBack,
		"deploy-bluegreen": blueGreen, "deploy-waiting-for-lock": waiting,
		"rollback-running": rollingBack, "rollback-success": rolledBackOK, "deploy-hostile": hostile,
	}
}

func TestDeployMessageGolden(t *testing.T) {
	t.Parallel()
	for name, rec := range deployMessageCases() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			blocks, text := JobMessage(rec)
			if text == "" {
				t.Fatal("no fallback text")
			}
			golden(t, filepath.Join("golden", name+".json"), blocksJSON(t, blocks))
		})
	}
}

func TestDeployTitles(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]string{
		"deploy-success":   "Deploy `api` @ `main` to `staging`",
		"promote-success":  "Promote `api` from `staging` to `prod`",
		"rollback-running": "Rollback `api` in `prod`",
	} {
		if got := title(deployMessageCases()[name]); got != want {
			t.Errorf("%s: title %q, want %q", name, got, want)
		}
	}
}

// TestDeployButtonsOnlyOnSuccessfulDeploys: Promote and Roll back act on
// what a deploy verified, so only a finished, successful deploy or
// promotion has them; Promote only where there is a next environment.
func TestDeployButtonsOnlyOnSuccessfulDeploys(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"deploy", "promote", "rollback", "build"} {
		for _, st := range []queue.State{queue.StateQueued, queue.StateRunning, queue.StateSucceeded, queue.StateFailed, queue.StateDead} {
			for _, next := range []string{"", "prod"} {
				rec := deployRecord("staging")
				rec.Job.Request.Kind, rec.State, rec.PromoteTo = kind, st, next
				blocks, _ := JobMessage(rec)
				text := BlocksText(blocks)
				deploy := st == queue.StateSucceeded && (kind == "deploy" || kind == "promote")
				promote := fmt.Sprintf("[Promote to prod: click promote %s]", rec.Job.ID)
				rollback := fmt.Sprintf("[Roll back: click rollback %s]", rec.Job.ID)
				if got := strings.Contains(text, promote); got != (deploy && next != "") {
					t.Errorf("%s %s promoteTo %q: Promote button %v\n%s", kind, st, next, got, text)
				}
				if got := strings.Contains(text, rollback); got != deploy {
					t.Errorf("%s %s: Roll back button %v\n%s", kind, st, got, text)
				}
			}
		}
	}
}

// TestDeployButtonsAskForConfirmation: both buttons change an environment
// others use, so each asks first, in plain text (Slack's confirmation
// dialog takes plain_text only).
func TestDeployButtonsAskForConfirmation(t *testing.T) {
	t.Parallel()
	rec := deployMessageCases()["deploy-success"]
	want := map[string][2]string{
		ActionPromote:  {"Promote to prod?", "Deploy " + testArtifact + " to prod, exactly as it runs in staging."},
		ActionRollback: {"Roll back?", "Put back what ran in staging before this deploy."},
	}
	for _, b := range deployButtons(rec) {
		btn := b.(*slack.ButtonBlockElement)
		w, ok := want[btn.ActionID]
		if !ok {
			t.Errorf("unexpected button %s", btn.ActionID)
			continue
		}
		delete(want, btn.ActionID)
		c := btn.Confirm
		if c == nil {
			t.Errorf("%s asks for no confirmation", btn.ActionID)
			continue
		}
		if c.Title.Text != w[0] || c.Text.Text != w[1] || c.Text.Type != slack.PlainTextType || c.Confirm == nil || c.Deny == nil {
			t.Errorf("%s confirmation = %q / %s %q, want %q / plain_text %q", btn.ActionID, c.Title.Text, c.Text.Type, c.Text.Text, w[0], w[1])
		}
	}
	if len(want) != 0 {
		t.Errorf("missing buttons: %v", want)
	}
	rec.Artifact = "registry.example.com/api:" + strings.Repeat("é", 400)
	if c := deployButtons(rec)[0].(*slack.ButtonBlockElement).Confirm; len([]rune(c.Text.Text)) > 300 {
		t.Errorf("confirmation text has %d characters; Slack takes 300", len([]rune(c.Text.Text)))
	}
}

func TestHistoryMessageGolden(t *testing.T) {
	t.Parallel()
	cases := deployMessageCases()
	queued := deployRecord("prod")
	queued.Job.ID, queued.Job.User, queued.Job.CreatedAt = "01KAQ2Q0000000000000000000", "U0BOB", t0.Add(-2*time.Minute)
	queued.State, queued.Artifact, queued.Link, queued.LinkText = queue.StateQueued, "", "", ""
	rollback := cases["rollback-success"]
	rollback.Job.ID, rollback.Job.CreatedAt = "01KAQ2R0000000000000000000", t0.Add(-40*time.Minute)
	failed := cases["deploy-rolled-back"]
	failed.Job.ID, failed.Job.CreatedAt = "01KAQ2F0000000000000000000", t0.Add(-time.Hour)
	promoted := cases["promote-success"]
	promoted.Job.ID, promoted.Job.CreatedAt = "01KAQ2P0000000000000000000", t0.Add(-26*time.Hour)
	now := t0
	golden(t, filepath.Join("golden", "history-api-prod.json"), blocksJSON(t, HistoryMessage("api", "prod", []queue.Record{queued, rollback, failed, promoted}, now)))
	golden(t, filepath.Join("golden", "history-empty.json"), blocksJSON(t, HistoryMessage("web", "", nil, now)))
}

func TestLiveMessageGolden(t *testing.T) {
	t.Parallel()
	lock := queue.EnvLock{Env: "prod", User: "U0ANN", Reason: "release freeze <v2>", Since: t0.Add(-time.Hour), Until: t0.Add(time.Hour)}
	apps := []queue.LiveApp{
		{Service: "api", Env: "dev", Error: "Marathon has no app /platform/api-dev; create it first."},
		{Service: "api", Env: "staging", App: "/platform/api-green", Artifact: testArtifact, Since: t0.Add(-20 * time.Minute),
			User: "U0BOB", Healthy: 2, Running: 3, Instances: 4, Deploying: true},
		{Service: "api", Env: "prod", App: "/platform/api", Artifact: previousArtifact, Since: t0.Add(-125 * time.Minute),
			User: "U0ANN", Job: "01KAQ1B2C3D4E5F6G7H8J9K0M1", Healthy: 4, Running: 4, Instances: 4, Lock: &lock},
		{Service: "web", Env: "prod", App: "/platform/web", Artifact: "registry.example.com/web:3.1.0", Healthy: 0, Running: 0, Instances: 0},
	}
	golden(t, filepath.Join("golden", "live-api.json"), blocksJSON(t, LiveMessage(apps, nil, "", t0)))
	golden(t, filepath.Join("golden", "live-empty.json"), blocksJSON(t, LiveMessage(nil, nil, "", t0)))
}

// TestLiveMessageTasksGolden: after the environments, the one-off tasks
// Mesos says are running; when Mesos cannot be asked, one line says so.
func TestLiveMessageTasksGolden(t *testing.T) {
	t.Parallel()
	apps := []queue.LiveApp{
		{Service: "api", Env: "staging", App: "/platform/api-staging", Artifact: testArtifact, Since: t0.Add(-20 * time.Minute),
			User: "U0BOB", Healthy: 2, Running: 2, Instances: 2},
		{Service: "api", Env: "prod", App: "/platform/api", Artifact: previousArtifact, Since: t0.Add(-125 * time.Minute),
			User: "U0ANN", Healthy: 4, Running: 4, Instances: 4},
	}
	tasks := []queue.LiveTask{
		{Service: "api", Env: "staging", Task: "migrate", State: "TASK_RUNNING", Job: "01KAQ1B2C3D4E5F6G7H8J9K0M1", User: "U0BOB", Since: t0.Add(-185 * time.Second)},
		{Service: "api", Env: "prod", Task: "seed <data>", State: "TASK_UNREACHABLE", Job: "01KAQ1B2C3D4E5F6G7H8J9K0M2", User: "U0ANN"},
	}
	golden(t, filepath.Join("golden", "live-api-tasks.json"), blocksJSON(t, LiveMessage(apps, tasks, "", t0)))
	golden(t, filepath.Join("golden", "live-api-no-mesos.json"),
		blocksJSON(t, LiveMessage(apps[:1], nil, "Mesos could not be asked about one-off tasks just now.", t0)))
}
