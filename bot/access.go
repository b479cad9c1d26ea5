package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/slack-go/slack"

	"github.com/seed-5eb4e92e/deploybot/authz"
	"github.com/seed-5eb4e92e/deploybot/commands"
)

// SignIn starts a user's sign-in with the identity provider and returns
// the URL their button opens.
type SignIn interface {
	Start(ctx context.Context, user string) (string, error)
}

// access answers the commands about identities, permissions and the audit
// trail. None of them is a job: they read or change Redis and answer.
func (r *Responder) access(ctx context.Context, w http.ResponseWriter, cmd slack.SlashCommand, req commands.Request, log *slog.Logger) outcome {
	switch req.Kind {
	case "whoami":
		return r.whoami(ctx, w, cmd.UserID, log)
	case "login":
		return r.login(ctx, w, cmd.UserID, log)
	case "audit":
		return r.auditCommand(ctx, w, req, log)
	}
	p := *req.Perms
	if p.Verb == "test" {
		return r.permsTest(ctx, w, p, log)
	}
	if r.policy == nil {
		reply(w, "The policy comes from the config file here; change it there. `"+r.cmds().table.Slash+" whoami` shows what you may do.")
		return "usage"
	}
	switch p.Verb {
	case "show":
		return r.permsShow(ctx, w, p, log)
	case "history":
		return r.permsHistory(ctx, w, log)
	}
	return r.permsChange(ctx, w, cmd.UserID, p, log)
}

func (r *Responder) whoami(ctx context.Context, w http.ResponseWriter, user string, log *slog.Logger) outcome {
	x, err := r.auth.Explain(ctx, user, commands.Permission{})
	if err != nil {
		log.Error("whoami", "err", err)
		reply(w, "⚠️ I could not look you up just now. Try again in a minute.")
		return "unavailable"
	}
	var b strings.Builder
	id := x.Identity
	switch id.Source {
	case authz.SourceOIDC:
		fmt.Fprintf(&b, "You are <@%s>, signed in as %s until %s.\n", user, escape(id.Email), id.Expires.UTC().Format("2006-01-02 15:04 MST"))
	case authz.SourceOkta:
		fmt.Fprintf(&b, "You are <@%s>, found in Okta by your e-mail %s (looked up again after %s).\n", user, escape(id.Email), id.Expires.UTC().Format("15:04 MST"))
	default:
		fmt.Fprintf(&b, "You are <@%s>, known from deploybot's config file.\n", user)
	}
	if len(x.Groups) == 0 {
		b.WriteString("You are in no deploybot group, so you may only run read-only commands.")
		if r.signIn != nil {
			b.WriteString(" `" + r.cmds().table.Slash + " login` links your company account.")
		}
		reply(w, b.String())
		return "whoami"
	}
	b.WriteString("Your groups: " + escape(strings.Join(x.Groups, ", ")) + ".\n")
	b.WriteString(rulesText(x.Rules, "Your groups' rules"))
	reply(w, b.String())
	return "whoami"
}

