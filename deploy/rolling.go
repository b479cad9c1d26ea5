package deploy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/seed-5eb4e92e/deploybot/backends/marathon"
)

// Apps is Marathon, for rollouts. *marathon.Client satisfies it.
type Apps interface {
	App(ctx context.Context, id string) (marathon.App, error)
	Update(ctx context.Context, id string, u marathon.AppUpdate) (marathon.DeploymentResult, error)
	Rollback(ctx context.Context, id, version string) (marathon.DeploymentResult, error)
	Deployments(ctx context.Context) ([]marathon.Deployment, error)
	CancelDeployment(ctx context.Context, id string, force bool) (marathon.DeploymentResult, error)
}

// Labels deploybot puts on the apps it deploys, so that a job run again
// knows its own change, and /deploy status can say who deployed what.
const (
	LabelJob  = "DEPLOYBOT_JOB"
	LabelUser = "DEPLOYBOT_USER"
)

// Steps of a rollout.
const (
	stepPrevious      = "previous_version"
	stepPreviousImage = "previous_artifact"
	stepDeployment    = "marathon_deployment"
	stepVersion       = "marathon_version"
	stepRollback      = "rollback_deployment"
	stepRollbackWhy   = "rollback_reason"
)

// rolling puts artifact on the target's app with Marathon's rolling
// upgrade and waits until every instance of the new version is healthy.
func (d *Deployer) rolling(ctx context.Context, t Target, req Request, artifact string, steps Steps, report func(Progress)) (Result, error) {
	res := Result{Artifact: artifact, App: t.App, Links: d.appLinks(t.App)}
	report(Progress{Stage: "deploying", Links: res.Links})
	dep, err := d.putOnce(ctx, t.App, req, artifact, steps, &res)
	if err != nil {
		return res, err
	}
	// A job run again after it began rolling back goes on with that.
	if why, err := steps.Get(ctx, stepRollbackWhy); err != nil || why != "" {
		if err != nil {
			return res, err
		}
		return res, d.rollBack(ctx, t.App, res, why, steps, report)
	}
	end, err := deadline(ctx, t, steps)
	if err != nil {
		return res, err
	}
	app, err := d.follow(ctx, t.App, dep, end, report)
	res.Healthy, res.Instances = healthyOf(app, dep.Version), app.Instances
	if err == nil {
		return res, nil
	}
	var late *unhealthy
	if !errors.As(err, &late) || t.NoAutoRollback {
		return res, err
	}
	return res, d.autoRollback(ctx, t.App, res, late, steps, report)
}

// putOnce asks Marathon for the new version, once: the version before is
// recorded first, and the deployment after. A job run again between the
// two finds its own change by the job label and follows that.
func (d *Deployer) putOnce(ctx context.Context, id string, req Request, artifact string, steps Steps, res *Result) (marathon.DeploymentResult, error) {
	var dep marathon.DeploymentResult
	var err error
	if dep.DeploymentID, err = steps.Get(ctx, stepDeployment); err != nil {
		return dep, err
	}
	if dep.Version, err = steps.Get(ctx, stepVersion); err != nil {
		return dep, err
	}
	if res.Previous, err = steps.Get(ctx, stepPrevious); err != nil {
		return dep, err
	}
	res.PreviousArtifact, _ = steps.Get(ctx, stepPreviousImage)
	if dep.Version != "" {
		res.Version = dep.Version
		return dep, nil
	}
	cur, err := d.Apps.App(ctx, id)
	if err != nil {
		return dep, marathonFailure(err, id, "read")
	}
	if res.Previous != "" && cur.Labels[LabelJob] == req.JobID {
		// This job's update went through before its worker stopped.
		dep = marathon.DeploymentResult{Version: cur.Version}
		if len(cur.Deployments) > 0 {
			dep.DeploymentID = cur.Deployments[0].ID
		}
	} else {
		if err := d.recordPrevious(ctx, cur, steps, res); err != nil {
			return dep, err
		}
		u := marathon.AppUpdate{Image: artifact, Labels: map[string]string{LabelJob: req.JobID, LabelUser: req.User}}
		if dep, err = d.Apps.Update(ctx, id, u); err != nil {
			return dep, marathonFailure(err, id, "update")
		}
	}
	if err := steps.Set(ctx, stepDeployment, dep.DeploymentID); err != nil {
		return dep, err
	}
	res.Version = dep.Version
	return dep, steps.Set(ctx, stepVersion, dep.Version)
}

