package authz

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/seed-5eb4e92e/deploybot/commands"
)

// Actions are the verbs a rule can grant. "*" grants all of them.
var actions = []string{"deploy", "promote", "rollback", "build", "lock", "submit", "recheck", "approve", "admin"}

// Actions returns the verbs a rule can grant, in the order help shows them.
func Actions() []string { return slices.Clone(actions) }

// Decision is what the rules say about one permission for a set of groups,
// and which rule said it.
type Decision struct {
	Allowed bool
	// Group and Pattern name the rule that decided: the deny that matched,
	// or the first allow that did. Both are empty when nothing matched
	// (the default deny).
	Group   string
	Pattern string
	// Deny is true when a deny rule decided.
	Deny bool
}

// Explain is the decision in a sentence, for /deploy perms test.
func (d Decision) Explain() string {
	switch {
	case d.Deny:
		return fmt.Sprintf("denied by the rule `%s` of group `%s` (deny rules win)", d.Pattern, d.Group)
	case d.Allowed && d.Pattern == "":
		return "allowed: it needs no permission"
	case d.Allowed:
		return fmt.Sprintf("allowed by the rule `%s` of group `%s`", d.Pattern, d.Group)
	}
	return "denied: no rule of their groups allows it (the default is deny)"
}

// Decide applies rules to a user in groups. Deny rules win over allow rules,
// and anything not allowed is denied. Read-only permissions are allowed. A
// permission that names no service (AnyService) is allowed when the action
// is allowed on some service and not denied on all of them; the exact
// service is checked later.
func Decide(rules []Rule, groups []string, perm commands.Permission) Decision {
	if perm.ReadOnly() {
		return Decision{Allowed: true}
	}
	want := perm.String()
	allow, deny := Match, Match
	switch {
	case perm.Action == "admin":
		// admin is one permission, not an action on some service: only
		// "admin" or "*" grants it, never a pattern like "*:staging:*".
		allow, deny = matchExactly, matchExactly
	case perm.AnyService():
		want = perm.Action
		allow, deny = matchAction, matchActionEverywhere
	}
	var granted Decision
	for _, r := range rules {
		if !slices.Contains(groups, r.Group) {
			continue
		}
		for _, pat := range r.Deny {
			if deny(pat, want) {
				return Decision{Group: r.Group, Pattern: pat, Deny: true}
			}
		}
		for _, pat := range r.Allow {
			if !granted.Allowed && allow(pat, want) {
				granted = Decision{Allowed: true, Group: r.Group, Pattern: pat}
			}
		}
	}
	return granted
}

func matchExactly(pattern, perm string) bool { return pattern == "*" || pattern == perm }

// CheckRules reports the first invalid rule: one without a group or with a
// bad pattern.
func CheckRules(rules []Rule) error {
	for i, r := range rules {
		if r.Group == "" {
			return fmt.Errorf("authz: rule %d has no group", i)
		}
		for _, pat := range append(slices.Clone(r.Allow), r.Deny...) {
			if err := CheckPattern(pat); err != nil {
				return fmt.Errorf("authz: rule %d (group %s): %w", i, r.Group, err)
			}
		}
	}
	return nil
}

// GrantPattern is the pattern a grant of action on service in env stands
// for, in the form the permission's String has: "deploy:prod:api",
// "build:api", "lock:prod", "admin". Service and env default to "*"; an
// action that does not take one of them refuses anything but "*" there.
// For lock and approve, which take only an environment, a lone name is the
// environment: "lock prod".
func GrantPattern(action, service, env string) (string, error) {
	if (action == "lock" || action == "approve") && env == "" {
		service, env = "", service
	}
	if service == "" {
		service = "*"
	}
	if env == "" {
		env = "*"
	}
	for _, s := range []string{service, env} {
		if err := CheckPattern(s); err != nil || strings.Contains(s, ":") {
			return "", fmt.Errorf("%q is not a name or a pattern like `api-*`", s)
		}
	}
	var pat string
	switch action {
	case "*":
		if service != "*" || env != "*" {
			return "", fmt.Errorf("`*` grants every action everywhere; name an action to limit it to a service or environment")
		}
		pat = "*"
	case "deploy", "promote", "rollback":
		pat = action + ":" + env + ":" + service
		if env == "*" && service == "*" {
			pat = action + ":*"
		}
	case "build", "submit", "recheck":
		if env != "*" {
			return "", fmt.Errorf("%s is not limited to an environment; leave the environment out", action)
		}
		pat = action + ":" + service
	case "lock", "approve":
		if service != "*" {
			return "", fmt.Errorf("%s is granted per environment, not per service: use `* <env>`", action)
		}
		pat = action + ":" + env
	case "admin":
		if service != "*" || env != "*" {
			return "", fmt.Errorf("admin is not limited to a service or environment")
		}
		pat = "admin"
	default:
		return "", fmt.Errorf("%q is not an action; the actions are %s and *", action, strings.Join(actions, ", "))
	}
	return pat, nil
}

