package deploy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/seed-5eb4e92e/deploybot/backends/marathon"
)

// shift moves a blue/green deploy's instances from the live colour to the
// new one, a step at a time: the new app grows only once its instances are
// healthy, and the old one shrinks only as much as the new one has grown.
// It gives up with *unhealthy when the new app makes no progress for the
// target's verify timeout.
func (d *Deployer) shift(ctx context.Context, t Target, bg pair, end time.Time, report func(Progress)) error {
	best, since, last := -1, time.Now(), ""
	for {
		newApp, oldApp, err := d.colours(ctx, bg)
		if err != nil {
			if !transient(err) {
				return err
			}
		} else {
			healthy := healthyOf(newApp, configVersion(newApp))
			if healthy > best {
				best, since = healthy, time.Now()
			}
			stage := fmt.Sprintf("blue/green: %s %d/%d healthy, %s %d", bg.colour, healthy, bg.target, otherColour(bg.colour), oldApp.Instances)
			if stage != last {
				report(Progress{Stage: stage})
				last = stage
			}
			done, err := d.nextStep(ctx, t, bg, newApp, oldApp, healthy)
			if done || err != nil {
				return err
			}
			if time.Since(since) > t.verifyTimeout() && time.Now().After(end) {
				return &unhealthy{healthy: healthy, instances: newApp.Instances, after: time.Since(since), cause: failureCause(newApp, configVersion(newApp))}
			}
		}
		if err := d.sleep(ctx); err != nil {
			return err
		}
	}
}

// nextStep makes the next move once both apps are settled and the new one
// is healthy at its size; done is true when the new app has taken over.
func (d *Deployer) nextStep(ctx context.Context, t Target, bg pair, newApp, oldApp marathon.App, healthy int) (done bool, err error) {
	if len(newApp.Deployments) > 0 || len(oldApp.Deployments) > 0 || healthy < newApp.Instances {
		return false, nil
	}
	switch {
	case oldApp.Instances > bg.target-newApp.Instances:
		_, err = d.Colours.Scale(ctx, bg.liveID, max(bg.target-newApp.Instances, 0))
		return false, scaleErr(err, bg.liveID)
	case newApp.Instances < bg.target:
		_, err = d.Colours.Scale(ctx, bg.newID, min(newApp.Instances+t.step(), bg.target))
		return false, scaleErr(err, bg.newID)
	}
	return true, nil
}

func scaleErr(err error, id string) error {
	if err == nil || errors.Is(err, marathon.ErrLocked) {
		return nil // a deployment is still settling; the next poll tries again
	}
	return marathonFailure(err, id, "scale")
}

// colours reads both apps; the old one may be gone already.
func (d *Deployer) colours(ctx context.Context, bg pair) (newApp, oldApp marathon.App, err error) {
	if newApp, err = d.Apps.App(ctx, bg.newID); err != nil {
		return newApp, oldApp, marathonFailure(err, bg.newID, "read")
	}
	oldApp, err = d.Apps.App(ctx, bg.liveID)
	if errors.Is(err, marathon.ErrNotFound) {
		return newApp, marathon.App{ID: bg.liveID}, nil
	}
	if err != nil {
		return newApp, oldApp, marathonFailure(err, bg.liveID, "read")
	}
	return newApp, oldApp, nil
}

// abortBlueGreen returns traffic to the live colour: it is scaled back to
// its size, and the new app removed.
func (d *Deployer) abortBlueGreen(ctx context.Context, bg pair, failed string, report func(Progress)) error {
	report(Progress{Stage: "rolling back: traffic returns to " + bg.liveID})
	// The deployments holding either app are this job's own steps; they
	// are stopped, or Marathon refuses the scale and the delete.
	for _, id := range []string{bg.newID, bg.liveID} {
		if err := d.stopDeployments(ctx, id); err != nil {
			return &Failure{Msg: failed + fmt.Sprintf(" Stopping the deployments of %s failed; look at it in Marathon.", id), Err: err}
		}
	}
	if _, err := d.Colours.Scale(ctx, bg.liveID, bg.target); err != nil {
		return &Failure{Msg: failed + fmt.Sprintf(" Scaling %s back up failed; look at it in Marathon.", bg.liveID), Err: err}
	}
	if _, err := d.Colours.Delete(ctx, bg.newID); err != nil && !errors.Is(err, marathon.ErrNotFound) {
		return &Failure{Msg: failed + fmt.Sprintf(" %s is back up, but removing %s failed; remove it in Marathon.", bg.liveID, bg.newID), Err: err}
	}
	end := time.Now().Add(10 * time.Minute)
	if _, err := d.follow(ctx, bg.liveID, marathon.DeploymentResult{}, end, report); err != nil {
		return &Failure{Msg: failed + fmt.Sprintf(" %s did not come back healthy: %v.", bg.liveID, err), Err: err}
	}
	return &Failure{Msg: failed + fmt.Sprintf(" Traffic stays on %s; %s was removed.", bg.liveID, bg.newID), Err: ErrRolledBack}
}

// stopDeployments force-cancels the deployments that hold app id.
func (d *Deployer) stopDeployments(ctx context.Context, id string) error {
	app, err := d.Apps.App(ctx, id)
	if errors.Is(err, marathon.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, dep := range app.Deployments {
		if _, err := d.Apps.CancelDeployment(ctx, dep.ID, true); err != nil && !errors.Is(err, marathon.ErrNotFound) {
			return err
		}
	}
	return nil
}

func otherColour(c string) string {
	if c == marathon.ColourBlue {
		return marathon.ColourGreen
	}
	return marathon.ColourBlue
}
