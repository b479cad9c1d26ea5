package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seed-5eb4e92e/deploybot/deploy"
)

func noEnv(string) string { return "" }

func TestExampleConfigIsAccepted(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	code := runCheckConfig(filepath.Join("..", "..", "examples", "deploybot.yaml"), noEnv, &out, &errb)
	if code != 0 {
		t.Fatalf("check-config exit %d:\n%s", code, errb.String())
	}
	if !strings.Contains(out.String(), "ok (2 services, 3 environments)") {
		t.Fatalf("output %q", out.String())
	}
	// Without secrets in the environment it warns, and says which.
	if !strings.Contains(errb.String(), "SLACK_SIGNING_SECRET") {
		t.Fatalf("no warning about the missing signing secret:\n%s", errb.String())
	}
	l, err := loadConfig(filepath.Join("..", "..", "examples", "deploybot.yaml"), func(k string) string {
		return map[string]string{"SLACK_SIGNING_SECRET": "s", "SLACK_BOT_TOKEN": "xoxb-1", "JENKINS_API_TOKEN": "t", "VAULT_SECRET_ID": "v",
			"GERRIT_HTTP_PASSWORD": "g", "MARATHON_PASSWORD": "m", "MESOS_SECRET": "ms", "OKTA_API_TOKEN": "o", "OIDC_CLIENT_SECRET": "c"}[k]
	})
	if err != nil || len(l.problems)+len(l.warnings) != 0 {
		t.Fatalf("with secrets set: problems %v, warnings %v, %v", l.problems, l.warnings, err)
	}
	checkExamplePipelines(t, &l.cfg)
	if l.cfg.Queue.DeadMaxLen != 10000 {
		t.Errorf("queue.dead_max_len = %d, want the example's 10000", l.cfg.Queue.DeadMaxLen)
	}
}

func TestDeadMaxLenIsChecked(t *testing.T) {
	t.Parallel()
	l, err := loadConfig(writeConfig(t, "queue:\n  dead_max_len: -1\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(fmt.Sprint(l.problems), "cannot be negative") {
		t.Errorf("problems %v, want a negative dead_max_len refused", l.problems)
	}
}

// checkExamplePipelines: the example's deploy sections are read the way
// they are documented, so the example shows what it says.
func checkExamplePipelines(t *testing.T, c *fileConfig) {
	t.Helper()
	pipes := pipelines(c)
	api, web := pipes["api"], pipes["web"]
	if len(api.Targets) != 3 || len(web.Targets) != 3 {
		t.Fatalf("targets: api %v, web %v", api.Targets, web.Targets)
	}
	prod, staging := api.Targets["prod"], api.Targets["staging"]
	if prod.Strategy != deploy.BlueGreen || prod.Step != 2 || prod.VerifyTimeout != 20*time.Minute || prod.NoAutoRollback || !staging.NoAutoRollback {
		t.Errorf("api targets: prod %+v, staging %+v", prod, staging)
	}
	if api.Artifact.From != deploy.FromDescription || api.Artifact.Pattern.FindStringSubmatch("image: r.example.com/api:1.2")[1] != "r.example.com/api:1.2" {
		t.Errorf("api artifact %+v", api.Artifact)
	}
	if len(api.PreDeploy) != 1 || api.PreDeploy[0].Name != "migrate" || api.PreDeploy[0].Command == "" {
		t.Errorf("api pre-deploy %+v", api.PreDeploy)
	}
	if web.Artifact.From != deploy.FromParam || web.Artifact.Param != "IMAGE_TAG" || !strings.Contains(web.Artifact.Image, "{version}") {
		t.Errorf("web artifact %+v", web.Artifact)
	}
	if c.Marathon.URL == "" || c.Mesos.URL == "" || c.Deploy.Concurrent != "wait" || c.Deploy.MaxWait.D() != 12*time.Hour {
		t.Errorf("marathon %+v, mesos %+v, deploy %+v", c.Marathon, c.Mesos, c.Deploy)
	}
	var names []string
	for _, cmd := range available(c) {
		names = append(names, cmd.Name)
	}
	if got := strings.Join(names, " "); !strings.Contains(got, "promote") || !strings.Contains(got, "lock") {
		t.Errorf("commands %s; want the deploy commands", got)
	}
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "deploybot.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCheckConfigReportsEachProblemWithItsLine(t *testing.T) {
	t.Parallel()
	path := writeConfig(t, `listen: "8080"
slak:
  interval: 1s
worker:
  job_timeout: forever
jenkins:
  url: https://user:pw@jenkins.example.com/
services:
  API:
    build:
      job: a
  web:
    default_ref: "a..b"
    build:
      job: "x//y"
      params: {"bad name": x}
environments: [dev, dev]
policy:
  groups:
    sre: [alice]
  rules:
    - group: ghosts
      allow: ["build:*"]
`)
	var out, errb bytes.Buffer
	if code := runCheckConfig(path, noEnv, &out, &errb); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	for _, want := range []string{
		`deploybot.yaml:1:1: listen: "8080" is not host:port`,
		`deploybot.yaml:2: unknown setting "slak"`,
		`deploybot.yaml:5: "forever" is not a duration`,
		`deploybot.yaml:7:3: jenkins.url: put credentials in user and api_token, not in the URL`,
		`deploybot.yaml:9:3: services.API: "API" is not a valid service name`,
		`deploybot.yaml:13:5: services.web.default_ref: "a..b" is not a valid git ref`,
		`deploybot.yaml:15:7: services.web.build.job: bad job name "x//y"`,
		`deploybot.yaml:14:5: services.web.build: bad parameter name "bad name"`,
		`deploybot.yaml:17:21: environments.1: "dev" is listed twice`,
		`deploybot.yaml:22:7: policy.rules.0.group: group "ghosts" has no members`,
		`deploybot.yaml:20:11: policy.groups.sre.0: "alice" is not a Slack user ID`,
		`problem(s)`,
	} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", errb.String())
	}
}

