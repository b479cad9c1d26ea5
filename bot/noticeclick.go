package bot

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/slack-go/slack"

	"github.com/seed-5eb4e92e/deploybot/commands"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// noticePermission is what a notice's buttons need: the permission to run
// the failure again (recheck a change, or build the service).
func noticePermission(n queue.Notice) commands.Permission {
	if n.Retry.Kind == "recheck" {
		return commands.Permission{Action: "recheck", Service: n.Service}
	}
	return commands.Permission{Action: "build", Service: n.Service}
}

// noticeAction queues a click on a breakage notice's Retry or Mute button.
// A Retry counts once per failure, however often the click arrives.
func (r *Responder) noticeAction(ctx context.Context, cb slack.InteractionCallback, action, id string) outcome {
	user := cb.User.ID
	log := r.log.With("user", user, "command", action)
	tell := func(text string) { r.followUp(cb.ResponseURL, text, log) }
	if !queue.ValidNoticeID(id) || r.notices == nil {
		tell("That button does not name a notice I know.")
		return "bad_request"
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.AckTimeout)
	defer cancel()
	n, err := r.notices.Notice(ctx, id)
	switch {
	case errors.Is(err, queue.ErrNotFound):
		tell("That notice is no longer known.")
		return "usage"
	case err != nil:
		text, out := r.unavailable(err, log)
		tell(text)
		return out
	}
	if err := r.auth.Check(ctx, user, noticePermission(n)); err != nil {
		return r.deniedFollowUp(err, tell, log)
	}
	kind, verb := "notice-mute", "Muting"
	dd := queue.Dedupe{}
	if action == ActionNoticeRetry {
		if !n.Open() {
			tell("It is fixed already; there is nothing to retry.")
			return "usage"
		}
		kind, verb = "notice-retry", "Retrying"
		dd = queue.Dedupe{Key: "notice-retry:" + id + ":" + strconv.Itoa(len(n.Failures)), TTL: r.cfg.RetryWindow}
	}
	perm := noticePermission(n)
	job := queue.Job{
		Request: commands.Request{Kind: kind, Action: perm.Action, Service: perm.Service, Topic: id},
		User:    user, ResponseURL: cb.ResponseURL, CreatedAt: r.now(),
	}
	res, err := r.enqueue(ctx, job, dd)
	if err != nil {
		text, out := r.unavailable(err, log)
		tell(text)
		return out
	}
	if res.Duplicate {
		tell("That failure is already being retried.")
		return "duplicate"
	}
	tell(fmt.Sprintf("%s %s.", verb, escape(n.Title)))
	return "queued"
}
