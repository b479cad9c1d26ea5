package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/seed-5eb4e92e/deploybot/backends/marathon"
	"github.com/seed-5eb4e92e/deploybot/deploy"
)

// TestShellScript runs the newcomer's demo: `deploybot shell` reading a
// script from a pipe. It must start everything in process, run every line
// to its end, and exit 0 at the end of input. REDIS_URL is hidden: the
// shell's embedded Redis is what a fresh machine uses.
func TestShellScript(t *testing.T) {
	t.Parallel()
	script := strings.Join([]string{
		"/deploy help",
		"/deploy build api feature/login",
		"/deploy build web flaky-tests",
		"click retry",
		"/deploy build nope",
		"/deploy status web",
		"simulate break api",
		"click notice_mute",
		"/deploy simulate fix api", // the form the issue and the README use
		"/deploy recheck 1503",
		"bogus",
	}, "\n") + "\n"
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	code := run(ctx, []string{"shell"}, strings.NewReader(script), &out, &errb, noEnv)
	if code != 0 {
		t.Fatalf("shell exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	got := out.String()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile("/deploy build &lt;service&gt; \\[ref\\]|/deploy build <service> \\[ref\\]"),
		regexp.MustCompile("Queued build of api@feature/login — job `[0-9A-Z]{26}`"),
		regexp.MustCompile("Build `api` @ `feature/login` — ✅ \\*success\\* #1"),
		regexp.MustCompile("Build `web` @ `flaky-tests` — ❌ \\*failure\\* #1"),
		regexp.MustCompile(`\[Retry: click retry [0-9A-Z]{26}\]`),
		regexp.MustCompile("Retrying build of web@flaky-tests"),
		regexp.MustCompile("Build `web` @ `flaky-tests` — ✅ \\*success\\* #2"),
		regexp.MustCompile(`I don't know the service "nope". Known services: api, web.`),
		regexp.MustCompile("Recent jobs for `web`"),
		regexp.MustCompile("Change 1503 .*“Make api faster” fails CI on patch set 1"),
		regexp.MustCompile(`@you — owner of change 1503`),
		regexp.MustCompile(`muted by @you until`),
		regexp.MustCompile("passes CI again on patch set 2, fixed by @you"),
		regexp.MustCompile("Recheck change 1503 — ✅ \\*rechecked\\* change 1503"),
		regexp.MustCompile(`\(shell\) type /deploy help`),
	} {
		if !want.MatchString(got) {
			t.Errorf("shell output lacks %s", want)
		}
	}
	if !strings.Contains(errb.String(), "embedded in-process Redis") {
		t.Errorf("no warning about the embedded Redis on stderr:\n%s", errb.String())
	}
	if t.Failed() {
		t.Logf("stdout:\n%s", got)
	}
}

// TestShellDeploys drives the deploy pipeline through the shell as a user
// would: deploy to dev (build, migration on Mesos, rollout on Marathon),
// Promote by button, promote to prod (blue/green) by command, roll back,
// an environment lock that refuses a teammate until it is lifted, history,
// what Marathon runs, and a migration that fails.
func TestShellDeploys(t *testing.T) {
	t.Parallel()
	script := strings.Join([]string{
		"/deploy api main to dev",
		"click promote",
		"/deploy promote api staging to prod",
		"/deploy rollback api dev",
		"/deploy lock staging freeze for 1h",
		"as ann /deploy api main to staging",
		"as ann click deploy_wait",
		"/deploy api feature/x to staging", // the holder's own deploy passes
		"/deploy unlock staging",
		"/deploy history api dev",
		"/deploy status api",
		"/deploy api broken-migration to dev",
		"as bob /deploy help",
	}, "\n") + "\n"
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if code := run(ctx, []string{"shell"}, strings.NewReader(script), &out, &errb, noEnv); code != 0 {
		t.Fatalf("shell exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	got := out.String()
	const id = "[0-9A-Z]{26}"
	wants := []string{
		`Deploys: /deploy api main to dev, then click promote`,
		"Queued deploy of api@main to dev — job `" + id + "`",
		"Deploy `api` @ `main` to `dev` — 🔄 building #1",
		`migrate sandbox \(https://127\.0\.0\.1:\d+/#/agents/`,
		"Deploy `api` @ `main` to `dev` — ✅ \\*live\\* #1",
		`\[Promote to staging: click promote ` + id + `\] \[Roll back: click rollback ` + id + `\]`,
		"Promote `api` from `dev` to `staging` — ✅ \\*live\\*",
		"Promote `api` from `staging` to `prod` — 🔄 blue/green: green 1/2 healthy",
		"Promote `api` from `staging` to `prod` — ✅ \\*live\\*",
		"Rollback `api` in `dev` — ✅ \\*rolled back\\*",
		`#shell  🔒 \*staging\* is locked by @you until .*: freeze`,
		`\(only ann\) 🔒 Not started: \*staging\* is locked by @you`,
		`\[Queue it behind the lock: click deploy_wait api main to staging\]`,
		`\(only ann\) ⏳ Queued deploy of api@main to staging behind the lock`,
		"Deploy `api` @ `main` to `staging` — 🔄 waiting for the lock on staging: staging is locked by @you",
		"Deploy `api` @ `feature/x` to `staging` — ✅ \\*live\\* #2",
		`#shell  🔓 @you unlocked \*staging\*`,
		"Deploy `api` @ `main` to `staging` — ✅ \\*live\\* #3",
		"\\*Deploys of `api` to `dev`\\*",
		"• rollback `registry.shell.example/api:1.0.0` to `dev` — ✅ \\*rolled back\\*",
		"• deploy `registry.shell.example/api:main-1` to `dev` — ✅ \\*live\\* #1",
		"`api` in \\*dev\\*: ✅ `registry.shell.example/api:1.0.0` — 2/2 healthy",
		"`api` in \\*staging\\*: ✅ `registry.shell.example/api:main-3` — 2/2 healthy · since .* · deployed by @ann",
		"`api` in \\*prod\\*: ✅ `registry.shell.example/api:main-1` — 2/2 healthy · since .* · deployed by @you",
		"❌ \\*failed\\* #\\d+ \\(https:[^)]+\\): migrate failed \\(exit status 1\\), so api was not deployed to dev\\.",
		`\(shell\) "bob" is not in #shell; try you or ann`,
	}
	for _, w := range wants {
		if !regexp.MustCompile(w).MatchString(got) {
			t.Errorf("shell output lacks %s", w)
		}
	}
	// The teammate's deploy waited for the lock: it went live only after
	// the unlock.
	unlocked := strings.Index(got, "unlocked *staging*")
	annLive := strings.Index(got, "Deploy `api` @ `main` to `staging` — ✅")
	if unlocked < 0 || annLive < unlocked {
		t.Errorf("@ann's deploy went live at %d, the unlock came at %d", annLive, unlocked)
	}
	if t.Failed() {
		t.Logf("stdout:\n%s", got)
	}
}

// TestShellDemoConfigIsValid: the config the shell runs without --config,
// pointed at its simulations, passes check-config's checks, and the
// simulated builds leave their image where the demo pipeline reads it.
func TestShellDemoConfigIsValid(t *testing.T) {
	t.Parallel()
	l := &loaded{name: "shell", cfg: demoConfig(), fromEnv: map[string]string{}}
	s, err := startSims(&l.cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.configure(&l.cfg, "")
	// The shell's development CA stands in for Vault.
	l.cfg.Vault = vaultConfig{Address: "https://vault.invalid:8200", PKIRole: "shell", Token: "unused"}
	l.check()
	if len(l.problems) != 0 {
		t.Fatalf("problems: %v", l.problems)
	}
	api := pipelines(&l.cfg)["api"]
	if len(api.Targets) != 3 || api.Targets["prod"].Strategy != deploy.BlueGreen || len(api.PreDeploy) != 1 {
		t.Fatalf("api's pipeline %+v", api)
	}
	finished := shellFinish(&l.cfg)("api-build", url.Values{"BRANCH": {"feature/login"}}, 7)
	if m := api.Artifact.Pattern.FindStringSubmatch(finished.Description); m == nil || m[1] != "registry.shell.example/api:feature-login-7" {
		t.Fatalf("build description %q", finished.Description)
	}
	for _, id := range []string{"/shell/api-dev", "/shell/api-staging", "/shell/api-prod-blue"} {
		if app, ok := s.marathon.App(id); !ok || app.Image != "registry.shell.example/api:1.0.0" || app.Instances != shellInstances {
			t.Errorf("Marathon app %s: %+v (exists %v)", id, app, ok)
		}
	}
	if blue, _ := s.marathon.App("/shell/api-prod-blue"); blue.Labels[marathon.LabelDeploymentColour] != marathon.ColourBlue || blue.Labels[marathon.LabelDeploymentAltPort] == "" {
		t.Errorf("the blue app's labels %v; marathon-lb needs its colour and ports", blue.Labels)
	}
}

// TestShellArtifactFitsTheConfig: whatever artifact settings a --config
// file has, the simulated build leaves text from which they read the image
// they would deploy.
func TestShellArtifactFitsTheConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		a    artifactCfg
		want string
	}{
		{"description, whole image", artifactCfg{From: deploy.FromDescription, Pattern: `image: (\S+)`}, "registry.shell.example/web:main-2"},
		{"description, version", artifactCfg{From: deploy.FromDescription, Pattern: `version:? (\S+)`, Image: "r.example.com/web:{version}"}, "r.example.com/web:main-2"},
		{"param", artifactCfg{From: deploy.FromParam, Param: "IMAGE_TAG", Image: "r.example.com/web:{version}"}, "r.example.com/web:main-2"},
		{"param with a pattern", artifactCfg{From: deploy.FromParam, Param: "TAG", Pattern: `^v(.+)$`, Image: "r.example.com/web:{version}"}, "r.example.com/web:main-2"},
		{"archived file name", artifactCfg{From: deploy.FromArtifact, Pattern: `web-(.+)\.tar\.gz`, Image: "r.example.com/web:{version}"}, "r.example.com/web:main-2"},
		{"archived file", artifactCfg{From: deploy.FromFile, File: "out/image.txt"}, "registry.shell.example/web:main-2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := shellArtifact("web", tc.a, shellVersion("main", 2))
			var text string
			switch tc.a.From {
			case deploy.FromDescription:
				text = f.Description
			case deploy.FromParam:
				text = f.Params.Get(tc.a.Param)
			case deploy.FromArtifact:
				for name := range f.Artifacts {
					text = name
				}
			case deploy.FromFile:
				text = strings.TrimSpace(string(f.Artifacts[tc.a.File]))
			}
			version := text
			if tc.a.Pattern != "" {
				m := regexp.MustCompile(tc.a.Pattern).FindStringSubmatch(text)
				if m == nil {
					t.Fatalf("%q does not match %s", text, tc.a.Pattern)
				}
				version = m[len(m)-1]
			}
			image := version
			if tc.a.Image != "" {
				image = strings.ReplaceAll(tc.a.Image, "{version}", version)
			}
			if image != tc.want {
				t.Fatalf("read %q from %q, the image %s; want %s", version, text, image, tc.want)
			}
		})
	}
}

// TestShellPermissions: in the shell you are an SRE and ann a developer;
// you change the policy from the prompt, and the audit trail has it.
func TestShellPermissions(t *testing.T) {
	t.Parallel()
	script := strings.Join([]string{
		"as ann /deploy api main to prod",
		"/deploy perms grant developers deploy api prod",
		"/deploy perms test UDEVANN deploy api prod",
		"/deploy perms rollback 1",
		"as ann /deploy perms grant developers deploy api prod",
		"as ann /deploy whoami",
		"/deploy audit 3",
	}, "\n") + "\n"
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if code := run(ctx, []string{"shell"}, strings.NewReader(script), &out, &errb, noEnv); code != 0 {
		t.Fatalf("shell exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	got := out.String()
	for _, want := range []string{
		"(only ann) ⛔ Not allowed: you may not deploy api in prod (needs `deploy:prod:api`); your groups: developers.",
		"(only you) ✅ Policy version 2: grant developers deploy:prod:api.",
		"✅ may `deploy:prod:api`: allowed by the rule `deploy:prod:api` of group `developers` (policy version 2)",
		"(only you) ✅ Policy version 3: rollback to version 1.",
		"(only ann) ⛔ Not allowed: you may not manage permissions or read the audit trail (needs `admin`)",
		"Your groups: developers.",
		"@ann command `/deploy perms grant developers deploy api prod` → *denied* — admin",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("shell output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("stdout:\n%s", got)
	}
}
