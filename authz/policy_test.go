package authz

import (
	"strings"
	"testing"

	"github.com/seed-5eb4e92e/deploybot/commands"
)

func TestDecideSaysWhichRule(t *testing.T) {
	t.Parallel()
	rules := []Rule{
		{Group: "sre", Allow: []string{"*"}},
		{Group: "dev", Allow: []string{"build:*", "deploy:staging:*", "promote:staging:*"}},
		{Group: "contractors", Deny: []string{"deploy:*:billing"}},
		{Group: "approvers", Allow: []string{"approve:prod"}},
		{Group: "stagers", Allow: []string{"*:staging:*", "a*:x"}},
	}
	deploy := func(env, svc string) commands.Permission {
		return commands.Permission{Action: "deploy", Env: env, Service: svc}
	}
	tests := []struct {
		name    string
		groups  []string
		perm    commands.Permission
		want    Decision
		explain string
	}{
		{name: "allowed by the first matching allow", groups: []string{"dev"}, perm: deploy("staging", "api"),
			want: Decision{Allowed: true, Group: "dev", Pattern: "deploy:staging:*"}, explain: "allowed by the rule `deploy:staging:*` of group `dev`"},
		{name: "deny wins", groups: []string{"sre", "contractors"}, perm: deploy("prod", "billing"),
			want: Decision{Group: "contractors", Pattern: "deploy:*:billing", Deny: true}, explain: "denied by the rule `deploy:*:billing`"},
		{name: "default deny", groups: []string{"dev"}, perm: deploy("prod", "api"), want: Decision{}, explain: "default is deny"},
		{name: "no groups", perm: deploy("dev", "api"), want: Decision{}, explain: "default is deny"},
		{name: "promote is its own action", groups: []string{"dev"}, perm: commands.Permission{Action: "promote", Env: "prod", Service: "api"}, want: Decision{}},
		{name: "approve per environment", groups: []string{"approvers"}, perm: commands.Permission{Action: "approve", Env: "prod"},
			want: Decision{Allowed: true, Group: "approvers", Pattern: "approve:prod"}},
		{name: "admin only from star or admin", groups: []string{"dev"}, perm: commands.Permission{Action: "admin"}, want: Decision{}},
		{name: "a wildcard action is not admin", groups: []string{"stagers"}, perm: commands.Permission{Action: "admin"}, want: Decision{}},
		{name: "a wildcard action works on its environment", groups: []string{"stagers"}, perm: deploy("staging", "api"),
			want: Decision{Allowed: true, Group: "stagers", Pattern: "*:staging:*"}},
		{name: "star grants admin", groups: []string{"sre"}, perm: commands.Permission{Action: "admin"}, want: Decision{Allowed: true, Group: "sre", Pattern: "*"}},
		{name: "read-only needs nothing", perm: commands.Permission{Service: "api"}, want: Decision{Allowed: true}, explain: "needs no permission"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := Decide(rules, tc.groups, tc.perm)
			if got != tc.want {
				t.Fatalf("Decide(%v, %s) = %+v, want %+v", tc.groups, tc.perm, got, tc.want)
			}
			if !strings.Contains(got.Explain(), tc.explain) {
				t.Fatalf("Explain() = %q, want it to say %q", got.Explain(), tc.explain)
			}
		})
	}
}

