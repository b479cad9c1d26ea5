package worker

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/seed-5eb4e92e/deploybot/deploy"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// Steps in which a promotion or rollback keeps what it resolved to.
const (
	stepResolved         = "resolved"
	stepResolvedArtifact = "resolved_artifact"
	stepResolvedVersion  = "resolved_version"
	stepResolvedSource   = "resolved_source" // the job whose artifact a promotion deploys
)

// resolved is what a promotion or rollback puts in place, worked out on
// the job's first run and read back on later ones: by then the source
// environment may run something else, and the rollback's own change has
// moved what "the last deploy" is.
func (r DeployRunner) resolved(ctx context.Context, job queue.Job, steps *queue.Steps) (artifact, version string, err error) {
	if done, err := steps.Get(ctx, stepResolved); err != nil || done != "" {
		if err != nil {
			return "", "", err
		}
		if artifact, err = steps.Get(ctx, stepResolvedArtifact); err != nil {
			return "", "", err
		}
		version, err = steps.Get(ctx, stepResolvedVersion)
		return artifact, version, err
	}
	var source string
	if job.Request.Kind == "rollback" {
		artifact, version, err = r.rollbackTarget(ctx, job)
	} else if artifact, source, err = r.promoted(ctx, job); err == nil {
		err = r.notBackwards(ctx, job, artifact, source)
	}
	if err != nil {
		return "", "", err
	}
	for _, kv := range [][2]string{{stepResolvedArtifact, artifact}, {stepResolvedVersion, version}, {stepResolvedSource, source}, {stepResolved, "1"}} {
		if err := steps.Set(ctx, kv[0], kv[1]); err != nil {
			return "", "", err
		}
	}
	return artifact, version, nil
}

// promoted is the artifact a promotion deploys: the one the deploy whose
// Promote button was clicked put in place and verified, or, from the
// keyboard, the one that runs healthily in the environment promoted from.
func (r DeployRunner) promoted(ctx context.Context, job queue.Job) (artifact, source string, err error) {
	req := job.Request
	if job.Source != "" {
		src, err := r.source(ctx, job.Source, req.Service)
		if err != nil {
			return "", "", err
		}
		if src.State != queue.StateSucceeded || src.Artifact == "" {
			return "", "", &deploy.Failure{Msg: fmt.Sprintf("Job `%s` did not finish a deploy, so there is nothing verified to promote.", src.Job.ID)}
		}
		return src.Artifact, src.Job.ID, nil
	}
	live, err := r.Deployer.Live(ctx, req.Service, req.From)
	if err != nil {
		return "", "", err
	}
	if live.Deploying || live.Healthy < live.Instances || live.Artifact == "" {
		state := fmt.Sprintf("%d/%d healthy", live.Healthy, live.Instances)
		if live.Deploying {
			state += ", a deployment under way"
		}
		return "", "", &deploy.Failure{Msg: fmt.Sprintf("%s in %s is not settled and healthy (%s), so I won't promote what runs there.", req.Service, req.From, state)}
	}
	return live.Artifact, live.Job, nil
}

// notBackwards refuses a promotion that would put in place an older build
// than the one the environment runs: an old message's Promote button, or
// a source environment rolled back since. A deploybot deploy built each
// artifact; what cannot be traced to one is let through.
func (r DeployRunner) notBackwards(ctx context.Context, job queue.Job, artifact, source string) error {
	req := job.Request
	live, err := r.Deployer.Live(ctx, req.Service, req.Env)
	if err != nil || live.Job == "" || live.Artifact == artifact {
		return nil
	}
	ours, ok := r.builtBy(ctx, source)
	theirs, ok2 := r.builtBy(ctx, live.Job)
	if !ok || !ok2 || !theirs.Job.CreatedAt.After(ours.Job.CreatedAt) {
		return nil
	}
	return &deploy.Failure{Msg: fmt.Sprintf("%s runs `%s`, built by job `%s` after `%s` (job `%s`): promoting would go back. Roll back instead, or deploy the ref you want.",
		req.Env, live.Artifact, theirs.Job.ID, artifact, ours.Job.ID)}
}

