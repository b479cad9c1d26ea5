package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/seed-5eb4e92e/deploybot/authz"
	"github.com/seed-5eb4e92e/deploybot/authz/okta"
	"github.com/seed-5eb4e92e/deploybot/authz/signin"
	"github.com/seed-5eb4e92e/deploybot/bot"
)

// oidcTimeout bounds the calls to the OpenID Provider: discovery at start,
// the code exchange and the key fetch at each sign-in.
const oidcTimeout = 10 * time.Second

// access is who users are, what they may do, and the record of what they
// did: one of each per process, shared by the responder and the workers.
type access struct {
	// auth checks against the policy in force (workers); askAuth against
	// the responder's view of it, at most responderPolicyAge old.
	auth    *authz.Authorizer
	askAuth *authz.Authorizer
	policy  *authz.PolicyStore
	audit   *authz.Audit
	// flow is /deploy login's sign-in; nil when identity.oidc is not set.
	flow *signin.Flow
}

// responderPolicyAge is how long the responder trusts the policy version
// it last read. Reading it on every request cost one of the ack's two Redis
// round trips (docs/performance.md); a change made from Slack shows at once
// on the responder that made it and within this on the others, and the
// worker checks every job against the policy in force when it runs.
const responderPolicyAge = time.Second

func redisPrefix(c *fileConfig) string {
	if c.Redis.Prefix == "" {
		return "deploybot"
	}
	return c.Redis.Prefix
}

// wireAccess seeds the policy from the config file on the first start and
// sets up the identity sources. Signing in fetches the provider's discovery
// document now, so a wrong issuer stops the start with its reason.
func (a *app) wireAccess(c *fileConfig, w wiring) (*access, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	prefix := redisPrefix(c)
	acc := &access{policy: authz.NewPolicyStore(a.rdb, prefix)}
	seeded, err := acc.policy.Seed(ctx, c.Policy.Rules)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	if seeded {
		a.log.Info("policy seeded from the config file", "rules", len(c.Policy.Rules))
	} else if v, err := acc.policy.Current(ctx); err == nil {
		a.log.Info("the policy in Redis is in force; the config file's rules only seed a new Redis", "version", v.N, "changed_by", v.By)
	}
	var filter *regexp.Regexp
	if c.Identity.GroupFilter != "" {
		if filter, err = regexp.Compile(c.Identity.GroupFilter); err != nil {
			return nil, fmt.Errorf("identity.group_filter: %w", err)
		}
	}
	ids, err := a.identities(c, prefix)
	if err != nil {
		return nil, err
	}
	hint := ""
	if c.Identity.OIDC.Issuer != "" {
		hint = "sign in with `" + slashOf(c) + " login`"
		note := linkNote{slack: a.slack, filter: filter, slash: slashOf(c)}
		if acc.flow, err = a.signIn(ctx, c, ids, note, prefix, w.oidcHTTP); err != nil {
			return nil, err
		}
	}
	acc.auth = authz.NewAuthorizer(ids, acc.policy, filter, hint)
	acc.askAuth = authz.NewAuthorizer(ids, acc.policy.Within(responderPolicyAge), filter, hint)
	acc.audit = authz.NewAudit(authz.AuditConfig{MaxEntries: c.Audit.MaxEntries, Mirror: a.auditMirror(c.Audit.Channel), Identities: ids}, a.rdb, prefix)
	return acc, nil
}

func slashOf(c *fileConfig) string {
	if c.SlashCommand == "" {
		return "/deploy"
	}
	return c.SlashCommand
}

