package bot

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/seed-5eb4e92e/deploybot/authz"
	"github.com/seed-5eb4e92e/deploybot/backends/vault"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

const testHookSecret = "0123456789abcdef-hook"

func (f *fixture) postHook(path string, body string, auth func(*http.Request)) int {
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader([]byte(body)))
	if auth != nil {
		auth(req)
	}
	rec := httptest.NewRecorder()
	f.r.Handler().ServeHTTP(rec, req)
	return rec.Code
}

func TestHooks(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, Config{Hooks: map[string]HookAuth{"gerrit": {Secret: testHookSecret}}})
	event := `{"type":"comment-added","change":{"number":1503}}`
	basic := func(r *http.Request) { r.SetBasicAuth("jenkins", testHookSecret) }
	header := func(r *http.Request) { r.Header.Set("X-Deploybot-Token", testHookSecret) }
	query := func(r *http.Request) { r.URL.RawQuery = "token=" + testHookSecret }
	wrong := func(r *http.Request) { r.URL.RawQuery = "token=nope" }
	tests := []struct {
		name, path, body string
		auth             func(*http.Request)
		want             int
	}{
		{"no secret", "/hooks/gerrit", event, nil, http.StatusUnauthorized},
		{"wrong secret", "/hooks/gerrit", event, wrong, http.StatusUnauthorized},
		{"not configured", "/hooks/jenkins", event, basic, http.StatusNotFound},
		{"not JSON", "/hooks/gerrit", "type=comment-added", query, http.StatusBadRequest},
		{"not an object", "/hooks/gerrit", `[1,2]`, query, http.StatusBadRequest},
		{"query token", "/hooks/gerrit", event, query, http.StatusAccepted},
		{"header token", "/hooks/gerrit", event, header, http.StatusAccepted},
		{"basic auth", "/hooks/gerrit", event, basic, http.StatusAccepted},
		{"another event", "/hooks/gerrit", `{"type":"ref-updated"}`, query, http.StatusAccepted},
	}
	for _, tc := range tests {
		if got := f.postHook(tc.path, tc.body, tc.auth); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	// The same body three times is one job; the other event is another.
	if n := depth(t, f.q); n != 2 {
		t.Fatalf("%d jobs queued, want 2", n)
	}
	if got := outcomeCount(t, f.reg, "hooks_gerrit", "duplicate"); got != 2 {
		t.Fatalf("duplicates counted %v", got)
	}
	big := `{"x":"` + strings.Repeat("a", 2<<20) + `"}`
	if got := f.postHook("/hooks/gerrit", big, query); got != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized hook: %d", got)
	}
}

