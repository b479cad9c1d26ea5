package main

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-5eb4e92e/deploybot/backends/jenkins/jenkinstest"
	"github.com/seed-5eb4e92e/deploybot/backends/marathon"
	"github.com/seed-5eb4e92e/deploybot/backends/marathon/marathontest"
	"github.com/seed-5eb4e92e/deploybot/backends/mesos/mesostest"
	"github.com/seed-5eb4e92e/deploybot/backends/vault"
	"github.com/seed-5eb4e92e/deploybot/bot/slacktest"
	"github.com/seed-5eb4e92e/deploybot/deploy"
	"github.com/seed-5eb4e92e/deploybot/worker/queue/queuetest"
)

// The deploy end-to-end tests' people, images and apps.
const (
	devUser   = "U2147483697" // the recorded slash command's user
	clicker   = "U0CLICKER"
	lockOwner = "U0ANN"
	// firstImage is what every environment runs before the first deploy.
	firstImage = "registry.example.com/platform/api:1.4.2"
	devApp     = "/platform/api-dev"
	stagingApp = "/platform/api-staging"
)

// builtImage is the image build n of the api job makes.
func builtImage(n int) string { return fmt.Sprintf("registry.example.com/platform/api:1.5.%d", n) }

// deployE2E is the deploy pipeline wired as in production: responder and
// workers on real Redis, against a simulated Jenkins, Marathon and Mesos
// master that all require client certificates, and a fake Slack.
type deployE2E struct {
	*e2e
	l        *loaded
	w        wiring
	marathon *marathontest.Server
	mesos    *mesostest.Server

	mu     sync.Mutex
	clicks int // names each click's response_url
}

