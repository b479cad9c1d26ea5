package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-5eb4e92e/deploybot/backends/jenkins"
	"github.com/seed-5eb4e92e/deploybot/backends/jenkins/jenkinstest"
	"github.com/seed-5eb4e92e/deploybot/backends/marathon"
	"github.com/seed-5eb4e92e/deploybot/backends/marathon/marathontest"
	"github.com/seed-5eb4e92e/deploybot/deploy"
)

var (
	_ deploy.Apps           = (*marathon.Client)(nil)
	_ deploy.Colours        = (*marathon.Client)(nil)
	_ deploy.ArtifactReader = (*jenkins.Client)(nil)
)

const oldImage = "registry.example.com/platform/api:1.4.2"

// deployEnv is a Deployer wired to a simulated Jenkins and Marathon.
type deployEnv struct {
	d        *deploy.Deployer
	jenkins  *jenkinstest.Server
	marathon *marathontest.Server
	mc       *marathon.Client
	// unhealthy names app versions whose tasks fail their health checks.
	mu        sync.Mutex
	unhealthy func(app, version string) bool
	// finish, when set, decides what a build leaves behind instead of a
	// description naming its image.
	finish func(params url.Values, n int) jenkinstest.Finished
}

func newDeployEnv(t *testing.T, target deploy.Target) *deployEnv {
	t.Helper()
	e := &deployEnv{}
	e.jenkins = jenkinstest.Start(jenkinstest.Options{Finish: e.finished})
	t.Cleanup(e.jenkins.Close)
	e.jenkins.AddJob("platform/api-build", "BRANCH")
	e.marathon = marathontest.Start(marathontest.Options{DeployPolls: 2, Healthy: func(app, version string) bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.unhealthy == nil || !e.unhealthy(app, version)
	}})
	t.Cleanup(e.marathon.Close)
	jc, err := jenkins.New(jenkins.Config{URL: e.jenkins.URL}, ownTransport(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if e.mc, err = marathon.New(marathon.Config{URL: e.marathon.URL}, ownTransport(), nil); err != nil {
		t.Fatal(err)
	}
	if target.App == "" {
		target.App = "/platform/api-staging"
	}
	if target.VerifyTimeout == 0 {
		target.VerifyTimeout = 500 * time.Millisecond
	}
	pipe := deploy.Pipeline{
		Service:  "api",
		Build:    deploy.BuildJob{Job: "platform/api-build"},
		Artifact: deploy.ArtifactSource{From: deploy.FromDescription, Pattern: regexp.MustCompile(`built (\S+)`)},
		Targets:  map[string]deploy.Target{"staging": target},
	}
	e.d = &deploy.Deployer{
		Builds:    &deploy.Builds{Builder: jc, Jobs: map[string]deploy.BuildJob{"api": pipe.Build}, Poll: time.Millisecond},
		Artifacts: jc, Apps: e.mc, Colours: e.mc,
		Pipelines: map[string]deploy.Pipeline{"api": pipe},
		Poll:      2 * time.Millisecond,
	}
	return e
}

// finished is what a build of the simulated Jenkins leaves behind.
func (e *deployEnv) finished(_ string, params url.Values, n int) jenkinstest.Finished {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.finish != nil {
		return e.finish(params, n)
	}
	return jenkinstest.Finished{Description: fmt.Sprintf("built registry.example.com/platform/api:1.5.%d (%s)", n, params.Get("BRANCH"))}
}

func (e *deployEnv) setFinish(f func(params url.Values, n int) jenkinstest.Finished) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.finish = f
}

func (e *deployEnv) setUnhealthy(f func(app, version string) bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.unhealthy = f
}

func request(ref string) deploy.Request {
	return deploy.Request{JobID: "01JOBAAAAAAAAAAAAAAAAAAAAA", User: "U_ANN", Service: "api", Env: "staging", Ref: ref}
}

func (e *deployEnv) deploy(t *testing.T, req deploy.Request, steps *memSteps) (deploy.Result, []string, error) {
	t.Helper()
	var stages []string
	res, err := e.d.Deploy(context.Background(), req, steps, func(p deploy.Progress) {
		if p.Stage != "" && (len(stages) == 0 || stages[len(stages)-1] != p.Stage) {
			stages = append(stages, p.Stage)
		}
	})
	return res, stages, err
}

