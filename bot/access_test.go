package bot

import (
	"context"
	"strings"
	"testing"

	"github.com/seed-5eb4e92e/deploybot/authz"
	"github.com/seed-5eb4e92e/deploybot/worker/queue/queuetest"
)

// accessFixture is a responder whose policy lives in Redis: USRE1 is an
// admin, UDEV1 may build and deploy to staging.
func accessFixture(t *testing.T) (*fixture, *authz.Audit) {
	t.Helper()
	ctx := context.Background()
	rdb, prefix := queuetest.Redis(t)
	ids := authz.NewIdentities(authz.IdentitiesConfig{Static: map[string][]string{"sre": {"USRE1"}, "dev": {"UDEV1"}}}, rdb, prefix, nil)
	store := authz.NewPolicyStore(rdb, prefix)
	if _, err := store.Seed(ctx, []authz.Rule{{Group: "sre", Allow: []string{"*"}}, {Group: "dev", Allow: []string{"build:*", "deploy:staging:*"}}}); err != nil {
		t.Fatal(err)
	}
	audit := authz.NewAudit(authz.AuditConfig{}, rdb, prefix)
	f := newFixture(t, authz.NewAuthorizer(ids, store, nil, ""), Config{})
	f.r.policy, f.r.audit = store, audit
	return f, audit
}

func TestPermsFromSlack(t *testing.T) {
	t.Parallel()
	f, audit := accessFixture(t)
	steps := []struct {
		user, text string
		want       []string
	}{
		{"UDEV1", "whoami", []string{"known from deploybot's config file", "Your groups: dev", "*dev* may `build:*`, `deploy:staging:*`"}},
		{"UDEV1", "perms grant dev deploy api prod", []string{"⛔ Not allowed: you may not manage permissions", "needs `admin`"}},
		{"USRE1", "perms grant dev deploy api prod", []string{"✅ Policy version 2: grant dev deploy:prod:api", "perms rollback 1` undoes it"}},
		{"USRE1", "perms test <@UDEV1|dev> deploy api prod", []string{"✅ may `deploy:prod:api`: allowed by the rule `deploy:prod:api` of group `dev`", "policy version 2"}},
		{"USRE1", "perms revoke dev deploy api prod", []string{"Policy version 3: revoke dev deploy:prod:api"}},
		{"USRE1", "perms test UDEV1 deploy api prod", []string{"⛔ may not `deploy:prod:api`", "default is deny"}},
		{"USRE1", "perms revoke dev lock prod", []string{"Nothing changed: group `dev` has no rule `lock:prod`"}},
		{"USRE1", "perms grant dev build api prod", []string{"Nothing changed: build is not limited to an environment"}},
		{"USRE1", "perms rollback 2", []string{"Policy version 4: rollback to version 2"}},
		{"UDEV1", "perms show prod", []string{"Policy version 4", "*dev* may `deploy:prod:api`", "*sre* may `*`"}},
		{"UDEV1", "perms history", []string{"*4* — rollback to version 2, by <@USRE1>", "*1* — seeded from the config file, by the config file"}},
		{"USRE1", "perms rollback 9", []string{"There is no policy version 9"}},
		{"USRE1", "perms revoke dev build:*", []string{"Policy version 5: revoke dev build:*"}},
		{"UDEV1", "login", []string{"Signing in is not set up here"}},
	}
	for _, st := range steps {
		got := strings.Join(sectionTexts(t, f.command(t, st.text, st.user, "ephemeral")), "\n")
		for _, w := range st.want {
			if !strings.Contains(got, w) {
				t.Fatalf("%s: /deploy %s answered\n%s\nwant it to contain %q", st.user, st.text, got, w)
			}
		}
	}
	f.r.Wait() // entries are appended after each answer
	entries, err := audit.Recent(context.Background(), authz.AuditFilter{}, 50)
	if err != nil || len(entries) != len(steps) {
		t.Fatalf("audit has %d entries (%v), want one per command: %d", len(entries), err, len(steps))
	}
	var denied, changed int
	for _, e := range entries {
		switch {
		case e.Outcome == "denied" && e.User == "UDEV1" && e.Detail == "admin":
			denied++
		case e.Outcome == "changed" && e.Kind == "policy" && strings.HasPrefix(e.Detail, "policy version "):
			changed++
		}
	}
	if denied != 1 || changed != 4 {
		t.Fatalf("audit recorded %d denials and %d policy changes, want 1 and 4: %+v", denied, changed, entries)
	}
	// /deploy audit reads it back, to admins only.
	if got := strings.Join(sectionTexts(t, f.command(t, "audit <@UDEV1> 5", "USRE1", "ephemeral")), "\n"); !strings.Contains(got, "<@UDEV1> command `/deploy perms grant dev deploy api prod` → *denied* — admin") {
		t.Fatalf("audit answered\n%s", got)
	}
	if got := strings.Join(sectionTexts(t, f.command(t, "audit", "UDEV1", "ephemeral")), "\n"); !strings.Contains(got, "Not allowed") {
		t.Fatalf("a non-admin read the audit trail:\n%s", got)
	}
}

func TestHelpListsWhatTheUserMayRun(t *testing.T) {
	t.Parallel()
	f, _ := accessFixture(t)
	dev := strings.Join(sectionTexts(t, f.command(t, "help", "UDEV1", "ephemeral")), "\n")
	sre := strings.Join(sectionTexts(t, f.command(t, "help", "USRE1", "ephemeral")), "\n")
	for _, hidden := range []string{"/deploy submit", "/deploy audit", "/deploy lock"} {
		if strings.Contains(dev, hidden) {
			t.Errorf("help lists %s to a developer who may not run it", hidden)
		}
		if !strings.Contains(sre, hidden) {
			t.Errorf("help hides %s from an admin", hidden)
		}
	}
	if !strings.Contains(dev, "/deploy build") || !strings.Contains(dev, "more commands need permissions you don't have") {
		t.Errorf("developer's help:\n%s", dev)
	}
}
