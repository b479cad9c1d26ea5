package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// Action IDs of a breakage notice's buttons; their value is the notice ID.
const (
	ActionNoticeRetry = "notice_retry"
	ActionNoticeMute  = "notice_mute"
)

// MuteFor is how long the Mute button quiets a notice's subject.
const MuteFor = time.Hour

// person renders someone a notice names: a mention when their Slack
// account is known, else their name and address, said plainly.
func person(p queue.Person) string {
	if p.SlackID != "" {
		return "<@" + escape(p.SlackID) + ">"
	}
	s := escape(p.Name)
	if p.Email != "" {
		if s != "" {
			s += " "
		}
		s += "(" + escape(p.Email) + ")"
	}
	return s
}

// NoticeMessage renders a breakage notice: what broke, who broke it and
// why they are named, links, and Retry and Mute buttons while it is open.
// Only the people who broke it are mentioned.
func NoticeMessage(n queue.Notice, now time.Time) (blocks []slack.Block, text string) {
	head, text := noticeHeadline(n)
	blocks = append(blocks, section(head))
	if n.Open() {
		blocks = append(blocks, section(blameLines(n.Breakers)))
	}
	if ctx := noticeContext(n, now); ctx != "" {
		blocks = append(blocks, slack.NewContextBlock("notice-context", slack.NewTextBlockObject(slack.MarkdownType, ctx, false, false)))
	}
	if n.Open() {
		var buttons []slack.BlockElement
		if n.Retry.Kind != "" {
			label := "Retry"
			if n.Retry.Kind == "recheck" {
				label = "Recheck"
			}
			b := slack.NewButtonBlockElement(ActionNoticeRetry, n.ID, slack.NewTextBlockObject(slack.PlainTextType, label, false, false))
			b.Style = slack.StylePrimary
			buttons = append(buttons, b)
		}
		if !n.Muted(now) {
			buttons = append(buttons, slack.NewButtonBlockElement(ActionNoticeMute, n.ID, slack.NewTextBlockObject(slack.PlainTextType, "Mute 1h", false, false)))
		}
		if len(buttons) > 0 {
			blocks = append(blocks, slack.NewActionBlock("notice-actions", buttons...))
		}
	}
	return blocks, text
}

// noticeHeadline says what broke or was fixed, and by whom for a fix; text
// is its plain notification fallback.
func noticeHeadline(n queue.Notice) (head, text string) {
	var names []string
	for _, p := range n.FixedBy {
		names = append(names, person(p))
	}
	fixers := strings.Join(names, ", ")
	if c := n.Change; n.Gating && c != nil {
		return changeHeadline(n, c, fixers)
	}
	job := n.Job
	if job == "" {
		job = n.Title
	}
	if n.Open() {
		head = fmt.Sprintf("🔴 *%s* is broken: %s failed.", escape(job), escape(strings.TrimPrefix(n.Title, job+" ")))
		if c := n.Change; c != nil {
			head += fmt.Sprintf(" It was building %s.", link(c.URL, fmt.Sprintf("change %d", c.Number)))
		}
		return head, job + " is broken"
	}
	head = fmt.Sprintf("✅ *%s* is fixed", escape(job))
	if n.FixedIn != "" {
		head += ": " + escape(n.FixedIn) + " passed"
	}
	if fixers != "" {
		head += ", with changes by " + fixers
	}
	return head + ".", job + " is fixed"
}

// changeHeadline is noticeHeadline for a change's gating.
func changeHeadline(n queue.Notice, c *queue.NoticeChange, fixers string) (head, text string) {
	what := "*" + link(c.URL, fmt.Sprintf("Change %d", c.Number)) + "*"
	if c.Subject != "" {
		what += " “" + escape(c.Subject) + "”"
	}
	switch {
	case n.Open():
		return fmt.Sprintf("🔴 %s fails CI on patch set %d.", what, c.PatchSet), fmt.Sprintf("Change %d fails CI", c.Number)
	case n.State == queue.StateAbandoned:
		head = "⚪ " + what + " was abandoned"
		if fixers != "" {
			head += " by " + fixers
		}
		return head + "; its CI failure is closed.", fmt.Sprintf("Change %d was abandoned", c.Number)
	}
	head = "✅ " + what + " passes CI again"
	if n.FixedIn != "" {
		head += " on " + escape(n.FixedIn)
	}
	if fixers != "" {
		head += ", fixed by " + fixers
	}
	return head + ".", fmt.Sprintf("Change %d passes CI again", c.Number)
}

