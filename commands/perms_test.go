package commands

import (
	"reflect"
	"strings"
	"testing"
)

func TestParsePermsAndIdentity(t *testing.T) {
	t.Parallel()
	table, err := NewTable("/deploy", Builtin())
	if err != nil {
		t.Fatal(err)
	}
	perms := func(action string, p PermsRequest) Request { return Request{Kind: "perms", Action: action, Perms: &p} }
	tests := []struct {
		name, text string
		want       Request
		err        string
	}{
		{name: "show all", text: "perms", want: perms("", PermsRequest{Verb: "show"})},
		{name: "show one", text: "perms show prod", want: perms("", PermsRequest{Verb: "show", Target: "prod"})},
		{name: "grant", text: "perms grant deploybot-dev deploy api staging",
			want: perms("admin", PermsRequest{Verb: "grant", Group: "deploybot-dev", Action: "deploy", Service: "api", Env: "staging"})},
		{name: "grant pattern", text: "perms GRANT sre Deploy * prod",
			want: perms("admin", PermsRequest{Verb: "grant", Group: "sre", Action: "deploy", Service: "*", Env: "prod"})},
		{name: "deny", text: "perms deny contractors deploy billing",
			want: perms("admin", PermsRequest{Verb: "deny", Group: "contractors", Action: "deploy", Service: "billing"})},
		{name: "revoke a pattern", text: "perms revoke dev *:staging:*", want: perms("admin", PermsRequest{Verb: "revoke", Group: "dev", Pattern: "*:staging:*"})},
		{name: "revoke", text: "perms revoke dev lock", want: perms("admin", PermsRequest{Verb: "revoke", Group: "dev", Action: "lock"})},
		{name: "test mention", text: "perms test <@U0123ABC|ann> deploy api prod",
			want: perms("", PermsRequest{Verb: "test", User: "U0123ABC", Action: "deploy", Service: "api", Env: "prod"})},
		{name: "test bare id", text: "perms test U0123ABC build api", want: perms("", PermsRequest{Verb: "test", User: "U0123ABC", Action: "build", Service: "api"})},
		{name: "group with spaces", text: `perms grant "Platform Engineers" deploy * staging`,
			want: perms("admin", PermsRequest{Verb: "grant", Group: "Platform Engineers", Action: "deploy", Service: "*", Env: "staging"})},
		{name: "curly quotes", text: "perms show “Platform Engineers”", want: perms("", PermsRequest{Verb: "show", Target: "Platform Engineers"})},
		{name: "history", text: "perms history", want: perms("", PermsRequest{Verb: "history"})},
		{name: "rollback", text: "perms rollback v7", want: perms("admin", PermsRequest{Verb: "rollback", Version: 7})},
		{name: "whoami", text: "whoami", want: Request{Kind: "whoami"}},
		{name: "login", text: "login", want: Request{Kind: "login"}},
		{name: "audit", text: "audit", want: Request{Kind: "audit", Action: "admin", Count: 10}},
		{name: "audit service n", text: "audit api 20", want: Request{Kind: "audit", Action: "admin", Service: "api", Count: 20}},
		{name: "audit user", text: "audit <@U0456DEF|bob>", want: Request{Kind: "audit", Action: "admin", User: "U0456DEF", Count: 10}},

		{name: "grant too short", text: "perms grant dev", err: "takes a group, an action"},
		{name: "test not a user", text: "perms test ann deploy api", err: "is not a Slack user"},
		{name: "markup refused", text: "perms grant <!channel> deploy", err: "is not a group"},
		{name: "rollback needs a number", text: "perms rollback latest", err: "takes the version"},
		{name: "unclosed quote", text: `perms grant "Platform Engineers deploy`, err: "A quote is not closed"},
		{name: "unknown verb", text: "perms destroy", err: "I don't know `perms destroy`"},
		{name: "audit too many", text: "audit 500", err: "1 to 50"},
		{name: "audit unknown service", text: "audit nosuch", err: "don't know the service"},
		{name: "whoami extra", text: "whoami now", err: "takes nothing more"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := table.Parse(tc.text, testCatalog)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Parse(%q) = %+v, %v; want an error saying %q", tc.text, got, err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Parse(%q) = %+v (%+v), %v; want %+v (%+v)", tc.text, got, got.Perms, err, tc.want, tc.want.Perms)
			}
		})
	}
}

func TestHelpForListsWhatTheUserMayRun(t *testing.T) {
	t.Parallel()
	table, err := NewTable("/deploy", Builtin())
	if err != nil {
		t.Fatal(err)
	}
	onlyBuild := func(c Command) bool { return c.Action == "" || c.Action == "build" }
	help := table.HelpFor("", testCatalog, onlyBuild)
	for _, want := range []string{"/deploy build", "/deploy status", "/deploy whoami", "more commands need permissions you don't have"} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q:\n%s", want, help)
		}
	}
	for _, hidden := range []string{"/deploy deploy", "/deploy promote", "/deploy audit", "/deploy submit"} {
		if strings.Contains(help, hidden) {
			t.Errorf("help lists %q to someone who may not run it", hidden)
		}
	}
	if !strings.Contains(table.HelpFor("promote", testCatalog, onlyBuild), "Usage: `/deploy promote") {
		t.Error("help on a command the user may not run should still explain it")
	}
}
