// Command deploybot is the Slack ChatOps bot for builds and deployments.
//
//	deploybot serve --config FILE        responder and workers in one process
//	deploybot responder --config FILE    only the HTTP responder
//	deploybot worker --config FILE       only the workers
//	deploybot shell [--config FILE]      everything in one process, simulated backends, a chat prompt
//	deploybot check-config --config FILE validate a config and exit non-zero with the reasons
//	deploybot policy export              print the policy in force as YAML
//	deploybot audit export --since WHEN  print the audit trail as JSON lines
//	deploybot version                    print build information
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

const usage = `usage: deploybot <command> [flags]

commands:
  serve         run the HTTP responder and the workers in one process
  responder     run only the HTTP responder (answers Slack, queues jobs)
  worker        run only the workers (runs queued jobs)
  shell         run everything in one process with simulated Jenkins, Gerrit,
                Marathon, Mesos and Slack, reading slash commands from the
                terminal (or a script on stdin)
  check-config  validate a config file; print each problem and exit non-zero
  policy export print the policy in force (from Redis) as YAML
  audit export  print the audit trail since --since as JSON lines
  loadtest      send signed slash commands and clicks to a responder on this
                machine and report latency and throughput (loadtest -h)
  version       print build information

flags (all commands):
  --config FILE       config file (default $DEPLOYBOT_CONFIG)
  --log-level LEVEL   debug, info, warn or error (default info; warn in shell)
`

// run is main without the process: tests call it.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd := args[0]
	if cmd == "policy" || cmd == "audit" {
		return runExport(ctx, args, getenv, stdout, stderr)
	}
	if cmd == "loadtest" {
		return runLoadtest(ctx, args[1:], stdout, stderr, getenv)
	}
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", getenv("DEPLOYBOT_CONFIG"), "config file")
	defaultLevel := "info"
	if cmd == "shell" {
		defaultLevel = "warn"
	}
	level := fs.String("log-level", defaultLevel, "debug, info, warn or error")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected arguments %q\n", cmd, fs.Args())
		return 2
	}
	log, err := newLogger(stderr, *level)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	switch cmd {
	case "check-config":
		return runCheckConfig(*configPath, getenv, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, version())
		return 0
	case "shell":
		return runShell(ctx, *configPath, stdin, stdout, log, getenv)
	case "serve", "responder", "worker":
		return runRole(ctx, role(cmd), *configPath, getenv, stderr, log)
	}
	fmt.Fprintf(stderr, "deploybot: unknown command %q\n\n%s", cmd, usage)
	return 2
}

// runRole is serve, responder or worker.
func runRole(ctx context.Context, r role, configPath string, getenv func(string) string, stderr io.Writer, log *slog.Logger) int {
	l, ok := loadOrReport(configPath, getenv, stderr)
	if !ok {
		return 1
	}
	for _, w := range l.warnings {
		log.Warn("config: " + w.String())
	}
	if err := runServer(ctx, l, r, getenv, log); err != nil {
		log.Error(string(r)+" stopped", "err", err)
		return 1
	}
	return 0
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}

func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "deploybot (no build information)"
	}
	v := "deploybot " + info.Main.Version + " " + info.GoVersion
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" || s.Key == "vcs.time" || s.Key == "vcs.modified" {
			v += " " + s.Key + "=" + s.Value
		}
	}
	return v
}

// loadOrReport loads a config and prints its problems to w; ok is false
// when there were any.
func loadOrReport(path string, getenv func(string) string, w io.Writer) (*loaded, bool) {
	l, err := loadConfig(path, getenv)
	if err != nil {
		fmt.Fprintln(w, err)
		return nil, false
	}
	for _, p := range l.problems {
		fmt.Fprintln(w, p.String())
	}
	return l, len(l.problems) == 0
}
