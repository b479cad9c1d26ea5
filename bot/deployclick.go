package bot

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/slack-go/slack"

	"github.com/seed-5eb4e92e/deploybot/commands"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// deployClick queues what a finished deploy's Promote or Roll back button
// asks for. The new job names the deploy it came from: a promotion deploys
// exactly the artifact that deploy verified, a rollback puts back what ran
// before it. One job per button, however often it is clicked.
func (r *Responder) deployClick(ctx context.Context, cb slack.InteractionCallback, action, id string) outcome {
	user := cb.User.ID
	log := r.log.With("user", user, "command", action, "source", id)
	tell := r.teller(cb, log)
	if !queue.ValidID(id) {
		tell("That button does not name a job I know.")
		return "bad_request"
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.AckTimeout)
	defer cancel()
	src, err := r.q.Record(ctx, id)
	switch {
	case errors.Is(err, queue.ErrNotFound):
		tell(fmt.Sprintf("Job `%s` is no longer known (job records are kept for a limited time).", id))
		return "usage"
	case err != nil:
		text, out := r.unavailable(err, log)
		tell(text)
		return out
	}
	req, problem := clickRequest(action, src)
	entryOf(ctx).Service, entryOf(ctx).Env = req.Service, req.Env
	if problem != "" {
		tell(problem)
		return "usage"
	}
	if err := r.auth.Check(ctx, user, req.Permission()); err != nil {
		return r.deniedFollowUp(ctx, err, tell, log)
	}
	if text, out := r.lockRefusal(ctx, user, req, log); out != "" {
		tell(text)
		return out
	}
	// A click on the Home tab has no channel: the job reports where the
	// deploy it came from did.
	channel := cmp.Or(cb.Channel.ID, src.Channel, src.Job.Channel)
	job := queue.Job{Request: req, User: user, Channel: channel, ResponseURL: cb.ResponseURL, Source: id, CreatedAt: r.now()}
	return r.queueClick(ctx, cb.TriggerID, job, queue.Dedupe{Key: action + ":" + id, TTL: r.cfg.RetryWindow}, tell, log)
}

// clickRequest is the request a button on src makes, or why it makes none.
func clickRequest(action string, src queue.Record) (commands.Request, string) {
	from := src.Job.Request
	if src.State != queue.StateSucceeded || (from.Kind != "deploy" && from.Kind != "promote") {
		return commands.Request{}, fmt.Sprintf("Job `%s` is not a finished deploy.", src.Job.ID)
	}
	if action == ActionRollback {
		return commands.Request{Kind: "rollback", Action: "rollback", Service: from.Service, Env: from.Env}, ""
	}
	if src.PromoteTo == "" {
		return commands.Request{}, fmt.Sprintf("%s is the last environment of %s; there is nowhere to promote to.", from.Env, from.Service)
	}
	return commands.Request{Kind: "promote", Action: "promote", Service: from.Service, From: from.Env, Env: src.PromoteTo}, ""
}

// lockRefusal says why a change to req's environment may not start now,
// or returns "" when it may.
func (r *Responder) lockRefusal(ctx context.Context, user string, req commands.Request, log *slog.Logger) (string, outcome) {
	if r.envs == nil {
		return "", ""
	}
	l, found, err := r.envs.EnvLock(ctx, req.Env)
	if err != nil {
		log.Error("read environment lock", "err", err)
		return "⚠️ Nothing was started: I could not check the environment's lock (Redis is not answering).", "unavailable"
	}
	if found && l.Holds(user, r.now()) {
		return fmt.Sprintf("🔒 Not started: %s. Use `%s unlock %s` if it should end.", lockLine(l), r.cmds().table.Slash, escape(req.Env)), "locked"
	}
	return "", ""
}

// waitForLock queues a deploy that a lock refused behind that lock: the
// button carries the command's text, which is parsed and checked again.
func (r *Responder) waitForLock(ctx context.Context, cb slack.InteractionCallback, text string) outcome {
	user := cb.User.ID
	log := r.log.With("user", user, "command", "deploy_wait")
	tell := func(msg string) { r.followUp(cb.ResponseURL, msg, log) }
	req, err := r.cmds().table.Parse(text, r.cmds().catalog)
	if err != nil || !changesEnv(req.Kind) {
		tell("That button does not carry a deploy I can read.")
		return "bad_request"
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.AckTimeout)
	defer cancel()
	if err := r.auth.Check(ctx, user, req.Permission()); err != nil {
		return r.deniedFollowUp(ctx, err, tell, log)
	}
	job := queue.Job{
		Request: req, Text: strings.TrimSpace(r.cmds().table.Slash + " " + text), User: user, Channel: cb.Channel.ID,
		ResponseURL: cb.ResponseURL, WaitForLock: true, CreatedAt: r.now(),
	}
	dd := queue.Dedupe{Key: dedupeKey("wait", cb.Team.ID, user, cb.Channel.ID, text), TTL: r.cfg.DedupeWindow}
	return r.queueClick(ctx, cb.TriggerID, job, dd, tell, log)
}

// queueClick writes a job a button asked for and tells the clicker.
// maxClickAgain bounds how many times one button can start its job again
// after the job it started failed.
const maxClickAgain = 5

// enqueueClick queues a button's job once per click, however often Slack
// delivers it. A button whose job failed (a lock taken meanwhile, a
// concurrent deploy refused, an unhealthy rollout) is not spent: the next
// click queues the job again, once.
func (r *Responder) enqueueClick(ctx context.Context, job queue.Job, dd queue.Dedupe) (queue.Enqueued, error) {
	base := dd.Key
	for range maxClickAgain {
		res, err := r.enqueue(ctx, job, dd)
		if err != nil || !res.Duplicate {
			return res, err
		}
		rec, err := r.q.Record(ctx, res.ID)
		if err != nil || (rec.State != queue.StateFailed && rec.State != queue.StateDead) {
			return res, nil
		}
		dd.Key = base + ":after:" + res.ID
	}
	return r.enqueue(ctx, job, dd)
}

// A job to a protected environment opens the confirmation dialog instead.
func (r *Responder) queueClick(ctx context.Context, trigger string, job queue.Job, dd queue.Dedupe, tell func(string), log *slog.Logger) outcome {
	if out, done := r.protect(ctx, trigger, job, tell, log); done {
		return out
	}
	res, err := r.enqueueClick(ctx, job, dd)
	if err != nil {
		text, out := r.unavailable(err, log)
		tell(text)
		return out
	}
	what := describe(job.Request)
	if res.Duplicate {
		tell(fmt.Sprintf("Already queued: %s — job `%s`.", what, res.ID))
		return "duplicate"
	}
	entryOf(ctx).Job = res.ID
	log.Info("job queued", "job_id", res.ID)
	if job.WaitForLock {
		tell(fmt.Sprintf("⏳ Queued %s behind the lock — job `%s`. It starts when the lock is lifted or expires; its message in the channel says what it waits for.", what, res.ID))
	} else {
		tell(fmt.Sprintf("⏳ Queued %s — job `%s`.", what, res.ID))
	}
	return "queued"
}
