package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/seed-5eb4e92e/deploybot/backends/marathon"
)

// Colours is Marathon, for blue/green deploys: a second app next to the
// live one. *marathon.Client satisfies it.
type Colours interface {
	Definition(ctx context.Context, id string) (json.RawMessage, error)
	Create(ctx context.Context, def json.RawMessage) (marathon.DeploymentResult, error)
	Scale(ctx context.Context, id string, instances int) (marathon.DeploymentResult, error)
	Delete(ctx context.Context, id string) (marathon.DeploymentResult, error)
}

// Steps of a blue/green deploy.
const (
	stepBGLive    = "bg_live"
	stepBGNew     = "bg_new"
	stepBGTarget  = "bg_target"
	stepBGCreated = "bg_created"
	stepBGAborted = "bg_aborted" // why: traffic is going back to the live colour
	stepBGDone    = "bg_done"
)

// blueGreen deploys artifact as a second app of the other colour, the way
// marathon-lb's zdd.py does: the new app starts small, grows a step at a
// time while the old one shrinks, each step waiting for health, and the
// old app is removed at the end. If the new app does not become healthy,
// the old one is scaled back and the new one removed: traffic stays where
// it was.
func (d *Deployer) blueGreen(ctx context.Context, t Target, req Request, artifact string, steps Steps, report func(Progress)) (Result, error) {
	if d.Colours == nil {
		return Result{}, &Failure{Msg: "deploybot's Marathon client cannot do blue/green deploys."}
	}
	bg, err := d.pair(ctx, t, steps)
	if err != nil {
		return Result{}, err
	}
	res := Result{Artifact: artifact, App: bg.newID, Previous: bg.liveVersion, PreviousArtifact: bg.liveImage, Instances: bg.target, Links: d.appLinks(bg.newID)}
	report(Progress{Stage: fmt.Sprintf("deploying %s next to %s", bg.newID, bg.liveID), Links: res.Links})
	if done, err := steps.Get(ctx, stepBGDone); err != nil || done != "" {
		res.Healthy = bg.target
		return res, err
	}
	if why, err := steps.Get(ctx, stepBGAborted); err != nil || why != "" {
		if err != nil {
			return res, err
		}
		return res, d.abortBlueGreen(ctx, bg, why, report)
	}
	if err := d.createColour(ctx, t, req, artifact, bg, steps); err != nil {
		return res, err
	}
	end, err := deadline(ctx, t, steps)
	if err != nil {
		return res, err
	}
	if err := d.shift(ctx, t, bg, end, report); err != nil {
		var late *unhealthy
		if !errors.As(err, &late) || t.NoAutoRollback {
			return res, err
		}
		why := fmt.Sprintf("The new version did not become healthy: %s.", late.Error())
		if err := steps.Set(ctx, stepBGAborted, why); err != nil {
			return res, err
		}
		return res, d.abortBlueGreen(ctx, bg, why, report)
	}
	if _, err := d.Colours.Delete(ctx, bg.liveID); err != nil && !errors.Is(err, marathon.ErrNotFound) {
		return res, marathonFailure(err, bg.liveID, "remove")
	}
	res.Healthy = bg.target
	return res, steps.Set(ctx, stepBGDone, "1")
}

// pair is the two apps of a blue/green deploy.
type pair struct {
	liveID, newID, colour  string
	liveVersion, liveImage string
	group                  string
	target                 int
	liveDef                json.RawMessage
}

// pair finds the live colour and the one to deploy, or reads them back
// from an earlier run of the job.
func (d *Deployer) pair(ctx context.Context, t Target, steps Steps) (pair, error) {
	if created, err := steps.Get(ctx, stepBGCreated); err != nil || created != "" {
		if err != nil {
			return pair{}, err
		}
		// Either app may be gone by now (removed at the end, or in an
		// abort): what the first run found is read back, not looked up.
		return recordedPair(ctx, steps)
	}
	var bg pair
	var err error
	if bg.liveID, err = steps.Get(ctx, stepBGLive); err != nil {
		return bg, err
	}
	if bg.liveID == "" {
		if bg.liveID, err = d.liveColour(ctx, t.App); err != nil {
			return bg, err
		}
	}
	live, err := d.Apps.App(ctx, bg.liveID)
	if err != nil {
		return bg, marathonFailure(err, bg.liveID, "read")
	}
	bg.liveVersion, bg.liveImage = live.Version, live.Image()
	bg.colour = marathon.ColourBlue
	if live.Labels[marathon.LabelDeploymentColour] == marathon.ColourBlue {
		bg.colour = marathon.ColourGreen
	}
	bg.newID = t.App + "-" + bg.colour
	// The pair keeps its marathon-lb group; an app's first blue/green
	// deploy names one after the app.
	if bg.group = live.Labels[marathon.LabelDeploymentGroup]; bg.group == "" {
		bg.group = strings.ReplaceAll(strings.Trim(t.App, "/"), "/", "-")
	}
	target, _ := steps.Get(ctx, stepBGTarget)
	if bg.target, _ = strconv.Atoi(target); target == "" {
		bg.target = max(live.Instances, 1)
	}
	if bg.liveDef, err = d.Colours.Definition(ctx, bg.liveID); err != nil {
		return bg, marathonFailure(err, bg.liveID, "read")
	}
	if err := firstRun(ctx, steps, stepBGLive, bg.liveID, stepBGNew, bg.newID, stepBGTarget, strconv.Itoa(bg.target), stepPrevious, bg.liveVersion, stepPreviousImage, bg.liveImage); err != nil {
		return bg, err
	}
	return bg, nil
}

