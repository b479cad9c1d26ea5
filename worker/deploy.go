package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/seed-5eb4e92e/deploybot/commands"
	"github.com/seed-5eb4e92e/deploybot/deploy"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// DeployState is what deploy jobs keep in Redis besides their own steps:
// environment locks, the lock that keeps two deploys of a service to an
// environment apart, and other jobs' records. *queue.Queue satisfies it.
type DeployState interface {
	EnvLock(ctx context.Context, env string) (queue.EnvLock, bool, error)
	WithOwnedLock(ctx context.Context, name, owner string, ttl, wait time.Duration, fn func(context.Context) error) error
	LockOwner(ctx context.Context, name string) (string, bool, error)
	Record(ctx context.Context, id string) (queue.Record, error)
	History(ctx context.Context, service, env string, n int64) ([]queue.Record, error)
	Steps(id string) *queue.Steps
}

// DeployRunner runs deploy, promote and rollback jobs: it checks the
// environment's lock, keeps two deploys of a service to one environment
// from running at once, finds what a promotion or rollback puts in place,
// and has the deploy package do it.
type DeployRunner struct {
	Deployer *deploy.Deployer
	State    DeployState
	Catalog  commands.Catalog
	// RefuseConcurrent refuses a deploy while another of the same service
	// to the same environment runs, instead of waiting for it.
	RefuseConcurrent bool
	// Recheck is how often a waiting job looks again. Default 15s.
	Recheck time.Duration
	// MaxWait is how long a job waits for a lock before giving up.
	// Default 12h.
	MaxWait time.Duration
	// LockTTL is how long the lock of a running deploy outlives a worker
	// that stopped renewing it. Set it to the queue's visibility timeout:
	// a job taken over from a dead worker then finds the lock lapsed, or
	// about to. Default 1m.
	LockTTL time.Duration
	Now     func() time.Time
}

// Run runs one deploy job.
func (r DeployRunner) Run(ctx context.Context, job queue.Job, steps *queue.Steps, report func(deploy.Progress)) (Outcome, error) {
	req := job.Request
	started, err := deploy.Started(ctx, steps)
	if err != nil {
		return Outcome{}, err
	}
	if !started {
		// Once it has begun changing the environment, a job finishes what
		// it began even if the environment was locked meanwhile.
		if err := r.checkEnvLock(ctx, job); err != nil {
			return Outcome{}, err
		}
	}
	name := "deploy:" + req.Service + ":" + req.Env
	var out Outcome
	err = r.State.WithOwnedLock(ctx, name, job.ID, r.lockTTL(), 0, func(ctx context.Context) error {
		var err error
		out, err = r.run(ctx, job, steps, report)
		return err
	})
	if errors.Is(err, queue.ErrBusy) {
		return Outcome{}, r.busy(ctx, job, name)
	}
	return out, err
}

func (r DeployRunner) run(ctx context.Context, job queue.Job, steps *queue.Steps, report func(deploy.Progress)) (Outcome, error) {
	req := job.Request
	dr := deploy.Request{JobID: job.ID, User: job.User, Service: req.Service, Env: req.Env, Ref: req.Ref}
	// A lock taken while the job built is honoured before it changes
	// anything.
	dr.Gate = func(ctx context.Context) error { return r.checkEnvLock(ctx, job) }
	var res deploy.Result
	var err error
	switch req.Kind {
	case "promote":
		if dr.Artifact, _, err = r.resolved(ctx, job, steps); err == nil {
			res, err = r.Deployer.Deploy(ctx, dr, steps, report)
		}
	case "rollback":
		var version string
		if dr.Artifact, version, err = r.resolved(ctx, job, steps); err == nil {
			res, err = r.Deployer.Rollback(ctx, dr, version, steps, report)
		}
	default:
		res, err = r.Deployer.Deploy(ctx, dr, steps, report)
	}
	if err != nil {
		return Outcome{}, err
	}
	out := Outcome{Succeeded: true, Result: "LIVE", Artifact: res.Artifact, Links: res.Links}
	if req.Kind == "rollback" {
		out.Result = "ROLLED BACK"
	} else if svc, ok := r.Catalog.Service(req.Service); ok {
		out.PromoteTo, _ = r.Catalog.Next(svc, req.Env)
	}
	return out, nil
}

// checkEnvLock stops a job whose environment someone else has locked: it
// waits when asked to queue behind the lock, and fails otherwise.
func (r DeployRunner) checkEnvLock(ctx context.Context, job queue.Job) error {
	env := job.Request.Env
	l, found, err := r.State.EnvLock(ctx, env)
	if err != nil || !found || !l.Holds(job.User, r.now()) {
		return err
	}
	held := LockText(l)
	if !job.WaitForLock {
		return &deploy.Failure{Msg: fmt.Sprintf("Not started: %s (locks are checked again when a job starts).", held)}
	}
	return r.wait(job, fmt.Sprintf("waiting for the lock on %s: %s", env, held))
}

// busy explains a deploy that found another deploy of its service to its
// environment running.
func (r DeployRunner) busy(ctx context.Context, job queue.Job, name string) error {
	req := job.Request
	id, ok, _ := r.State.LockOwner(ctx, name)
	if ok && id == job.ID {
		// An earlier run of this very job, on a worker that stopped, holds
		// the lock until it lapses: not a concurrent deploy to refuse.
		// It lapses within LockTTL, so look again then rather than after
		// the usual recheck.
		err := r.wait(job, fmt.Sprintf("waiting for an earlier run of this job to let go of %s in %s", req.Service, req.Env))
		if w, ok := err.(*deploy.Wait); ok {
			w.After = min(w.After, r.lockTTL())
		}
		return err
	}
	other := "another deploy"
	if ok && id != "" {
		other = "job `" + id + "`"
		if rec, err := r.State.Record(ctx, id); err == nil && rec.Job.User != "" {
			other = fmt.Sprintf("%s's %s (job `%s`)", queue.Mention(rec.Job.User), rec.Job.Request.Kind, id)
		}
	}
	if r.RefuseConcurrent {
		return &deploy.Failure{Msg: fmt.Sprintf("Not started: %s of %s to %s is running. Try again when it is done.", other, req.Service, req.Env)}
	}
	return r.wait(job, fmt.Sprintf("waiting for %s of %s to %s to finish", other, req.Service, req.Env))
}

// wait asks for the job to be run again later, unless it has waited long
// enough.
func (r DeployRunner) wait(job queue.Job, stage string) error {
	maxWait := r.MaxWait
	if maxWait <= 0 {
		maxWait = 12 * time.Hour
	}
	if r.now().Sub(job.CreatedAt) > maxWait {
		return &deploy.Failure{Msg: fmt.Sprintf("Gave up after waiting %s: %s.", maxWait, stage)}
	}
	after := r.Recheck
	if after <= 0 {
		after = 15 * time.Second
	}
	return &deploy.Wait{Stage: stage, After: after}
}

func (r DeployRunner) lockTTL() time.Duration {
	if r.LockTTL <= 0 {
		return time.Minute
	}
	return r.LockTTL
}

func (r DeployRunner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// LockText describes a lock in a record's plain text: "prod is locked by
// @ann until Jan 2 15:04 UTC: release freeze".
func LockText(l queue.EnvLock) string {
	s := fmt.Sprintf("%s is locked by %s until %s UTC", l.Env, queue.Mention(l.User), l.Until.UTC().Format("Jan 2 15:04"))
	if l.Reason != "" {
		s += ": " + l.Reason
	}
	return s
}
