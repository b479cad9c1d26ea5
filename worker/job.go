package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/seed-5eb4e92e/deploybot/authz"
	"github.com/seed-5eb4e92e/deploybot/commands"
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
	// lost is set once another worker has claimed the job; from then on this
	// run changes nothing.
	lost atomic.Bool
}

// handle runs one delivery to an end: finished, failed, retried later,
// dead-lettered, or handed back at shutdown.
func (p *Pool) handle(jobCtx context.Context, d *queue.Delivery) {
	job := d.Job
	r := &run{p: p, d: d, log: p.log.With("job_id", job.ID, "user", job.User, "command", job.Request.Kind)}
	// Bookkeeping (records, reports, acks) is not cut short by shutdown;
	// only the job's own work is.
	ctx := context.WithoutCancel(jobCtx)
	if !r.load(ctx) {
		return
	}
	runCtx, cancel := context.WithTimeout(jobCtx, p.cfg.JobTimeout)
	defer cancel()
	r.heartbeat(runCtx, cancel)

	runner, ok := r.admit(ctx, runCtx)
	if !ok {
		return
	}
	r.start(ctx)
	out, err := runner.Run(runCtx, job, p.q.Steps(job.ID), func(pr deploy.Progress) { r.progress(ctx, pr) })
	switch {
	case r.lost.Load():
		r.log.Warn("another worker took this job over; leaving it to them")
	case err == nil:
		r.finish(ctx, out)
	case jobCtx.Err() != nil:
		r.handBack(ctx)
	case errors.As(err, new(*deploy.Wait)):
		r.wait(ctx, err)
	case runCtx.Err() != nil:
		msg := fmt.Sprintf("Stopped following the job after %s.", p.cfg.JobTimeout)
		if r.rec.Link != "" {
			msg += " It may still be running: " + r.rec.Link
		}
		r.fail(ctx, msg, err)
	default:
		r.retryOrBury(ctx, err)
	}
}

// load reads the job's record. It returns false when the delivery needs no
// run: the job had already ended, or the record could not be read (then the
// job is retried later, and nothing recorded is overwritten).
func (r *run) load(ctx context.Context) bool {
	job := r.d.Job
	rec, err := r.p.q.Record(ctx, job.ID)
	switch {
	case errors.Is(err, queue.ErrNotFound):
		rec = queue.Record{Job: job, State: queue.StateQueued, Created: job.CreatedAt}
	case err != nil:
		r.log.Error("cannot read the job record; retrying later", "err", err)
		if rerr := r.p.q.Retry(ctx, r.d, r.p.backoff(1)); rerr != nil {
			r.log.Error("schedule retry", "err", rerr)
		}
		return false
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
		return false
	}
	if r.d.Reclaimed {
		r.log.Warn("job reclaimed from a worker that stopped; resuming from its recorded steps", "attempt", job.Attempt)
	}
	return true
}

// admit checks, as the job starts, that its requester may still run it and
// that this worker knows how.
func (r *run) admit(ctx, runCtx context.Context) (Runner, bool) {
	job := r.d.Job
	err := r.p.auth.Check(runCtx, job.User, job.Request.Permission())
	if err == nil && job.ApprovedBy != "" {
		// The approval counts only while its giver may still approve.
		err = r.p.auth.Check(runCtx, job.ApprovedBy, commands.Permission{Action: "approve", Env: job.Request.Env})
	}
	if err != nil {
		var denied *authz.Denied
		if errors.As(err, &denied) {
			r.audit(ctx, "denied", denied.Permission.String())
			msg := "Not run: " + denied.Error() + " (permissions are checked again when a job starts)."
			if denied.User != job.User {
				msg = fmt.Sprintf("Not run: the approval by <@%s> no longer counts, as they may not approve in %s any more.", denied.User, job.Request.Env)
			}
			r.fail(ctx, msg, nil)
		} else {
			r.retryOrBury(ctx, err)
		}
		return nil, false
	}
	if r.p.cfg.Approval[job.Request.Env] && queue.ChangesEnv(job.Request.Kind) && job.ApprovedBy == "" {
		r.audit(ctx, "denied", "no approval")
		r.fail(ctx, fmt.Sprintf("Not run: %s needs someone else's approval, and this job has none.", job.Request.Env), nil)
		return nil, false
	}
	runner, ok := (*r.p.runners.Load())[job.Request.Kind]
	if !ok {
		r.fail(ctx, fmt.Sprintf("deploybot has no worker for %q jobs.", job.Request.Kind), nil)
		return nil, false
	}
	return runner, true
}