func TestGrantPattern(t *testing.T) {
	t.Parallel()
	tests := []struct {
		action, service, env string
		want                 string
		err                  string
	}{
		{"deploy", "api", "prod", "deploy:prod:api", ""},
		{"deploy", "*", "prod", "deploy:prod:*", ""},
		{"rollback", "", "", "rollback:*", ""},
		{"promote", "api-*", "staging", "promote:staging:api-*", ""},
		{"build", "api", "", "build:api", ""},
		{"build", "api", "*", "build:api", ""},
		{"build", "api", "prod", "", "not limited to an environment"},
		{"lock", "*", "prod", "lock:prod", ""},
		{"lock", "api", "prod", "", "per environment"},
		{"approve", "", "prod", "approve:prod", ""},
		{"lock", "prod", "", "lock:prod", ""},
		{"admin", "", "", "admin", ""},
		{"admin", "api", "", "", "not limited"},
		{"*", "", "", "*", ""},
		{"*", "api", "", "", "name an action"},
		{"destroy", "api", "", "", "not an action"},
		{"deploy", "a:b", "prod", "", "not a name"},
		{"deploy", "[x", "prod", "", "not a name"},
	}
	for _, tc := range tests {
		got, err := GrantPattern(tc.action, tc.service, tc.env)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("GrantPattern(%q, %q, %q) = %q, %v; want an error saying %q", tc.action, tc.service, tc.env, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("GrantPattern(%q, %q, %q) = %q, %v; want %q", tc.action, tc.service, tc.env, got, err, tc.want)
		}
		// What a grant stands for must allow what it names.
		perm := commands.Permission{Action: tc.action, Service: tc.service, Env: tc.env}
		if tc.action == "*" || strings.ContainsAny(tc.service+tc.env, "*") || tc.service == "" && tc.env == "" {
			continue
		}
		if tc.action == "build" {
			perm.Env = ""
		}
		if !Decide([]Rule{{Group: "g", Allow: []string{got}}}, []string{"g"}, perm).Allowed {
			t.Errorf("grant %q does not allow %s", got, perm)
		}
	}
}

func TestGrantAndRevokeEditRules(t *testing.T) {
	t.Parallel()
	rules := []Rule{{Group: "dev", Allow: []string{"build:*"}}}
	next, changed := withGrant(rules, "dev", "deploy:staging:*", false)
	if !changed || len(next[0].Allow) != 2 || len(rules[0].Allow) != 1 {
		t.Fatalf("withGrant: %+v (changed %v); the input must stay as it was: %+v", next, changed, rules)
	}
	if _, changed := withGrant(next, "dev", "deploy:staging:*", false); changed {
		t.Fatal("granting twice changed the rules")
	}
	next, _ = withGrant(next, "interns", "deploy:*", true)
	if next[1].Group != "interns" || next[1].Deny[0] != "deploy:*" {
		t.Fatalf("deny for a new group: %+v", next)
	}
	next, found := withoutGrant(next, "interns", "deploy:*")
	if !found || len(next) != 1 {
		t.Fatalf("revoking the only pattern should drop the rule: %+v", next)
	}
	seeded := []Rule{{Group: "dev", Allow: []string{"rollback:*:*", "build:*"}}}
	if next, found := withoutGrant(seeded, "dev", "rollback:*"); !found || len(next[0].Allow) != 1 {
		t.Fatalf("revoking rollback:* did not remove the seeded rollback:*:*: %+v", next)
	}
	if _, found := withoutGrant(next, "dev", "lock:prod"); found {
		t.Fatal("revoking a pattern the group does not have reported a change")
	}
}

func TestCovers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, service, env string
		want                  bool
	}{
		{"*", "api", "", true},
		{"deploy:*", "", "prod", true},
		{"deploy:prod:api", "", "prod", true},
		{"deploy:prod:api", "", "staging", false},
		{"deploy:*:api", "api", "", true},
		{"deploy:*:api", "web", "", false},
		{"build:*", "", "prod", false},
		{"build:*", "api", "", true},
		{"*:*", "api", "prod", true},
		{"build:api", "", "prod", false},
		{"build:a*", "api", "", true},
		{"lock:prod", "", "prod", true},
		{"lock:prod", "api", "", false},
		{"admin", "api", "", true},
	}
	for _, tc := range tests {
		if got := Covers(tc.pattern, tc.service, tc.env); got != tc.want {
			t.Errorf("Covers(%q, %q, %q) = %v, want %v", tc.pattern, tc.service, tc.env, got, tc.want)
		}
	}
}
