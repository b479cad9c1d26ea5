package deploy

import (
	"context"
	"errors"
	"time"

	"github.com/seed-5eb4e92e/deploybot/backends/marathon"
)

// Live is what runs in one environment, as Marathon says.
type Live struct {
	Service, Env, App string
	Artifact, Version string
	// Since is when the running version was deployed.
	Since time.Time
	// User and Job are who deployed it and with which job, when deploybot
	// did (from the app's labels).
	User, Job                   string
	Healthy, Running, Instances int
	// Deploying is set while a deployment of the app is under way.
	Deploying bool
}

// Live reads what runs of service in env.
func (d *Deployer) Live(ctx context.Context, service, env string) (Live, error) {
	_, t, err := d.target(service, env)
	if err != nil {
		return Live{}, err
	}
	id := t.App
	if t.Strategy == BlueGreen {
		if id, err = d.servingColour(ctx, t.App); err != nil {
			return Live{}, err
		}
	}
	app, err := d.Apps.App(ctx, id)
	if err != nil {
		return Live{}, marathonFailure(err, id, "read")
	}
	l := Live{
		Service: service, Env: env, App: id,
		Artifact: app.Image(), Version: app.Version,
		User: app.Labels[LabelUser], Job: app.Labels[LabelJob],
		Healthy: healthyOf(app, configVersion(app)), Running: app.TasksRunning, Instances: app.Instances,
		Deploying: len(app.Deployments) > 0,
	}
	since := app.VersionInfo.LastConfigChangeAt
	if since == "" {
		since = app.Version
	}
	l.Since, _ = time.Parse(time.RFC3339Nano, since)
	return l, nil
}

// servingColour is the colour of base that serves: the one alone, or,
// mid-deploy, the one with more instances.
func (d *Deployer) servingColour(ctx context.Context, base string) (string, error) {
	best, most := "", -1
	for _, id := range []string{base + "-" + marathon.ColourBlue, base + "-" + marathon.ColourGreen, base} {
		app, err := d.Apps.App(ctx, id)
		if errors.Is(err, marathon.ErrNotFound) {
			continue
		}
		if err != nil {
			return "", marathonFailure(err, id, "read")
		}
		if app.Instances > most {
			best, most = id, app.Instances
		}
	}
	if best == "" {
		return "", &Failure{Msg: "Neither " + base + " nor its -blue or -green app exists in Marathon."}
	}
	return best, nil
}
