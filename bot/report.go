package bot

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/slack-go/slack"

	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// Reporter shows jobs in Slack: one message per job, posted when the job
// starts and updated in place, with details in its thread. It satisfies
// worker.Reporter.
type Reporter struct {
	slack *Slack
	log   *slog.Logger
}

// NewReporter returns a Reporter posting through s.
func NewReporter(s *Slack, log *slog.Logger) *Reporter {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Reporter{slack: s, log: log}
}

// Report posts the job's message, or updates it when it exists. If the bot
// may not post in the channel, the requester is told through the
// response_url instead — when the job starts and when it ends.
func (r *Reporter) Report(ctx context.Context, rec queue.Record) (string, error) {
	if rec.Channel == "" {
		// A background job (a webhook, a notice's button, a status lookup)
		// has no message of its own; whoever asked hears about a failure,
		// and gets what a status lookup found.
		if rec.State == queue.StateSucceeded && len(rec.Live) > 0 && rec.Job.ResponseURL != "" {
			blocks := LiveMessage(rec.Live, rec.LiveTasks, rec.LiveTasksError, time.Now())
			msg := &slack.WebhookMessage{ResponseType: "ephemeral", Text: "What runs where", Blocks: &slack.Blocks{BlockSet: blocks}}
			if err := r.slack.FollowUp(ctx, rec.Job.ResponseURL, msg); err != nil {
				r.log.Warn("follow-up failed", "job_id", rec.Job.ID, "err", err)
			}
		}
		if rec.State == queue.StateFailed || rec.State == queue.StateDead {
			if rec.Job.ResponseURL != "" && rec.Error != "" {
				msg := &slack.WebhookMessage{ResponseType: "ephemeral", Text: "⚠️ " + escape(rec.Error)}
				if err := r.slack.FollowUp(ctx, rec.Job.ResponseURL, msg); err != nil {
					r.log.Warn("follow-up failed", "job_id", rec.Job.ID, "err", err)
				}
			}
		}
		return "", nil
	}
	blocks, text := JobMessage(rec)
	if rec.MessageTS != "" {
		r.slack.Update(rec.Channel, rec.MessageTS, text, blocks)
		return rec.MessageTS, nil
	}
	ts, err := r.slack.Post(ctx, rec.Channel, text, blocks)
	if err == nil || !ChannelUnavailable(err) || rec.Job.ResponseURL == "" {
		return ts, err
	}
	var msg *slack.WebhookMessage
	switch {
	case rec.State.Final():
		msg = &slack.WebhookMessage{ResponseType: "ephemeral", Text: text, Blocks: &slack.Blocks{BlockSet: blocks}}
	case rec.Stage == "starting":
		msg = &slack.WebhookMessage{ResponseType: "ephemeral", Text: fmt.Sprintf(
			"I can't post in this channel, so I can't show job `%s` as it runs. Invite me with `/invite @deploybot`; I'll tell you here how it ends.", rec.Job.ID)}
	default:
		return "", err
	}
	if ferr := r.slack.FollowUp(ctx, rec.Job.ResponseURL, msg); ferr != nil {
		r.log.Warn("follow-up after a channel refusal failed", "job_id", rec.Job.ID, "err", ferr)
	}
	return "", err
}

// Note adds text, shown as it is (escaped, so nothing in it can mention or
// link), to the thread of the job's message, if it has one. Slack still
// turns bare URLs into links.
func (r *Reporter) Note(_ context.Context, rec queue.Record, text string) error {
	if rec.MessageTS == "" {
		return nil
	}
	r.slack.Reply(rec.Channel, rec.MessageTS, escape(text))
	return nil
}
