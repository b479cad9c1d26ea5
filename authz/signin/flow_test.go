package signin

import (
	"errors"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/seed-5eb4e92e/deploybot/authz"
	"github.com/seed-5eb4e92e/deploybot/authz/signin/oidctest"
)

func TestSignIn(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		edits      []func(*setup)
		faults     oidctest.Faults
		wantGroups []string
		wantMethod string
		wantNotes  int
	}{
		{name: "confidential client", wantGroups: []string{"Everyone", "sre"}, wantMethod: "client_secret_basic", wantNotes: 1},
		{name: "public client", edits: []func(*setup){publicClient}, wantGroups: []string{"Everyone", "sre"}, wantMethod: "none", wantNotes: 1},
		{name: "no groups claim", faults: oidctest.Faults{OmitGroups: true}, wantGroups: []string{}, wantMethod: "client_secret_basic", wantNotes: 1},
		{name: "no notifier", edits: []func(*setup){func(s *setup) { s.noNotifier = true }},
			wantGroups: []string{"Everyone", "sre"}, wantMethod: "client_secret_basic", wantNotes: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tt.edits...)
			e.op.SetFaults(tt.faults)
			b := e.browser(t)
			loginURL, state := e.start(t, "U123")
			before := e.clock.now()
			got := b.get(t, e.toCallback(t, b, loginURL))
			after := e.clock.now()

			if got.status != http.StatusOK || !strings.Contains(got.body, "Signed in as ann@example.com — your Slack account is linked; you may close this tab.") {
				t.Fatalf("callback: %d\n%s", got.status, got.body)
			}
			if cc := got.header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("callback Cache-Control = %q, want no-store", cc)
			}
			checkLinked(t, e, tt.wantGroups, tt.wantNotes, before, after)
			if c := b.cookie(t, e); c != nil {
				t.Errorf("binding cookie %q left in the browser", c.Name)
			}
			if _, err := e.states.Peek(t.Context(), state); !errors.Is(err, ErrUnknownState) {
				t.Errorf("state still pending after the callback: %v", err)
			}
			checkProviderSaw(t, e, tt.wantMethod)
			if !strings.Contains(e.logs.String(), "user=U123") {
				t.Errorf("log does not name the user:\n%s", e.logs)
			}
			e.checkNoSecrets(t, got)
		})
	}
}

// checkLinked checks that U123 was linked once, as Ann with groups, for
// LinkTTL from a moment in [before, after], and notified notes times.
func checkLinked(t *testing.T, e *env, groups []string, notes int, before, after time.Time) {
	t.Helper()
	links, noted := e.rec.got()
	if len(links) != 1 {
		t.Fatalf("linked %d identities, want 1", len(links))
	}
	id := links[0]
	want := authz.Identity{SlackUser: "U123", Email: "ann@example.com", Subject: oidctest.DefaultSubject,
		Groups: groups, Source: authz.SourceOIDC, Expires: id.Expires}
	if id.SlackUser != want.SlackUser || id.Email != want.Email || id.Subject != want.Subject ||
		id.Source != want.Source || id.Groups == nil || !slices.Equal(id.Groups, want.Groups) {
		t.Errorf("linked %+v, want %+v", id, want)
	}
	if id.Expires.Before(before.Add(testLinkTTL)) || id.Expires.After(after.Add(testLinkTTL)) {
		t.Errorf("Expires = %v, want now+%v (%v…%v)", id.Expires, testLinkTTL, before.Add(testLinkTTL), after.Add(testLinkTTL))
	}
	if len(noted) != notes || (notes > 0 && !reflect.DeepEqual(noted[0], id)) {
		t.Errorf("notified %+v, want %d notes of %+v", noted, notes, id)
	}
}

