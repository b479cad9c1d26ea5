package commands

import (
	"regexp"
	"strconv"
	"strings"
)

// PermsRequest is what a /deploy perms command asks.
type PermsRequest struct {
	// Verb is "show", "grant", "deny", "revoke", "test", "history" or
	// "rollback".
	Verb string `json:"verb"`
	// Target is what show is limited to: a group, a service or an
	// environment (the responder tells which).
	Target string `json:"target,omitempty"`
	// Group, Action, Service and Env are the rule a grant, deny or revoke
	// is about; Service and Env may be patterns, "" meaning "*".
	Group   string `json:"group,omitempty"`
	Action  string `json:"action,omitempty"`
	Service string `json:"service,omitempty"`
	Env     string `json:"env,omitempty"`
	// Pattern is a rule's pattern written out ("rollback:*:*"), which
	// grant, deny and revoke take instead of an action, service and env.
	Pattern string `json:"pattern,omitempty"`
	// User is the Slack user ID a test is about.
	User string `json:"user,omitempty"`
	// Version is the version a rollback goes back to.
	Version int64 `json:"version,omitempty"`
}

// Changes reports whether the request changes the policy (and so needs
// admin).
func (p PermsRequest) Changes() bool {
	switch p.Verb {
	case "grant", "deny", "revoke", "rollback":
		return true
	}
	return false
}

const permsUsage = "Usage: `/deploy perms show [group|service|env]`, `/deploy perms grant|deny|revoke <group> <action> [service] [env]` (or `<group> <pattern>`), " +
	"`/deploy perms test @user <action> [service] [env]`, `/deploy perms history`, `/deploy perms rollback <version>`"

// ruleName is a group, action, service or environment as a rule names it:
// a name or a glob, nothing that could be read as markup.
var ruleName = regexp.MustCompile(`^[A-Za-z0-9*?_.@-][A-Za-z0-9*?_.@ -]{0,99}$`)

// rawPattern is a pattern written out, as perms show lists it.
var rawPattern = regexp.MustCompile(`^[A-Za-z0-9*?_.-]+(:[A-Za-z0-9*?_.-]+){1,2}$`)

// slackUser is a user mention as Slack escapes it, or a bare user ID.
var slackUser = regexp.MustCompile(`^(?:<@([UW][A-Z0-9]{2,20})(?:\|[^>]*)?>|@?([UW][A-Z0-9]{2,20}))$`)

func permsCommand() Command {
	return Command{
		Name:    "perms",
		Args:    "show|grant|deny|revoke|test|history|rollback …",
		Summary: "Show who may do what; admins grant, deny and revoke actions to groups, test a user, and roll the policy back.",
		Example: "grant deploybot-dev deploy api staging",
		Parse:   parsePerms,
	}
}

func parsePerms(args []string, _ Catalog) (Request, error) {
	p := PermsRequest{Verb: "show"}
	if len(args) > 0 {
		p.Verb, args = strings.ToLower(args[0]), args[1:]
	}
	args, err := joinQuoted(args)
	if err != nil {
		return Request{}, err
	}
	req := Request{Perms: &p}
	switch p.Verb {
	case "show":
		if len(args) > 1 {
			return Request{}, usageErrorf(permsUsage, "`perms show` takes at most one group, service or environment.")
		}
		if len(args) == 1 {
			p.Target = args[0]
		}
	case "grant", "deny", "revoke":
		if err := parseRule(&p, args); err != nil {
			return Request{}, err
		}
		req.Action = "admin"
	case "test":
		if len(args) < 2 || len(args) > 4 {
			return Request{}, usageErrorf(permsUsage, "`perms test` takes a user, an action, and optionally a service and an environment.")
		}
		m := slackUser.FindStringSubmatch(args[0])
		if m == nil {
			return Request{}, usageErrorf(permsUsage, "%q is not a Slack user; mention them, like `@ann`.", args[0])
		}
		p.User = m[1] + m[2]
		p.Action, p.Service, p.Env = strings.ToLower(args[1]), optional(args, 2), optional(args, 3)
	case "history":
		if len(args) > 0 {
			return Request{}, usageErrorf(permsUsage, "`perms history` takes nothing more.")
		}
	case "rollback":
		n, err := strconv.ParseInt(strings.TrimPrefix(strings.Join(args, ""), "v"), 10, 64)
		if len(args) != 1 || err != nil || n < 1 {
			return Request{}, usageErrorf(permsUsage, "`perms rollback` takes the version to go back to, as `perms history` numbers them.")
		}
		p.Version = n
		req.Action = "admin"
	default:
		return Request{}, usageErrorf(permsUsage, "I don't know `perms %s`.", p.Verb)
	}
	return req, checkRuleNames(p)
}

// checkRuleNames refuses names that could be read as markup or that no
// rule could hold.
func checkRuleNames(p PermsRequest) error {
	for _, s := range []string{p.Target, p.Group, p.Action, p.Service, p.Env} {
		if s != "" && !ruleName.MatchString(s) {
			return usageErrorf(permsUsage, "%q is not a group, action, service or environment name.", s)
		}
	}
	return nil
}

// parseRule reads the rule a grant, deny or revoke is about: a group and
// an action with an optional service and environment, or a group and a
// written-out pattern.
func parseRule(p *PermsRequest, args []string) error {
	if len(args) < 2 || len(args) > 4 {
		return usageErrorf(permsUsage, "`perms %s` takes a group, an action, and optionally a service and an environment.", p.Verb)
	}
	p.Group, p.Action = args[0], strings.ToLower(args[1])
	p.Service, p.Env = optional(args, 2), optional(args, 3)
	if strings.Contains(p.Action, ":") && len(args) == 2 && rawPattern.MatchString(args[1]) {
		p.Pattern, p.Action = args[1], ""
	}
	return nil
}

// joinQuoted joins words in quotes into one, for group names with spaces
// ("Platform Engineers"); Slack may send the quotes curly.
func joinQuoted(args []string) ([]string, error) {
	var out []string
	var open []string
	for _, a := range args {
		a = strings.NewReplacer("“", `"`, "”", `"`).Replace(a)
		switch {
		case open == nil && strings.HasPrefix(a, `"`) && len(a) > 1 && strings.HasSuffix(a, `"`):
			out = append(out, strings.Trim(a, `"`))
		case open == nil && strings.HasPrefix(a, `"`):
			open = []string{strings.TrimPrefix(a, `"`)}
		case open != nil && strings.HasSuffix(a, `"`):
			out = append(out, strings.Join(append(open, strings.TrimSuffix(a, `"`)), " "))
			open = nil
		case open != nil:
			open = append(open, a)
		default:
			out = append(out, a)
		}
	}
	if open != nil {
		return nil, usageErrorf(permsUsage, "A quote is not closed: %q.", `"`+strings.Join(open, " "))
	}
	return out, nil
}

func optional(args []string, i int) string {
	if i < len(args) {
		return args[i]
	}
	return ""
}