func blameLines(people []queue.Person) string {
	if len(people) == 0 {
		return "I could not tell who broke it."
	}
	var lines []string
	for _, p := range people {
		line := person(p) + " — " + escape(p.Reason)
		if p.SlackID == "" {
			line += " _(no Slack account found for this address; add one under `notices.aliases`)_"
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

func noticeContext(n queue.Notice, now time.Time) string {
	var parts []string
	for _, l := range n.Links {
		parts = append(parts, link(l.URL, l.Text))
	}
	if len(n.Failures) > 1 {
		parts = append(parts, fmt.Sprintf("reported %d times, last: %s", len(n.Failures), escape(n.Failures[len(n.Failures)-1])))
	}
	if n.Open() && len(n.Failing) > 1 {
		parts = append(parts, "failing: "+escape(strings.Join(n.Failing, ", ")))
	}
	if !n.Open() && len(n.Breakers) > 0 {
		var names []string
		for _, p := range n.Breakers {
			names = append(names, person(p))
		}
		parts = append(parts, "broken by "+strings.Join(names, ", "))
	}
	if n.RetriedBy != "" {
		parts = append(parts, "🔁 retried by <@"+escape(n.RetriedBy)+">")
	}
	if n.Muted(now) {
		parts = append(parts, fmt.Sprintf("🔕 muted by <@%s> until %s UTC", escape(n.MutedBy), n.MutedUntil.UTC().Format("15:04")))
	}
	return strings.Join(parts, " · ")
}

// Notices shows breakage notices in Slack; it satisfies blame.Notifier.
type Notices struct {
	slack *Slack
	now   func() time.Time
}

// NewNotices returns a notifier posting through s.
func NewNotices(s *Slack) *Notices { return &Notices{slack: s, now: time.Now} }

// Show posts n, or updates its message when it has one, and returns the
// message's channel ID and timestamp. It returns once Slack has the
// message: the caller holds the notice's lock, and an edit still queued
// when it lets go could land after a newer one from another worker.
func (ns *Notices) Show(ctx context.Context, n queue.Notice) (channel, ts string, err error) {
	blocks, text := NoticeMessage(n, ns.now())
	if n.MessageTS != "" {
		return n.Channel, n.MessageTS, retryLater(ns.slack.UpdateWait(ctx, n.Channel, n.MessageTS, text, blocks))
	}
	sent, err := ns.slack.PostMessage(ctx, n.Channel, text, blocks)
	return sent.Channel, sent.TS, retryLater(err)
}

// temporary is a Slack failure worth running the job again for.
type temporary struct{ error }

func (temporary) Temporary() bool { return true }
func (t temporary) Unwrap() error { return t.error }

// retryLater marks a Slack outage (a 5xx that outlasted the client's own
// tries) as temporary, so the worker runs the job again later instead of
// dropping the notice. Slack's refusals (channel_not_found) stay final.
func retryLater(err error) error {
	var sc slack.StatusCodeError
	if errors.As(err, &sc) && sc.Retryable() {
		return temporary{err}
	}
	return err
}

// DM sends n to user in a direct message.
func (ns *Notices) DM(ctx context.Context, user string, n queue.Notice) error {
	channel, err := ns.slack.OpenDM(ctx, user)
	if err != nil {
		return err
	}
	blocks, text := NoticeMessage(n, ns.now())
	_, err = ns.slack.Post(ctx, channel, text, blocks)
	return err
}

// people caches users.lookupByEmail answers.
type people struct {
	mu      sync.Mutex
	entries map[string]personEntry
}

type personEntry struct {
	id      string
	expires time.Time
}

// Cache lifetimes: people rarely change address, and a miss is retried
// sooner in case they just joined.
const (
	userHit  = 6 * time.Hour
	userMiss = 10 * time.Minute
)

// LookupEmail finds the Slack user with an address (users.lookupByEmail,
// cached); found is false when there is none.
func (s *Slack) LookupEmail(ctx context.Context, email string) (id string, found bool, err error) {
	key := strings.ToLower(strings.TrimSpace(email))
	s.people.mu.Lock()
	e, ok := s.people.entries[key]
	s.people.mu.Unlock()
	if ok && time.Now().Before(e.expires) {
		return e.id, e.id != "", nil
	}
	u, err := s.api.GetUserByEmailContext(ctx, key)
	var se slack.SlackErrorResponse
	notFound := errors.As(err, &se) && se.Err == "users_not_found"
	if notFound {
		s.metrics.slackCalls.WithLabelValues("users.lookupByEmail", "ok").Inc()
		s.remember(key, "", userMiss)
		return "", false, nil
	}
	s.metrics.slackCalls.WithLabelValues("users.lookupByEmail", outcomeOf(err)).Inc()
	if err != nil {
		return "", false, fmt.Errorf("slack: users.lookupByEmail: %w", err)
	}
	s.remember(key, u.ID, userHit)
	return u.ID, true, nil
}

func (s *Slack) remember(key, id string, ttl time.Duration) {
	s.people.mu.Lock()
	defer s.people.mu.Unlock()
	if s.people.entries == nil {
		s.people.entries = map[string]personEntry{}
	}
	s.people.entries[key] = personEntry{id: id, expires: time.Now().Add(ttl)}
}

// OpenDM opens (or finds) the direct-message channel with user.
func (s *Slack) OpenDM(ctx context.Context, user string) (string, error) {
	ch, _, _, err := s.api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{user}})
	s.metrics.slackCalls.WithLabelValues("conversations.open", outcomeOf(err)).Inc()
	if err != nil {
		return "", fmt.Errorf("slack: conversations.open: %w", err)
	}
	return ch.ID, nil
}

func outcomeOf(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}