// builtBy is the deploy that built what job id put in place: the job
// itself, or the deploy a promotion (of a promotion…) came from.
func (r DeployRunner) builtBy(ctx context.Context, id string) (queue.Record, bool) {
	for range 8 {
		if id == "" {
			return queue.Record{}, false
		}
		rec, err := r.State.Record(ctx, id)
		if err != nil {
			return rec, false
		}
		switch rec.Job.Request.Kind {
		case "deploy":
			return rec, true
		case "promote":
			if id = rec.Job.Source; id == "" {
				id, _ = r.State.Steps(rec.Job.ID).Get(ctx, stepResolvedSource)
			}
		default:
			return rec, false
		}
	}
	return queue.Record{}, false
}

// rollbackTarget is what a rollback puts back: what ran before the last
// deploy to the environment (or before the deploy whose Roll back button
// was clicked, if that is still the last one).
func (r DeployRunner) rollbackTarget(ctx context.Context, job queue.Job) (artifact, version string, err error) {
	req := job.Request
	last, err := r.lastDeploy(ctx, req.Service, req.Env, job.ID)
	if err != nil {
		return "", "", err
	}
	if job.Source != "" && job.Source != last.Job.ID {
		return "", "", &deploy.Failure{Msg: fmt.Sprintf("Job `%s` is no longer the last deploy of %s to %s (job `%s` is); roll back from that one's message, or with `rollback %s %s`.",
			job.Source, req.Service, req.Env, last.Job.ID, req.Service, req.Env)}
	}
	if artifact, version, err = deploy.Previous(ctx, r.State.Steps(last.Job.ID)); err != nil {
		return "", "", err
	}
	if artifact == "" && version == "" {
		return "", "", &deploy.Failure{Msg: fmt.Sprintf("Job `%s` did not record what ran before it, so I can't roll it back.", last.Job.ID)}
	}
	return artifact, version, nil
}

// lastDeploy is the newest deploy, promotion or rollback of service to env
// that changed it, other than job self: the newest that succeeded, or a
// newer one that failed but left its version live (Marathon's job label
// says so), as a deploy that is not rolled back automatically does.
func (r DeployRunner) lastDeploy(ctx context.Context, service, env, self string) (queue.Record, error) {
	recs, err := r.State.History(ctx, service, env, 50)
	if err != nil {
		return queue.Record{}, err
	}
	var liveJob string
	if live, err := r.Deployer.Live(ctx, service, env); err == nil {
		liveJob = live.Job
	}
	// The job whose version Marathon runs is the last deploy, whatever
	// the order the jobs were asked in: one queued behind a lock runs
	// after newer ones.
	if i := slices.IndexFunc(recs, func(rec queue.Record) bool { return liveJob != "" && rec.Job.ID == liveJob && rec.Job.ID != self }); i > 0 {
		recs = append([]queue.Record{recs[i]}, slices.Delete(slices.Clone(recs), i, i+1)...)
	}
	for _, rec := range recs {
		if rec.Job.ID == self || rec.State != queue.StateSucceeded && rec.Job.ID != liveJob {
			continue
		}
		if rec.Job.Request.Kind == "rollback" {
			// What ran before a rollback is what it took away.
			return rec, &deploy.Failure{Msg: fmt.Sprintf("The last change of %s in %s was a rollback (job `%s`); to go further back, deploy the ref you want.", service, env, rec.Job.ID)}
		}
		return rec, nil
	}
	return queue.Record{}, &deploy.Failure{Msg: fmt.Sprintf("I know of no deploy of %s to %s to roll back.", service, env)}
}

// source reads the deploy a button was on.
func (r DeployRunner) source(ctx context.Context, id, service string) (queue.Record, error) {
	rec, err := r.State.Record(ctx, id)
	if errors.Is(err, queue.ErrNotFound) {
		return rec, &deploy.Failure{Msg: fmt.Sprintf("Job `%s` is no longer known (job records are kept for a limited time).", id)}
	}
	if err != nil {
		return rec, err
	}
	if rec.Job.Request.Service != service {
		return rec, &deploy.Failure{Msg: fmt.Sprintf("Job `%s` deployed %s, not %s.", id, rec.Job.Request.Service, service)}
	}
	return rec, nil
}
