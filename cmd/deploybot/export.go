package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/seed-5eb4e92e/deploybot/authz"
)

const exportUsage = `usage:
  deploybot policy export [--config FILE]                  print the policy in force as YAML (paste it under policy: to seed another Redis)
  deploybot audit export --since WHEN [--config FILE]      print the audit entries since WHEN as JSON lines
                                                          (WHEN: RFC 3339 like 2026-11-01T00:00:00Z, or a duration back from now like 24h)
`

// runExport is `deploybot policy export` and `deploybot audit export`: they
// read what the running bot keeps in Redis (REDIS_URL or redis.url).
func runExport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) < 2 || args[1] != "export" {
		fmt.Fprint(stderr, exportUsage)
		return 2
	}
	fs := flag.NewFlagSet(args[0]+" export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", getenv("DEPLOYBOT_CONFIG"), "config file")
	since := fs.String("since", "", "RFC 3339 time or a duration back from now (audit only)")
	if err := fs.Parse(args[2:]); err != nil || fs.NArg() > 0 {
		fmt.Fprint(stderr, exportUsage)
		return 2
	}
	l, ok := loadOrReport(*configPath, getenv, stderr)
	if !ok {
		return 1
	}
	c := &l.cfg
	if c.Redis.URL == "" {
		fmt.Fprintln(stderr, "deploybot: set REDIS_URL (or redis.url) to the Redis the bot uses; the embedded one keeps nothing")
		return 1
	}
	rdb, err := redisClient(c.Redis.URL)
	if err != nil {
		fmt.Fprintln(stderr, "deploybot:", err)
		return 1
	}
	defer rdb.Close()
	if args[0] == "policy" {
		err = exportPolicy(ctx, authz.NewPolicyStore(rdb, redisPrefix(c)), stdout)
	} else {
		err = exportAudit(ctx, authz.NewAudit(authz.AuditConfig{}, rdb, redisPrefix(c)), *since, time.Now(), stdout, stderr)
	}
	if err != nil {
		fmt.Fprintln(stderr, "deploybot:", err)
		return 1
	}
	return 0
}

func exportPolicy(ctx context.Context, store *authz.PolicyStore, w io.Writer) error {
	v, err := store.Current(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "# deploybot policy version %d, saved %s by %s: %s\n", v.N, v.At.UTC().Format(time.RFC3339), v.By, v.Change)
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	defer enc.Close()
	return enc.Encode(struct {
		Rules []authz.Rule `yaml:"rules"`
	}{v.Rules})
}

func exportAudit(ctx context.Context, audit *authz.Audit, since string, now time.Time, w, stderr io.Writer) error {
	if since == "" {
		return errors.New("audit export needs --since (e.g. --since 24h or --since 2026-11-01T00:00:00Z)")
	}
	t, err := time.Parse(time.RFC3339, since)
	if err != nil {
		d, derr := time.ParseDuration(since)
		if derr != nil || d <= 0 {
			return fmt.Errorf("--since %q: want an RFC 3339 time or a positive duration like 24h", since)
		}
		t = now.Add(-d)
	}
	n, err := audit.Export(ctx, t, w)
	fmt.Fprintf(stderr, "%d audit entries since %s\n", n, t.UTC().Format(time.RFC3339))
	return err
}
