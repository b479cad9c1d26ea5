package authz

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-5eb4e92e/deploybot/commands"
	"github.com/seed-5eb4e92e/deploybot/worker/queue/queuetest"
)

// fakeDirectory plays Okta and Slack's users.info for the identity tests;
// the real Okta client is tested against its double in authz/okta.
type fakeDirectory struct {
	emails  map[string]string   // Slack user → e-mail
	groups  map[string][]string // e-mail → groups
	err     error
	block   chan struct{}
	lookups atomic.Int32
}

func (f *fakeDirectory) UserEmail(_ context.Context, user string) (string, error) {
	if e, ok := f.emails[user]; ok {
		return e, nil
	}
	return "", fmt.Errorf("users.info: user_not_found")
}

func (f *fakeDirectory) UserGroups(ctx context.Context, email string) (string, []string, error) {
	f.lookups.Add(1)
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return "", nil, ctx.Err()
		}
	}
	if f.err != nil {
		return "", nil, f.err
	}
	g, ok := f.groups[email]
	if !ok {
		return "", nil, fmt.Errorf("okta: %w", ErrNotInDirectory)
	}
	return "00u" + strings.Split(email, "@")[0], g, nil
}

func TestIdentitiesSources(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb, prefix := queuetest.Redis(t)
	dir := &fakeDirectory{
		emails: map[string]string{"U_ANN": "ann@example.com", "U_BOB": "bob@example.com", "U_OLD": "old@example.com"},
		groups: map[string][]string{"ann@example.com": {"deploybot-dev", "Everyone"}},
	}
	ids := NewIdentities(IdentitiesConfig{SignIn: true, Directory: dir, Emails: dir,
		Static: map[string][]string{"sre": {"U_OLD", "U_CFG"}}}, rdb, prefix, nil)

	ann, err := ids.Identify(ctx, "U_ANN")
	if err != nil || ann.Source != SourceOkta || ann.Subject != "00uann" || len(ann.Groups) != 2 {
		t.Fatalf("Identify(U_ANN) = %+v, %v; want her Okta groups", ann, err)
	}
	if _, err := ids.Identify(ctx, "U_ANN"); err != nil || dir.lookups.Load() != 1 {
		t.Fatalf("second Identify looked Okta up again (%d lookups), %v", dir.lookups.Load(), err)
	}
	old, err := ids.Identify(ctx, "U_OLD")
	if err != nil || old.Source != SourceStatic || fmt.Sprint(old.Groups) != "[sre]" {
		t.Fatalf("Identify(U_OLD), not in Okta = %+v, %v; want the config file's groups", old, err)
	}
	if _, err := ids.Identify(ctx, "U_OLD"); err != nil || dir.lookups.Load() != 2 {
		t.Fatalf("a user Okta does not know was looked up again: %d lookups, %v", dir.lookups.Load(), err)
	}
	// Signing in wins over the directory.
	err = ids.Link(ctx, Identity{SlackUser: "U_ANN", Email: "ann@example.com", Groups: []string{"deploybot-sre"}, Expires: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if ann, _ = ids.Identify(ctx, "U_ANN"); ann.Source != SourceOIDC || ann.Groups[0] != "deploybot-sre" {
		t.Fatalf("after sign-in Identify = %+v, want the signed-in identity", ann)
	}
	err = ids.Link(ctx, Identity{SlackUser: "U_BOB", Email: "ann@example.com", Groups: []string{"deploybot-sre"}, Expires: time.Now().Add(time.Hour)})
	if !errors.Is(err, ErrNotYours) {
		t.Fatalf("Bob signed in as Ann: %v, want ErrNotYours", err)
	}
	if err := ids.Link(ctx, Identity{SlackUser: "U_ANN", Expires: time.Now().Add(-time.Second)}); err == nil {
		t.Fatal("an expired identity was linked")
	}
	if err := ids.Unlink(ctx, "U_ANN"); err != nil {
		t.Fatal(err)
	}
	if ann, _ = ids.Identify(ctx, "U_ANN"); ann.Source != SourceOkta {
		t.Fatalf("after Unlink Identify = %+v, want a fresh Okta lookup", ann)
	}
	// A directory error is an error, never a fall back to other groups.
	dir.err = errors.New("okta: rate limited")
	if id, err := ids.Identify(ctx, "U_BOB"); err == nil {
		t.Fatalf("Identify with Okta failing = %+v, want an error", id)
	}
}

// TestSlowDirectoryFillsCacheForTheNextTry: a lookup that outlives the ack
// deadline goes on, once, and the next request is answered from Redis.
func TestSlowDirectoryFillsCacheForTheNextTry(t *testing.T) {
	t.Parallel()
	rdb, prefix := queuetest.Redis(t)
	dir := &fakeDirectory{emails: map[string]string{"U_ANN": "ann@example.com"},
		groups: map[string][]string{"ann@example.com": {"dev"}}, block: make(chan struct{})}
	ids := NewIdentities(IdentitiesConfig{Directory: dir, Emails: dir}, rdb, prefix, nil)
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if _, err := ids.Identify(ctx, "U_ANN"); !errors.Is(err, context.Canceled) {
				t.Errorf("Identify past its deadline = %v, want context.Canceled", err)
			}
		}()
	}
	wg.Wait()
	close(dir.block)
	deadline := time.Now().Add(10 * time.Second)
	for {
		id, err := ids.Identify(context.Background(), "U_ANN")
		if err == nil && id.Source == SourceOkta {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the background lookup never filled the cache: %+v, %v", id, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := dir.lookups.Load(); n != 1 {
		t.Fatalf("%d lookups for one user asked at once; want 1", n)
	}
}

func TestAuthorizerUsesCurrentPolicyAndFilter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb, prefix := queuetest.Redis(t)
	ids := NewIdentities(IdentitiesConfig{SignIn: true}, rdb, prefix, nil)
	if err := ids.Link(ctx, Identity{SlackUser: "U_ANN", Groups: []string{"deploybot-dev", "deploybot-dev", "Everyone"}, Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	store := NewPolicyStore(rdb, prefix)
	if _, err := store.Seed(ctx, []Rule{{Group: "deploybot-dev", Allow: []string{"deploy:staging:*"}}, {Group: "Everyone", Allow: []string{"*"}}}); err != nil {
		t.Fatal(err)
	}
	a := NewAuthorizer(ids, store, regexp.MustCompile(`^deploybot-`), "sign in with `/deploy login`")
	staging := commands.Permission{Action: "deploy", Service: "api", Env: "staging"}
	prod := commands.Permission{Action: "deploy", Service: "api", Env: "prod"}
	if err := a.Check(ctx, "U_ANN", staging); err != nil {
		t.Fatalf("staging: %v", err)
	}
	x, err := a.Explain(ctx, "U_ANN", prod)
	if err != nil || x.Decision.Allowed || fmt.Sprint(x.Groups) != "[deploybot-dev]" {
		t.Fatalf("prod = %+v, %v; the filter must drop Everyone's grant of *", x, err)
	}
	if _, err := store.Revoke(ctx, "U_SRE", "deploybot-dev", "deploy:staging:*"); err != nil {
		t.Fatal(err)
	}
	var d *Denied
	if err := a.Check(ctx, "U_ANN", staging); !errors.As(err, &d) {
		t.Fatalf("after the revoke: %v, want denied", err)
	}
	err = a.Check(ctx, "U_NOBODY", staging)
	if err == nil || !strings.Contains(err.Error(), "no deploybot group — sign in with `/deploy login`") {
		t.Fatalf("someone in no group: %v, want the sign-in hint", err)
	}
}
