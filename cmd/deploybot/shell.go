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
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// The shell's user (you), channel and team. Without a config file you are
// an SRE (admin) and ann a developer; see demoConfig.
const (
	shellUser    = "UDEVSHELL"
	shellChannel = "CDEVSHELL"
	shellTeam    = "TDEVSHELL"
	shellToken   = "xoxb-deploybot-shell"
)

const shellBanner = `deploybot shell: embedded Redis, a simulated Jenkins, Gerrit, Marathon and Mesos behind mTLS, a development CA and a fake Slack, all in this process.
You are @you in #shell, an SRE with every permission; "as ann <line>" types as your teammate @ann, a developer who may ship to staging. Type /deploy help, click retry, simulate break api, help, or exit.
Simulated builds: a ref containing "fail" fails, "flaky" fails once then passes, "abort" is aborted.
`

// shellDeployBanner is added when a service deploys: %[1]s is the slash
// command, %[2]s the service and %[3]s its first environment.
const shellDeployBanner = `Deploys: %[1]s %[2]s main to %[3]s, then click promote, %[1]s rollback %[2]s %[3]s, %[1]s status %[2]s. A ref containing "broken-migration" builds, but its pre-deploy tasks fail.
`

const shellHelp = `(shell) what you can type:
  /deploy <command> ...   a slash command, e.g. /deploy build api feature/login or /deploy api main to dev
  click <action> [value]  click the newest button with that action on a message you can see, e.g.
                          click retry, click promote, click rollback, click notice_retry, click notice_mute,
                          or click deploy_wait ("Queue it behind the lock", on a refusal only you saw)
  as <person> <line>      type a line as someone else in #shell (ann), e.g. as ann /deploy api main to staging
  simulate break <svc>    CI votes Verified -1 on your change to <svc>, as Gerrit would report it
  simulate fix <svc>      CI votes Verified +1 on a new patch set of it
                          (/deploy simulate ... works too; it never reaches Slack)
  exit                    leave (Ctrl-D works too)
`

// banner is what the shell says first, with a deploy example when the
// config deploys anything.
func banner(c *fileConfig, slash string) string {
	for _, name := range sortedKeys(c.Services) {
		if envs := deployEnvs(c, c.Services[name]); len(envs) > 0 {
			return shellBanner + fmt.Sprintf(shellDeployBanner, slash, name, envs[0])
		}
	}
	return shellBanner
}

// demoConfig is what the shell runs without --config.
func demoConfig() fileConfig {
	return fileConfig{
		SlashCommand: "/deploy",
		Environments: []string{"dev", "staging", "prod"},
		Services: map[string]svcCfg{
			"api": demoPipeline(svcCfg{DefaultRef: "main", Build: buildCfg{Job: "api-build", RefParam: "BRANCH"}, GerritProject: "platform/api", Channel: shellChannel}),
			"web": {DefaultRef: "main", Build: buildCfg{Job: "frontend/web-build", RefParam: "GIT_REF"}, GerritProject: "platform/web", Channel: shellChannel},
		},
		// You are an SRE; ann is a developer who may ship to staging.
		Policy: authz.Policy{
			Groups: map[string][]string{"sre": {shellUser}, "developers": {shellAnn}},
			Rules: []authz.Rule{
				{Group: "sre", Allow: []string{"*"}},
				{Group: "developers", Allow: []string{"build:*", "recheck:*", "submit:*", "deploy:dev:*", "deploy:staging:*",
					"promote:staging:*", "rollback:staging:*", "lock:staging"}},
			},
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
	sims, err := startSims(&l.cfg, log)
	if err != nil {
		fmt.Fprintln(stdout, "shell:", err)
		return 1
	}
	defer sims.Close()
	changes := sims.configure(&l.cfg, getenv("REDIS_URL"))

	a, err := newApp(l, roleShell, log, wiring{certs: sims.ca,
		pollInterval: 300 * time.Millisecond, workerBlock: 100 * time.Millisecond, recheck: time.Second})
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

	sh.printf("%s", banner(&l.cfg, sh.slash))
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
			for _, r := range sh.settle(ctx) {
				sh.printf("(shell) job `%s` still waits for the lock on %s; it ends with the shell\n", r.Job.ID, r.Job.Request.Env)
			}
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

// settle waits until every job has ended, or waits for a lock someone
// holds, and Slack has been told; or until two minutes pass. It returns
// the jobs left waiting for a lock.
func (sh *shell) settle(ctx context.Context) []queue.Record {
	sh.a.responder.Wait()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		n, err := sh.a.q.Depth(ctx)
		if err == nil && sh.a.slack.Idle() {
			if n == 0 {
				return nil
			}
			if parked := sh.parked(ctx); int64(len(parked)) == n {
				return parked
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	sh.printf("(shell) still waiting for jobs after two minutes; going on\n")
	return nil
}

// parked are the jobs that wait for an environment someone else has
// locked and say so in their message: waiting longer will not start them.
func (sh *shell) parked(ctx context.Context) []queue.Record {
	recs, err := sh.a.q.Recent(ctx, "", 100)
	if err != nil {
		return nil
	}
	var out []queue.Record
	for _, r := range recs {
		if r.State.Final() || !strings.HasPrefix(r.Stage, "waiting for the lock") {
			continue
		}
		if l, found, err := sh.a.q.EnvLock(ctx, r.Job.Request.Env); err == nil && found && l.Holds(r.Job.User, time.Now()) {
			out = append(out, r)
		}
	}
	return out
}
