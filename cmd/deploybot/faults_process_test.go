package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seed-5eb4e92e/deploybot/backends/jenkins/jenkinstest"
	"github.com/seed-5eb4e92e/deploybot/backends/marathon/marathontest"
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

// killEnv is a responder in this process and the config and environment
// for worker processes, against the simulated Jenkins and Marathon.
type killEnv struct {
	*e2e
	marathon *marathontest.Server
	config   string
	env      []string
}

// startKillEnv writes a config with one service, api, that builds on the
// simulated Jenkins and deploys the image the build names to dev on the
// simulated Marathon, and serves its responder.
func startKillEnv(t *testing.T) *killEnv {
	t.Helper()
	redisURL, prefix := queuetest.URL(t)
	sim := jenkinstest.Start(jenkinstest.Options{User: "deploybot", Token: "jenkins-token", BuildPolls: 25,
		Finish: func(_ string, _ url.Values, n int) jenkinstest.Finished {
			return jenkinstest.Finished{Description: "image: " + builtImage(n)}
		}})
	t.Cleanup(sim.Close)
	sim.AddJob("platform/api-build", "BRANCH")
	mar := marathontest.Start(marathontest.Options{DeployPolls: 25})
	t.Cleanup(mar.Close)
	mar.AddApp(marathontest.AppSpec{ID: devApp, Image: firstImage, Instances: 2})
	fake := slacktest.Start("xoxb-fault")
	t.Cleanup(fake.Close)
	config := filepath.Join(t.TempDir(), "deploybot.yaml")
	body := fmt.Sprintf(`redis: {prefix: %q}
slack: {api_url: %q, interval: 10ms}
jenkins: {url: %q, user: deploybot, poll_interval: 100ms}
marathon: {url: %q}
deploy: {poll_interval: 100ms}
queue: {visibility_timeout: 1s}
worker: {concurrency: 1, shutdown_grace: 1s}
environments: [dev]
services:
  api:
    build: {job: platform/api-build}
    artifact: {from: description, pattern: 'image: (\S+)'}
    deploy: {dev: {app: %s}}
policy:
  groups: {devs: [U2147483697]}
  rules: [{group: devs, allow: ["build:*", "deploy:*:api"]}]
`, prefix, fake.URL, sim.URL, mar.URL, devApp)
	if err := os.WriteFile(config, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"REDIS_URL=" + redisURL, "SLACK_SIGNING_SECRET=" + e2eSecret, "SLACK_BOT_TOKEN=xoxb-fault",
		"JENKINS_API_TOKEN=jenkins-token", "DEPLOYBOT_LISTEN=127.0.0.1:0"}
	l, err := loadConfig(config, func(k string) string {
		for _, kv := range env {
			if v, ok := strings.CutPrefix(kv, k+"="); ok {
				return v
			}
		}
		return ""
	})
	if err != nil || len(l.problems) > 0 {
		t.Fatalf("config: %v %v", err, l.problems)
	}
	a, srv := serveApp(t, l, roleResponder, wiring{})
	return &killEnv{e2e: &e2e{srv: srv, a: a, slack: fake, jenkins: sim}, marathon: mar, config: config, env: env}
}

// A worker process is killed (SIGKILL: no goodbye, no hand-back) in the
// middle of a job: while it follows a build, and while it follows a
// Marathon deployment. A second worker process claims the job after the
// visibility timeout and follows what was started to its end: one build,
// one deployment, the job finished once.
func TestFaultWorkerKilledMidJob(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, text string
		// started reports that the killed worker got far enough.
		started func(k *killEnv, id string) bool
	}{
		{"mid-build", "build api killed-worker", func(k *killEnv, id string) bool {
			v, err := k.a.q.Steps(id).Get(context.Background(), "jenkins_build")
			return err == nil && v != ""
		}},
		{"mid-deploy", "api killed-worker to dev", func(k *killEnv, id string) bool {
			v, err := k.a.q.Steps(id).Get(context.Background(), "marathon_deployment")
			return err == nil && v != ""
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			k := startKillEnv(t)
			first := startChild(t, k.env, "worker", "--config", k.config, "--log-level", "error")
			id := jobOf(k.slash(t, tc.text, "U2147483697"))
			if id == "" {
				t.Fatalf("%q was not queued", tc.text)
			}
			waitFor(t, "the first worker to get "+tc.name, func() bool { return tc.started(k, id) })
			if err := first.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = first.Wait()
			killedAt := time.Now()
			startChild(t, k.env, "worker", "--config", k.config, "--log-level", "error")
			rec := k.waitFinal(t, id)
			builds, deploys := k.jenkins.Builds("platform/api-build"), k.marathon.Count("PUT", "/v2/apps"+devApp)
			wantDeploys := 0
			if tc.name == "mid-deploy" {
				wantDeploys = 1
			}
			t.Logf("fault: worker SIGKILL %s: jobs=1 state=%s taken over after %s jenkins_builds=%d marathon_deployments=%d lost=%d doubled=%d",
				tc.name, rec.State, time.Since(killedAt).Round(100*time.Millisecond), builds, deploys,
				boolInt(rec.State != queue.StateSucceeded), max(builds-1, 0)+max(deploys-wantDeploys, 0))
			if rec.State != queue.StateSucceeded || builds != 1 || deploys != wantDeploys {
				t.Fatalf("state %s with %d builds and %d deployments; want succeeded, 1 build, %d deployments", rec.State, builds, deploys, wantDeploys)
			}
		})
	}
}
