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
	// Blame, if set, hears each finished build, so a build deploybot
	// started that breaks (or fixes) the job gets a notice too.
	Blame *blame.Engine
	Log   *slog.Logger
}

// Run builds the job's service at its ref.
func (b BuildRunner) Run(ctx context.Context, job queue.Job, steps *queue.Steps, report func(deploy.Progress)) (Outcome, error) {
	res, err := b.Builds.Run(ctx, job.Request.Service, job.Request.Ref, steps, report)
	if err != nil {
		return Outcome{}, err
	}
	if b.Blame != nil && res.Number > 0 {
		r := blame.Result{Job: b.Builds.Jobs[job.Request.Service].Job, Number: res.Number, Status: res.Outcome, URL: res.URL}
		if err := b.Blame.Handle(ctx, r); err != nil && b.Log != nil {
			b.Log.Warn("could not post the breakage notice for this build", "job_id", job.ID, "err", err)
		}
	}
	out := Outcome{Succeeded: res.Succeeded(), Result: res.Outcome, Link: res.URL}
	if res.Number > 0 {
		out.LinkText = "#" + strconv.Itoa(res.Number)
	}
	return out, nil
}