// rulesText lists rules, one group a line.
func rulesText(rules []authz.Rule, title string) string {
	if len(rules) == 0 {
		return title + ": none (the default is deny)."
	}
	var b strings.Builder
	b.WriteString(title + ":\n")
	for _, rule := range rules {
		b.WriteString("• *" + escape(rule.Group) + "*")
		if len(rule.Allow) > 0 {
			b.WriteString(" may `" + strings.Join(rule.Allow, "`, `") + "`")
		}
		if len(rule.Deny) > 0 {
			b.WriteString(" — denied `" + strings.Join(rule.Deny, "`, `") + "`")
		}
		b.WriteString("\n")
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func (r *Responder) login(ctx context.Context, w http.ResponseWriter, user string, log *slog.Logger) outcome {
	if r.signIn == nil {
		reply(w, "Signing in is not set up here; your groups come from Okta by your Slack e-mail, or from the config file. `"+r.cmds().table.Slash+" whoami` shows them.")
		return "usage"
	}
	u, err := r.signIn.Start(ctx, user)
	if err != nil {
		log.Error("start sign-in", "err", err)
		reply(w, "⚠️ I could not start a sign-in just now. Try again in a minute.")
		return "unavailable"
	}
	text := "Sign in with your company account to link it to your Slack account. The link is yours alone and works for a few minutes."
	btn := slack.NewButtonBlockElement("signin", "", slack.NewTextBlockObject(slack.PlainTextType, "Sign in", false, false))
	btn.URL, btn.Style = u, slack.StylePrimary
	writeJSON(w, ephemeral{ResponseType: "ephemeral", Text: text, Blocks: []slack.Block{section(text), slack.NewActionBlock("signin", btn)}})
	return "login"
}

func (r *Responder) permsTest(ctx context.Context, w http.ResponseWriter, p commands.PermsRequest, log *slog.Logger) outcome {
	perm := permissionOf(p.Action, p.Service, p.Env)
	if _, err := authz.GrantPattern(p.Action, p.Service, p.Env); err != nil && p.Action != "*" {
		reply(w, "I can't test that: "+err.Error()+".")
		return "usage"
	}
	x, err := r.auth.Explain(ctx, p.User, perm)
	if err != nil {
		log.Error("perms test", "err", err)
		reply(w, "⚠️ I could not look that user up just now. Try again in a minute.")
		return "unavailable"
	}
	groups := "no deploybot group"
	if len(x.Groups) > 0 {
		groups = "groups " + strings.Join(x.Groups, ", ")
	}
	verdict := "✅ may"
	if !x.Decision.Allowed {
		verdict = "⛔ may not"
	}
	reply(w, fmt.Sprintf("<@%s> (%s) %s `%s`: %s (policy version %d).", p.User, escape(groups), verdict, perm, x.Decision.Explain(), x.Version))
	return "perms"
}

// permissionOf is the permission an action on service in env needs, with
// the parts the action does not take left out.
func permissionOf(action, service, env string) commands.Permission {
	switch action {
	case "build", "submit", "recheck":
		env = ""
	case "lock", "approve":
		if env == "" {
			env = service
		}
		service = ""
	case "admin":
		service, env = "", ""
	}
	return commands.Permission{Action: action, Service: service, Env: env}
}

func (r *Responder) permsShow(ctx context.Context, w http.ResponseWriter, p commands.PermsRequest, log *slog.Logger) outcome {
	v, err := r.policy.Current(ctx)
	if err != nil {
		return r.policyUnavailable(w, err, log)
	}
	rules := v.Rules
	title := fmt.Sprintf("Policy version %d (%s, by %s)", v.N, escape(v.Change), who(v.By))
	if p.Target != "" {
		rules = r.rulesAbout(rules, p.Target)
		title += " — rules about `" + escape(p.Target) + "`"
	}
	reply(w, rulesText(rules, title))
	return "perms"
}

// rulesAbout keeps the rules of group target, or the patterns that can
// match target as a service or an environment.
func (r *Responder) rulesAbout(rules []authz.Rule, target string) []authz.Rule {
	var svc, env string
	switch {
	case slices.Contains(r.cmds().catalog.Environments, target):
		env = target
	case slices.Contains(r.cmds().catalog.ServiceNames(), target):
		svc = target
	}
	var out []authz.Rule
	for _, rule := range rules {
		if rule.Group == target {
			out = append(out, rule)
			continue
		}
		if svc == "" && env == "" {
			continue
		}
		keep := func(pats []string) []string {
			return slices.DeleteFunc(slices.Clone(pats), func(p string) bool { return !authz.Covers(p, svc, env) })
		}
		if a, d := keep(rule.Allow), keep(rule.Deny); len(a)+len(d) > 0 {
			out = append(out, authz.Rule{Group: rule.Group, Allow: a, Deny: d})
		}
	}
	return out
}

func who(by string) string {
	if by == "config" {
		return "the config file"
	}
	return "<@" + by + ">"
}

func (r *Responder) permsHistory(ctx context.Context, w http.ResponseWriter, log *slog.Logger) outcome {
	hist, err := r.policy.History(ctx, 10)
	if err != nil {
		return r.policyUnavailable(w, err, log)
	}
	var b strings.Builder
	b.WriteString("Policy versions, newest first:\n")
	for _, v := range hist {
		fmt.Fprintf(&b, "• *%d* — %s, by %s, %s\n", v.N, escape(v.Change), who(v.By), v.At.UTC().Format("2006-01-02 15:04 MST"))
	}
	b.WriteString("`" + r.cmds().table.Slash + " perms rollback " + escape("<version>") + "` puts a version's rules back.")
	reply(w, b.String())
	return "perms"
}

func (r *Responder) permsChange(ctx context.Context, w http.ResponseWriter, user string, p commands.PermsRequest, log *slog.Logger) outcome {
	ent := entryOf(ctx)
	ent.Kind = "policy"
	var (
		v       authz.Version
		err     error
		pattern string
	)
	switch {
	case p.Pattern != "":
		if pattern, err = p.Pattern, authz.CheckPattern(p.Pattern); err != nil {
			reply(w, "Nothing changed: "+escape(err.Error())+".")
			return "usage"
		}
	case p.Verb != "rollback":
		if pattern, err = authz.GrantPattern(p.Action, p.Service, p.Env); err != nil {
			reply(w, "Nothing changed: "+err.Error()+".")
			return "usage"
		}
	}
	switch p.Verb {
	case "grant", "deny":
		v, err = r.policy.Grant(ctx, user, p.Group, pattern, p.Verb == "deny")
	case "revoke":
		v, err = r.policy.Revoke(ctx, user, p.Group, pattern)
	case "rollback":
		v, err = r.policy.Rollback(ctx, user, p.Version)
	}
	switch {
	case errors.Is(err, authz.ErrNoChange) && p.Verb == "revoke":
		reply(w, fmt.Sprintf("Nothing changed: group `%s` has no rule `%s`. `%s perms show %s` lists its rules.", escape(p.Group), pattern, r.cmds().table.Slash, escape(p.Group)))
		return "usage"
	case errors.Is(err, authz.ErrNoChange):
		reply(w, "Nothing changed: the policy already says that.")
		return "usage"
	case errors.Is(err, authz.ErrNoVersion):
		reply(w, fmt.Sprintf("There is no policy version %d; `%s perms history` lists them.", p.Version, r.cmds().table.Slash))
		return "usage"
	case err != nil:
		return r.policyUnavailable(w, err, log)
	}
	ent.Detail = fmt.Sprintf("policy version %d: %s", v.N, v.Change)
	log.Info("policy changed", "version", v.N, "change", v.Change)
	reply(w, fmt.Sprintf("✅ Policy version %d: %s. It applies at once, also to queued jobs; `%s perms rollback %d` undoes it.",
		v.N, escape(v.Change), r.cmds().table.Slash, v.N-1))
	return "changed"
}

func (r *Responder) policyUnavailable(w http.ResponseWriter, err error, log *slog.Logger) outcome {
	log.Error("policy store", "err", err)
	reply(w, "⚠️ I could not read or save the policy just now (Redis is not answering); nothing changed.")
	return "unavailable"
}

func (r *Responder) auditCommand(ctx context.Context, w http.ResponseWriter, req commands.Request, log *slog.Logger) outcome {
	if r.audit == nil {
		reply(w, "The audit trail is not kept here.")
		return "usage"
	}
	entries, err := r.audit.Recent(ctx, authz.AuditFilter{User: req.User, Service: req.Service}, req.Count)
	if err != nil {
		log.Error("read audit", "err", err)
		reply(w, "⚠️ I could not read the audit trail just now (Redis is not answering).")
		return "unavailable"
	}
	if len(entries) == 0 {
		reply(w, "The audit trail has nothing that matches.")
		return "audit"
	}
	var b strings.Builder
	b.WriteString("Audit trail, newest first:\n")
	for _, e := range entries {
		fmt.Fprintf(&b, "• %s <@%s> %s `%s` → *%s*", e.Time.UTC().Format("2006-01-02 15:04:05"), e.User, e.Kind, escape(e.What), e.Outcome)
		if e.Job != "" {
			fmt.Fprintf(&b, " (job `%s`)", e.Job)
		}
		if e.Detail != "" {
			b.WriteString(" — " + escape(e.Detail))
		}
		b.WriteString("\n")
	}
	reply(w, b.String())
	return "audit"
}
