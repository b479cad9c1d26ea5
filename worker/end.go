package worker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/seed-5eb4e92e/deploybot/deploy"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

func (r *run) finish(ctx context.Context, out Outcome) {
	r.rec.State = queue.StateFailed
	if out.Succeeded {
		r.rec.State = queue.StateSucceeded
	}
	r.rec.Result = out.Result
	if out.Link != "" {
		r.rec.Link, r.rec.LinkText = out.Link, out.LinkText
	}
	if out.Artifact != "" {
		r.rec.Artifact = out.Artifact
	}
	for _, l := range out.Links {
		mergeLink(&r.rec.Links, queue.Link{Kind: l.Kind, Text: l.Text, URL: l.URL})
	}
	r.rec.PromoteTo = out.PromoteTo
	r.rec.Live, r.rec.LiveTasks, r.rec.LiveTasksError = out.Live, out.LiveTasks, out.LiveTasksError
	r.rec.Stage = ""
	r.rec.Finished = r.p.now()
	r.save(ctx)
	r.report(ctx)
	if !out.Succeeded && r.rec.Link != "" {
		r.note(ctx, fmt.Sprintf("%s, console: %sconsole", out.Result, r.rec.Link))
	}
	r.log.Info("job finished", "result", out.Result)
	r.ack(ctx, string(r.rec.State))
}

// fail ends the job as failed with msg (safe for Slack); cause, if any, is
// logged.
func (r *run) fail(ctx context.Context, msg string, cause error) {
	r.rec.State = queue.StateFailed
	r.rec.Error = msg
	r.rec.Stage = ""
	r.rec.Finished = r.p.now()
	r.save(ctx)
	r.report(ctx)
	if cause != nil {
		r.log.Warn("job failed", "reason", msg, "err", cause)
	} else {
		r.log.Info("job failed", "reason", msg)
	}
	r.ack(ctx, "failed")
}

// retryOrBury handles an error: retryable ones are retried with backoff
// until MaxAttempts, then dead-lettered; others fail the job at once.
func (r *run) retryOrBury(ctx context.Context, err error) {
	msg := safeMessage(err, r.d.Job.ID)
	if !Retryable(err) {
		r.fail(ctx, msg, err)
		return
	}
	attempt := r.d.Job.Attempt
	if attempt >= r.p.cfg.MaxAttempts {
		r.log.Error("job dead-lettered: out of attempts", "attempt", attempt, "err", err)
		r.rec.State = queue.StateDead
		r.rec.Error = fmt.Sprintf("Gave up after %d attempts. Last error: %s", attempt, msg)
		r.rec.Stage = ""
		r.rec.Finished = r.p.now()
		r.save(ctx)
		r.report(ctx)
		if berr := r.p.q.Bury(ctx, r.d, err.Error()); berr != nil {
			r.log.Error("dead-letter job", "err", berr)
		}
		return
	}
	delay := r.p.backoff(attempt)
	r.log.Warn("job will be retried", "attempt", attempt, "delay", delay.String(), "err", err)
	r.rec.Stage = fmt.Sprintf("retrying in %s (attempt %d of %d): %s", delay.Round(time.Second), attempt+1, r.p.cfg.MaxAttempts, msg)
	r.save(ctx)
	r.report(ctx)
	if rerr := r.p.q.Retry(ctx, r.d, delay); rerr != nil {
		r.log.Error("schedule retry", "err", rerr)
	}
}

// wait puts the job back for later without counting an attempt, and
// shows what it waits for.
func (r *run) wait(ctx context.Context, err error) {
	var w *deploy.Wait
	errors.As(err, &w)
	if r.rec.Stage != w.Stage { // a job rechecked every few seconds edits its message only when that says something new
		r.rec.Stage = w.Stage
		r.save(ctx)
		r.report(ctx)
	}
	if perr := r.p.q.Postpone(ctx, r.d, max(w.After, time.Second)); perr != nil {
		r.log.Error("postpone job", "err", perr)
		return
	}
	r.log.Info("job waits", "stage", w.Stage, "after", w.After.String())
}

// handBack returns the job to the queue at shutdown; its recorded steps let
// the next worker resume it.
func (r *run) handBack(ctx context.Context) {
	if err := r.p.q.Release(ctx, r.d); err != nil {
		r.log.Error("hand back job", "err", err)
		return
	}
	r.log.Info("job handed back at shutdown")
}

// linkRetry marks the job this one retries, so its message loses its Retry
// button and points here instead.
func (r *run) linkRetry(ctx context.Context) {
	orig := r.d.Job.RetryOf
	if err := r.p.q.MarkRetried(ctx, orig, r.d.Job.ID, r.d.Job.User); err != nil {
		r.log.Warn("mark original job retried", "retry_of", orig, "err", err)
		return
	}
	rec, err := r.p.q.Record(ctx, orig)
	if err != nil || rec.MessageTS == "" {
		return
	}
	if _, err := r.p.rep.Report(ctx, rec); err != nil {
		r.log.Warn("update original job's message", "retry_of", orig, "err", err)
	}
}

func (r *run) save(ctx context.Context) {
	if r.lost.Load() {
		return
	}
	if err := r.p.q.Save(ctx, r.rec); err != nil {
		r.log.Error("save job record", "err", err)
	}
}

// report shows the record; a failure to reach Slack never fails the job.
func (r *run) report(ctx context.Context) {
	if r.lost.Load() {
		return
	}
	ts, err := r.p.rep.Report(ctx, r.rec)
	if err != nil {
		r.log.Warn("report job", "err", err)
		return
	}
	if ts != "" && ts != r.rec.MessageTS {
		r.rec.MessageTS = ts
		r.save(ctx)
	}
}

func (r *run) note(ctx context.Context, text string) {
	if r.lost.Load() {
		return
	}
	if err := r.p.rep.Note(ctx, r.rec, text); err != nil {
		r.log.Warn("add thread note", "err", err)
	}
}

func (r *run) ack(ctx context.Context, outcome string) {
	if err := r.p.q.Done(ctx, r.d, outcome); err != nil {
		r.log.Error("acknowledge job", "err", err)
	}
}

func (p *Pool) reportPoison(ctx context.Context, e *queue.PoisonError) {
	log := p.log.With("job_id", e.Job.ID, "user", e.Job.User, "command", e.Job.Request.Kind)
	log.Error("job dead-lettered: workers kept stopping while running it", "reason", e.Reason)
	rec, err := p.q.Record(ctx, e.Job.ID)
	if err != nil {
		rec = queue.Record{Job: e.Job, Channel: e.Job.Channel, Created: e.Job.CreatedAt}
	}
	rec.State = queue.StateDead
	rec.Error = "Gave up: " + e.Reason + "."
	rec.Stage = ""
	rec.Finished = p.now()
	if err := p.q.Save(ctx, rec); err != nil {
		log.Error("save job record", "err", err)
	}
	if _, err := p.rep.Report(ctx, rec); err != nil {
		log.Warn("report job", "err", err)
	}
}

// Retryable reports whether an error is worth another attempt: a network
// error or timeout talking to a backend, or a backend's temporary error
// (5xx, 429). The worker decides separately whether the job's own time ran
// out or the worker is stopping.
func Retryable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// safeMessage is what Slack may show about err: a Failure's message, or a
// pointer to the logs.
func safeMessage(err error, jobID string) string {
	var f *deploy.Failure
	if errors.As(err, &f) {
		return f.Msg
	}
	return fmt.Sprintf("Something went wrong inside deploybot; the details are in its logs under job %s.", jobID)
}