// Previous reads what ran before the deploy whose steps these are: the
// artifact and the Marathon version a rollback of it puts back.
func Previous(ctx context.Context, steps Steps) (artifact, version string, err error) {
	if artifact, err = steps.Get(ctx, stepPreviousImage); err != nil {
		return "", "", err
	}
	version, err = steps.Get(ctx, stepPrevious)
	return artifact, version, err
}

func (d *Deployer) recordPrevious(ctx context.Context, cur marathon.App, steps Steps, res *Result) error {
	if res.Previous != "" {
		return nil
	}
	res.Previous, res.PreviousArtifact = cur.Version, cur.Image()
	if err := steps.Set(ctx, stepPreviousImage, cur.Image()); err != nil {
		return err
	}
	return steps.Set(ctx, stepPrevious, cur.Version)
}

// unhealthy is a rollout that did not become healthy in time.
type unhealthy struct {
	healthy, instances int
	after              time.Duration
	cause              string
}

func (u *unhealthy) Error() string {
	msg := fmt.Sprintf("%d of %d new tasks healthy after %s", u.healthy, u.instances, u.after.Round(time.Second))
	if u.cause != "" {
		msg += " (" + u.cause + ")"
	}
	return msg
}

// follow waits until deployment dep of app id is over and every instance
// runs version dep.Version (or, when that is empty, the app's version)
// healthily, reporting "2/4 healthy" as it goes. At end it gives up with
// *unhealthy.
func (d *Deployer) follow(ctx context.Context, id string, dep marathon.DeploymentResult, end time.Time, report func(Progress)) (marathon.App, error) {
	start := time.Now()
	last := ""
	for {
		app, inFlight, err := d.look(ctx, id, dep.DeploymentID)
		switch {
		case err != nil && !transient(err):
			return app, marathonFailure(err, id, "follow")
		case err == nil:
			want := dep.Version
			if want == "" { // a rollback: whatever version it leads to
				want = configVersion(app)
			}
			healthy := healthyOf(app, want)
			if !inFlight && configVersion(app) == want && healthy >= app.Instances {
				return app, nil
			}
			if configVersion(app) != want && !inFlight {
				return app, &Failure{Msg: fmt.Sprintf("Someone changed %s while it was being deployed (it now runs version %s); I stopped following it.", id, configVersion(app))}
			}
			if stage := fmt.Sprintf("deploying: %d/%d tasks healthy", healthy, app.Instances); stage != last {
				report(Progress{Stage: stage})
				last = stage
			}
			if time.Now().After(end) {
				return app, &unhealthy{healthy: healthy, instances: app.Instances, after: time.Since(start), cause: failureCause(app, want)}
			}
		}
		if err := d.sleep(ctx); err != nil {
			return app, err
		}
	}
}

// look reads the app and whether deployment dep is still under way.
func (d *Deployer) look(ctx context.Context, id, dep string) (marathon.App, bool, error) {
	app, err := d.Apps.App(ctx, id)
	if err != nil {
		return app, false, err
	}
	if dep == "" {
		return app, len(app.Deployments) > 0, nil
	}
	for _, r := range app.Deployments {
		if r.ID == dep {
			return app, true, nil
		}
	}
	deps, err := d.Apps.Deployments(ctx)
	if err != nil {
		return app, false, err
	}
	for _, x := range deps {
		if x.ID == dep {
			return app, true, nil
		}
	}
	return app, false, nil
}

// healthyOf counts app's serving tasks that run the configuration of
// version since: tasks launched at or after it. A scale moves an app's
// version without restarting its tasks, so equality would miss them.
func healthyOf(app marathon.App, since string) int {
	n := 0
	for _, t := range app.Tasks {
		if launchedSince(t.Version, since) && app.TaskHealthy(t) {
			n++
		}
	}
	return n
}

// launchedSince tells whether a task of version v runs the configuration
// of version since or a later one.
func launchedSince(v, since string) bool {
	if v == since {
		return true
	}
	a, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return false
	}
	b, err := time.Parse(time.RFC3339Nano, since)
	return err == nil && !a.Before(b)
}

// configVersion is the version of app's current configuration, which a
// scale leaves alone.
func configVersion(app marathon.App) string {
	return cmp.Or(app.VersionInfo.LastConfigChangeAt, app.Version)
}

// failureCause is the last health check failure of a task of version, to
// say why the rollout failed.
func failureCause(app marathon.App, version string) string {
	for _, t := range app.Tasks {
		if !launchedSince(t.Version, version) {
			continue
		}
		for _, h := range t.HealthCheckResults {
			if !h.Alive && h.LastFailureCause != "" {
				return "health check: " + truncate(h.LastFailureCause, 120)
			}
		}
	}
	return ""
}

