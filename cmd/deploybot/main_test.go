package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func TestRunUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "usage: deploybot"},
		{[]string{"--help"}, 0, "check-config"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"serve", "extra"}, 2, "unexpected arguments"},
		{[]string{"serve", "--log-level", "loud"}, 2, "--log-level"},
		{[]string{"check-config"}, 2, "--config FILE"},
		{[]string{"check-config", "--config", "/nonexistent/deploybot.yaml"}, 1, "no such file"},
		{[]string{"version"}, 0, "deploybot"},
	}
	for _, tc := range tests {
		var out, errb bytes.Buffer
		code := run(context.Background(), tc.args, strings.NewReader(""), &out, &errb, noEnv)
		if code != tc.code || !strings.Contains(out.String()+errb.String(), tc.want) {
			t.Errorf("run(%q) = %d, output %q; want %d and %q", tc.args, code, out.String()+errb.String(), tc.code, tc.want)
		}
	}
}

func TestServeRefusesToStartWithoutSecrets(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := run(ctx, []string{"serve"}, strings.NewReader(""), &out, &errb, noEnv)
	if code != 1 || !strings.Contains(errb.String(), "SLACK_BOT_TOKEN") {
		t.Fatalf("serve without secrets = %d, %q", code, errb.String())
	}
	code = run(ctx, []string{"worker"}, strings.NewReader(""), &out, &errb, func(k string) string {
		return map[string]string{"SLACK_BOT_TOKEN": "xoxb-1"}[k]
	})
	if code != 1 || !strings.Contains(errb.String(), "REDIS_URL") {
		t.Fatalf("worker without REDIS_URL = %d, %q", code, errb.String())
	}
}