// checkProviderSaw checks the requests the provider got: an authorization
// request with an S256 challenge and no verifier, then a token request with
// the verifier that matches it.
func checkProviderSaw(t *testing.T, e *env, method string) {
	t.Helper()
	auths, tokens := e.op.AuthorizeRequests(), e.op.TokenRequests()
	if len(auths) != 1 || len(tokens) != 1 {
		t.Fatalf("provider saw %d authorize and %d token requests, want 1 and 1", len(auths), len(tokens))
	}
	a, tok := auths[0], tokens[0]
	if a.Get("code_challenge_method") != "S256" || a.Has("code_verifier") || a.Get("nonce") == "" ||
		a.Get("scope") != "openid email profile groups" || a.Get("response_type") != "code" ||
		a.Get("redirect_uri") != e.app.URL+"/oidc/callback" || a.Get("client_id") != e.op.ClientID() {
		t.Errorf("authorize request %v", a)
	}
	if v := tok.Form.Get("code_verifier"); v == "" || oauth2.S256ChallengeFromVerifier(v) != a.Get("code_challenge") {
		t.Errorf("token request verifier does not match the challenge")
	}
	if tok.AuthMethod != method {
		t.Errorf("client authenticated with %q, want %q", tok.AuthMethod, method)
	}
}

func TestSignInRefused(t *testing.T) {
	t.Parallel()
	const expired = "sign-in link has expired; run /deploy login again"
	tests := []struct {
		name      string
		faults    oidctest.Faults
		run       func(t *testing.T, e *env, b *browser) page // default signIn
		status    int
		want      []string
		wantLinks int
	}{
		{name: "tampered signature", faults: oidctest.Faults{BadSignature: true}, status: 400, want: []string{"signature does not verify"}},
		{name: "wrong audience", faults: oidctest.Faults{Audience: "0oaSomeOtherApp"}, status: 400, want: []string{"wrong audience"}},
		{name: "expired token", faults: oidctest.Faults{Expired: true}, status: 400, want: []string{"has expired"}},
		{name: "wrong nonce", faults: oidctest.Faults{Nonce: "not-our-nonce"}, status: 400, want: []string{"nonce does not match"}},
		{name: "email not verified", faults: oidctest.Faults{EmailUnverified: true}, status: 403, want: []string{"ann@example.com is not verified"}},
		{name: "provider error", faults: oidctest.Faults{AuthorizeError: `<script>alert("x")</script> User is not assigned to the client application.`},
			status: 403, want: []string{"access_denied", "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; User is not assigned"}},
		{name: "replayed state", run: replay, status: 400, want: []string{"expired or was already used"}, wantLinks: 1},
		{name: "racing callbacks", run: race, status: 400, want: []string{"already used"}, wantLinks: 1},
		{name: "callback without cookie", run: withoutCookie, status: 400, want: []string{"different browser"}},
		{name: "callback with another browser's cookie", run: otherBrowsersCookie, status: 400, want: []string{"different browser"}},
		{name: "expired state", run: expiredState, status: 400, want: []string{"expired"}},
		{name: "expired state at login", run: expiredAtLogin, status: 400, want: []string{expired}},
		{name: "unknown state at login", run: visit("/oidc/login?state=NOTASTATE"), status: 400, want: []string{expired}},
		{name: "login without state", run: visit("/oidc/login"), status: 400, want: []string{expired}},
		{name: "callback without code", run: withoutCode, status: 400, want: []string{"no authorization code"}},
		{name: "token endpoint rejects the verifier", run: wrongVerifier, status: 400, want: []string{"did not accept", "invalid_grant"}},
		{name: "linker fails", run: linkerFails, status: 500, want: []string{"could not be saved"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.op.SetFaults(tt.faults)
			run := tt.run
			if run == nil {
				run = signIn
			}
			got := run(t, e, e.browser(t))
			if got.status != tt.status {
				t.Errorf("status %d, want %d\n%s", got.status, tt.status, got.body)
			}
			for _, w := range tt.want {
				if !strings.Contains(got.body, w) {
					t.Errorf("page does not say %q:\n%s", w, got.body)
				}
			}
			if strings.Contains(got.body, "<script>") {
				t.Errorf("page has unescaped markup:\n%s", got.body)
			}
			if cc := got.header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", cc)
			}
			links, notes := e.rec.got()
			if len(links) != tt.wantLinks || len(notes) != tt.wantLinks {
				t.Errorf("linked %d and notified %d, want %d", len(links), len(notes), tt.wantLinks)
			}
			e.checkNoSecrets(t, got)
		})
	}
}

// signIn is the usual path: this browser starts as U123 and comes back.
func signIn(t *testing.T, e *env, b *browser) page {
	t.Helper()
	loginURL, _ := e.start(t, "U123")
	return b.get(t, e.toCallback(t, b, loginURL))
}

