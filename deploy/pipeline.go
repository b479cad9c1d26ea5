package deploy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Pipeline is how one service gets from a ref to running in an
// environment.
type Pipeline struct {
	Service string
	// Build makes the artifact; Artifact says where to read it from.
	Build    BuildJob
	Artifact ArtifactSource
	// PreDeploy are one-off tasks (a schema migration) run, in order,
	// before each deploy of the artifact; a failing one stops the deploy.
	PreDeploy []Task
	// Targets are the service's environments.
	Targets map[string]Target
}

// Strategies of a Target.
const (
	Rolling   = "rolling"
	BlueGreen = "blue-green"
)

// Target is where and how a service runs in one environment.
type Target struct {
	// App is the Marathon app ID. With BlueGreen it is the base of the two
	// colours' IDs: App+"-blue" and App+"-green".
	App string
	// Strategy is Rolling (Marathon's own rolling upgrade, the default) or
	// BlueGreen (a second app, traffic moved in steps, marathon-lb style).
	Strategy string
	// VerifyTimeout is how long the new tasks have to be healthy, from the
	// start of the rollout. Default 10m.
	VerifyTimeout time.Duration
	// NoAutoRollback leaves a deploy that failed verification as it is
	// instead of putting the previous version back.
	NoAutoRollback bool
	// Step is how many instances a blue/green deploy moves at a time.
	// Default 1.
	Step int
}

// DefaultVerifyTimeout is how long a rollout has to become healthy when
// its target does not say.
const DefaultVerifyTimeout = 10 * time.Minute

func (t Target) verifyTimeout() time.Duration {
	if t.VerifyTimeout <= 0 {
		return DefaultVerifyTimeout
	}
	return t.VerifyTimeout
}

// Task is a one-off task run before a deploy.
type Task struct {
	// Name is short and unique within the pipeline: "migrate".
	Name string
	// Image runs the task; empty means the artifact's own image.
	Image   string
	Command string
	Env     map[string]string
	CPUs    float64
	MemMB   float64
}

// Request is one deploy: what to put where, for whom.
type Request struct {
	// JobID names the job; it goes into task IDs and app labels, so a
	// job run again recognises what it started.
	JobID, User  string
	Service, Env string
	// Ref is built when Artifact is empty (a deploy); a promotion or a
	// rollback brings its Artifact and builds nothing.
	Ref      string
	Artifact string
	// SkipPreDeploy leaves out the pre-deploy tasks (a rollback does not
	// migrate forward).
	SkipPreDeploy bool
	// Gate, when set, is asked just before the job first changes its
	// environment — after the build, before any task or rollout — whether
	// it still may: an environment locked during a long build stops the
	// deploy there. Its error ends the deploy (a *Wait postpones it).
	Gate func(ctx context.Context) error
}

// Result is how a deploy ended.
type Result struct {
	Artifact string
	App      string
	// Version is the Marathon app version now live; Previous (and
	// PreviousArtifact) what ran before, which Roll back restores.
	Version, Previous, PreviousArtifact string
	Healthy, Instances                  int
	Links                               []Link
}

// Deployer runs pipelines.
type Deployer struct {
	Builds    *Builds
	Artifacts ArtifactReader
	Apps      Apps
	Colours   Colours
	Tasks     Tasks
	Pipelines map[string]Pipeline
	// Poll is how often Marathon and Mesos are asked for news. Default 2s.
	Poll time.Duration
	// AppURL, when set, links an app ID to a page about it (Marathon's UI).
	AppURL func(id string) string
}

// Step names of a deploy.
const (
	stepArtifact = "artifact"
	stepBegun    = "deploy_begun"   // the first change: a task or the rollout
	stepStarted  = "deploy_started" // the rollout, from which verification is timed
)

// Deploy builds req.Ref (unless req has its Artifact), runs the pre-deploy
// tasks, rolls the artifact out to req.Env and verifies it. A rollout that
// fails verification is rolled back unless the target says not to; either
// way the error says what happened.
func (d *Deployer) Deploy(ctx context.Context, req Request, steps Steps, report func(Progress)) (Result, error) {
	p, t, err := d.target(req.Service, req.Env)
	if err != nil {
		return Result{}, err
	}
	artifact, err := d.artifact(ctx, p, req, steps, report)
	if err != nil {
		return Result{}, err
	}
	report(Progress{Artifact: artifact})
	if err := d.begin(ctx, req, steps); err != nil {
		return Result{}, err
	}
	if !req.SkipPreDeploy {
		if err := d.preDeploy(ctx, p, req, artifact, steps, report); err != nil {
			return Result{}, err
		}
	}
	if err := mark(ctx, steps, stepStarted); err != nil {
		return Result{}, err
	}
	if t.Strategy == BlueGreen {
		return d.blueGreen(ctx, t, req, artifact, steps, report)
	}
	return d.rolling(ctx, t, req, artifact, steps, report)
}

