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
// environments' locks, and the service's one-off tasks that Mesos says
// are running.
type LiveRunner struct {
	Deployer *deploy.Deployer
	Catalog  commands.Catalog
	Locks    interface {
		EnvLock(ctx context.Context, env string) (queue.EnvLock, bool, error)
	}
}

// Run asks Marathon about each environment and Mesos about one-off tasks;
// an environment that cannot be read, or Mesos, says why instead of
// failing the whole answer.
func (l LiveRunner) Run(ctx context.Context, job queue.Job, _ *queue.Steps, _ func(deploy.Progress)) (Outcome, error) {
	var apps []queue.LiveApp
	var services []string
	for _, svc := range l.Catalog.Services {
		if job.Request.Service != "" && svc.Name != job.Request.Service {
			continue
		}
		services = append(services, svc.Name)
		for _, env := range svc.Envs {
			apps = append(apps, l.one(ctx, svc.Name, env))
		}
	}
	out := Outcome{Succeeded: true, Result: "LISTED", Live: apps}
	if len(services) > 0 {
		out.LiveTasks, out.LiveTasksError = l.tasks(ctx, services)
	}
	if err := ctx.Err(); err != nil {
		return Outcome{}, err
	}
	return out, nil
}

// tasks lists the services' one-off tasks that are running, or says why
// it cannot.
func (l LiveRunner) tasks(ctx context.Context, services []string) ([]queue.LiveTask, string) {
	running, err := l.Deployer.RunningTasks(ctx, services)
	if err != nil {
		var f *deploy.Failure
		if errors.As(err, &f) {
			return nil, f.Msg
		}
		return nil, "Mesos could not be asked just now."
	}
	var out []queue.LiveTask
	for _, t := range running {
		out = append(out, queue.LiveTask{Service: t.Service, Env: t.Env, Task: t.Task, State: t.State, Job: t.Job, User: t.User, Since: t.Since})
	}
	return out, ""
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