// TestDeployHappyPath: build, read the artifact from the build's
// description, roll it out, and wait until every task of the new version
// is healthy. The app is labelled with who deployed it.
func TestDeployHappyPath(t *testing.T) {
	t.Parallel()
	e := newDeployEnv(t, deploy.Target{})
	before := e.marathon.AddApp(marathontest.AppSpec{ID: "/platform/api-staging", Image: oldImage, Instances: 3})
	steps := &memSteps{}
	res, stages, err := e.deploy(t, request("feature/login"), steps)
	if err != nil {
		t.Fatalf("deploy: %v (stages %q)", err, stages)
	}
	app, _ := e.marathon.App("/platform/api-staging")
	if res.Artifact != "registry.example.com/platform/api:1.5.1" || app.Image != res.Artifact || app.Labels[deploy.LabelUser] != "U_ANN" {
		t.Fatalf("result %+v; app image %q labels %v", res, app.Image, app.Labels)
	}
	if res.Previous != before || res.PreviousArtifact != oldImage || res.Healthy != 3 || res.Instances != 3 {
		t.Fatalf("result %+v; want the previous version %s recorded and 3/3 healthy", res, before)
	}
	joined := strings.Join(stages, " | ")
	if !strings.Contains(joined, "building") || !strings.Contains(joined, "deploying: ") {
		t.Fatalf("stages %q", joined)
	}
	// The same job run again (a worker restart after the end) changes
	// nothing.
	puts := e.marathon.Count("PUT", "/v2/apps")
	if _, _, err := e.deploy(t, request("feature/login"), steps); err != nil || e.marathon.Count("PUT", "/v2/apps") != puts || e.jenkins.QueueItemsCreated() != 1 {
		t.Fatalf("run again: %v, %d PUTs (want %d), %d builds", err, e.marathon.Count("PUT", "/v2/apps"), puts, e.jenkins.QueueItemsCreated())
	}
}

// TestUnhealthyDeployIsRolledBack: the new version never passes its
// health checks; after the verify timeout the previous version is put
// back and the error says both.
func TestUnhealthyDeployIsRolledBack(t *testing.T) {
	t.Parallel()
	e := newDeployEnv(t, deploy.Target{VerifyTimeout: 200 * time.Millisecond})
	e.marathon.AddApp(marathontest.AppSpec{ID: "/platform/api-staging", Image: oldImage, Instances: 2})
	steps := &memSteps{}
	e.setUnhealthy(func(_, version string) bool { return version == steps.get("marathon_version") })
	_, _, err := e.deploy(t, request("main"), steps)
	var f *deploy.Failure
	if !errors.As(err, &f) || !errors.Is(err, deploy.ErrRolledBack) {
		t.Fatalf("err = %v; want a rolled-back Failure", err)
	}
	if !strings.Contains(f.Msg, "did not become healthy") || !strings.Contains(f.Msg, "Rolled back to `"+oldImage+"`") {
		t.Fatalf("message %q", f.Msg)
	}
	app, _ := e.marathon.App("/platform/api-staging")
	if app.Image != oldImage || len(app.Deployments) != 0 {
		t.Fatalf("after rollback the app runs %q with deployments %v", app.Image, app.Deployments)
	}
}

// TestNoAutoRollbackLeavesItAsItIs: a target that opts out reports the
// failure and leaves the deployment to people.
func TestNoAutoRollbackLeavesItAsItIs(t *testing.T) {
	t.Parallel()
	e := newDeployEnv(t, deploy.Target{VerifyTimeout: 100 * time.Millisecond, NoAutoRollback: true})
	e.marathon.AddApp(marathontest.AppSpec{ID: "/platform/api-staging", Image: oldImage, Instances: 1})
	steps := &memSteps{}
	e.setUnhealthy(func(_, version string) bool { return version == steps.get("marathon_version") })
	if _, _, err := e.deploy(t, request("main"), steps); err == nil || errors.Is(err, deploy.ErrRolledBack) {
		t.Fatalf("err = %v; want a failure without rollback", err)
	}
	app, _ := e.marathon.App("/platform/api-staging")
	if app.Image == oldImage || len(app.Deployments) == 0 {
		t.Fatalf("app = %+v; want the failing deployment left in place", app)
	}
	// The rollback people then ask for stops that deployment, which
	// otherwise holds the app, and puts the old version back.
	back := request("")
	back.JobID = "01JROLLBACKAAAAAAAAAAAAAAA"
	if _, err := e.d.Rollback(t.Context(), back, steps.get("previous_version"), &memSteps{}, func(deploy.Progress) {}); err != nil {
		t.Fatalf("rollback of an app held by a failed deployment: %v", err)
	}
	if app, _ := e.marathon.App("/platform/api-staging"); app.Image != oldImage || len(app.Deployments) != 0 {
		t.Fatalf("after the rollback the app runs %q with deployments %v", app.Image, app.Deployments)
	}
}