// newDeployE2E starts the simulations and reads the config; deploybot
// itself is started by the test (serveApp), in the roles it wants.
func newDeployE2E(t *testing.T) *deployE2E {
	t.Helper()
	ca, err := vault.NewDevCA("e2e-worker", time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	serverTLS, err := ca.ServerTLS("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	e := &deployE2E{e2e: &e2e{}}
	e.jenkins = jenkinstest.Start(jenkinstest.Options{User: "deploybot", Token: "jenkins-token", TLS: serverTLS,
		Finish: func(_ string, _ url.Values, n int) jenkinstest.Finished {
			return jenkinstest.Finished{Description: "image: " + builtImage(n)}
		}})
	t.Cleanup(e.jenkins.Close)
	e.jenkins.AddJob("platform/api-build", "BRANCH")
	e.marathon = marathontest.Start(marathontest.Options{DeployPolls: 2, TLS: serverTLS.Clone()})
	t.Cleanup(e.marathon.Close)
	for _, id := range []string{devApp, stagingApp} {
		e.marathon.AddApp(marathontest.AppSpec{ID: id, Image: firstImage, Instances: 2, Labels: map[string]string{marathon.LabelGroup: "internal"}})
	}
	// The recorded app is a blue colour with marathon-lb's labels.
	e.marathon.AddApp(marathontest.AppSpec{ID: "/platform/api-blue", Image: firstImage, Instances: 2})
	e.mesos = mesostest.Start(mesostest.Options{TLS: serverTLS.Clone()})
	t.Cleanup(e.mesos.Close)
	e.slack = slacktest.Start("xoxb-e2e")
	t.Cleanup(e.slack.Close)
	e.l = e.deployConfig(t)
	e.w = wiring{certs: ca, pollInterval: 2 * time.Millisecond, workerBlock: 20 * time.Millisecond, recheck: 20 * time.Millisecond}
	return e
}

// startDeployE2E runs deploybot serve: responder and workers in one
// process.
func startDeployE2E(t *testing.T) *deployE2E {
	t.Helper()
	e := newDeployE2E(t)
	e.a, e.srv = serveApp(t, e.l, roleServe, e.w)
	return e
}

// deployConfig is api's pipeline: the image comes from the build's
// description, a migration runs on Mesos first, and it goes dev → staging
// → prod (blue/green), each backend behind mutual TLS.
func (e *deployE2E) deployConfig(t *testing.T) *loaded {
	t.Helper()
	redisURL, prefix := queuetest.URL(t)
	vaultCert := backendTLS{ClientCert: "vault"}
	cfg := fileConfig{
		Environments: []string{"dev", "staging", "prod"},
		Services: map[string]svcCfg{"api": {
			Build:     buildCfg{Job: "platform/api-build"},
			Artifact:  artifactCfg{From: deploy.FromDescription, Pattern: `image: (\S+)`},
			PreDeploy: []taskCfg{{Name: "migrate", Command: "bin/migrate up"}},
			Deploy: map[string]targetCfg{
				"dev": {App: devApp}, "staging": {App: stagingApp},
				"prod": {App: "/platform/api", Strategy: deploy.BlueGreen},
			},
		}},
		Redis:    redisConfig{Prefix: prefix},
		Jenkins:  jenkinsConfig{URL: e.jenkins.URL, User: "deploybot", TLS: vaultCert},
		Marathon: marathonConfig{URL: e.marathon.URL, TLS: vaultCert},
		Mesos:    mesosConfig{URL: e.mesos.URL, TLS: vaultCert},
		// Checked like a real config; the development CA stands in for it.
		Vault: vaultConfig{Address: "https://vault.invalid:8200", PKIRole: "deploybot-worker", Token: "unused"},
		Policy: policyFromYAML(t, `
groups:
  devs: [U2147483697, U0CLICKER]
  sre: [U0ANN]
rules:
  - group: devs
    allow: ["deploy:*:api", "promote:*:api", "rollback:*:api", "lock:staging"]
  - group: sre
    allow: ["*"]
`),
	}
	env := map[string]string{
		"REDIS_URL": redisURL, "SLACK_SIGNING_SECRET": e2eSecret, "SLACK_BOT_TOKEN": "xoxb-e2e",
		"SLACK_API_URL": e.slack.URL, "JENKINS_API_TOKEN": "jenkins-token",
	}
	l := &loaded{name: "e2e", cfg: cfg, fromEnv: map[string]string{}}
	l.applyEnv(func(k string) string { return env[k] })
	l.check()
	if len(l.problems) > 0 {
		t.Fatalf("config problems: %v", l.problems)
	}
	l.cfg.Slack.Interval = duration(time.Millisecond)
	return l
}

// clickButton sends the block_actions payload of a click on a button with
// action_id action and value in the channel, signed, as Slack would.
func (e *deployE2E) clickButton(t *testing.T, action, value, user string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "slack", "block-actions.json"))
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]any
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	e.clicks++
	name := fmt.Sprintf("click-%d", e.clicks)
	e.mu.Unlock()
	p["user"].(map[string]any)["id"] = user
	p["channel"].(map[string]any)["id"] = channel
	p["container"].(map[string]any)["channel_id"] = channel
	p["response_url"] = e.slack.ResponseURL(name)
	act := p["actions"].([]any)[0].(map[string]any)
	act["action_id"], act["value"] = action, value
	payload, _ := json.Marshal(p)
	if status, body := e.post(t, "/slack/interactions", []byte(url.Values{"payload": {string(payload)}}.Encode()), true); status != 200 {
		t.Fatalf("click %s: %d %s", action, status, body)
	}
	return name
}

// followUp waits for what the response_url name was told.
func (e *deployE2E) followUp(t *testing.T, name string) string {
	t.Helper()
	var text string
	waitFor(t, "the follow-up to "+name, func() bool {
		for _, r := range e.slack.Responses() {
			if r.Name == name {
				text = r.Message.Text
				return true
			}
		}
		return false
	})
	return text
}

