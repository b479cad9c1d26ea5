package bot

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/seed-5eb4e92e/deploybot/commands"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// ActionRetry is the action_id of the Retry button; its value is the job ID.
const ActionRetry = "retry"

// escape makes user-typed text inert in mrkdwn: "<!channel>" in a ref must
// not ping anybody.
func escape(s string) string { return commands.EscapeMrkdwn(s) }

// link is a mrkdwn link to an http(s) URL. URLs come from webhooks and
// build parameters, so one that could break out of the <url|text> form
// ("|", ">", spaces) or is not http(s) is dropped and only the text shown.
// mentionMark is what queue.Mention writes for a Slack user ID.
var mentionMark = regexp.MustCompile(`\{\{@([UW][A-Z0-9]{2,20})\}\}`)

// plainWithMentions escapes a record's plain text and turns its mention
// marks into mentions.
func plainWithMentions(s string) string {
	return mentionMark.ReplaceAllString(escape(s), "<@$1>")
}

func link(raw, text string) string {
	if raw == "" {
		return text
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f || strings.ContainsRune("<>|", r) }) {
		return escape(text)
	}
	return "<" + raw + "|" + escape(text) + ">"
}

// title is "Build `api` @ `feature/login`".
func title(rec queue.Record) string {
	req := rec.Job.Request
	var b strings.Builder
	if req.Kind != "" {
		b.WriteString(strings.ToUpper(req.Kind[:1]) + req.Kind[1:])
	}
	if req.Change > 0 {
		fmt.Fprintf(&b, " change %d", req.Change)
	}
	if req.Service != "" {
		b.WriteString(" `" + escape(req.Service) + "`")
	}
	if req.Ref != "" {
		b.WriteString(" @ `" + escape(req.Ref) + "`")
	}
	if req.From != "" {
		b.WriteString(" from `" + escape(req.From) + "`")
	}
	switch {
	case req.Env != "" && req.Kind == "rollback":
		b.WriteString(" in `" + escape(req.Env) + "`")
	case req.Env != "":
		b.WriteString(" to `" + escape(req.Env) + "`")
	}
	return b.String()
}

// statusLine says where the job is, with an emoji a reader can scan.
func statusLine(rec queue.Record) string {
	build := link(rec.Link, rec.LinkText)
	switch rec.State {
	case queue.StateQueued:
		return "⏳ queued"
	case queue.StateRunning:
		s := "🔄 " + plainWithMentions(rec.Stage)
		if rec.LinkText != "" && strings.HasPrefix(rec.Stage, "building") {
			s += " " + build
		}
		return s
	case queue.StateSucceeded:
		s := "✅ *success*"
		if rec.Result != "" && rec.Result != "SUCCESS" {
			s = "✅ *" + strings.ToLower(escape(rec.Result)) + "*"
		}
		if rec.LinkText != "" {
			s += " " + build
		}
		if d := rec.Finished.Sub(rec.Started); !rec.Started.IsZero() && d > 0 {
			s += " in " + shortDuration(d)
		}
		return s
	case queue.StateDead:
		return "☠️ *gave up*: " + plainWithMentions(rec.Error)
	case queue.StateFailed:
		if rec.Error != "" {
			s := "❌ *failed*"
			if rec.LinkText != "" { // a deploy whose build passed and a later step failed
				s += " " + build
			}
			return s + ": " + plainWithMentions(rec.Error)
		}
		emoji := "❌"
		switch rec.Result {
		case "ABORTED", "CANCELLED", "NOT_BUILT":
			emoji = "⛔"
		case "UNSTABLE":
			emoji = "⚠️"
		}
		s := emoji + " *" + strings.ToLower(escape(rec.Result)) + "*"
		if rec.LinkText != "" {
			s += " " + build + " — " + link(rec.Link+"console", "console")
		}
		return s
	}
	return escape(string(rec.State))
}

// JobMessage renders a job's message: what was asked, where it is, who
// asked, and a Retry button once it failed. text is the notification
// fallback.
func JobMessage(rec queue.Record) (blocks []slack.Block, text string) {
	blocks = append(blocks, section(title(rec)+" — "+statusLine(rec)))

	ctx := []string{fmt.Sprintf("Requested by <@%s>", escape(rec.Job.User)), "job `" + rec.Job.ID + "`"}
	if rec.Artifact != "" {
		ctx = append(ctx, "artifact `"+escape(rec.Artifact)+"`")
	}
	if l := linksLine(rec.Links); l != "" {
		ctx = append(ctx, l)
	}
	if rec.Job.Attempt > 1 {
		ctx = append(ctx, fmt.Sprintf("attempt %d", rec.Job.Attempt))
	}
	if rec.Job.RetryOf != "" {
		ctx = append(ctx, "retry of job `"+rec.Job.RetryOf+"`")
	}
	if rec.RetriedAs != "" {
		ctx = append(ctx, fmt.Sprintf("🔁 retried by <@%s> as job `%s`", escape(rec.RetriedBy), rec.RetriedAs))
	}
	blocks = append(blocks, slack.NewContextBlock("job-context",
		slack.NewTextBlockObject(slack.MarkdownType, strings.Join(ctx, " · "), false, false)))

	if (rec.State == queue.StateFailed || rec.State == queue.StateDead) && rec.RetriedAs == "" {
		btn := slack.NewButtonBlockElement(ActionRetry, rec.Job.ID, slack.NewTextBlockObject(slack.PlainTextType, "Retry", false, false))
		btn.Style = slack.StylePrimary
		blocks = append(blocks, slack.NewActionBlock("job-actions", btn))
	}
	if buttons := deployButtons(rec); len(buttons) > 0 {
		blocks = append(blocks, slack.NewActionBlock("deploy-actions", buttons...))
	}
	return blocks, plainFallback(rec)
}

func plainFallback(rec queue.Record) string {
	s := rec.Job.Request.String() + ": " + string(rec.State)
	if rec.Stage != "" {
		s += " (" + rec.Stage + ")"
	}
	if rec.Result != "" {
		s += " " + rec.Result
	}
	return s
}

// maxSectionText is Slack's limit on a section block's text.
const maxSectionText = 3000

// section is a mrkdwn section block, its text cut to Slack's limit.
func section(text string) slack.Block {
	if len(text) > maxSectionText {
		cut := maxSectionText - len("…")
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text = text[:cut] + "…"
	}
	return slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil)
}

// StatusMessage lists recent jobs, newest first, one block each so no list
// runs into Slack's limit on a block's text. now is passed in so the ages
// are testable.
func StatusMessage(service string, recs []queue.Record, now time.Time) []slack.Block {
	head := "*Recent jobs*"
	if service != "" {
		head = "*Recent jobs for `" + escape(service) + "`*"
	}
	if len(recs) == 0 {
		return []slack.Block{section(head + "\nNo jobs yet.")}
	}
	blocks := []slack.Block{section(head)}
	for _, r := range recs {
		blocks = append(blocks, section(fmt.Sprintf("• %s — %s · <@%s> · %s ago · job `%s`",
			title(r), statusLine(r), escape(r.Job.User), shortDuration(now.Sub(r.Job.CreatedAt)), r.Job.ID)))
	}
	return blocks
}

// shortDuration is "42s", "3m12s", "2h5m", "3d".
func shortDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	default:
		return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
	}
}