// Started reports whether a deploy job has begun changing its
// environment (a migration counts): a job run again after that finishes
// what it began, even if the environment has been locked meanwhile.
func Started(ctx context.Context, steps Steps) (bool, error) {
	for _, name := range []string{stepBegun, stepStarted} {
		if v, err := steps.Get(ctx, name); err != nil || v != "" {
			return v != "", err
		}
	}
	return false, nil
}

// begin marks the job as changing its environment, once, after its Gate
// lets it.
func (d *Deployer) begin(ctx context.Context, req Request, steps Steps) error {
	begun, err := Started(ctx, steps)
	if err != nil || begun {
		return err
	}
	if req.Gate != nil {
		if err := req.Gate(ctx); err != nil {
			return err
		}
	}
	return mark(ctx, steps, stepBegun)
}

// mark records the time in step name, once.
func mark(ctx context.Context, steps Steps, name string) error {
	v, err := steps.Get(ctx, name)
	if err != nil || v != "" {
		return err
	}
	return steps.Set(ctx, name, strconv.FormatInt(time.Now().UnixMilli(), 10))
}

// deadline is when verification of the rollout started at steps' mark
// gives up; it does not move when the job is run again.
func deadline(ctx context.Context, t Target, steps Steps) (time.Time, error) {
	v, err := steps.Get(ctx, stepStarted)
	if err != nil {
		return time.Time{}, err
	}
	ms, _ := strconv.ParseInt(v, 10, 64)
	if ms == 0 {
		ms = time.Now().UnixMilli()
	}
	return time.UnixMilli(ms).Add(t.verifyTimeout()), nil
}

func (d *Deployer) target(service, env string) (Pipeline, Target, error) {
	p, ok := d.Pipelines[service]
	if !ok {
		return Pipeline{}, Target{}, &Failure{Msg: fmt.Sprintf("%s has no deploy pipeline configured.", service)}
	}
	t, ok := p.Targets[env]
	if !ok {
		return Pipeline{}, Target{}, &Failure{Msg: fmt.Sprintf("%s is not deployed to %s.", service, env)}
	}
	if d.Apps == nil {
		return Pipeline{}, Target{}, &Failure{Msg: "deploybot has no Marathon to deploy to."}
	}
	return p, t, nil
}

// artifact is what req deploys: the one it brings, the one recorded by an
// earlier run of the job, or the one a new build makes.
func (d *Deployer) artifact(ctx context.Context, p Pipeline, req Request, steps Steps, report func(Progress)) (string, error) {
	// What an earlier run of the job deploys wins: a promotion run again
	// must not pick up what its source environment runs by then.
	if a, err := steps.Get(ctx, stepArtifact); err != nil || a != "" {
		return a, err
	}
	if req.Artifact != "" {
		if err := CheckImage(req.Artifact); err != nil {
			return "", err
		}
		return req.Artifact, steps.Set(ctx, stepArtifact, req.Artifact)
	}
	if d.Builds == nil {
		return "", &Failure{Msg: "deploybot has no Jenkins to build with."}
	}
	res, err := d.Builds.Run(ctx, req.Service, req.Ref, steps, report)
	if err != nil {
		return "", err
	}
	if !res.Succeeded() {
		return "", &Failure{Msg: fmt.Sprintf("The build ended %s, so nothing was deployed.", res.Outcome)}
	}
	artifact, err := d.readArtifact(ctx, p, req.Ref, res)
	if err != nil {
		return "", err
	}
	return artifact, steps.Set(ctx, stepArtifact, artifact)
}

// sleep waits for the next poll, or returns ctx's error.
func (d *Deployer) sleep(ctx context.Context) error {
	poll := d.Poll
	if poll <= 0 {
		poll = 2 * time.Second
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(poll):
		return nil
	}
}

// transient reports whether err is worth asking again about on the next
// poll rather than failing the deploy: a backend's passing trouble.
func transient(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}
