package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seed-5eb4e92e/deploybot/backends/jenkins/jenkinstest"
	"github.com/seed-5eb4e92e/deploybot/bot/slacktest"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
	"github.com/seed-5eb4e92e/deploybot/worker/queue/queuetest"
)

// childArgs, in the environment of a copy of this test binary, makes
// TestFaultChildProcess run `deploybot` with those arguments (separated by
// newlines) instead of testing: a worker process the parent can kill.
const childArgs = "DEPLOYBOT_FAULT_CHILD_ARGS"

// TestFaultChildProcess is the child side of the process faults; run by
// the test binary itself, it does nothing.
func TestFaultChildProcess(t *testing.T) {
	args := os.Getenv(childArgs)
	if args == "" {
		return
	}
	os.Exit(run(context.Background(), strings.Split(args, "\n"), strings.NewReader(""), os.Stdout, os.Stderr, os.Getenv))
}

// startChild runs `deploybot args…` as a separate process of this binary,
// with env added, until the test ends or it is killed.
func startChild(t *testing.T, env []string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestFaultChildProcess$")
	cmd.Env = append(append(os.Environ(), env...), childArgs+"="+strings.Join(args, "\n"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if testing.Verbose() {
		cmd.Stdout, cmd.Stderr = nil, nil
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd
}

// A worker process is killed (SIGKILL: no goodbye, no hand-back) while it
// follows a build. Another worker process claims the job after the
// visibility timeout and follows the same build to its end: one build,
// one job, finished once.
func TestFaultWorkerKilledMidJob(t *testing.T) {
	t.Parallel()
	redisURL, prefix := queuetest.URL(t)
	sim := jenkinstest.Start(jenkinstest.Options{User: "deploybot", Token: "jenkins-token", BuildPolls: 25})
	t.Cleanup(sim.Close)
	sim.AddJob("platform/api-build", "BRANCH")
	fake := slacktest.Start("xoxb-fault")
	t.Cleanup(fake.Close)
	config := filepath.Join(t.TempDir(), "deploybot.yaml")
	body := fmt.Sprintf(`redis: {prefix: %q}
slack: {api_url: %q, interval: 10ms}
jenkins: {url: %q, user: deploybot, poll_interval: 100ms}
queue: {visibility_timeout: 1s}
worker: {concurrency: 1, shutdown_grace: 1s}
services:
  api: {build: {job: platform/api-build}}
policy:
  groups: {devs: [U2147483697]}
  rules: [{group: devs, allow: ["build:*"]}]
`, prefix, fake.URL, sim.URL)
	if err := os.WriteFile(config, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"REDIS_URL=" + redisURL, "SLACK_SIGNING_SECRET=" + e2eSecret, "SLACK_BOT_TOKEN=xoxb-fault",
		"JENKINS_API_TOKEN=jenkins-token", "DEPLOYBOT_LISTEN=127.0.0.1:0"}
	getenv := func(k string) string {
		for _, kv := range env {
			if v, ok := strings.CutPrefix(kv, k+"="); ok {
				return v
			}
		}
		return ""
	}
	l, err := loadConfig(config, getenv)
	if err != nil || len(l.problems) > 0 {
		t.Fatalf("config: %v %v", err, l.problems)
	}
	a, srv := serveApp(t, l, roleResponder, wiring{})
	e := &e2e{srv: srv, a: a, slack: fake, jenkins: sim}

	first := startChild(t, env, "worker", "--config", config, "--log-level", "error")
	id := jobOf(e.slash(t, "build api killed-worker", "U2147483697"))
	waitFor(t, "the first worker to follow the build", func() bool {
		rec, err := a.q.Record(context.Background(), id)
		return err == nil && rec.Link != "" && rec.State == queue.StateRunning
	})
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	killedAt := time.Now()
	startChild(t, env, "worker", "--config", config, "--log-level", "error")
	rec := e.waitFinal(t, id)
	builds := sim.Builds("platform/api-build")
	t.Logf("fault: worker SIGKILL mid-build: jobs=1 state=%s attempt=%d taken over after %s jenkins_builds=%d lost=%d doubled=%d",
		rec.State, rec.Job.Attempt, time.Since(killedAt).Round(100*time.Millisecond), builds, boolInt(rec.State != queue.StateSucceeded), max(builds-1, 0))
	if rec.State != queue.StateSucceeded || builds != 1 {
		t.Fatalf("state %s with %d builds; want succeeded with the one build the killed worker started", rec.State, builds)
	}
}