// TestHookClientCertificates serves the hooks over real TLS: a verified
// certificate naming an allowed client is enough, any other is not.
func TestHookClientCertificates(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, Config{Hooks: map[string]HookAuth{
		"gerrit":  {Clients: []string{"gerrit.example.com"}},
		"jenkins": {Secret: testHookSecret},
	}})
	ca, err := vault.NewDevCA("hooks-ca", time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := vault.NewDevCA("other-ca", time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	post := func(mode tls.ClientAuthType, client *vault.DevCA, cn, path string) int {
		t.Helper()
		srv := httptest.NewUnstartedServer(f.r.Handler())
		srv.TLS = &tls.Config{ClientAuth: mode, ClientCAs: ca.Roots(nil)}
		srv.StartTLS()
		defer srv.Close()
		hc := srv.Client()
		tr := hc.Transport.(*http.Transport)
		if client != nil {
			cert, err := client.Issue(cn, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			tr.TLSClientConfig.Certificates = []tls.Certificate{cert}
		}
		resp, err := hc.Post(srv.URL+path, "application/json", strings.NewReader(`{"type":"ref-updated","x":"`+cn+path+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	tests := []struct {
		name   string
		mode   tls.ClientAuthType
		client *vault.DevCA
		cn     string
		path   string
		want   int
	}{
		{"allowed client", tls.VerifyClientCertIfGiven, ca, "gerrit.example.com", "/hooks/gerrit", http.StatusAccepted},
		{"name differs in case", tls.VerifyClientCertIfGiven, ca, "Gerrit.Example.com", "/hooks/gerrit", http.StatusAccepted},
		{"another client of the CA", tls.VerifyClientCertIfGiven, ca, "laptop", "/hooks/gerrit", http.StatusUnauthorized},
		{"no certificate", tls.VerifyClientCertIfGiven, nil, "", "/hooks/gerrit", http.StatusUnauthorized},
		{"allowed client on a secret-only hook", tls.VerifyClientCertIfGiven, ca, "gerrit.example.com", "/hooks/jenkins", http.StatusUnauthorized},
		// A listener that asks for certificates without verifying them
		// must not let a self-made one through.
		{"unverified certificate", tls.RequestClientCert, stranger, "gerrit.example.com", "/hooks/gerrit", http.StatusUnauthorized},
	}
	for _, tc := range tests {
		if got := post(tc.mode, tc.client, tc.cn, tc.path); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	if n := depth(t, f.q); n != 2 {
		t.Fatalf("%d jobs queued, want the two allowed deliveries", n)
	}
}

func TestNoticeButtons(t *testing.T) {
	t.Parallel()
	policy, err := authz.NewStatic(authz.Policy{
		Groups: map[string][]string{"devs": {"U_DEV"}, "others": {"U_OTHER"}},
		Rules:  []authz.Rule{{Group: "devs", Allow: []string{"recheck:api"}}, {Group: "others", Allow: []string{"recheck:web"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, policy, Config{})
	n := queue.Notice{Subject: "change:platform/api:1503", Service: "api", Channel: "C1", State: "failing", Title: "change 1503",
		Failures: []string{"Verified-1 on patch set 2"}, Retry: queue.RetryTarget{Kind: "recheck", Project: "platform/api", Change: 1503}}
	if err := f.q.SaveNotice(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	id := queue.NoticeID(n.Subject)
	clicks := 0
	click := func(action, user string) {
		clicks++ // a response_url takes five answers at most
		body := clickBody(t, id, user, f.slack.ResponseURL(fmt.Sprintf("n%d", clicks)))
		body = bytes.ReplaceAll(body, []byte("%22retry%22"), []byte("%22"+action+"%22"))
		if rec := f.do(t, "/slack/interactions", body, nil); rec.Code != http.StatusOK {
			t.Fatalf("click: %d", rec.Code)
		}
	}
	// Follow-ups go out in the background, so each click's answer is
	// awaited before the next click.
	steps := []struct{ action, user, want string }{
		{ActionNoticeRetry, "U_OTHER", "Not allowed"},
		{ActionNoticeRetry, "U_DEV", "Retrying change 1503"},
		{ActionNoticeRetry, "U_DEV", "already being retried"},
		{ActionNoticeMute, "U_DEV", "Muting change 1503"},
	}
	for i, s := range steps {
		click(s.action, s.user)
		texts := waitResponses(t, f, i+1)
		if !strings.Contains(texts[i], s.want) {
			t.Errorf("follow-up %d = %q, want %q", i, texts[i], s.want)
		}
	}
	// The next breakage of the same change is another failure to retry.
	n.Created = n.Created.Add(time.Hour)
	if err := f.q.SaveNotice(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	click(ActionNoticeRetry, "U_DEV")
	if texts := waitResponses(t, f, 5); !strings.Contains(texts[4], "Retrying change 1503") {
		t.Fatalf("retry of the next breakage: %q", texts[4])
	}
	// A notice no service claims needs the permission on every service.
	stray := queue.Notice{Subject: "job:prod-db-migrate", Channel: "C1", State: "failing", Title: "prod-db-migrate #3",
		Failures: []string{"prod-db-migrate #3"}, Retry: queue.RetryTarget{Kind: "rebuild", Job: "prod-db-migrate"}}
	if err := f.q.SaveNotice(context.Background(), stray); err != nil {
		t.Fatal(err)
	}
	id = queue.NoticeID(stray.Subject)
	click(ActionNoticeRetry, "U_DEV")
	if texts := waitResponses(t, f, 6); !strings.Contains(texts[5], "Not allowed") {
		t.Fatalf("retry of an unclaimed job's notice: %q", texts[5])
	}
	if d := depth(t, f.q); d != 3 {
		t.Fatalf("%d jobs queued; want two retries and one mute", d)
	}
	if recent, _ := f.q.Recent(context.Background(), "", 10); len(recent) != 0 {
		t.Fatalf("notice buttons' jobs are listed by /deploy status: %+v", recent)
	}
}

func TestLookupEmailAndDM(t *testing.T) {
	t.Parallel()
	s, fake, _ := newTestSlack(t, time.Nanosecond)
	s.sleep = sleepCtx
	fake.AddUser("U0ANN", "ann@example.com")
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		id, found, err := s.LookupEmail(ctx, "Ann@Example.com")
		if err != nil || !found || id != "U0ANN" {
			t.Fatalf("lookup = %q %v %v", id, found, err)
		}
	}
	if n := fake.Calls("users.lookupByEmail"); n != 1 {
		t.Fatalf("%d lookups for three questions; want them cached", n)
	}
	if _, found, err := s.LookupEmail(ctx, "nobody@example.com"); err != nil || found {
		t.Fatalf("unknown address: found=%v err=%v", found, err)
	}
	n := queue.Notice{ID: "0123456789abcdef0123456789abcdef", Subject: "job:x", State: "failing", Title: "x #1", Job: "x"}
	if err := NewNotices(s).DM(ctx, "U0ANN", n); err != nil {
		t.Fatal(err)
	}
	if msgs := fake.Messages("DU0ANN"); len(msgs) != 1 || !strings.Contains(msgs[0].Text, "x is broken") {
		t.Fatalf("DM channel messages = %+v", msgs)
	}
}
