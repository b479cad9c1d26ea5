package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"
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
