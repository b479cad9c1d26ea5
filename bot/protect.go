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

// Protection is what a protected environment asks before a deploy,
// promote or rollback there: the requester confirms in a dialog, and,
// with Approval, someone else holding approve:<env> approves.
type Protection struct {
	Approval bool
	// Expires is how long a request waits for approval. Default 1h.
	Expires time.Duration
}

// Views opens modal dialogs (views.open).
type Views interface {
	OpenView(ctx context.Context, triggerID string, view slack.ModalViewRequest) error
}

// Approvals keeps requests that wait for confirmation or approval.
type Approvals interface {
	SavePending(ctx context.Context, p queue.Pending) error
	Pending(ctx context.Context, id string) (queue.Pending, error)
	TakePending(ctx context.Context, id string) (queue.Pending, error)
}

// Poster posts a message to a channel: the approval request.
type Poster interface {
	PostMessage(ctx context.Context, channel, text string, blocks []slack.Block) (Sent, error)
}

// The confirmation dialog and the approval buttons.
const (
	CallbackConfirm = "deploybot_confirm"
	ActionApprove   = "deploy_approve"
	ActionReject    = "deploy_reject"
	// confirmWindow is how long a confirmation dialog's request is kept.
	confirmWindow = 15 * time.Minute
)

// protection is what req's environment asks, if it is protected.
func (r *Responder) protection(req commands.Request) (Protection, bool) {
	if !changesEnv(req.Kind) {
		return Protection{}, false
	}
	p, ok := r.cfg.Protected[req.Env]
	if p.Expires <= 0 {
		p.Expires = time.Hour
	}
	return p, ok
}

// protect opens the confirmation dialog for a job to a protected
// environment, instead of queueing it, and reports whether it did. The
// dialog must open within Slack's three seconds of the click or command
// whose trigger it uses.
func (r *Responder) protect(ctx context.Context, triggerID string, job queue.Job, tell func(string), log *slog.Logger) (outcome, bool) {
	p, ok := r.protection(job.Request)
	if !ok {
		return "", false
	}
	if r.views == nil || r.approvals == nil || triggerID == "" {
		tell(fmt.Sprintf("⚠️ Nothing was started: *%s* is protected and needs a confirmation dialog, which I can't open here.", escape(job.Request.Env)))
		return "unavailable", true
	}
	pend := queue.Pending{ID: queue.NewID(r.now()), Job: job, Approval: p.Approval, Expires: r.now().Add(confirmWindow)}
	if err := r.approvals.SavePending(ctx, pend); err != nil {
		text, out := r.unavailable(err, log)
		tell(text)
		return out, true
	}
	if err := r.views.OpenView(ctx, triggerID, confirmView(pend)); err != nil {
		log.Error("open the confirmation dialog", "err", err)
		tell("⚠️ Nothing was started: I could not open the confirmation dialog. Try again.")
		return "unavailable", true
	}
	entryOf(ctx).Detail = "confirmation asked"
	tell(fmt.Sprintf("🛡️ *%s* is a protected environment: confirm %s in the dialog.", escape(job.Request.Env), describe(job.Request)))
	return "confirm", true
}

func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
}

// clip24 keeps a dialog's title and buttons within Slack's 24 characters.
func clip24(s string) string {
	if r := []rune(s); len(r) > 24 {
		return string(r[:23]) + "…"
	}
	return s
}

func confirmView(p queue.Pending) slack.ModalViewRequest {
	req := p.Job.Request
	text := fmt.Sprintf("%s?\n*%s* is a protected environment.", capitalize(describe(req)), escape(req.Env))
	submit := "Start"
	if p.Approval {
		text += fmt.Sprintf(" Someone else who may approve in %s must then approve it.", escape(req.Env))
		submit = "Ask for approval"
	}
	return slack.ModalViewRequest{
		Type: slack.VTModal, CallbackID: CallbackConfirm, PrivateMetadata: p.ID,
		Title: plain(clip24(capitalize(req.Kind) + " to " + req.Env)), Submit: plain(submit), Close: plain("Cancel"),
		Blocks: slack.Blocks{BlockSet: []slack.Block{section(text)}},
	}
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

// viewAnswer is the answer to a view_submission: nothing closes the dialog;
// an update shows why nothing happened.
type viewAnswer struct {
	ResponseAction string                  `json:"response_action,omitempty"`
	View           *slack.ModalViewRequest `json:"view,omitempty"`
}

func dialogSays(title, text string) viewAnswer {
	v := slack.ModalViewRequest{Type: slack.VTModal, Title: plain(clip24(title)), Close: plain("Close"),
		Blocks: slack.Blocks{BlockSet: []slack.Block{section(text)}}}
	return viewAnswer{ResponseAction: "update", View: &v}
}

// confirmed handles the confirmation dialog's submit: the job is queued, or
// waits for approval.
func (r *Responder) confirmed(ctx context.Context, cb slack.InteractionCallback, log *slog.Logger) (viewAnswer, outcome) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.AckTimeout)
	defer cancel()
	id := cb.View.PrivateMetadata
	if !queue.ValidID(id) || r.approvals == nil {
		return dialogSays("Not started", "This dialog does not name a request I know."), "bad_request"
	}
	pend, err := r.approvals.Pending(ctx, id)
	if err == nil && pend.Job.User == cb.User.ID {
		pend, err = r.approvals.TakePending(ctx, id) // once, however often it is submitted
	}
	switch {
	case errors.Is(err, queue.ErrNoPending):
		return dialogSays("Not started", "This request has expired or was already confirmed. Run the command again."), "usage"
	case err != nil:
		text, out := r.unavailable(err, log)
		return dialogSays("Not started", text), out
	case pend.Job.User != cb.User.ID:
		return dialogSays("Not started", "This dialog belongs to someone else's request."), "denied"
	}
	ent := entryOf(ctx)
	ent.What, ent.Service, ent.Env = pend.Job.Text, pend.Job.Request.Service, pend.Job.Request.Env
	if err := r.auth.Check(ctx, cb.User.ID, pend.Job.Request.Permission()); err != nil {
		var msg string
		out := r.deniedFollowUp(ctx, err, func(s string) { msg = s }, log)
		return dialogSays("Not started", msg), out
	}
	if pend.Approval {
		return viewAnswer{}, r.askApproval(ctx, pend, log)
	}
	res, err := r.enqueue(ctx, pend.Job, queue.Dedupe{Key: "confirm:" + id, TTL: r.cfg.RetryWindow})
	if err != nil {
		text, out := r.unavailable(err, log)
		return dialogSays("Not started", text), out
	}
	ent.Job = res.ID
	log.Info("confirmed job queued", "job_id", res.ID)
	r.followUp(pend.Job.ResponseURL, fmt.Sprintf("⏳ Queued %s — job `%s`.", describe(pend.Job.Request), res.ID), log)
	return viewAnswer{}, "queued"
}