// identities are the sources of users' groups: signed-in identities, the
// Okta API by Slack e-mail, and the config file's groups.
func (a *app) identities(c *fileConfig, prefix string) (*authz.Identities, error) {
	cfg := authz.IdentitiesConfig{SignIn: c.Identity.OIDC.Issuer != "", Static: c.Policy.Groups, CacheTTL: c.Identity.Okta.CacheTTL.D(),
		Emails: a.slack}
	if o := c.Identity.Okta; o.URL != "" {
		token, err := secret(o.APIToken, o.APITokenFile)
		if err != nil {
			return nil, fmt.Errorf("okta api token: %w", err)
		}
		client, err := okta.New(okta.Config{URL: o.URL, Token: token, Timeout: o.Timeout.D()}, nil, a.log)
		if err != nil {
			return nil, err
		}
		cfg.Directory = oktaDirectory{client}
	}
	return authz.NewIdentities(cfg, a.rdb, prefix, a.log), nil
}

func (a *app) signIn(ctx context.Context, c *fileConfig, ids *authz.Identities, note signin.Notifier, prefix string, hc *http.Client) (*signin.Flow, error) {
	o := c.Identity.OIDC
	if hc == nil {
		hc = &http.Client{Timeout: oidcTimeout}
	}
	clientSecret, err := secret(o.ClientSecret, o.ClientSecretFile)
	if err != nil {
		return nil, fmt.Errorf("oidc client secret: %w", err)
	}
	flow, err := signin.New(ctx, signin.Config{
		Issuer: o.Issuer, ClientID: o.ClientID, ClientSecret: clientSecret, RedirectURL: o.RedirectURL,
		GroupsClaim: o.GroupsClaim, LinkTTL: o.LinkTTL.D(),
	}, signin.NewRedisStates(a.rdb, prefix), ids, note, hc, a.log)
	if err != nil {
		return nil, fmt.Errorf("identity.oidc: %w", err)
	}
	return flow, nil
}

// inactiveSubject stands for an Okta user who may not act: deactivated,
// suspended, or one of several with the same e-mail.
const inactiveSubject = "(not active in Okta)"

// oktaDirectory is the Okta API as the identity sources ask it.
type oktaDirectory struct{ c *okta.Client }

func (d oktaDirectory) UserGroups(ctx context.Context, email string) (string, []string, error) {
	u, groups, err := d.c.UserGroups(ctx, email)
	switch {
	case errors.Is(err, okta.ErrUnknownUser):
		return "", nil, fmt.Errorf("%w: %w", authz.ErrNotInDirectory, err)
	case errors.Is(err, okta.ErrNoUser):
		// Deactivated, suspended or not unique: known to Okta, so no
		// falling back to the config file's groups; no groups at all.
		return inactiveSubject, nil, nil
	}
	return u.ID, groups, err
}

// linkNote tells a user in a DM that their sign-in linked their accounts,
// and with which groups they now act.
type linkNote struct {
	slack  *bot.Slack
	filter *regexp.Regexp
	slash  string
}

func (n linkNote) Linked(ctx context.Context, id authz.Identity) {
	var groups []string
	for _, g := range id.Groups {
		if n.filter == nil || n.filter.MatchString(g) {
			groups = append(groups, g)
		}
	}
	text := fmt.Sprintf("🔐 Your Slack account is now linked to %s until %s.", id.Email, id.Expires.UTC().Format("2006-01-02 15:04 MST"))
	if len(groups) == 0 {
		text += " You are in no deploybot group, so you may only run read-only commands."
	} else {
		text += " You act with the groups " + strings.Join(groups, ", ") + "; `" + n.slash + " whoami` shows what they allow."
	}
	_, _ = n.slack.Post(ctx, id.SlackUser, text, nil)
}

// auditMirror posts each audit entry to channel, in order, without holding
// up the request it records.
func (a *app) auditMirror(channel string) func(authz.Entry) {
	if channel == "" {
		return nil
	}
	return func(e authz.Entry) {
		line := fmt.Sprintf("<@%s> %s `%s` → *%s*", e.User, e.Kind, inert(e.What), inert(e.Outcome))
		if e.Job != "" {
			line += " (job `" + e.Job + "`)"
		}
		if e.Detail != "" {
			line += " — " + inert(e.Detail)
		}
		a.slack.PostAsync(channel, line)
	}
}

// inert makes text a user typed show as typed in mrkdwn: no mention, link
// or end of a code span.
func inert(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "`", "'").Replace(s)
}
