// Package authz decides who may do what. For now the policy comes from the
// config file: groups of Slack users, and rules that allow or deny
// permissions ("build:api", "deploy:staging:*") to groups. Deny rules win and
// anything not allowed is denied.
package authz

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/seed-5eb4e92e/deploybot/commands"
)

// ErrForbidden is what every denial wraps.
var ErrForbidden = errors.New("forbidden")

// Denied says which permission a user lacked. Its Error text is safe to show
// the user: it names only them, the permission and their groups.
type Denied struct {
	User       string
	Permission commands.Permission
	Groups     []string
	// DeniedBy is the deny pattern that matched, if a deny rule decided.
	DeniedBy string
	// Hint ends the message of someone in no group: how to get one.
	Hint string
}

// Error names the permission and the user's groups.
func (d *Denied) Error() string {
	if d.Permission.Action == "admin" {
		return d.finish("you may not manage permissions or read the audit trail (needs `admin`)")
	}
	if d.Permission.AnyService() {
		msg := fmt.Sprintf("you may not %s anything (needs a `%s:` grant for some service)", d.Permission.Action, d.Permission.Action)
		return d.finish(msg)
	}
	what := d.Permission.Service
	switch {
	case d.Permission.Env != "" && what == "":
		what = d.Permission.Env
	case d.Permission.Env != "":
		what += " in " + d.Permission.Env
	}
	msg := fmt.Sprintf("you may not %s %s (needs `%s`)", d.Permission.Action, what, d.Permission)
	return d.finish(msg)
}

func (d *Denied) finish(msg string) string {
	if d.DeniedBy != "" {
		msg += fmt.Sprintf("; it is denied by the rule `%s`", d.DeniedBy)
	}
	if len(d.Groups) == 0 && d.Hint != "" {
		return msg + "; you are in no deploybot group — " + d.Hint
	}
	if len(d.Groups) == 0 {
		return msg + "; you are in no deploybot group"
	}
	return msg + "; your groups: " + strings.Join(d.Groups, ", ")
}

// Unwrap makes errors.Is(err, ErrForbidden) true.
func (d *Denied) Unwrap() error { return ErrForbidden }

// Rule grants or withholds permissions from one group.
type Rule struct {
	Group string   `yaml:"group"`
	Allow []string `yaml:"allow"`
	Deny  []string `yaml:"deny"`
}

// Policy is the static policy: who is in which group, and what each group may
// do. Its zero value denies everything.
type Policy struct {
	// Groups maps a group name to the Slack user IDs in it.
	Groups map[string][]string `yaml:"groups"`
	Rules  []Rule              `yaml:"rules"`
}

// Static checks requests against a Policy.
type Static struct {
	userGroups map[string][]string
	rules      []Rule
}

// NewStatic validates p and indexes it.
func NewStatic(p Policy) (*Static, error) {
	s := &Static{userGroups: make(map[string][]string), rules: p.Rules}
	for group, users := range p.Groups {
		for _, u := range users {
			s.userGroups[u] = append(s.userGroups[u], group)
		}
	}
	for u := range s.userGroups {
		sort.Strings(s.userGroups[u])
	}
	if err := CheckRules(p.Rules); err != nil {
		return nil, err
	}
	for i, r := range p.Rules {
		if _, ok := p.Groups[r.Group]; !ok {
			return nil, fmt.Errorf("authz: rule %d names group %q, which has no members", i, r.Group)
		}
	}
	return s, nil
}

// Groups returns the groups user belongs to.
func (s *Static) Groups(user string) []string { return s.userGroups[user] }

// Check returns nil if user may have perm, or a *Denied; see Decide.
func (s *Static) Check(_ context.Context, user string, perm commands.Permission) error {
	return verdict(user, s.userGroups[user], perm, Decide(s.rules, s.userGroups[user], perm))
}

// Explain decides perm for user and says which rule decided.
func (s *Static) Explain(_ context.Context, user string, perm commands.Permission) (Explanation, error) {
	id := Identity{SlackUser: user, Groups: s.userGroups[user], Source: SourceStatic}
	return explain(id, id.Groups, perm, s.rules, 0, ""), nil
}

// verdict is nil for an allowed decision, or the *Denied that explains it.
func verdict(user string, groups []string, perm commands.Permission, d Decision) error {
	if d.Allowed {
		return nil
	}
	den := &Denied{User: user, Permission: perm, Groups: groups}
	if d.Deny {
		den.DeniedBy = d.Pattern
	}
	return den
}

// AllowAll allows everything. It is the local identity of `deploybot shell`
// and must never be used by serve.
type AllowAll struct{}

// Check always allows.
func (AllowAll) Check(context.Context, string, commands.Permission) error { return nil }

// Explain says that everything is allowed.
func (AllowAll) Explain(_ context.Context, user string, perm commands.Permission) (Explanation, error) {
	return Explanation{Identity: Identity{SlackUser: user, Source: SourceStatic}, Permission: perm,
		Decision: Decision{Allowed: true, Group: "(everyone)", Pattern: "*"}}, nil
}

// CheckPattern reports whether pattern is a valid permission pattern: "*",
// or colon-separated segments each of which is a path.Match pattern.
func CheckPattern(pattern string) error {
	if pattern == "" {
		return fmt.Errorf("empty permission pattern")
	}
	segs := strings.Split(pattern, ":")
	if len(segs) > 3 {
		return fmt.Errorf("permission pattern %q has %d parts; the most is 3 (action:env:service)", pattern, len(segs))
	}
	for _, seg := range segs {
		if seg == "" {
			return fmt.Errorf("permission pattern %q has an empty part", pattern)
		}
		if _, err := path.Match(seg, ""); err != nil {
			return fmt.Errorf("permission pattern %q: %w", pattern, err)
		}
	}
	return nil
}

// Match reports whether a permission pattern matches a permission string.
// Segments match one to one; a pattern whose last segment is "*" also
// matches any longer permission ("deploy:*" matches "deploy:prod:api").
func Match(pattern, perm string) bool {
	ps, qs := strings.Split(pattern, ":"), strings.Split(perm, ":")
	if len(ps) > len(qs) || (len(ps) < len(qs) && ps[len(ps)-1] != "*") {
		return false
	}
	for i, p := range ps {
		if ok, _ := path.Match(p, qs[i]); !ok {
			return false
		}
	}
	return true
}

// matchAction reports whether pattern grants action on at least one
// service: its first part matches the action.
func matchAction(pattern, action string) bool {
	first, _, _ := strings.Cut(pattern, ":")
	ok, _ := path.Match(first, action)
	return ok
}

// matchActionEverywhere reports whether pattern covers action on every
// service and environment: its other parts are all "*".
func matchActionEverywhere(pattern, action string) bool {
	if !matchAction(pattern, action) {
		return false
	}
	for _, seg := range strings.Split(pattern, ":")[1:] {
		if seg != "*" {
			return false
		}
	}
	return true
}