// withoutCookie brings the callback to a browser that never saw the link.
func withoutCookie(t *testing.T, e *env, b *browser) page {
	t.Helper()
	loginURL, _ := e.start(t, "U123")
	return e.browser(t).get(t, e.toCallback(t, b, loginURL))
}

// otherBrowsersCookie brings U123's callback to a browser that is in the
// middle of its own sign-in (as U999), so has a cookie, for another state.
func otherBrowsersCookie(t *testing.T, e *env, b *browser) page {
	t.Helper()
	victim, _ := e.start(t, "U123")
	cb := e.toCallback(t, b, victim)
	other := e.browser(t)
	own, _ := e.start(t, "U999")
	e.toCallback(t, other, own)
	return other.get(t, cb)
}

// expiredState comes back to the callback after the state's TTL.
func expiredState(t *testing.T, e *env, b *browser) page {
	t.Helper()
	loginURL, _ := e.start(t, "U123")
	cb := e.toCallback(t, b, loginURL)
	e.clock.advance(DefaultStateTTL + time.Second)
	return b.get(t, cb)
}

// expiredAtLogin opens the link after the state's TTL.
func expiredAtLogin(t *testing.T, e *env, b *browser) page {
	t.Helper()
	loginURL, _ := e.start(t, "U123")
	e.clock.advance(DefaultStateTTL + time.Second)
	return b.get(t, loginURL)
}

// visit opens a path of the app.
func visit(path string) func(t *testing.T, e *env, b *browser) page {
	return func(t *testing.T, e *env, b *browser) page {
		t.Helper()
		return b.get(t, e.app.URL+path)
	}
}

// withoutCode comes back to the callback with the state but no code.
func withoutCode(t *testing.T, e *env, b *browser) page {
	t.Helper()
	loginURL, state := e.start(t, "U123")
	e.toCallback(t, b, loginURL)
	return b.get(t, e.app.URL+"/oidc/callback?state="+state)
}

// wrongVerifier swaps the pending sign-in's PKCE verifier before the
// callback, so the provider refuses the exchange.
func wrongVerifier(t *testing.T, e *env, b *browser) page {
	t.Helper()
	loginURL, state := e.start(t, "U123")
	cb := e.toCallback(t, b, loginURL)
	p, err := e.states.Take(t.Context(), state)
	if err != nil {
		t.Fatal(err)
	}
	p.Verifier = oauth2.GenerateVerifier()
	e.hide(p.Verifier)
	if err := e.states.Put(t.Context(), state, p, time.Minute); err != nil {
		t.Fatal(err)
	}
	return b.get(t, cb)
}

// linkerFails signs in while the Linker cannot save.
func linkerFails(t *testing.T, e *env, b *browser) page {
	t.Helper()
	e.rec.failWith(errors.New("redis: connection refused"))
	return signIn(t, e, b)
}

// replay finishes a sign-in, puts the binding cookie back, and opens the
// same callback again: the state is spent.
func replay(t *testing.T, e *env, b *browser) page {
	t.Helper()
	loginURL, _ := e.start(t, "U123")
	cb := e.toCallback(t, b, loginURL)
	cookie := *b.cookie(t, e)
	if first := b.get(t, cb); first.status != http.StatusOK {
		t.Fatalf("first callback: %d\n%s", first.status, first.body)
	}
	restoreCookie(t, e, b, &cookie)
	return b.get(t, cb)
}

// race opens the same callback twice at once, both with the cookie: one
// wins, the other is refused. It returns the refusal.
func race(t *testing.T, e *env, b *browser) page {
	t.Helper()
	loginURL, _ := e.start(t, "U123")
	cb := e.toCallback(t, b, loginURL)
	cookie := *b.cookie(t, e)
	other := e.browser(t)
	restoreCookie(t, e, other, &cookie)
	pages := make([]page, 2)
	var wg sync.WaitGroup
	for i, br := range []*browser{b, other} {
		wg.Go(func() {
			resp, err := br.raw.Get(cb)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			pages[i] = pageOf(t, resp)
		})
	}
	wg.Wait()
	slices.SortFunc(pages, func(a, b page) int { return a.status - b.status })
	if pages[0].status != http.StatusOK {
		t.Fatalf("neither callback won: %d, %d", pages[0].status, pages[1].status)
	}
	return pages[1]
}
