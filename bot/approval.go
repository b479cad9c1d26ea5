package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/slack-go/slack"

	"github.com/seed-5eb4e92e/deploybot/commands"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// askApproval keeps a confirmed request until someone approves, rejects
// or it expires, and posts the Approve and Reject buttons in its channel.
func (r *Responder) askApproval(ctx context.Context, pend queue.Pending, log *slog.Logger) outcome {
	p, _ := r.protection(pend.Job.Request)
	pend.Confirmed, pend.Expires = true, r.now().Add(p.Expires)
	if err := r.approvals.SavePending(ctx, pend); err != nil {
		text, out := r.unavailable(err, log)
		r.followUp(pend.Job.ResponseURL, text, log)
		return out
	}
	entryOf(ctx).Detail = "approval asked"
	req := pend.Job.Request
	until := pend.Expires.UTC().Format("15:04 MST")
	text := fmt.Sprintf("🛡️ <@%s> asks to %s. *%s* is protected: someone else who may approve there must approve it by %s.",
		pend.Job.User, describeAsk(req), escape(req.Env), until)
	approve := slack.NewButtonBlockElement(ActionApprove, pend.ID, plain("Approve"))
	approve.Style = slack.StylePrimary
	reject := slack.NewButtonBlockElement(ActionReject, pend.ID, plain("Reject"))
	reject.Style = slack.StyleDanger
	blocks := []slack.Block{section(text), slack.NewActionBlock("approval", approve, reject)}
	r.bg.Add(1)
	go func() {
		defer r.bg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if r.poster == nil {
			r.followUp(pend.Job.ResponseURL, "⚠️ I can't post approval requests here, so nothing will start.", log)
			return
		}
		if _, err := r.poster.PostMessage(ctx, pend.Job.Channel, text, blocks); err != nil {
			log.Error("post the approval request", "err", err)
			r.followUp(pend.Job.ResponseURL, "⚠️ I could not post the approval request in this channel (is the bot in it?), so nothing will start.", log)
			return
		}
		r.followUp(pend.Job.ResponseURL, fmt.Sprintf("🛡️ Asked for approval in this channel; the request expires at %s.", until), log)
	}()
	return "approval_asked"
}

// describeAsk is "deploy api@main to prod" for a sentence.
func describeAsk(req commands.Request) string {
	d := describe(req) // "deploy of api@main to prod"
	return req.Kind + d[len(req.Kind)+len(" of"):]
}

// decide handles Approve and Reject. Approval needs approve:<env> and
// someone other than the requester; the requester may withdraw their own
// request with Reject. Either decides the request once.
func (r *Responder) decide(ctx context.Context, cb slack.InteractionCallback, action, id string) outcome {
	user := cb.User.ID
	log := r.log.With("user", user, "command", action, "request", id)
	tell := func(text string) { r.followUp(cb.ResponseURL, text, log) }
	ctx, cancel := context.WithTimeout(ctx, r.cfg.AckTimeout)
	defer cancel()
	ent := entryOf(ctx)
	ent.Kind = "approval"
	if !queue.ValidID(id) || r.approvals == nil {
		tell("That button does not name a request I know.")
		return "bad_request"
	}
	pend, err := r.approvals.Pending(ctx, id)
	switch {
	case err == nil && !(pend.Approval && pend.Confirmed):
		// Still in its requester's dialog: not theirs to decide yet.
		tell("That request has not been confirmed by its requester; there is nothing to approve yet.")
		return "usage"
	case errors.Is(err, queue.ErrNoPending):
		r.replace(cb.ResponseURL, "⌛ This request was decided already or has expired; nothing more will start from it.", log)
		return "usage"
	case err != nil:
		text, out := r.unavailable(err, log)
		tell(text)
		return out
	}
	req := pend.Job.Request
	ent.Service, ent.Env = req.Service, req.Env
	own := user == pend.Job.User
	if out := r.mayDecide(ctx, user, own, action, req, tell, log); out != "" {
		return out
	}
	pend, err = r.approvals.TakePending(ctx, id)
	switch {
	case errors.Is(err, queue.ErrNoPending):
		tell("Someone decided this request a moment before you, or it expired just now.")
		return "duplicate"
	case err != nil:
		text, out := r.unavailable(err, log)
		tell(text)
		return out
	}
	if action == ActionReject {
		verb := "Rejected"
		if own {
			verb = "Withdrawn"
		}
		r.replace(cb.ResponseURL, fmt.Sprintf("❌ %s by <@%s>: <@%s>'s request to %s. Nothing was started.", verb, user, pend.Job.User, describeAsk(req)), log)
		return "rejected"
	}
	return r.approve(ctx, cb, pend, log)
}

// mayDecide refuses, with a reason, whoever may not take action on a
// request: nobody approves their own, and others need approve:<env>.
func (r *Responder) mayDecide(ctx context.Context, user string, own bool, action string, req commands.Request, tell func(string), log *slog.Logger) outcome {
	switch {
	case own && action == ActionApprove:
		tell(fmt.Sprintf("You can't approve your own request: someone else who may approve in %s must.", escape(req.Env)))
		return "denied"
	case !own:
		if err := r.auth.Check(ctx, user, commands.Permission{Action: "approve", Env: req.Env}); err != nil {
			return r.deniedFollowUp(ctx, err, tell, log)
		}
	}
	return ""
}

func (r *Responder) approve(ctx context.Context, cb slack.InteractionCallback, pend queue.Pending, log *slog.Logger) outcome {
	job := pend.Job
	job.ApprovedBy, job.CreatedAt = cb.User.ID, r.now()
	res, err := r.enqueue(ctx, job, queue.Dedupe{Key: "approve:" + pend.ID, TTL: r.cfg.RetryWindow})
	if err != nil {
		// Nothing started: put the request back so the button still works.
		if serr := r.approvals.SavePending(context.WithoutCancel(ctx), pend); serr != nil {
			log.Error("put back the approval request", "err", serr)
		}
		text, out := r.unavailable(err, log)
		r.followUp(cb.ResponseURL, text, log)
		return out
	}
	entryOf(ctx).Job = res.ID
	log.Info("approved job queued", "job_id", res.ID, "requester", job.User)
	r.replace(cb.ResponseURL, fmt.Sprintf("✅ <@%s> approved <@%s>'s request to %s — job `%s`.", cb.User.ID, job.User, describeAsk(job.Request), res.ID), log)
	return "approved"
}
