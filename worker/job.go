package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/seed-5eb4e92e/deploybot/authz"
	"github.com/seed-5eb4e92e/deploybot/deploy"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// run is one delivery in progress: the record being kept up to date and
// what is needed to report it.
type run struct {
	p   *Pool
	d   *queue.Delivery
	rec queue.Record
	log *slog.Logger
}

func (p *Pool) handle(jobCtx context.Context, d *queue.Delivery) {
	job := d.Job
	r := &run{p: p, d: d, log: p.log.With("job_id", job.ID, "user", job.User, "command", job.Request.Kind)}
	r.rec = queue.Record{Job: job, State: queue.StateQueued, Created: job.CreatedAt, Channel: job.Channel}
	// Bookkeeping (records, reports, acks) is not cut short by shutdown;
	// only the job's own work is.
	ctx := context.WithoutCancel(jobCtx)
	rec, err := p.q.Record(ctx, job.ID)
	switch {
	case errors.Is(err, queue.ErrNotFound):
		rec = r.rec
	case err != nil:
		r.log.Error("read job record", "err", err)
		r.retryOrBury(ctx, err)
		return
	}
	rec.Job = job
	if rec.Channel == "" {
		rec.Channel = job.Channel
	}
	r.rec = rec
	if rec.State.Final() {
		// Finished before a crash kept it from being acknowledged: make sure
		// the message shows the end, and let it go.
		r.report(ctx)
		r.ack(ctx, string(rec.State))
		return
	}
	if d.Reclaimed {
		r.log.Warn("job reclaimed from a worker that stopped; resuming from its recorded steps", "attempt", job.Attempt)
	}

	runCtx, cancel := context.WithTimeout(jobCtx, p.cfg.JobTimeout)
	defer cancel()
	lost := r.heartbeat(runCtx, cancel)

	if err := p.auth.Check(runCtx, job.User, job.Request.Permission()); err != nil {
		var denied *authz.Denied
		if errors.As(err, &denied) {
			r.fail(ctx, "Not run: "+denied.Error()+" (permissions are checked again when a job starts).")
			return
		}
		r.retryOrBury(ctx, err)
		return
	}
	runner, ok := p.runners[job.Request.Kind]
	if !ok {
		r.fail(ctx, fmt.Sprintf("deploybot has no worker for %q jobs.", job.Request.Kind))
		return
	}
	if job.RetryOf != "" && rec.State == queue.StateQueued {
		r.linkRetry(ctx)
	}
	r.rec.State = queue.StateRunning
	r.rec.Error = ""
	if r.rec.Started.IsZero() {
		r.rec.Started = p.now()
	}
	if r.rec.Stage == "" {
		r.rec.Stage = "starting"
	}
	r.save(ctx)
	if r.rec.MessageTS == "" {
		r.report(ctx)
		if job.Text != "" {
			r.note(ctx, fmt.Sprintf("<@%s> asked: `%s`", job.User, job.Text))
		}
	} else {
		r.report(ctx)
	}

	out, err := runner.Run(runCtx, job, p.q.Steps(job.ID), func(pr deploy.Progress) {
		r.rec.Stage = pr.Stage
		if pr.Link != "" {
			r.rec.Link, r.rec.LinkText = pr.Link, pr.LinkText
			r.note(ctx, fmt.Sprintf("%s: <%s|%s>", pr.Stage, pr.Link, pr.LinkText))
		}
		r.save(ctx)
		r.report(ctx)
	})
	switch {
	case lost.Load():
		r.log.Warn("another worker took this job over; leaving it to them")
	case err == nil:
		r.finish(ctx, out)
	case jobCtx.Err() != nil:
		// Shutting down past the grace period: hand the job back; its steps
		// let the next worker resume it.
		if rerr := p.q.Release(ctx, d); rerr != nil {
			r.log.Error("hand back job", "err", rerr)
		} else {
			r.log.Info("job handed back at shutdown")
		}
	case errors.Is(err, context.DeadlineExceeded) && runCtx.Err() != nil:
		msg := fmt.Sprintf("Stopped following the job after %s.", p.cfg.JobTimeout)
		if r.rec.Link != "" {
			msg += " It may still be running: " + r.rec.Link
		}
		r.fail(ctx, msg)
	default:
		r.retryOrBury(ctx, err)
	}
}

// heartbeat extends the delivery while the job runs. If another worker
// claimed it meanwhile, it cancels the run and sets lost.
func (r *run) heartbeat(ctx context.Context, cancel context.CancelFunc) *atomic.Bool {
	lost := &atomic.Bool{}
	every := r.p.q.Config().Visibility / 3
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				err := r.p.q.Extend(ctx, r.d)
				if errors.Is(err, queue.ErrLost) {
					lost.Store(true)
					cancel()
					return
				}
				if err != nil && ctx.Err() == nil {
					r.log.Warn("heartbeat failed", "err", err)
				}
			}
		}
	}()
	return lost
}

func (r *run) finish(ctx context.Context, out Outcome) {
	r.rec.State = queue.StateFailed
	if out.Succeeded {
		r.rec.State = queue.StateSucceeded
	}
	r.rec.Result = out.Result
	if out.Link != "" {
		r.rec.Link, r.rec.LinkText = out.Link, out.LinkText
	}
	r.rec.Stage = ""
	r.rec.Finished = r.p.now()
	r.save(ctx)
	r.report(ctx)
	if !out.Succeeded && r.rec.Link != "" {
		r.note(ctx, fmt.Sprintf("%s — console: %sconsole", out.Result, r.rec.Link))
	}
	r.log.Info("job finished", "result", out.Result)
	r.ack(ctx, string(r.rec.State))
}

func (r *run) fail(ctx context.Context, msg string) {
	r.rec.State = queue.StateFailed
	r.rec.Error = msg
	r.rec.Stage = ""
	r.rec.Finished = r.p.now()
	r.save(ctx)
	r.report(ctx)
	r.log.Info("job failed", "reason", msg)
	r.ack(ctx, "failed")
}

// retryOrBury handles an error: retryable ones are retried with backoff
// until MaxAttempts, then dead-lettered; others fail the job at once.
func (r *run) retryOrBury(ctx context.Context, err error) {
	msg := safeMessage(err, r.d.Job.ID)
	if !Retryable(err) {
		r.log.Error("job failed", "err", err)
		r.fail(ctx, msg)
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
	if err := r.p.q.Save(ctx, r.rec); err != nil {
		r.log.Error("save job record", "err", err)
	}
}

// report shows the record; a failure to reach Slack never fails the job.
func (r *run) report(ctx context.Context) {
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

// Retryable reports whether an error is worth another attempt: a backend's
// temporary error (5xx, 429) or a network error. Context errors are not:
// they mean the job's own time ran out or the worker is stopping.
func Retryable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
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
