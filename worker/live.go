package worker

import (
	"context"
	"errors"

	"github.com/seed-5eb4e92e/deploybot/commands"
	"github.com/seed-5eb4e92e/deploybot/deploy"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// LiveRunner runs "live" jobs: what runs of a service (or of every
// service) in each of its environments, read from Marathon, with the
// environments' locks.
type LiveRunner struct {
	Deployer *deploy.Deployer
	Catalog  commands.Catalog
	Locks    interface {
		EnvLock(ctx context.Context, env string) (queue.EnvLock, bool, error)
	}
}

// Run asks Marathon about each environment; one that cannot be read says
// why instead of failing the whole answer.
func (l LiveRunner) Run(ctx context.Context, job queue.Job, _ *queue.Steps, _ func(deploy.Progress)) (Outcome, error) {
	var apps []queue.LiveApp
	for _, svc := range l.Catalog.Services {
		if job.Request.Service != "" && svc.Name != job.Request.Service {
			continue
		}
		for _, env := range svc.Envs {
			apps = append(apps, l.one(ctx, svc.Name, env))
		}
	}
	if err := ctx.Err(); err != nil {
		return Outcome{}, err
	}
	return Outcome{Succeeded: true, Result: "LISTED", Live: apps}, nil
}

func (l LiveRunner) one(ctx context.Context, service, env string) queue.LiveApp {
	a := queue.LiveApp{Service: service, Env: env}
	if lock, found, err := l.Locks.EnvLock(ctx, env); err == nil && found {
		a.Lock = &lock
	}
	live, err := l.Deployer.Live(ctx, service, env)
	if err != nil {
		var f *deploy.Failure
		if errors.As(err, &f) {
			a.Error = f.Msg
		} else {
			a.Error = "Marathon could not be asked just now."
		}
		return a
	}
	a.App, a.Artifact, a.Since, a.User, a.Job = live.App, live.Artifact, live.Since, live.User, live.Job
	a.Healthy, a.Running, a.Instances, a.Deploying = live.Healthy, live.Running, live.Instances, live.Deploying
	return a
}