// autoRollback puts the previous version back after a failed rollout:
// cancelling the deployment when it still runs (Marathon then rolls back
// itself), or asking for the previous version. The error says both what
// failed and how the rollback went.
func (d *Deployer) autoRollback(ctx context.Context, id string, res Result, late *unhealthy, steps Steps, report func(Progress)) error {
	failed := fmt.Sprintf("The new version did not become healthy: %s.", late.Error())
	if res.Previous == "" {
		return &Failure{Msg: failed + " There was no earlier version to roll back to."}
	}
	if err := steps.Set(ctx, stepRollbackWhy, failed); err != nil {
		return err
	}
	return d.rollBack(ctx, id, res, failed, steps, report)
}

// rollBack puts res.Previous back on app id, once, and follows it; failed
// says why.
func (d *Deployer) rollBack(ctx context.Context, id string, res Result, failed string, steps Steps, report func(Progress)) error {
	report(Progress{Stage: "rolling back to " + describe(res.PreviousArtifact, res.Previous)})
	dep, err := d.rollbackOnce(ctx, id, res, steps)
	if err != nil {
		return &Failure{Msg: failed + " Rolling back failed too; look at the app in Marathon.", Err: err}
	}
	end := time.Now().Add(10 * time.Minute)
	if _, err := d.follow(ctx, id, dep, end, report); err != nil {
		return &Failure{Msg: failed + " The rollback to " + describe(res.PreviousArtifact, res.Previous) + " did not finish healthy either: " + err.Error() + ".", Err: err}
	}
	return &Failure{Msg: failed + " Rolled back to " + describe(res.PreviousArtifact, res.Previous) + ".", Err: ErrRolledBack}
}

// ErrRolledBack marks a deploy that failed and was rolled back.
var ErrRolledBack = errors.New("deploy: rolled back")

func (d *Deployer) rollbackOnce(ctx context.Context, id string, res Result, steps Steps) (marathon.DeploymentResult, error) {
	// The rollback is followed to whatever version it creates: Marathon
	// gives a version put back a new version string.
	if v, err := steps.Get(ctx, stepRollback); err != nil || v != "" {
		if v == "none" {
			v = ""
		}
		return marathon.DeploymentResult{DeploymentID: v}, err
	}
	dep, err := d.Apps.Rollback(ctx, id, res.Previous)
	if errors.Is(err, marathon.ErrLocked) {
		dep, err = d.rollbackLocked(ctx, id, res.Previous, steps)
	}
	if err != nil {
		return dep, err
	}
	dep.Version = ""
	return dep, steps.Set(ctx, stepRollback, cmp.Or(dep.DeploymentID, "none"))
}

// rollbackLocked rolls back an app that a deployment holds. The job's own
// failing deployment is cancelled, which takes the app back to where it
// started. Any other is the failed deploy a rollback job was asked to
// undo — deploybot runs one deploy per app at a time — so it is stopped
// and the rollback asked for again.
func (d *Deployer) rollbackLocked(ctx context.Context, id, version string, steps Steps) (marathon.DeploymentResult, error) {
	cur, err := steps.Get(ctx, stepDeployment)
	if err != nil {
		return marathon.DeploymentResult{}, err
	}
	if cur != "" {
		dep, err := d.Apps.CancelDeployment(ctx, cur, false)
		if !errors.Is(err, marathon.ErrNotFound) {
			return dep, err
		}
		// Gone already: what holds the app is the rollback an earlier
		// run of this job started and did not get to record.
	}
	if err := d.stopDeployments(ctx, id); err != nil {
		return marathon.DeploymentResult{}, err
	}
	return d.Apps.Rollback(ctx, id, version)
}

// describe names a version for people: its artifact when known.
func describe(artifact, version string) string {
	if artifact != "" {
		return "`" + artifact + "`"
	}
	return "version " + version
}

// marathonFailure explains a Marathon error for Slack; passing trouble
// stays retryable.
func marathonFailure(err error, id, what string) error {
	var he *marathon.HTTPError
	switch {
	case errors.As(err, &he) && he.Temporary():
		return err
	case errors.As(err, &he):
		return &Failure{Msg: fmt.Sprintf("Marathon refused to %s %s: %s", what, id, he.Reason()), Err: err}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case transient(err):
		return err
	}
	var f *Failure
	if errors.As(err, &f) {
		return err
	}
	return &Failure{Msg: fmt.Sprintf("I could not %s %s in Marathon.", what, id), Err: err}
}

func (d *Deployer) appLinks(id string) []Link {
	if d.AppURL == nil {
		return nil
	}
	return []Link{{Kind: "app", Text: id, URL: d.AppURL(id)}}
}