// messageShowing waits for a channel message that shows all of texts.
func (e *deployE2E) messageShowing(t *testing.T, texts ...string) slacktest.Message {
	t.Helper()
	var found slacktest.Message
	waitFor(t, fmt.Sprintf("a message showing %q", texts), func() bool {
		for _, m := range e.slack.Messages(channel) {
			s := shown(m)
			all := true
			for _, want := range texts {
				all = all && strings.Contains(s, want)
			}
			if all {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

func (e *deployE2E) app(t *testing.T, id string) marathontest.AppState {
	t.Helper()
	a, ok := e.marathon.App(id)
	if !ok {
		t.Fatalf("Marathon has no app %s", id)
	}
	return a
}

// TestEndToEndDeployPromoteRollback is the pipeline: a deploy
// builds, migrates and rolls out, and its message ends live with Promote
// and Roll back; Promote puts exactly that image in the next environment
// without building again; Roll back puts the previous version back.
func TestEndToEndDeployPromoteRollback(t *testing.T) {
	t.Parallel()
	e := startDeployE2E(t)
	answer := e.slash(t, "api feature/login to dev", devUser)
	m := jobRE.FindStringSubmatch(answer)
	if m == nil || !strings.Contains(answer, "Queued deploy of api@feature/login to dev") {
		t.Fatalf("answer %q", answer)
	}
	id, image := m[1], builtImage(1)
	msg := e.waitMessage(t, id, "✅ *live*")
	checkDeployed(t, e, id, msg, image)

	// Promote, clicked twice: one promotion, of the same image, no build.
	name := e.clickButton(t, "promote", id, clicker)
	e.clickButton(t, "promote", id, clicker)
	if got := e.followUp(t, name); !strings.Contains(got, "Queued promote of api to staging") {
		t.Fatalf("the click was answered %q", got)
	}
	promo := e.messageShowing(t, "Promote `api` from `dev` to `staging` — ✅ *live*")
	promoID := jobRE.FindStringSubmatch(shown(promo))[1]
	if staging := e.app(t, stagingApp); staging.Image != image || staging.Labels[deploy.LabelJob] != promoID || staging.Labels[deploy.LabelUser] != clicker {
		t.Fatalf("staging runs %s with labels %v; want %s from job %s", staging.Image, staging.Labels, image, promoID)
	}
	if n := e.jenkins.QueueItemsCreated(); n != 1 {
		t.Fatalf("%d Jenkins builds; a promotion must not build", n)
	}
	if tasks := e.mesos.Launched(); len(tasks) != 2 || tasks[1].Env["DEPLOY_ENV"] != "staging" || tasks[1].Env["DEPLOY_ARTIFACT"] != image {
		t.Fatalf("Mesos tasks %+v; want the migration run again for staging, with the same image", tasks)
	}
	if !strings.Contains(shown(promo), "[Promote to prod: click promote "+promoID+"]") {
		t.Fatalf("the promotion's message:\n%s", shown(promo))
	}
	waitFor(t, "the second click's job to finish", func() bool { return e.queueDepth(t) == 0 })
	if n := strings.Count(strings.Join(messageTexts(e.slack.Messages(channel)), "\n"), "Promote `api` from `dev`"); n != 1 {
		t.Fatalf("%d promotions for a double click", n)
	}

	// Roll back the promotion: staging runs what it ran before, dev keeps
	// the new image, and nothing migrates backwards.
	e.clickButton(t, "rollback", promoID, clicker)
	e.messageShowing(t, "Rollback `api` in `staging` — ✅ *rolled back*")
	if staging := e.app(t, stagingApp); staging.Image != firstImage || staging.Labels[deploy.LabelJob] != "" || len(staging.Deployments) != 0 {
		t.Fatalf("staging after the rollback: %+v", staging)
	}
	if dev := e.app(t, devApp); dev.Image != image {
		t.Fatalf("dev runs %s after staging's rollback", dev.Image)
	}
	if n := len(e.mesos.Launched()); n != 2 {
		t.Fatalf("%d Mesos tasks; a rollback runs none", n)
	}
}

// checkDeployed checks the first deploy's message, its thread and what it
// changed.
func checkDeployed(t *testing.T, e *deployE2E, id string, msg slacktest.Message, image string) {
	t.Helper()
	text := shown(msg)
	for _, want := range []string{
		"Deploy `api` @ `feature/login` to `dev` — ✅ *live* #1",
		"artifact `" + image + "`",
		"migrate sandbox (https://127.0.0.1:", // the Mesos task's sandbox
		devApp + " (https://127.0.0.1:",       // the app in Marathon's UI
		"[Promote to staging: click promote " + id + "] [Roll back: click rollback " + id + "]",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the message lacks %q:\n%s", want, text)
		}
	}
	var thread []string // each stage's link: the build, the migration, the app
	for _, r := range e.slack.Replies(channel, msg.TS) {
		thread = append(thread, r.Text)
	}
	joined := strings.Join(thread, "\n")
	for _, want := range []string{"building #1", "migrate sandbox", devApp} {
		if !strings.Contains(joined, want) {
			t.Errorf("the thread lacks %q:\n%s", want, joined)
		}
	}
	dev := e.app(t, devApp)
	if dev.Image != image || dev.Labels[deploy.LabelJob] != id || dev.Labels[marathon.LabelGroup] != "internal" {
		t.Errorf("dev runs %s with labels %v", dev.Image, dev.Labels)
	}
	for _, task := range dev.Tasks {
		if !task.Healthy || task.Version != dev.Version {
			t.Errorf("dev task %+v is not of version %s and healthy", task, dev.Version)
		}
	}
	if tasks := e.mesos.Launched(); len(tasks) != 1 || tasks[0].Image != image || tasks[0].Env["DEPLOY_ENV"] != "dev" || tasks[0].Command != "bin/migrate up" {
		t.Errorf("Mesos tasks %+v; want the migration, in the new image", tasks)
	}
}

func (e *deployE2E) queueDepth(t *testing.T) int64 {
	t.Helper()
	n, err := e.a.q.Depth(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func messageTexts(msgs []slacktest.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, shown(m))
	}
	return out
}

// TestEndToEndDeployLocks: a lock refuses everyone's deploys but its
// holder's, at the command and again when a worker starts a job queued
// before the lock was taken; a deploy queued behind the lock starts when it
// is lifted. The responder and the worker run as separate processes.
func TestEndToEndDeployLocks(t *testing.T) {
	t.Parallel()
	e := newDeployE2E(t)
	var responder *httptest.Server
	e.a, responder = serveApp(t, e.l, roleResponder, e.w)
	e.srv = responder

	// Queued while no worker runs, then the environment is locked.
	early := jobRE.FindStringSubmatch(e.slash(t, "api main to staging", devUser))
	if early == nil {
		t.Fatal("the first deploy was not queued")
	}
	if a := e.slash(t, "lock staging release freeze for 1h", lockOwner); !strings.Contains(a, "*staging* is locked by <@U0ANN>") {
		t.Fatalf("lock answered %q", a)
	}
	refused := e.slash(t, "api feature/x to staging", devUser)
	if !strings.Contains(refused, "Not started: *staging* is locked by <@U0ANN>") || !strings.Contains(refused, "release freeze") || jobRE.MatchString(refused) {
		t.Fatalf("a deploy to the locked environment answered %q", refused)
	}

	// The worker starts and checks the lock again.
	serveApp(t, e.l, roleWorker, e.w)
	failed := e.waitMessage(t, early[1], "❌ *failed*")
	if text := shown(failed); !strings.Contains(text, "Not started: staging is locked by @U0ANN") || !strings.Contains(text, "checked again when a job starts") {
		t.Fatalf("the early job's message:\n%s", text)
	}
	if n := e.jenkins.QueueItemsCreated(); n != 0 {
		t.Fatalf("%d builds for a job the lock stopped", n)
	}

	// The holder's own deploy passes.
	own := jobRE.FindStringSubmatch(e.slash(t, "api main to staging", lockOwner))
	if own == nil {
		t.Fatal("the holder's deploy was not queued")
	}
	e.waitMessage(t, own[1], "✅ *live*")
	if img := e.app(t, stagingApp).Image; img != builtImage(1) {
		t.Fatalf("staging runs %s after the holder's deploy", img)
	}

	// Queued behind the lock, it waits, and starts once the lock is lifted.
	name := e.clickButton(t, "deploy_wait", "api feature/x to staging", devUser)
	if got := e.followUp(t, name); !strings.Contains(got, "behind the lock") {
		t.Fatalf("the click was answered %q", got)
	}
	waiting := e.messageShowing(t, "Deploy `api` @ `feature/x` to `staging` — 🔄 waiting for the lock on staging")
	waitingID := jobRE.FindStringSubmatch(shown(waiting))[1]
	if n := e.jenkins.QueueItemsCreated(); n != 1 {
		t.Fatalf("%d builds while the deploy waits for the lock; want only the holder's", n)
	}
	if a := e.slash(t, "unlock staging", lockOwner); !strings.Contains(a, "unlocked *staging*") {
		t.Fatalf("unlock answered %q", a)
	}
	e.waitMessage(t, waitingID, "✅ *live* #2")
	if img := e.app(t, stagingApp).Image; img != builtImage(2) {
		t.Fatalf("staging runs %s after the unlock", img)
	}
}