// audit appends to the audit trail what became of the job.
func (r *run) audit(ctx context.Context, outcome, detail string) {
	if r.p.cfg.Audit == nil {
		return
	}
	job := r.d.Job
	what := job.Text
	if what == "" {
		what = job.Request.String()
	}
	e := authz.Entry{User: job.User, Kind: "job", What: what, Service: job.Request.Service, Env: job.Request.Env,
		Outcome: outcome, Job: job.ID, Detail: detail}
	if _, err := r.p.cfg.Audit.Append(ctx, e); err != nil {
		r.log.Error("audit entry not saved", "err", err, "outcome", outcome)
	}
}

// start marks the job running and shows it: the first run posts the
// message, later ones update it.
func (r *run) start(ctx context.Context) {
	if r.d.Job.RetryOf != "" && r.rec.State == queue.StateQueued {
		r.linkRetry(ctx)
	}
	first := r.rec.MessageTS == ""
	// A job back from waiting (for a lock, say) already shows what it
	// does; its message is not edited again to say the same.
	unchanged := !first && r.rec.State == queue.StateRunning && r.rec.Error == "" && r.rec.Stage != ""
	r.rec.State = queue.StateRunning
	r.rec.Error = ""
	if r.rec.Started.IsZero() {
		r.rec.Started = r.p.now()
	}
	if r.rec.Stage == "" {
		r.rec.Stage = "starting"
	}
	r.save(ctx)
	if !unchanged {
		r.report(ctx)
	}
	if first && r.d.Job.Text != "" {
		r.note(ctx, "Asked with: "+r.d.Job.Text)
	}
}

func (r *run) progress(ctx context.Context, pr deploy.Progress) {
	if pr.Stage != "" {
		r.rec.Stage = pr.Stage
	}
	if pr.Link != "" {
		r.rec.Link, r.rec.LinkText = pr.Link, pr.LinkText
		r.note(ctx, fmt.Sprintf("%s %s: %s", pr.Stage, pr.LinkText, pr.Link))
	}
	if pr.Artifact != "" {
		r.rec.Artifact = pr.Artifact
	}
	for _, l := range pr.Links {
		if mergeLink(&r.rec.Links, queue.Link{Kind: l.Kind, Text: l.Text, URL: l.URL}) {
			r.note(ctx, fmt.Sprintf("%s: %s", l.Text, l.URL))
		}
	}
	r.save(ctx)
	r.report(ctx)
}

// mergeLink puts l in links, replacing one of its kind; it reports whether
// anything changed.
func mergeLink(links *[]queue.Link, l queue.Link) bool {
	for i, have := range *links {
		if have.Kind == l.Kind {
			if have == l {
				return false
			}
			(*links)[i] = l
			return true
		}
	}
	*links = append(*links, l)
	return true
}

// heartbeat extends the delivery while the job runs. If another worker
// claimed it meanwhile, it cancels the run and marks it lost.
func (r *run) heartbeat(ctx context.Context, cancel context.CancelFunc) {
	every := max(r.p.q.Config().Visibility/3, 10*time.Millisecond)
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
					r.lost.Store(true)
					cancel()
					return
				}
				if err != nil && ctx.Err() == nil {
					r.log.Warn("heartbeat failed", "err", err)
				}
			}
		}
	}()
}
