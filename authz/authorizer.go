package authz

import (
	"context"
	"regexp"
	"slices"

	"github.com/seed-5eb4e92e/deploybot/commands"
)

// IdentitySource says who a Slack user is.
type IdentitySource interface {
	Identify(ctx context.Context, user string) (Identity, error)
}

// PolicySource is the policy in force.
type PolicySource interface {
	Current(ctx context.Context) (Version, error)
}

// Authorizer checks permissions against the stored policy for the groups
// of a user's current identity. The responder checks when a request
// arrives and the worker again when it runs the job, both with one.
type Authorizer struct {
	ids    IdentitySource
	policy PolicySource
	filter *regexp.Regexp
	// Hint ends a denial of a user who is in no group, e.g. "sign in with
	// `/deploy login`".
	hint string
}

// NewAuthorizer returns an Authorizer. Only groups that match filter count
// (nil: all); hint is added to the denial of someone in no group.
func NewAuthorizer(ids IdentitySource, policy PolicySource, filter *regexp.Regexp, hint string) *Authorizer {
	return &Authorizer{ids: ids, policy: policy, filter: filter, hint: hint}
}

// Check returns nil if user may have perm, or a *Denied, or an error when
// the identity or the policy could not be read.
func (a *Authorizer) Check(ctx context.Context, user string, perm commands.Permission) error {
	if perm.ReadOnly() {
		return nil
	}
	x, err := a.Explain(ctx, user, perm)
	if err != nil {
		return err
	}
	return x.Err()
}

// Explanation is a decision together with what it was made from.
type Explanation struct {
	Identity Identity
	// Groups are the identity's groups that the filter keeps.
	Groups     []string
	Permission commands.Permission
	Decision   Decision
	// Version is the policy version decided with, and Rules its rules for
	// the user's groups: what their groups allow and deny.
	Version int64
	Rules   []Rule
	hint    string
}

// Err is nil when allowed, or the *Denied to show the user.
func (x Explanation) Err() error {
	err := verdict(x.Identity.SlackUser, x.Groups, x.Permission, x.Decision)
	if d, ok := err.(*Denied); ok && len(x.Groups) == 0 {
		d.Hint = x.hint
	}
	return err
}

// Explain decides perm for user and says which rule decided.
func (a *Authorizer) Explain(ctx context.Context, user string, perm commands.Permission) (Explanation, error) {
	id, groups, err := a.Whoami(ctx, user)
	if err != nil {
		return Explanation{}, err
	}
	pol, err := a.policy.Current(ctx)
	if err != nil {
		return Explanation{}, err
	}
	return explain(id, groups, perm, pol.Rules, pol.N, a.hint), nil
}

func explain(id Identity, groups []string, perm commands.Permission, rules []Rule, version int64, hint string) Explanation {
	var mine []Rule
	for _, r := range rules {
		if slices.Contains(groups, r.Group) {
			mine = append(mine, r)
		}
	}
	return Explanation{Identity: id, Groups: groups, Permission: perm, Decision: Decide(rules, groups, perm),
		Version: version, Rules: mine, hint: hint}
}

// Whoami returns user's identity and the groups of it the policy sees.
func (a *Authorizer) Whoami(ctx context.Context, user string) (Identity, []string, error) {
	id, err := a.ids.Identify(ctx, user)
	if err != nil {
		return Identity{}, nil, err
	}
	id.SlackUser = user
	return id, a.Filter(id.Groups), nil
}

// Filter keeps the groups the configured filter matches, sorted.
func (a *Authorizer) Filter(groups []string) []string {
	var out []string
	for _, g := range groups {
		if a.filter == nil || a.filter.MatchString(g) {
			out = append(out, g)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
