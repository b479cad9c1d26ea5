package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/seed-5eb4e92e/deploybot/authz/signin/oidctest"
	"github.com/seed-5eb4e92e/deploybot/bot/slacktest"
	"github.com/seed-5eb4e92e/deploybot/worker/queue/queuetest"
)

// slackEmail is the e-mail the fake Slack's users.info has for everyone
// (its recorded payload), so it is who signs in.
const slackEmail = "spengler@ghostbusters.example.com"

// TestEndToEndSignIn: /deploy login through the serve wiring, a browser
// through GET /oidc/login, an in-process OpenID Provider and GET
// /oidc/callback; then the user acts with the groups of their sign-in, not
// the config file's, and was told so in a DM.
func TestEndToEndSignIn(t *testing.T) {
	t.Parallel()
	redisURL, prefix := queuetest.URL(t)
	fake := slacktest.Start("xoxb-e2e")
	t.Cleanup(fake.Close)
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	op := oidctest.New(t, oidctest.Options{ClientSecret: "oidc-secret", RedirectURI: base + "/oidc/callback",
		User: oidctest.User{Email: slackEmail, Name: "Egon", Groups: []string{"deploybot-release", "Everyone"}}})
	cfg := fileConfig{
		Services: map[string]svcCfg{"api": {Build: buildCfg{Job: "platform/api-build"}}},
		Policy: policyFromYAML(t, `
groups:
  devs: [U2147483697]
rules:
  - group: devs
    allow: ["build:*"]
  - group: deploybot-release
    allow: ["admin"]
`),
		Redis: redisConfig{Prefix: prefix},
		// Never called: nothing here is allowed to build.
		Jenkins:  jenkinsConfig{URL: "http://127.0.0.1:1", User: "deploybot"},
		Identity: identityConfig{GroupFilter: "^deploybot-", OIDC: oidcConfig{Issuer: op.Issuer(), ClientID: op.ClientID(), RedirectURL: base + "/oidc/callback"}},
	}
	env := map[string]string{"REDIS_URL": redisURL, "SLACK_SIGNING_SECRET": e2eSecret, "SLACK_BOT_TOKEN": "xoxb-e2e",
		"SLACK_API_URL": fake.URL, "OIDC_CLIENT_SECRET": "oidc-secret", "JENKINS_API_TOKEN": "unused"}
	l := &loaded{name: "e2e", cfg: cfg, fromEnv: map[string]string{}}
	l.applyEnv(func(k string) string { return env[k] })
	l.check()
	if len(l.problems) > 0 {
		t.Fatalf("config problems: %v", l.problems)
	}
	l.cfg.Slack.Interval = duration(time.Millisecond)
	a := serveAppOn(t, l, roleServe, wiring{oidcHTTP: op.Client(), workerBlock: 20 * time.Millisecond}, srv)
	e := &e2e{srv: srv, a: a, slack: fake}
	const user = "U2147483697"

	if got := e.slash(t, "whoami", user); !strings.Contains(got, "known from deploybot's config file") {
		t.Fatalf("whoami before signing in: %q", got)
	}
	loginURL := signInButton(t, e, user)
	if !strings.HasPrefix(loginURL, base+"/oidc/login?state=") {
		t.Fatalf("sign-in button opens %q", loginURL)
	}
	browser := op.Client()
	browser.Jar, _ = cookiejar.New(nil)
	resp, err := browser.Get(loginURL)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), slackEmail) {
		t.Fatalf("after signing in the browser shows %d:\n%s", resp.StatusCode, page)
	}
	got := e.slash(t, "whoami", user)
	if !strings.Contains(got, "signed in as "+slackEmail) || !strings.Contains(got, "Your groups: deploybot-release.") {
		t.Fatalf("whoami after signing in: %q", got)
	}
	// The signed-in groups are what count: admin comes from Okta now, and
	// the config file's build grant no longer applies.
	if got := e.slash(t, "perms history", user); !strings.Contains(got, "seeded from the config file") {
		t.Fatalf("perms history: %q", got)
	}
	if got := e.slash(t, "build api", user); !strings.Contains(got, "Not allowed") {
		t.Fatalf("build after signing in with groups that may not build: %q", got)
	}
	waitFor(t, "the DM confirming the link", func() bool {
		for _, m := range fake.Messages(user) {
			if strings.Contains(m.Text, "Your Slack account is now linked to "+slackEmail) && strings.Contains(m.Text, "deploybot-release") {
				return true
			}
		}
		return false
	})
	// The same link again is refused: its state was used.
	if resp, err := browser.Get(loginURL); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a used sign-in link answered %v, %v", resp.StatusCode, err)
	}
}

// signInButton runs /deploy login and returns the URL of its button.
func signInButton(t *testing.T, e *e2e, user string) string {
	t.Helper()
	form := slashForm(t, "login", user)
	status, body := e.post(t, "/slack/commands", []byte(form.Encode()), true)
	if status != http.StatusOK {
		t.Fatalf("login: %d %s", status, body)
	}
	var a struct {
		Blocks []struct {
			Elements []struct {
				URL string `json:"url"`
			} `json:"elements"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		t.Fatal(err)
	}
	for _, b := range a.Blocks {
		for _, el := range b.Elements {
			if el.URL != "" {
				return el.URL
			}
		}
	}
	t.Fatalf("login answer has no button with a URL: %s", body)
	return ""
}