// TestWorkerKilledMidRollout: the worker stops after Marathon accepted
// the new version; the job run again follows the same deployment instead
// of starting another.
func TestWorkerKilledMidRollout(t *testing.T) {
	t.Parallel()
	e := newDeployEnv(t, deploy.Target{})
	e.marathon.AddApp(marathontest.AppSpec{ID: "/platform/api-staging", Image: oldImage, Instances: 3})
	steps := &memSteps{}
	ctx, kill := context.WithCancel(context.Background())
	_, err := e.d.Deploy(ctx, request("main"), steps, func(p deploy.Progress) {
		if strings.HasPrefix(p.Stage, "deploying: ") {
			kill()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("first run: %v", err)
	}
	dep := steps.get("marathon_deployment")
	if dep == "" || len(e.marathon.Deployments()) == 0 {
		t.Fatalf("the rollout was not under way when the worker died (deployment %q)", dep)
	}
	res, _, err := e.deploy(t, request("main"), steps)
	if err != nil || res.Healthy != 3 {
		t.Fatalf("second run: %+v, %v", res, err)
	}
	if n := e.marathon.Count("PUT", "/v2/apps"); n != 1 {
		t.Fatalf("%d PUTs; the second run must follow the first one's deployment", n)
	}
}

// lostAnswer is Marathon whose answer to the update is lost: the change is
// made, the worker never hears of it.
type lostAnswer struct {
	deploy.Apps
	lost bool
}

func (l *lostAnswer) Update(ctx context.Context, id string, u marathon.AppUpdate) (marathon.DeploymentResult, error) {
	res, err := l.Apps.Update(ctx, id, u)
	if err == nil && !l.lost {
		l.lost = true
		return marathon.DeploymentResult{}, context.DeadlineExceeded
	}
	return res, err
}

// TestLostUpdateAnswerIsNotRepeated: the update went through but its
// answer was lost; the job run again recognises its own change by the job
// label and does not update twice.
func TestLostUpdateAnswerIsNotRepeated(t *testing.T) {
	t.Parallel()
	e := newDeployEnv(t, deploy.Target{})
	e.marathon.AddApp(marathontest.AppSpec{ID: "/platform/api-staging", Image: oldImage, Instances: 2})
	e.d.Apps = &lostAnswer{Apps: e.mc}
	steps := &memSteps{}
	if _, _, err := e.deploy(t, request("main"), steps); err == nil {
		t.Fatal("the lost answer was not reported")
	}
	if _, _, err := e.deploy(t, request("main"), steps); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if n := e.marathon.Count("PUT", "/v2/apps"); n != 1 {
		t.Fatalf("%d PUTs; want 1", n)
	}
}

// TestPromoteDeploysTheGivenArtifact: a promotion builds nothing.
func TestPromoteDeploysTheGivenArtifact(t *testing.T) {
	t.Parallel()
	e := newDeployEnv(t, deploy.Target{})
	e.marathon.AddApp(marathontest.AppSpec{ID: "/platform/api-staging", Image: oldImage, Instances: 1})
	req := request("")
	req.Artifact = "registry.example.com/platform/api:1.5.7"
	res, _, err := e.deploy(t, req, &memSteps{})
	app, _ := e.marathon.App("/platform/api-staging")
	if err != nil || res.Artifact != req.Artifact || app.Image != req.Artifact || e.jenkins.QueueItemsCreated() != 0 {
		t.Fatalf("promote: %+v, %v; app %q; %d builds", res, err, app.Image, e.jenkins.QueueItemsCreated())
	}
	req.Artifact = "registry.example.com/api:1.0 ; rm -rf /"
	if _, _, err := e.deploy(t, req, &memSteps{}); err == nil {
		t.Fatal("a malformed artifact was deployed")
	}
}

// TestRollbackPutsThePreviousVersionBack: Roll back after a good deploy.
func TestRollbackPutsThePreviousVersionBack(t *testing.T) {
	t.Parallel()
	e := newDeployEnv(t, deploy.Target{})
	e.marathon.AddApp(marathontest.AppSpec{ID: "/platform/api-staging", Image: oldImage, Instances: 2})
	res, _, err := e.deploy(t, request("main"), &memSteps{})
	if err != nil {
		t.Fatal(err)
	}
	back := request("")
	back.JobID, back.Artifact = "01JOBBBBBBBBBBBBBBBBBBBBBB", res.PreviousArtifact
	rb, err := e.d.Rollback(context.Background(), back, res.Previous, &memSteps{}, func(deploy.Progress) {})
	app, _ := e.marathon.App("/platform/api-staging")
	if err != nil || app.Image != oldImage || rb.Healthy != 2 {
		t.Fatalf("rollback: %+v, %v; app runs %q", rb, err, app.Image)
	}
	live, err := e.d.Live(context.Background(), "api", "staging")
	if err != nil || live.Artifact != oldImage || live.Healthy != 2 || live.Instances != 2 {
		t.Fatalf("live = %+v, %v", live, err)
	}
}

func (s *memSteps) get(name string) string {
	v, _ := s.Get(context.Background(), name)
	return v
}
