package bot

import (
	"regexp"
	"strings"

	"github.com/slack-go/slack"

	"github.com/seed-5eb4e92e/deploybot/commands"
)

var mrkdwnLink = regexp.MustCompile(`<([^<>|]+)(?:\|([^<>]*))?>`)

// PlainText renders mrkdwn for a terminal: links become "label (url)",
// mentions "@U123", and entities are decoded.
func PlainText(mrkdwn string) string {
	s := mrkdwnLink.ReplaceAllStringFunc(mrkdwn, func(m string) string {
		parts := mrkdwnLink.FindStringSubmatch(m)
		target, label := parts[1], parts[2]
		switch {
		case strings.HasPrefix(target, "@"), strings.HasPrefix(target, "#"):
			if label != "" {
				return target[:1] + label
			}
			return target
		case strings.HasPrefix(target, "!"):
			return "@" + strings.TrimPrefix(target, "!")
		case label == "":
			return target
		default:
			return label + " (" + target + ")"
		}
	})
	return commands.UnescapeEntities(s)
}

// BlocksText renders Block Kit blocks the way the shell shows them: text as
// PlainText, and each button as something to type, e.g.
// "[Retry: click retry 01J…]".
func BlocksText(blocks []slack.Block) string {
	var lines []string
	for _, b := range blocks {
		switch b := b.(type) {
		case *slack.SectionBlock:
			if b.Text != nil {
				lines = append(lines, PlainText(b.Text.Text))
			}
		case *slack.ContextBlock:
			var parts []string
			for _, e := range b.ContextElements.Elements {
				if t, ok := e.(*slack.TextBlockObject); ok {
					parts = append(parts, PlainText(t.Text))
				}
			}
			lines = append(lines, "  "+strings.Join(parts, " "))
		case *slack.ActionBlock:
			var parts []string
			for _, e := range b.Elements.ElementSet {
				if btn, ok := e.(*slack.ButtonBlockElement); ok {
					parts = append(parts, "["+btn.Text.Text+": click "+btn.ActionID+" "+btn.Value+"]")
				}
			}
			lines = append(lines, "  "+strings.Join(parts, " "))
		}
	}
	return strings.Join(lines, "\n")
}
