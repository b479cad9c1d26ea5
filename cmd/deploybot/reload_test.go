package main

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seed-5eb4e92e/deploybot/backends/jenkins/jenkinstest"
	"github.com/seed-5eb4e92e/deploybot/bot/slacktest"
	"github.com/seed-5eb4e92e/deploybot/worker/queue/queuetest"
)

// TestReloadServices: SIGHUP brings in a new service for the responder
// and the workers without a restart; a config that changes anything else,
// or has problems, leaves the running one alone.
func TestReloadServices(t *testing.T) {
	t.Parallel()
	redisURL, prefix := queuetest.URL(t)
	sim := jenkinstest.Start(jenkinstest.Options{User: "deploybot", Token: "jenkins-token", Outcome: shellOutcome()})
	t.Cleanup(sim.Close)
	sim.AddJob("platform/api-build", "BRANCH")
	sim.AddJob("frontend/web-build", "BRANCH")
	fake := slacktest.Start("xoxb-e2e")
	t.Cleanup(fake.Close)
	path := filepath.Join(t.TempDir(), "deploybot.yaml")
	write := func(extra string) {
		t.Helper()
		cfg := "redis:\n  prefix: " + prefix + "\njenkins:\n  url: " + sim.URL + "\n  user: deploybot\n" +
			"policy:\n  groups:\n    devs: [U2147483697]\n  rules:\n    - group: devs\n      allow: [\"build:*\"]\n" +
			"services:\n  api:\n    build:\n      job: platform/api-build\n" + extra
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("")
	env := map[string]string{"REDIS_URL": redisURL, "SLACK_SIGNING_SECRET": e2eSecret, "SLACK_BOT_TOKEN": "xoxb-e2e",
		"SLACK_API_URL": fake.URL, "JENKINS_API_TOKEN": "jenkins-token"}
	getenv := func(k string) string { return env[k] }
	l, err := loadConfig(path, getenv)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	a := serveAppOn(t, l, roleServe, wiring{pollInterval: 2 * time.Millisecond, workerBlock: 20 * time.Millisecond}, srv)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	hup := make(chan os.Signal, 1)
	go a.reloadOnSignal(ctx, hup, path, getenv)
	e := &e2e{srv: srv, a: a, slack: fake, jenkins: sim}
	const user = "U2147483697"

	if got := e.slash(t, "build web main", user); !strings.Contains(got, `I don't know the service "web"`) {
		t.Fatalf("before the reload: %q", got)
	}
	write("  web:\n    build:\n      job: frontend/web-build\n")
	hup <- syscall.SIGHUP
	var got string
	waitFor(t, "the reload to bring in web", func() bool {
		got = e.slash(t, "build web main", user)
		return strings.Contains(got, "Queued build of web@main")
	})
	e.waitMessage(t, jobRE.FindStringSubmatch(got)[1], "success")

	// Anything but services and environments needs a restart.
	write("  web:\n    build:\n      job: frontend/web-build\nslash_command: /ship\n")
	if err := a.reload(path, getenv); !errors.Is(err, errRestartNeeded) || !strings.Contains(err.Error(), "slash_command") {
		t.Fatalf("reload with a new slash command = %v", err)
	}
	if err := os.WriteFile(path, []byte("services: [not, a, map]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.reload(path, getenv); err == nil {
		t.Fatal("a broken config was reloaded")
	}
	if got := e.slash(t, "build web main", user); !strings.Contains(got, "build of web@main") {
		t.Fatalf("after refused reloads the running config changed: %q", got)
	}
}
