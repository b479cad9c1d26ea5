package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/seed-5eb4e92e/deploybot/backends/gerrit/gerrittest"
	"github.com/seed-5eb4e92e/deploybot/bot/slacktest"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
	"github.com/seed-5eb4e92e/deploybot/worker/queue/queuetest"
)

const (
	noticeChannel = "CAPI01"
	hookSecret    = "a-long-enough-hook-secret"
)

// noticeE2E is the serve wiring with Gerrit and Jenkins webhooks enabled.
type noticeE2E struct {
	srv      *httptest.Server
	slack    *slacktest.Server
	hooksURL string // the mTLS listener, when configured
	q        *queue.Queue
}

// queueIdle reports whether every queued job has finished.
func (e *noticeE2E) queueIdle(t *testing.T) bool {
	t.Helper()
	n, err := e.q.Depth(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n == 0
}

func startNoticeE2E(t *testing.T) *noticeE2E { return startNoticeE2EWith(t, nil) }

func startNoticeE2EWith(t *testing.T, edit func(*fileConfig)) *noticeE2E {
	t.Helper()
	redisURL, prefix := queuetest.URL(t)
	fake := slacktest.Start("xoxb-e2e")
	t.Cleanup(fake.Close)
	fake.AddUser("U0ANN", "ann@example.com")
	fake.AddUser("U0UPE", "upe@example.com")
	// The service's channel is configured by name; Slack resolves it when
	// posting, and the notice must be edited by ID.
	fake.AddChannel("#api-team", noticeChannel)
	l := &loaded{name: "e2e", fromEnv: map[string]string{}, cfg: fileConfig{
		Redis: redisConfig{URL: redisURL, Prefix: prefix},
		Slack: slackConfig{SigningSecret: e2eSecret, BotToken: "xoxb-e2e", APIURL: fake.URL, Interval: duration(time.Millisecond)},
		Services: map[string]svcCfg{
			"api": {Channel: "#api-team", GerritProject: "platform/api", JenkinsJobs: []string{"platform-api-verify"}},
		},
		Gerrit: gerritConfig{CIAccounts: []string{"ci"}},
		Hooks:  hooksConfig{JenkinsSecret: hookSecret, GerritSecret: hookSecret},
	}}
	if edit != nil {
		edit(&l.cfg)
	}
	l.check()
	if len(l.problems) > 0 {
		t.Fatalf("config problems: %v", l.problems)
	}
	a, err := newApp(l, roleServe, slog.New(slog.NewJSONHandler(io.Discard, nil)), wiring{workerBlock: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.listenHooksTLS(l, roleServe); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.serve(ctx, srv.Listener) }()
	t.Cleanup(func() { cancel(); <-done })
	srv.URL = "http://" + srv.Listener.Addr().String()
	e := &noticeE2E{srv: srv, slack: fake, q: a.q}
	if a.hooksLn != nil {
		e.hooksURL = "https://" + a.hooksLn.Addr().String()
	}
	return e
}

func (e *noticeE2E) hook(t *testing.T, path string, body []byte, auth func(*http.Request)) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if auth != nil {
		auth(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func recordedBody(t *testing.T, parts ...string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(append([]string{"..", ".."}, parts...)...))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// verifyPlusOne is the recorded comment-added with CI's vote turned to +1
// on patch set 3, uploaded by Ann.
func verifyPlusOne(t *testing.T, body []byte) []byte {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatal(err)
	}
	for _, a := range ev["approvals"].([]any) {
		if m := a.(map[string]any); m["type"] == "Verified" {
			m["value"], m["oldValue"] = "1", "-1"
		}
	}
	ps := ev["patchSet"].(map[string]any)
	ps["number"] = 3
	ps["uploader"] = map[string]any{"name": "Ann Owner", "email": "ann@example.com", "username": "ann"}
	ev["eventCreatedOn"] = 1741620000
	out, _ := json.Marshal(ev)
	return out
}

// TestEndToEndBrokenChange is the scenario: Gerrit's webhooks
// plugin reports CI's Verified -1 on change 1503. Exactly one Slack message
// says so, mentioning only the change's owner; a second delivery, and
// Jenkins' own report of the same failure, post nothing more; CI's +1 on a
// later patch set turns the message into "fixed".
func TestEndToEndBrokenChange(t *testing.T) {
	t.Parallel()
	e := startNoticeE2E(t)
	withToken := func(r *http.Request) { r.URL.RawQuery = "token=" + hookSecret }
	comment := recordedBody(t, "backends", "gerrit", "gerrittest", "testdata", "webhook-comment-added.json")

	if code := e.hook(t, "/hooks/gerrit", comment, nil); code != http.StatusUnauthorized {
		t.Fatalf("a hook without the secret answered %d", code)
	}
	for i := 0; i < 2; i++ {
		if code := e.hook(t, "/hooks/gerrit", comment, withToken); code != http.StatusAccepted {
			t.Fatalf("delivery %d answered %d", i, code)
		}
	}
	var msg slacktest.Message
	waitFor(t, "the notice", func() bool {
		msgs := e.slack.Messages(noticeChannel)
		if len(msgs) > 0 {
			msg = msgs[0]
		}
		return len(msgs) > 0
	})
	text := shown(msg)
	if !strings.Contains(text, "@U0ANN — owner of change 1503") || strings.Count(msg.Blocks, `\u003c@`) != 1 {
		t.Fatalf("notice mentions the wrong people:\n%s\n%s", text, msg.Blocks)
	}
	if !strings.Contains(text, "[Recheck: click notice_retry") || !strings.Contains(text, "[Mute 1h: click notice_mute") {
		t.Fatalf("notice lacks its buttons:\n%s", text)
	}
	// The same event in other bytes (as stream-events would carry it) gets
	// past the hook's body check; the notice still counts it once.
	var indented bytes.Buffer
	if err := json.Indent(&indented, comment, "", "  "); err != nil {
		t.Fatal(err)
	}
	if code := e.hook(t, "/hooks/gerrit", indented.Bytes(), withToken); code != http.StatusAccepted {
		t.Fatalf("reformatted delivery answered %d", code)
	}
	waitFor(t, "the reformatted delivery's job to finish", func() bool { return e.queueIdle(t) })
	if m := e.slack.Messages(noticeChannel); len(m) != 1 || m[0].Edits != 0 {
		t.Fatalf("a re-delivery changed the channel: %d messages, %d edits", len(m), m[0].Edits)
	}

	// Jenkins reports the same failure (basic auth, as the Notification
	// plugin sends credentials from its URL).
	jenkinsReport := recordedBody(t, "backends", "jenkins", "jenkinstest", "testdata", "notification", "finalized-failure.json")
	if code := e.hook(t, "/hooks/jenkins", jenkinsReport, func(r *http.Request) { r.SetBasicAuth("jenkins", hookSecret) }); code != http.StatusAccepted {
		t.Fatalf("jenkins hook answered %d", code)
	}
	waitFor(t, "the Jenkins report to be folded into the notice", func() bool {
		m := e.slack.Messages(noticeChannel)
		return len(m) == 1 && m[0].Edits > 0 && strings.Contains(shown(m[0]), "platform-api-verify #87")
	})

	if code := e.hook(t, "/hooks/gerrit", verifyPlusOne(t, comment), withToken); code != http.StatusAccepted {
		t.Fatalf("fix delivery answered %d", code)
	}
	waitFor(t, "the notice to say it is fixed", func() bool {
		m := e.slack.Messages(noticeChannel)
		return len(m) == 1 && strings.Contains(shown(m[0]), "passes CI again on patch set 3, fixed by @U0ANN")
	})
	if n := len(e.slack.Messages(noticeChannel)); n != 1 {
		t.Fatalf("%d messages in the channel; want the one notice", n)
	}
}

// TestEndToEndStreamEvents: the same verdict, read from `gerrit
// stream-events` over SSH instead of the webhooks plugin.
func TestEndToEndStreamEvents(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	line := recordedBody(t, "backends", "gerrit", "gerrittest", "testdata", "comment-added.json")
	sshd, err := gerrittest.StartSSH(gerrittest.SSHOptions{User: "deploybot", Key: signer.PublicKey(), Sessions: [][][]byte{{line}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sshd.Close)
	knownHosts := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(knownHosts, []byte(knownhosts.Line([]string{sshd.Addr}, sshd.HostKey())+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := startNoticeE2EWith(t, func(c *fileConfig) {
		c.Gerrit.SSH = gerritSSH{Addr: sshd.Addr, User: "deploybot", KeyFile: keyFile, KnownHostsFile: knownHosts}
	})
	waitFor(t, "the notice from the SSH stream", func() bool {
		m := e.slack.Messages(noticeChannel)
		return len(m) == 1 && strings.Contains(shown(m[0]), "@U0ANN — owner of change 1503")
	})
}
