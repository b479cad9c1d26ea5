package worker

import (
	"context"
	"log/slog"
	"strconv"

	"github.com/seed-5eb4e92e/deploybot/deploy"
	"github.com/seed-5eb4e92e/deploybot/worker/blame"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// BuildRunner runs "build" jobs with the deploy package's build step.
type BuildRunner struct {
	Builds *deploy.Builds
	// Blame, if set, hears each finished build of a service's default
	// ref, so a build deploybot started that breaks (or fixes) the job's
	// mainline gets a notice too. A feature branch failing is news only to
	// whoever asked for it, and the job's message already tells them.
	Blame *blame.Engine
	// DefaultRefs maps a service to its default ref.
	DefaultRefs map[string]string
	Log         *slog.Logger
}

// Run builds the job's service at its ref.
func (b BuildRunner) Run(ctx context.Context, job queue.Job, steps *queue.Steps, report func(deploy.Progress)) (Outcome, error) {
	res, err := b.Builds.Run(ctx, job.Request.Service, job.Request.Ref, steps, report)
	if err != nil {
		return Outcome{}, err
	}
	b.tellBlame(ctx, job, res)
	out := Outcome{Succeeded: res.Succeeded(), Result: res.Outcome, Link: res.URL}
	if res.Number > 0 {
		out.LinkText = "#" + strconv.Itoa(res.Number)
	}
	return out, nil
}

func (b BuildRunner) tellBlame(ctx context.Context, job queue.Job, res deploy.BuildResult) {
	svc, ref := job.Request.Service, job.Request.Ref
	if b.Blame == nil || res.Number <= 0 || ref != b.DefaultRefs[svc] {
		return
	}
	cfg := b.Builds.Jobs[svc]
	r := blame.Result{Job: cfg.Job, Number: res.Number, Status: res.Outcome, URL: res.URL, Params: cfg.ParamsFor(ref), QueueID: res.QueueID}
	if err := b.Blame.Handle(ctx, r); err != nil && b.Log != nil {
		b.Log.Warn("could not post the breakage notice for this build", "job_id", job.ID, "err", err)
	}
}
