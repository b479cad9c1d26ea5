package authz

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/seed-5eb4e92e/deploybot/commands"
)

func TestStaticCheck(t *testing.T) {
	t.Parallel()
	s, err := NewStatic(Policy{
		Groups: map[string][]string{
			"sre":      {"U_SRE"},
			"dev":      {"U_DEV", "U_BOTH"},
			"interns":  {"U_BOTH"},
			"lockdown": {"U_LOCKED"},
		},
		Rules: []Rule{
			{Group: "sre", Allow: []string{"*"}},
			{Group: "dev", Allow: []string{"build:*", "deploy:dev:*", "deploy:staging:*"}},
			{Group: "interns", Deny: []string{"deploy:*"}},
			{Group: "lockdown", Allow: []string{"build:*"}, Deny: []string{"build:billing"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	build := func(svc string) commands.Permission { return commands.Permission{Action: "build", Service: svc} }
	deploy := func(env, svc string) commands.Permission {
		return commands.Permission{Action: "deploy", Service: svc, Env: env}
	}
	tests := []struct {
		name   string
		user   string
		perm   commands.Permission
		allow  bool
		denyBy string
	}{
		{name: "sre anything", user: "U_SRE", perm: deploy("prod", "api"), allow: true},
		{name: "dev builds", user: "U_DEV", perm: build("api"), allow: true},
		{name: "dev deploys staging", user: "U_DEV", perm: deploy("staging", "api"), allow: true},
		{name: "dev not prod", user: "U_DEV", perm: deploy("prod", "api")},
		{name: "deny wins over allow", user: "U_BOTH", perm: deploy("dev", "api"), denyBy: "deploy:*"},
		{name: "deny is specific", user: "U_LOCKED", perm: build("billing"), denyBy: "build:billing"},
		{name: "allow beside a deny", user: "U_LOCKED", perm: build("api"), allow: true},
		{name: "stranger denied", user: "U_NOBODY", perm: build("api")},
		{name: "read-only allowed", user: "U_NOBODY", perm: commands.Permission{Service: "api"}, allow: true},
		{name: "some service: allowed on one", user: "U_LOCKED", perm: commands.Permission{Action: "build"}, allow: true},
		{name: "some service: denied everywhere", user: "U_BOTH", perm: commands.Permission{Action: "deploy"}, denyBy: "deploy:*"},
		{name: "some service: no grant", user: "U_DEV", perm: commands.Permission{Action: "submit"}},
		{name: "some service: a specific deny is not all", user: "U_LOCKED", perm: commands.Permission{Action: "build"}, allow: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := s.Check(context.Background(), tc.user, tc.perm)
			if tc.allow {
				if err != nil {
					t.Fatalf("Check(%s, %s) = %v, want allowed", tc.user, tc.perm, err)
				}
				return
			}
			var d *Denied
			if !errors.As(err, &d) || !errors.Is(err, ErrForbidden) {
				t.Fatalf("Check(%s, %s) = %v, want *Denied wrapping ErrForbidden", tc.user, tc.perm, err)
			}
			if d.DeniedBy != tc.denyBy {
				t.Fatalf("DeniedBy = %q, want %q", d.DeniedBy, tc.denyBy)
			}
			if !strings.Contains(err.Error(), tc.perm.Action) {
				t.Fatalf("denial %q does not name the action %s", err, tc.perm.Action)
			}
		})
	}
}

func TestZeroPolicyDeniesEverything(t *testing.T) {
	t.Parallel()
	s, err := NewStatic(Policy{})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Check(context.Background(), "U1", commands.Permission{Action: "build", Service: "api"})
	if !errors.Is(err, ErrForbidden) {
		t.Fatalf("zero policy allowed a build: %v", err)
	}
}

func TestNewStaticRejectsBadPolicies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		p    Policy
	}{
		{name: "rule without group", p: Policy{Rules: []Rule{{Allow: []string{"*"}}}}},
		{name: "unknown group", p: Policy{Rules: []Rule{{Group: "ghosts", Allow: []string{"*"}}}}},
		{name: "bad glob", p: Policy{Groups: map[string][]string{"g": {"U"}}, Rules: []Rule{{Group: "g", Allow: []string{"build:[a"}}}}},
		{name: "too many parts", p: Policy{Groups: map[string][]string{"g": {"U"}}, Rules: []Rule{{Group: "g", Allow: []string{"a:b:c:d"}}}}},
		{name: "empty part", p: Policy{Groups: map[string][]string{"g": {"U"}}, Rules: []Rule{{Group: "g", Deny: []string{"build::x"}}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := NewStatic(tc.p); err == nil {
				t.Fatal("NewStatic accepted a bad policy")
			}
		})
	}
}

func TestMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, perm string
		want          bool
	}{
		{"*", "build:api", true},
		{"*", "deploy:prod:api", true},
		{"build:*", "build:api", true},
		{"build:api", "build:web", false},
		{"build:a*", "build:api", true},
		{"deploy:*", "deploy:prod:api", true},
		{"deploy:staging:*", "deploy:prod:api", false},
		{"deploy:staging:api", "deploy:staging:api", true},
		{"deploy:prod", "deploy:prod:api", false},
		{"build:api:x", "build:api", false},
	}
	for _, tc := range tests {
		if got := Match(tc.pattern, tc.perm); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pattern, tc.perm, got, tc.want)
		}
	}
}

// TestDeniedSaysWhat: the refusal names the service, the environment or
// both, and the grant that would allow it.
func TestDeniedSaysWhat(t *testing.T) {
	t.Parallel()
	cases := []struct {
		perm commands.Permission
		want string
	}{
		{commands.Permission{Action: "build", Service: "api"}, "you may not build api (needs `build:api`)"},
		{commands.Permission{Action: "deploy", Env: "prod", Service: "api"}, "you may not deploy api in prod (needs `deploy:prod:api`)"},
		{commands.Permission{Action: "lock", Env: "prod"}, "you may not lock prod (needs `lock:prod`)"},
	}
	for _, tc := range cases {
		if got := (&Denied{Permission: tc.perm}).Error(); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.perm, got, tc.want)
		}
	}
}
