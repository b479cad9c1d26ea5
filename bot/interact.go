package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"github.com/seed-5eb4e92e/deploybot/authz"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

func (r *Responder) handleInteraction(w http.ResponseWriter, req *http.Request) outcome {
	body, out := r.readSigned(w, req, formType)
	if out != "" {
		return out
	}
	form, err := url.ParseQuery(string(body))
	if err != nil || repeated(form, "payload") {
		http.Error(w, "bad form", http.StatusBadRequest)
		return "bad_request"
	}
	var cb slack.InteractionCallback
	if err := json.Unmarshal([]byte(form.Get("payload")), &cb); err != nil || cb.User.ID == "" {
		http.Error(w, "not an interaction payload", http.StatusBadRequest)
		return "bad_request"
	}
	if cb.Type == slack.InteractionTypeViewSubmission && cb.View.CallbackID == CallbackConfirm {
		return r.handleConfirm(w, req.Context(), cb)
	}
	if cb.Type != slack.InteractionTypeBlockActions || len(cb.ActionCallback.BlockActions) == 0 {
		w.WriteHeader(http.StatusOK)
		return "ignored"
	}
	act := cb.ActionCallback.BlockActions[0]
	ent := &authz.Entry{User: cb.User.ID, Kind: "click", What: act.ActionID + " " + act.Value}
	ctx := withEntry(req.Context(), ent)
	switch act.ActionID {
	case ActionRetry:
		out = r.retry(ctx, cb, act.Value)
	case ActionNoticeRetry, ActionNoticeMute:
		out = r.noticeAction(ctx, cb, act.ActionID, act.Value)
	case ActionPromote, ActionRollback:
		out = r.deployClick(ctx, cb, act.ActionID, act.Value)
	case ActionWaitForLock:
		out = r.waitForLock(ctx, cb, act.Value)
	case ActionApprove, ActionReject:
		out = r.decide(ctx, cb, act.ActionID, act.Value)
	default:
		w.WriteHeader(http.StatusOK)
		return "ignored"
	}
	w.WriteHeader(http.StatusOK)
	r.record(ent, out, r.log.With("user", cb.User.ID, "command", act.ActionID))
	return out
}

// handleConfirm answers the confirmation dialog's submit: an empty 200
// closes it; an update says why nothing started.
func (r *Responder) handleConfirm(w http.ResponseWriter, ctx context.Context, cb slack.InteractionCallback) outcome {
	log := r.log.With("user", cb.User.ID, "command", "confirm")
	ent := &authz.Entry{User: cb.User.ID, Kind: "confirm", What: "confirm " + cb.View.PrivateMetadata}
	ans, out := r.confirmed(withEntry(ctx, ent), cb, log)
	if ans.ResponseAction == "" {
		w.WriteHeader(http.StatusOK)
	} else {
		writeJSON(w, ans)
	}
	r.record(ent, out, log)
	return out
}

// retry queues the job a Retry button names again, once per button:
// however many times the click arrives, and whoever clicks, the job is
// retried once and later clicks point at that retry.
func (r *Responder) retry(ctx context.Context, cb slack.InteractionCallback, id string) outcome {
	user := cb.User.ID
	log := r.log.With("user", user, "command", "retry", "retry_of", id)
	tell := func(text string) { r.followUp(cb.ResponseURL, text, log) }
	if !queue.ValidID(id) {
		log.Warn("retry button with a bad job id")
		tell("That button does not name a job I know.")
		return "bad_request"
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.AckTimeout)
	defer cancel()
	orig, err := r.q.Record(ctx, id)
	switch {
	case errors.Is(err, queue.ErrNotFound):
		tell(fmt.Sprintf("Job `%s` is no longer known (job records are kept for a limited time); run the command again.", id))
		return "usage"
	case err != nil:
		text, out := r.unavailable(err, log)
		tell(text)
		return out
	}
	if err := r.auth.Check(ctx, user, orig.Job.Request.Permission()); err != nil {
		return r.deniedFollowUp(ctx, err, tell, log)
	}
	if !orig.State.Final() || orig.State == queue.StateSucceeded {
		tell(fmt.Sprintf("Job `%s` is %s; there is nothing to retry.", id, orig.State))
		return "usage"
	}
	job := orig.Job
	job.ID, job.RetryOf, job.User, job.Attempt, job.ApprovedBy = "", id, user, 0, ""
	job.CreatedAt, job.ResponseURL = r.now(), cb.ResponseURL
	if out, done := r.protect(ctx, cb.TriggerID, job, tell, log); done {
		return out
	}
	res, err := r.enqueue(ctx, job, queue.Dedupe{Key: "retry:" + id, TTL: r.cfg.RetryWindow})
	if err != nil {
		text, out := r.unavailable(err, log)
		tell(text)
		return out
	}
	if res.Duplicate {
		tell(fmt.Sprintf("Job `%s` was already retried as job `%s`.", id, res.ID))
		return "duplicate"
	}
	entryOf(ctx).Job = res.ID
	log.Info("retry queued", "job_id", res.ID)
	tell(fmt.Sprintf("🔁 Retrying %s — job `%s`.", describe(job.Request), res.ID))
	return "queued"
}

// deniedFollowUp tells a clicker why their click did nothing.
func (r *Responder) deniedFollowUp(ctx context.Context, err error, tell func(string), log *slog.Logger) outcome {
	var d *authz.Denied
	if errors.As(err, &d) {
		log.Info("click denied", "permission", d.Permission.String())
		entryOf(ctx).Detail = deniedDetail(d)
		tell("⛔ Not allowed: " + d.Error() + ".")
		return "denied"
	}
	log.Error("permission check failed", "err", err)
	tell("⚠️ I could not check your permissions just now, so nothing was started.")
	return "unavailable"
}

func (r *Responder) handleEvent(w http.ResponseWriter, req *http.Request) outcome {
	body, out := r.readSigned(w, req, "application/json")
	if out != "" {
		return out
	}
	ev, err := slackevents.ParseEvent(json.RawMessage(body), slackevents.OptionNoVerifyToken())
	if err != nil {
		http.Error(w, "not an Events API payload", http.StatusBadRequest)
		return "bad_request"
	}
	if ev.Type == slackevents.URLVerification {
		var ch slackevents.ChallengeResponse
		if err := json.Unmarshal(body, &ch); err != nil || ch.Challenge == "" {
			http.Error(w, "no challenge", http.StatusBadRequest)
			return "bad_request"
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte(ch.Challenge))
		return "challenge"
	}
	w.WriteHeader(http.StatusOK)
	if home, ok := ev.InnerEvent.Data.(*slackevents.AppHomeOpenedEvent); ok {
		return r.homeOpened(home)
	}
	return "ignored"
}
