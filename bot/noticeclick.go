package bot

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/slack-go/slack"

	"github.com/seed-5eb4e92e/deploybot/commands"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// noticeRetryDedupe is how long clicks on one failure's Retry count as one.
const noticeRetryDedupe = time.Minute

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
	if err := r.auth.Check(ctx, user, queue.NoticePermission(n)); err != nil {
		return r.deniedFollowUp(ctx, err, tell, log)
	}
	kind, verb := "notice-mute", "Muting"
	dd := queue.Dedupe{}
	if action == ActionNoticeRetry {
		if !n.Open() {
			tell("It is fixed already; there is nothing to retry.")
			return "usage"
		}
		kind, verb = "notice-retry", "Retrying"
		// A double click, or a second person clicking at once, queues one
		// job. The engine allows one retry per failing run; this only
		// spares the queue, so it names this breakage (Created) and its
		// latest run, and forgets soon, so that a retry that failed can be
		// clicked again.
		key := fmt.Sprintf("notice-retry:%s:%d:%d", id, n.Created.UnixNano(), n.Runs)
		dd = queue.Dedupe{Key: key, TTL: noticeRetryDedupe}
	}
	perm := queue.NoticePermission(n)
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
