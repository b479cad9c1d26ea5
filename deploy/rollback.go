package deploy

import (
	"context"
	"errors"
)

// Rollback puts back what ran in req.Env before a deploy: Marathon's
// version when it is known and the target rolls (the exact definition
// that ran, not only its image), else the artifact (req.Artifact),
// deployed without pre-deploy tasks — a rollback does not migrate forward.
func (d *Deployer) Rollback(ctx context.Context, req Request, version string, steps Steps, report func(Progress)) (Result, error) {
	_, t, err := d.target(req.Service, req.Env)
	if err != nil {
		return Result{}, err
	}
	req.SkipPreDeploy = true
	if t.Strategy == BlueGreen || version == "" {
		if req.Artifact == "" {
			return Result{}, &Failure{Msg: "I don't know what ran before that deploy, so there is nothing to roll back to."}
		}
		return d.Deploy(ctx, req, steps, report)
	}
	res := Result{Artifact: req.Artifact, App: t.App, Links: d.appLinks(t.App)}
	report(Progress{Stage: "rolling back to " + describe(req.Artifact, version), Artifact: req.Artifact, Links: res.Links})
	// A run of the job again keeps what the first run replaced, not the
	// version that run put back.
	if res.PreviousArtifact, res.Previous, err = Previous(ctx, steps); err != nil {
		return res, err
	}
	if err := d.begin(ctx, req, steps); err != nil {
		return res, err
	}
	cur, err := d.Apps.App(ctx, t.App)
	if err != nil {
		return res, marathonFailure(err, t.App, "read")
	}
	if err := d.recordPrevious(ctx, cur, steps, &res); err != nil {
		return res, err
	}
	if err := mark(ctx, steps, stepStarted); err != nil {
		return res, err
	}
	dep, err := d.rollbackOnce(ctx, t.App, Result{Previous: version}, steps)
	if err != nil {
		return res, marathonFailure(err, t.App, "roll back")
	}
	end, err := deadline(ctx, t, steps)
	if err != nil {
		return res, err
	}
	app, err := d.follow(ctx, t.App, dep, end, report)
	res.Version, res.Healthy, res.Instances = app.Version, healthyOf(app, configVersion(app)), app.Instances
	var late *unhealthy
	if errors.As(err, &late) {
		return res, &Failure{Msg: "The rolled-back version did not become healthy: " + late.Error() + ".", Err: err}
	}
	return res, err
}
