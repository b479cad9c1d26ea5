package worker

import (
	"context"
	"strconv"

	"github.com/seed-5eb4e92e/deploybot/deploy"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// BuildRunner runs "build" jobs with the deploy package's build step.
type BuildRunner struct {
	Builds *deploy.Builds
}

// Run builds the job's service at its ref.
func (b BuildRunner) Run(ctx context.Context, job queue.Job, steps *queue.Steps, report func(deploy.Progress)) (Outcome, error) {
	res, err := b.Builds.Run(ctx, job.Request.Service, job.Request.Ref, steps, report)
	if err != nil {
		return Outcome{}, err
	}
	out := Outcome{Succeeded: res.Succeeded(), Result: res.Outcome, Link: res.URL}
	if res.Number > 0 {
		out.LinkText = "#" + strconv.Itoa(res.Number)
	}
	return out, nil
}
