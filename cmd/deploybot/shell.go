package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/seed-5eb4e92e/deploybot/authz"
	"github.com/seed-5eb4e92e/deploybot/backends/jenkins/jenkinstest"
	"github.com/seed-5eb4e92e/deploybot/backends/vault"
	"github.com/seed-5eb4e92e/deploybot/bot/slacktest"
)

// The shell's one user, channel and team. The user has every permission.
const (
	shellUser    = "UDEVSHELL"
	shellChannel = "CDEVSHELL"
	shellTeam    = "TDEVSHELL"
	shellToken   = "xoxb-deploybot-shell"
)

const shellBanner = `deploybot shell: embedded Redis, a simulated Jenkins behind mTLS, a development CA and a fake Slack, all in this process.
You are @you in #shell, with every permission. Type /deploy help, click retry, or exit.
Simulated builds: a ref containing "fail" fails, "flaky" fails once then passes, "abort" is aborted.
`

const shellHelp = `(shell) what you can type:
  /deploy <command> ...   a slash command, e.g. /deploy build api feature/login
  click <action> [job]    click a button on a message, e.g. click retry (the newest Retry button)
  exit                    leave (Ctrl-D works too)
`

// demoConfig is what the shell runs without --config.
func demoConfig() fileConfig {
	return fileConfig{
		SlashCommand: "/deploy",
		Environments: []string{"dev", "staging", "prod"},
		Services: map[string]svcCfg{
			"api": {DefaultRef: "main", Build: buildCfg{Job: "api-build", RefParam: "BRANCH"}},
			"web": {DefaultRef: "main", Build: buildCfg{Job: "frontend/web-build", RefParam: "GIT_REF"}},
		},
	}
}

// shellOutcome decides how a simulated build ends from its parameters.
func shellOutcome() func(string, url.Values, int) string {
	var mu sync.Mutex
	seen := map[string]bool{}
	return func(job string, params url.Values, _ int) string {
		mu.Lock()
		defer mu.Unlock()
		for _, vs := range params {
			for _, v := range vs {
				switch {
				case strings.Contains(v, "fail"):
					return "FAILURE"
				case strings.Contains(v, "abort"):
					return "ABORTED"
				case strings.Contains(v, "flaky"):
					key := job + "\x00" + v
					if !seen[key] {
						seen[key] = true
						return "FAILURE"
					}
				}
			}
		}
		return "SUCCESS"
	}
}

// runShell is `deploybot shell`: the whole bot in one process, driven by
// signed requests through the real handlers, as Slack would send them.
func runShell(ctx context.Context, configPath string, stdin io.Reader, stdout io.Writer, log *slog.Logger, getenv func(string) string) int {
	l := &loaded{name: "shell", cfg: demoConfig(), fromEnv: map[string]string{}}
	if configPath != "" {
		var ok bool
		if l, ok = loadOrReport(configPath, getenv, stdout); !ok {
			return 1
		}
	}
	// The simulated Jenkins wants client certificates, as a real one behind
	// mTLS would; the development CA stands in for Vault.
	devCA, err := vault.NewDevCA("deploybot-shell-worker", time.Hour, log)
	if err != nil {
		fmt.Fprintln(stdout, "shell:", err)
		return 1
	}
	serverTLS, err := devCA.ServerTLS("127.0.0.1")
	if err != nil {
		fmt.Fprintln(stdout, "shell:", err)
		return 1
	}
	sim := jenkinstest.Start(jenkinstest.Options{QuietPolls: 1, ExecutorPolls: 2, BuildPolls: 4, Outcome: shellOutcome(), TLS: serverTLS})
	defer sim.Close()
	fake := slacktest.Start(shellToken)
	defer fake.Close()
	simulate(&l.cfg, sim, fake, getenv("REDIS_URL"))

	log.Warn("shell: you have every permission (local identity); this mode is for development only")
	a, err := newApp(l, roleShell, log, wiring{auth: authz.AllowAll{}, certs: devCA, pollInterval: 300 * time.Millisecond, workerBlock: 100 * time.Millisecond})
	if err != nil {
		fmt.Fprintln(stdout, "shell:", err)
		return 1
	}
	sh := &shell{a: a, fake: fake, out: stdout, secret: l.cfg.Slack.SigningSecret, slash: l.cfg.SlashCommand, interactive: isTerminal(stdin)}
	if sh.slash == "" {
		sh.slash = "/deploy"
	}
	fake.OnEvent(sh.show)
	a.health.Start()
	workCtx, stopWork := context.WithCancel(context.Background())
	poolDone := make(chan struct{})
	go func() {
		defer close(poolDone)
		if err := a.pool.Run(workCtx); err != nil {
			log.Error("workers stopped", "err", err)
		}
	}()

	sh.printf("%s", shellBanner)
	sh.loop(ctx, stdin)

	stopWork()
	<-poolDone
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a.shutdown(sctx)
	return 0
}

// simulate points the config at the simulated Jenkins and the fake Slack,
// defines each service's job in the simulation, and uses redisURL (empty:
// embedded).
func simulate(c *fileConfig, sim *jenkinstest.Server, fake *slacktest.Server, redisURL string) {
	for _, s := range c.Services {
		if s.Build.Job == "" {
			continue
		}
		refParam := s.Build.RefParam
		if refParam == "" {
			refParam = "BRANCH"
		}
		params := []string{refParam}
		for p := range s.Build.Params {
			params = append(params, p)
		}
		sim.AddJob(s.Build.Job, params...)
	}
	secretBytes := make([]byte, 16)
	_, _ = rand.Read(secretBytes)
	c.Slack = slackConfig{SigningSecret: hex.EncodeToString(secretBytes), BotToken: shellToken, APIURL: fake.URL, Interval: duration(200 * time.Millisecond)}
	c.Jenkins = jenkinsConfig{URL: sim.URL, TLS: backendTLS{ClientCert: "vault"}}
	c.Redis.URL = redisURL
	if c.Redis.Prefix == "" {
		c.Redis.Prefix = "deploybot-shell"
	}
	c.Worker.BackoffBase = duration(500 * time.Millisecond)
}

func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// loop reads lines until exit or end of input. As a script (stdin not a
// terminal) each line waits for the jobs it started before the next.
func (sh *shell) loop(ctx context.Context, stdin io.Reader) {
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	for {
		sh.prompt()
		var line string
		var ok bool
		select {
		case <-ctx.Done():
			return
		case line, ok = <-lines:
		}
		if !ok {
			sh.settle(ctx)
			return
		}
		line = strings.TrimSpace(line)
		if !sh.interactive && line != "" {
			sh.printf("> %s\n", line)
		}
		if !sh.do(line) {
			return
		}
		if !sh.interactive {
			sh.settle(ctx)
		}
	}
}

// settle waits until every job has ended and Slack has been told, or two
// minutes pass.
func (sh *shell) settle(ctx context.Context) {
	sh.a.responder.Wait()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		n, err := sh.a.q.Depth(ctx)
		if err == nil && n == 0 && sh.a.slack.Idle() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	sh.printf("(shell) still waiting for jobs after two minutes; going on\n")
}
