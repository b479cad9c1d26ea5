package bot

import (
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// Action IDs of a finished deploy's buttons; their value is the job ID.
const (
	ActionPromote  = "promote"
	ActionRollback = "rollback"
)

// deployButtons are a successful deploy's Promote and Roll back buttons.
func deployButtons(rec queue.Record) []slack.BlockElement {
	kind := rec.Job.Request.Kind
	if rec.State != queue.StateSucceeded || (kind != "deploy" && kind != "promote") {
		return nil
	}
	var out []slack.BlockElement
	if rec.PromoteTo != "" && rec.Artifact != "" {
		b := slack.NewButtonBlockElement(ActionPromote, rec.Job.ID, slack.NewTextBlockObject(slack.PlainTextType, "Promote to "+rec.PromoteTo, false, false))
		b.Style = slack.StylePrimary
		out = append(out, b)
	}
	b := slack.NewButtonBlockElement(ActionRollback, rec.Job.ID, slack.NewTextBlockObject(slack.PlainTextType, "Roll back", false, false))
	b.Style = slack.StyleDanger
	b.Confirm = slack.NewConfirmationBlockObject(
		slack.NewTextBlockObject(slack.PlainTextType, "Roll back?", false, false),
		slack.NewTextBlockObject(slack.MarkdownType, fmt.Sprintf("Put back what ran in *%s* before this deploy.", escape(rec.Job.Request.Env)), false, false),
		slack.NewTextBlockObject(slack.PlainTextType, "Roll back", false, false),
		slack.NewTextBlockObject(slack.PlainTextType, "Cancel", false, false))
	return append(out, b)
}

// linksLine lists a job's links beyond its main one: "migrate sandbox ·
// /platform/api".
func linksLine(links []queue.Link) string {
	var parts []string
	for _, l := range links {
		parts = append(parts, link(l.URL, l.Text))
	}
	return strings.Join(parts, " · ")
}

// HistoryMessage lists deploys: what went where, by whom, when, and how it
// ended.
func HistoryMessage(service, env string, recs []queue.Record, now time.Time) []slack.Block {
	head := "*Deploys of `" + escape(service) + "`"
	if env != "" {
		head += " to `" + escape(env) + "`"
	}
	head += "*"
	if len(recs) == 0 {
		return []slack.Block{section(head + "\nNone yet.")}
	}
	blocks := []slack.Block{section(head)}
	for _, r := range recs {
		what := "`" + escape(r.Job.Request.Env) + "`"
		if r.Artifact != "" {
			what = "`" + escape(r.Artifact) + "` to " + what
		}
		blocks = append(blocks, section(fmt.Sprintf("• %s %s — %s · <@%s> · %s ago · job `%s`",
			escape(r.Job.Request.Kind), what, statusLine(r), escape(r.Job.User), shortDuration(now.Sub(r.Job.CreatedAt)), r.Job.ID)))
	}
	return blocks
}

// LiveMessage says what runs where, as Marathon said.
func LiveMessage(apps []queue.LiveApp, now time.Time) []slack.Block {
	blocks := []slack.Block{section("*What runs where*")}
	for _, a := range apps {
		blocks = append(blocks, section(liveLine(a, now)))
	}
	if len(apps) == 0 {
		blocks = append(blocks, section("Nothing is deployed anywhere."))
	}
	return blocks
}

func liveLine(a queue.LiveApp, now time.Time) string {
	where := fmt.Sprintf("`%s` in *%s*", escape(a.Service), escape(a.Env))
	if a.Error != "" {
		return fmt.Sprintf("• %s: ⚠️ %s", where, plainWithMentions(a.Error))
	}
	health := "✅"
	if a.Healthy < a.Instances || a.Instances == 0 {
		health = "⚠️"
	}
	s := fmt.Sprintf("• %s: %s `%s` — %d/%d healthy", where, health, escape(a.Artifact), a.Healthy, a.Instances)
	if !a.Since.IsZero() {
		s += " · since " + shortDuration(now.Sub(a.Since)) + " ago"
	}
	if a.User != "" {
		s += fmt.Sprintf(" · deployed by <@%s>", escape(a.User))
	}
	if a.Deploying {
		s += " · 🔄 deploying"
	}
	if a.Lock != nil {
		s += " · 🔒 " + lockLine(*a.Lock)
	}
	return s
}