// recordedPair is the pair as the job's first run recorded it.
func recordedPair(ctx context.Context, steps Steps) (pair, error) {
	var bg pair
	var target string
	for _, f := range []struct {
		step string
		to   *string
	}{{stepBGLive, &bg.liveID}, {stepBGNew, &bg.newID}, {stepBGTarget, &target}, {stepPrevious, &bg.liveVersion}, {stepPreviousImage, &bg.liveImage}} {
		v, err := steps.Get(ctx, f.step)
		if err != nil {
			return bg, err
		}
		*f.to = v
	}
	bg.target, _ = strconv.Atoi(target)
	if bg.liveID == "" || bg.newID == "" || bg.target <= 0 {
		return bg, &Failure{Msg: "This blue/green deploy's record is incomplete, so I can't tell which colour to follow; look at the apps in Marathon."}
	}
	bg.colour = marathon.ColourBlue
	if strings.HasSuffix(bg.newID, "-"+marathon.ColourGreen) {
		bg.colour = marathon.ColourGreen
	}
	return bg, nil
}

// liveColour is the app that serves now: one colour of base, or base
// itself before its first blue/green deploy.
func (d *Deployer) liveColour(ctx context.Context, base string) (string, error) {
	var found []string
	for _, id := range []string{base + "-" + marathon.ColourBlue, base + "-" + marathon.ColourGreen, base} {
		_, err := d.Apps.App(ctx, id)
		switch {
		case err == nil:
			found = append(found, id)
		case !errors.Is(err, marathon.ErrNotFound):
			return "", marathonFailure(err, id, "read")
		}
	}
	switch {
	case len(found) == 0:
		return "", &Failure{Msg: fmt.Sprintf("Neither %s nor its -blue or -green app exists in Marathon; create the app first, deploybot deploys new versions of it.", base)}
	case len(found) > 1 && found[1] != base:
		return "", &Failure{Msg: fmt.Sprintf("Both %s and %s exist: an earlier blue/green deploy did not finish. Remove the one that should not serve, then deploy again.", found[0], found[1])}
	}
	return found[0], nil
}

// firstRun records name/value pairs not recorded yet.
func firstRun(ctx context.Context, steps Steps, pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		v, err := steps.Get(ctx, pairs[i])
		if err != nil {
			return err
		}
		if v == "" {
			if err := steps.Set(ctx, pairs[i], pairs[i+1]); err != nil {
				return err
			}
		}
	}
	return nil
}

// createColour creates the new colour's app with one step of instances,
// once.
func (d *Deployer) createColour(ctx context.Context, t Target, req Request, artifact string, bg pair, steps Steps) error {
	if v, err := steps.Get(ctx, stepBGCreated); err != nil || v != "" {
		return err
	}
	labels := map[string]string{
		marathon.LabelDeploymentGroup:           bg.group,
		marathon.LabelDeploymentColour:          bg.colour,
		marathon.LabelDeploymentStartedAt:       time.Now().UTC().Format(marathon.StartedAtLayout),
		marathon.LabelDeploymentTargetInstances: strconv.Itoa(bg.target),
		LabelJob:                                req.JobID,
		LabelUser:                               req.User,
	}
	def, err := marathon.CopyAs(bg.liveDef, bg.newID, labels, min(t.step(), bg.target))
	if err == nil {
		def, err = marathon.WithImage(def, artifact)
	}
	if err == nil {
		def, err = marathon.ForNextColour(def)
	}
	if err != nil {
		return &Failure{Msg: fmt.Sprintf("I could not make %s from %s's definition.", bg.newID, bg.liveID), Err: err}
	}
	dep, err := d.Colours.Create(ctx, def)
	if errors.Is(err, marathon.ErrExists) {
		dep, err = marathon.DeploymentResult{}, nil // this job created it before it was interrupted
	}
	if err != nil {
		return marathonFailure(err, bg.newID, "create")
	}
	return steps.Set(ctx, stepBGCreated, cmpOr(dep.DeploymentID, "created"))
}

func (t Target) step() int {
	if t.Step <= 0 {
		return 1
	}
	return t.Step
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
