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

// deployButtons are a successful deploy's Promote and Roll back buttons,
// each asking for confirmation first.
func deployButtons(rec queue.Record) []slack.BlockElement {
	kind := rec.Job.Request.Kind
	if rec.State != queue.StateSucceeded || (kind != "deploy" && kind != "promote") {
		return nil
	}
	env := rec.Job.Request.Env
	var out []slack.BlockElement
	if rec.PromoteTo != "" && rec.Artifact != "" {
		b := slack.NewButtonBlockElement(ActionPromote, rec.Job.ID, slack.NewTextBlockObject(slack.PlainTextType, "Promote to "+rec.PromoteTo, false, false))
		b.Style = slack.StylePrimary
		b.Confirm = confirmation("Promote to "+rec.PromoteTo+"?",
			fmt.Sprintf("Deploy %s to %s, exactly as it runs in %s.", rec.Artifact, rec.PromoteTo, env), "Promote")
		out = append(out, b)
	}
	b := slack.NewButtonBlockElement(ActionRollback, rec.Job.ID, slack.NewTextBlockObject(slack.PlainTextType, "Roll back", false, false))
	b.Style = slack.StyleDanger
	b.Confirm = confirmation("Roll back?", fmt.Sprintf("Put back what ran in %s before this deploy.", env), "Roll back")
	return append(out, b)
}

// confirmation is a button's confirmation dialog. Slack takes only
// plain_text in it, so nothing in it can mention or link. The text, which
// may name a long artifact, is cut to Slack's 300 characters; titles and
// button labels here are short.
func confirmation(title, text, yes string) *slack.ConfirmationBlockObject {
	if r := []rune(text); len(r) > 300 {
		text = string(r[:299]) + "…"
	}
	plain := func(s string) *slack.TextBlockObject {
		return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
	}
	return slack.NewConfirmationBlockObject(plain(title), plain(text), plain(yes), plain("Cancel"))
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
		switch {
		case r.Artifact != "":
			what = "`" + escape(r.Artifact) + "` to " + what
		case r.Job.Request.Ref != "": // not built yet: say what will be
			what = "@ `" + escape(r.Job.Request.Ref) + "` to " + what
		}
		blocks = append(blocks, section(fmt.Sprintf("• %s %s — %s · <@%s> · %s ago · job `%s`",
			escape(r.Job.Request.Kind), what, statusLine(r), escape(r.Job.User), shortDuration(now.Sub(r.Job.CreatedAt)), r.Job.ID)))
	}
	return blocks
}

// LiveMessage says what runs where, as Marathon said, then which one-off
// tasks run on Mesos, or in one line why Mesos could not tell (tasksError).
func LiveMessage(apps []queue.LiveApp, tasks []queue.LiveTask, tasksError string, now time.Time) []slack.Block {
	blocks := []slack.Block{section("*What runs where*")}
	for _, a := range apps {
		blocks = append(blocks, section(liveLine(a, now)))
	}
	if len(apps) == 0 {
		blocks = append(blocks, section("Nothing is deployed anywhere."))
	}
	for _, t := range tasks {
		blocks = append(blocks, section(liveTaskLine(t, now)))
	}
	if tasksError != "" {
		blocks = append(blocks, section("• ⚠️ "+plainWithMentions(tasksError)))
	}
	return blocks
}

// liveTaskLine is a one-off task that has not ended: "⏳ `migrate` of
// `api` in *staging* — running since 3m05s ago · job `…` · @ann".
func liveTaskLine(t queue.LiveTask, now time.Time) string {
	state := strings.ToLower(strings.TrimPrefix(t.State, "TASK_"))
	s := fmt.Sprintf("• ⏳ `%s` of `%s` in *%s* — %s", escape(t.Task), escape(t.Service), escape(t.Env), escape(state))
	if !t.Since.IsZero() {
		s += " since " + shortDuration(now.Sub(t.Since)) + " ago"
	}
	if t.Job != "" {
		s += " · job `" + escape(t.Job) + "`"
	}
	if t.User != "" {
		s += fmt.Sprintf(" · <@%s>", escape(t.User))
	}
	return s
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
	if a.Running != a.Healthy {
		s += fmt.Sprintf(", %d running", a.Running)
	}
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
