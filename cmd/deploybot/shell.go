package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/seed-5eb4e92e/deploybot/authz"
)

// The shell's one user, channel and team. The user has every permission.
const (
	shellUser    = "UDEVSHELL"
	shellChannel = "CDEVSHELL"
	shellTeam    = "TDEVSHELL"
	shellToken   = "xoxb-deploybot-shell"
)

const shellBanner = `deploybot shell: embedded Redis, a simulated Jenkins and Gerrit behind mTLS, a development CA and a fake Slack, all in this process.
You are @you in #shell, with every permission. Type /deploy help, click retry, simulate break api, help, or exit.
Simulated builds: a ref containing "fail" fails, "flaky" fails once then passes, "abort" is aborted.
`

const shellHelp = `(shell) what you can type:
  /deploy <command> ...   a slash command, e.g. /deploy build api feature/login
  click <action> [value]  click a button on a message, e.g. click retry (the newest Retry button),
                          click notice_retry or click notice_mute
  simulate break <svc>    CI votes Verified -1 on your change to <svc>, as Gerrit would report it
  simulate fix <svc>      CI votes Verified +1 on a new patch set of it
                          (/deploy simulate ... works too; it never reaches Slack)
  exit                    leave (Ctrl-D works too)
`

// demoConfig is what the shell runs without --config.
func demoConfig() fileConfig {
	return fileConfig{
		SlashCommand: "/deploy",
		Environments: []string{"dev", "staging", "prod"},
		Services: map[string]svcCfg{
			"api": {DefaultRef: "main", Build: buildCfg{Job: "api-build", RefParam: "BRANCH"}, GerritProject: "platform/api", Channel: shellChannel},
			"web": {DefaultRef: "main", Build: buildCfg{Job: "frontend/web-build", RefParam: "GIT_REF"}, GerritProject: "platform/web", Channel: shellChannel},
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
	sims, err := startSims(log)
	if err != nil {
		fmt.Fprintln(stdout, "shell:", err)
		return 1
	}
	defer sims.Close()
	changes := sims.configure(&l.cfg, getenv("REDIS_URL"))

	log.Warn("shell: you have every permission (local identity); this mode is for development only")
	a, err := newApp(l, roleShell, log, wiring{auth: authz.AllowAll{}, certs: sims.ca, pollInterval: 300 * time.Millisecond, workerBlock: 100 * time.Millisecond})
	if err != nil {
		fmt.Fprintln(stdout, "shell:", err)
		return 1
	}
	sh := &shell{a: a, sims: sims, changes: changes, out: stdout, secret: l.cfg.Slack.SigningSecret,
		hookSecret: l.cfg.Hooks.GerritSecret, slash: l.cfg.SlashCommand, interactive: isTerminal(stdin), breaks: map[string]int{}}
	if sh.slash == "" {
		sh.slash = "/deploy"
	}
	sims.slack.OnEvent(sh.show)
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
