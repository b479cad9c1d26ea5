package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"go.yaml.in/yaml/v3"

	"github.com/seed-5eb4e92e/deploybot/authz"
	"github.com/seed-5eb4e92e/deploybot/worker/queue/queuetest"
)

func TestPolicyAndAuditExport(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url, prefix := queuetest.URL(t)
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	store := authz.NewPolicyStore(rdb, prefix)
	if _, err := store.Seed(ctx, []authz.Rule{{Group: "sre", Allow: []string{"*"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Grant(ctx, "U_SRE", "dev", "deploy:staging:*", false); err != nil {
		t.Fatal(err)
	}
	audit := authz.NewAudit(authz.AuditConfig{}, rdb, prefix)
	for _, what := range []string{"/deploy build api", "/deploy perms grant dev deploy * staging"} {
		if _, err := audit.Append(ctx, authz.Entry{User: "U_SRE", Kind: "command", What: what, Outcome: "queued"}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(t.TempDir(), "deploybot.yaml")
	if err := os.WriteFile(cfg, []byte("redis:\n  prefix: "+prefix+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(k string) string {
		if k == "REDIS_URL" {
			return url
		}
		return ""
	}
	var out, errOut bytes.Buffer
	if code := run(ctx, []string{"policy", "export", "--config", cfg}, nil, &out, &errOut, env); code != 0 {
		t.Fatalf("policy export = %d: %s", code, errOut.String())
	}
	var exported struct{ Rules []authz.Rule }
	if err := yaml.Unmarshal(out.Bytes(), &exported); err != nil || len(exported.Rules) != 2 || exported.Rules[1].Allow[0] != "deploy:staging:*" {
		t.Fatalf("policy export wrote\n%s(%v)", out.String(), err)
	}
	if !strings.HasPrefix(out.String(), "# deploybot policy version 2, saved ") {
		t.Fatalf("policy export does not say which version: %q", out.String())
	}
	out.Reset()
	if code := run(ctx, []string{"audit", "export", "--since", "1h", "--config", cfg}, nil, &out, &errOut, env); code != 0 {
		t.Fatalf("audit export = %d: %s", code, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var first authz.Entry
	if len(lines) != 2 || json.Unmarshal([]byte(lines[0]), &first) != nil || first.What != "/deploy build api" {
		t.Fatalf("audit export wrote %q", out.String())
	}
	if code := run(ctx, []string{"audit", "export", "--config", cfg}, nil, &out, &errOut, env); code != 1 || !strings.Contains(errOut.String(), "needs --since") {
		t.Fatalf("audit export without --since = %d: %s", code, errOut.String())
	}
}

// TestAuditMirrorIsInert: what a user typed is posted to the audit channel
// as text: no @channel, no link, no way out of the code span.
func TestAuditMirrorIsInert(t *testing.T) {
	t.Parallel()
	got := inert("x` <!channel> <https://evil.example|docs> & more")
	for _, bad := range []string{"`", "<!channel>", "<https://"} {
		if strings.Contains(got, bad) {
			t.Errorf("inert(...) = %q still contains %q", got, bad)
		}
	}
}