func TestEnvironmentOverridesTheFile(t *testing.T) {
	t.Parallel()
	path := writeConfig(t, "listen: \":9000\"\nredis:\n  url: redis://file:6379/0\n")
	env := map[string]string{"DEPLOYBOT_LISTEN": "127.0.0.1:7000", "REDIS_URL": "not a url"}
	l, err := loadConfig(path, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if l.cfg.Listen != "127.0.0.1:7000" || l.cfg.Redis.URL != "not a url" {
		t.Fatalf("env did not override: %+v", l.cfg)
	}
	if len(l.problems) != 1 || !strings.HasPrefix(l.problems[0].String(), "environment REDIS_URL: redis.url:") {
		t.Fatalf("problems = %v; want the bad REDIS_URL blamed on the environment", l.problems)
	}
}

func TestSecretFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "secret")
	if err := os.WriteFile(good, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := writeConfig(t, "slack:\n  signing_secret_file: "+good+"\n  bot_token_file: "+filepath.Join(dir, "missing")+"\n")
	l, err := loadConfig(path, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	var warned bool
	for _, w := range l.warnings {
		warned = warned || strings.Contains(w.String(), "slack.bot_token_file: cannot read it here")
	}
	if len(l.problems) != 0 || !warned {
		t.Fatalf("problems = %v, warnings = %v; want a warning about the unreadable file", l.problems, l.warnings)
	}
	if s, _ := secret("", good); s != "s3cret" {
		t.Fatalf("secret from file = %q", s)
	}
	for _, p := range append(l.problems, l.warnings...) {
		if strings.Contains(p.String(), "s3cret") {
			t.Fatalf("a problem shows the secret: %s", p)
		}
	}
}

func TestSecretsInTheFileAreWarnedAbout(t *testing.T) {
	t.Parallel()
	path := writeConfig(t, "slack:\n  signing_secret: abc\n  bot_token: xoxb-1\n")
	l, err := loadConfig(path, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	var warned int
	for _, w := range l.warnings {
		if strings.Contains(w.String(), "a secret in the config file") {
			warned++
		}
	}
	if warned != 2 {
		t.Fatalf("warnings = %v", l.warnings)
	}
}

func TestCheckConfigVault(t *testing.T) {
	t.Parallel()
	path := writeConfig(t, `jenkins:
  url: https://jenkins.example.com/
  tls:
    client_cert: vault
    ca_file: /nonexistent/ca.pem
vault:
  address: vault.example.com:8200
  auth: kerberos
  secret_id_file: /nonexistent/secret-id
  pki_mount: ../sys
  ttl: 5s
services:
  api:
    build:
      job: api-build
`)
	var out, errb bytes.Buffer
	if code := runCheckConfig(path, noEnv, &out, &errb); code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, errb.String())
	}
	for _, want := range []string{
		`deploybot.yaml:9:3: vault.secret_id_file: cannot read it here`,
		`deploybot.yaml:5:5: jenkins.tls.ca_file: cannot read it`,
		`deploybot.yaml:8:3: vault.auth: "kerberos": want approle or token`,
		`deploybot.yaml:7:3: vault.address: must be an http(s) URL`,
		`deploybot.yaml:6:1: vault.pki_role: required`,
		`deploybot.yaml:10:3: vault.pki_mount: "../sys" is not a valid Vault path`,
		`deploybot.yaml:11:3: vault.ttl: 5s is out of range 1m0s to 720h0m0s`,
	} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", errb.String())
	}

	good := writeConfig(t, `jenkins:
  url: https://jenkins.example.com/
  tls: {client_cert: vault}
vault:
  address: https://vault.example.com:8200
  role_id: 6a1c2b3d
  pki_role: deploybot-worker
services:
  api:
    build: {job: api-build}
`)
	l, err := loadConfig(good, noEnv)
	if err != nil || len(l.problems) != 0 {
		t.Fatalf("problems %v, %v", l.problems, err)
	}
	var warned bool
	for _, w := range l.warnings {
		warned = warned || strings.Contains(w.String(), "AppRole needs a secret_id")
	}
	if !warned {
		t.Fatalf("no warning about the missing secret id: %v", l.warnings)
	}
	withEnv, _ := loadConfig(good, func(k string) string { return map[string]string{"VAULT_SECRET_ID": "s"}[k] })
	for _, w := range withEnv.warnings {
		if strings.Contains(w.String(), "vault") {
			t.Fatalf("VAULT_SECRET_ID set, still warned: %s", w)
		}
	}
	if cfg := vaultSettings(withEnv.cfg.Vault); cfg.RoleID != "6a1c2b3d" || cfg.SecretID != "s" || cfg.Token != "" {
		t.Fatalf("vault settings = %+v; want AppRole", cfg)
	}
}

func TestCheckConfigRefusesCertificatesOverPlainHTTP(t *testing.T) {
	t.Parallel()
	path := writeConfig(t, `jenkins:
  url: http://jenkins.example.com/
  tls: {client_cert: vault}
vault:
  address: http://vault.example.com:8200
  token: t
  pki_role: worker
services:
  api:
    build: {job: api-build}
`)
	l, err := loadConfig(path, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.problems) != 1 || !strings.Contains(l.problems[0].String(), "jenkins.tls.client_cert: vault certificates are only presented over https") {
		t.Fatalf("problems = %v", l.problems)
	}
	var warned bool
	for _, w := range l.warnings {
		warned = warned || strings.Contains(w.String(), "vault.address: plain http")
	}
	if !warned {
		t.Fatalf("no warning about Vault over plain http: %v", l.warnings)
	}
}