// withGrant returns rules with pattern added to group's allow (or deny)
// list, and whether that changed anything.
func withGrant(rules []Rule, group, pattern string, deny bool) ([]Rule, bool) {
	out := cloneRules(rules)
	i := slices.IndexFunc(out, func(r Rule) bool { return r.Group == group })
	if i < 0 {
		out = append(out, Rule{Group: group})
		i = len(out) - 1
	}
	list := &out[i].Allow
	if deny {
		list = &out[i].Deny
	}
	if slices.Contains(*list, pattern) {
		return rules, false
	}
	*list = append(*list, pattern)
	return out, true
}

// Canonical is pattern in its shortest form of the same meaning: trailing
// "*" parts after a "*" add nothing ("rollback:*:*" is "rollback:*").
func Canonical(pattern string) string {
	segs := strings.Split(pattern, ":")
	for len(segs) > 2 && segs[len(segs)-1] == "*" && segs[len(segs)-2] == "*" {
		segs = segs[:len(segs)-1]
	}
	return strings.Join(segs, ":")
}

// withoutGrant returns rules with pattern (or one of the same meaning)
// removed from group's allow and deny lists, and whether it was there. A
// rule left empty is dropped.
func withoutGrant(rules []Rule, group, pattern string) ([]Rule, bool) {
	pattern = Canonical(pattern)
	out := make([]Rule, 0, len(rules))
	found := false
	for _, r := range cloneRules(rules) {
		if r.Group == group {
			n := len(r.Allow) + len(r.Deny)
			same := func(p string) bool { return Canonical(p) == pattern }
			r.Allow = slices.DeleteFunc(r.Allow, same)
			r.Deny = slices.DeleteFunc(r.Deny, same)
			found = found || len(r.Allow)+len(r.Deny) < n
			if len(r.Allow)+len(r.Deny) == 0 {
				continue
			}
		}
		out = append(out, r)
	}
	return out, found
}

func cloneRules(rules []Rule) []Rule {
	out := make([]Rule, len(rules))
	for i, r := range rules {
		out[i] = Rule{Group: r.Group, Allow: slices.Clone(r.Allow), Deny: slices.Clone(r.Deny)}
	}
	return out
}

// Covers reports whether pattern can match a permission on service (when
// not "") in env (when not ""): what /deploy perms show lists for a
// service or an environment.
func Covers(pattern, service, env string) bool {
	segs := strings.Split(pattern, ":")
	if len(segs) == 1 {
		return true
	}
	// The parts a pattern has for the service and the environment; ""
	// where its action takes none.
	var svcGlob, envGlob string
	switch {
	case len(segs) == 3:
		envGlob, svcGlob = segs[1], segs[2]
	case slices.Contains([]string{"lock", "approve"}, segs[0]):
		envGlob = segs[1]
	case slices.Contains([]string{"build", "submit", "recheck"}, segs[0]):
		svcGlob = segs[1]
	case segs[1] == "*":
		envGlob, svcGlob = "*", "*"
	}
	glob := func(g, name string) bool {
		if name == "" {
			return true
		}
		ok, _ := path.Match(g, name)
		return g != "" && ok
	}
	return glob(svcGlob, service) && glob(envGlob, env)
}
