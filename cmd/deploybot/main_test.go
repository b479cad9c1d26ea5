package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/seed-5eb4e92e/deploybot/backends/vault"
	"github.com/seed-5eb4e92e/deploybot/worker/queue/queuetest"
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

// brokenCerts is a certificate source with no certificate.
type brokenCerts struct{ *vault.DevCA }

func (brokenCerts) Ready() error { return &vault.NoCertificateError{} }

// TestVaultTroubleDoesNotTakeSlackDown: without a client certificate a
// worker is not ready, but a process that also answers Slack stays ready
// and says it is degraded.
func TestVaultTroubleDoesNotTakeSlackDown(t *testing.T) {
	t.Parallel()
	ca, err := vault.NewDevCA("w", time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	redisURL, prefix := queuetest.URL(t)
	for _, tc := range []struct {
		role role
		code int
	}{{roleWorker, 503}, {roleServe, 200}} {
		l := &loaded{name: "test", fromEnv: map[string]string{}, cfg: fileConfig{
			Redis:   redisConfig{URL: redisURL, Prefix: prefix},
			Slack:   slackConfig{SigningSecret: "s", BotToken: "xoxb-1"},
			Jenkins: jenkinsConfig{URL: "https://jenkins.example.com/", TLS: backendTLS{ClientCert: "vault"}},
		}}
		a, err := newApp(l, tc.role, slog.New(slog.DiscardHandler), wiring{certs: brokenCerts{ca}})
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		a.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		a.close()
		if rec.Code != tc.code || !strings.Contains(rec.Body.String(), "vault: no valid client certificate") {
			t.Errorf("%s: /readyz = %d %q, want %d naming the missing certificate", tc.role, rec.Code, rec.Body.String(), tc.code)
		}
	}
}
