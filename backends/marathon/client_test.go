package marathon_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/seed-5eb4e92e/deploybot/backends/marathon"
	"github.com/seed-5eb4e92e/deploybot/backends/marathon/marathontest"
)

const (
	blue     = "/shop/api-blue"
	oldImage = "registry.example.com/shop/api:1.4.2"
	newImage = "registry.example.com/shop/api:1.4.3"
)

func newPair(t *testing.T, opts marathontest.Options, cfg marathon.Config) (*marathon.Client, *marathontest.Server) {
	t.Helper()
	srv := marathontest.Start(opts)
	t.Cleanup(srv.Close)
	cfg.URL, cfg.User, cfg.Password = srv.URL, opts.User, opts.Password
	c, err := marathon.New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, srv
}

// bluePair is the usual setup: app /shop/api-blue running two healthy
// instances of the old image.
func bluePair(t *testing.T, opts marathontest.Options, cfg marathon.Config) (*marathon.Client, *marathontest.Server) {
	t.Helper()
	c, srv := newPair(t, opts, cfg)
	srv.AddApp(marathontest.AppSpec{ID: blue, Instances: 2})
	return c, srv
}

// settle reads the deployments until none is left, failing after max reads.
func settle(t *testing.T, c *marathon.Client, max int) {
	t.Helper()
	for range max {
		ds, err := c.Deployments(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 0 {
			return
		}
	}
	t.Fatalf("deployments still running after %d reads", max)
}

var taskIDRE = regexp.MustCompile(`^shop_api-blue\.instance-[0-9a-f]{8}-[0-9a-f]{4}-1[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\._app\.[0-9]+$`)

func TestApp(t *testing.T) {
	t.Parallel()
	c, srv := bluePair(t, marathontest.Options{}, marathon.Config{})
	app, err := c.App(context.Background(), blue)
	if err != nil {
		t.Fatal(err)
	}
	if app.ID != blue || app.Instances != 2 || app.Image() != oldImage || app.Container.Type != "DOCKER" {
		t.Fatalf("app = %+v", app)
	}
	if app.Env["LOG_LEVEL"] != "info" || app.EnvSecrets["DATABASE_PW"] != "dbpassword" || app.Env["DATABASE_PW"] != "" {
		t.Errorf("env = %v, secrets = %v", app.Env, app.EnvSecrets)
	}
	if app.Labels[marathon.LabelDeploymentColour] != marathon.ColourBlue || app.Labels[marathon.LabelServicePort0] != "10000" {
		t.Errorf("labels = %v", app.Labels)
	}
	if app.TasksRunning != 2 || app.TasksHealthy != 2 || app.TasksStaged != 0 || len(app.Deployments) != 0 {
		t.Errorf("counts = %d/%d/%d, deployments %v", app.TasksStaged, app.TasksRunning, app.TasksHealthy, app.Deployments)
	}
	if app.VersionInfo.LastConfigChangeAt != app.Version || app.UpgradeStrategy == nil || app.UpgradeStrategy.MinimumHealthCapacity != 1 {
		t.Errorf("version info %+v, strategy %+v", app.VersionInfo, app.UpgradeStrategy)
	}
	if len(app.HealthChecks) != 1 || app.HealthChecks[0].MaxConsecutiveFailures != 10 {
		t.Errorf("health checks = %+v", app.HealthChecks)
	}
	if len(app.Tasks) != 2 {
		t.Fatalf("tasks = %+v", app.Tasks)
	}
	for _, task := range app.Tasks {
		if !taskIDRE.MatchString(task.ID) || task.AppID != blue || task.State != "TASK_RUNNING" || task.Version != app.Version ||
			!task.Healthy() || !app.TaskHealthy(task) || task.Host == "" || len(task.Ports) != 1 {
			t.Errorf("task = %+v", task)
		}
		if h := task.HealthCheckResults[0]; !strings.HasPrefix(task.ID, h.InstanceID+"._app.") || h.LastFailure != "" {
			t.Errorf("health = %+v for task %s", h, task.ID)
		}
	}
	want := "GET /v2/apps/shop/api-blue?embed=app.tasks&embed=app.counts&embed=app.deployments"
	if got := srv.Requests(); !slices.Equal(got, []string{want}) {
		t.Errorf("requests = %q, want %q", got, want)
	}
}

func TestUpdateImageKeepsTheRest(t *testing.T) {
	t.Parallel()
	c, srv := newPair(t, marathontest.Options{}, marathon.Config{})
	limits := map[string]any{"cpus": "unlimited", "mem": 8192}
	before := srv.AddApp(marathontest.AppSpec{ID: blue, Fields: map[string]any{"resourceLimits": limits}})
	res, err := c.Update(context.Background(), blue, marathon.AppUpdate{Image: newImage})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := srv.App(blue)
	if res.DeploymentID == "" || res.Version != st.Version || res.Version <= before || !slices.Equal(st.Deployments, []string{res.DeploymentID}) {
		t.Fatalf("result %+v, state %+v", res, st)
	}
	var def struct {
		Container struct {
			Docker       map[string]any   `json:"docker"`
			PortMappings []map[string]any `json:"portMappings"`
		} `json:"container"`
		Env            map[string]any `json:"env"`
		ResourceLimits map[string]any `json:"resourceLimits"`
		VersionInfo    marathon.VersionInfo
	}
	if err := json.Unmarshal(st.Definition, &def); err != nil {
		t.Fatal(err)
	}
	d := def.Container.Docker
	if d["image"] != newImage || d["forcePullImage"] != true || len(def.Container.PortMappings) != 1 || def.Container.PortMappings[0]["servicePort"] != 10000.0 {
		t.Errorf("container = %+v", def.Container)
	}
	if def.Env["LOG_LEVEL"] != "info" || def.Env["DATABASE_PW"] == nil || st.Labels[marathon.LabelDeploymentGroup] != "shop-api" {
		t.Errorf("env = %v, labels = %v", def.Env, st.Labels)
	}
	if def.ResourceLimits["mem"] != 8192.0 || def.VersionInfo.LastConfigChangeAt != res.Version {
		t.Errorf("resourceLimits = %v (a partial PUT without them resets them), versionInfo %+v", def.ResourceLimits, def.VersionInfo)
	}
	if srv.Count("GET", "/v2/apps/shop/api-blue") != 1 || srv.Count("PUT", "/v2/apps/shop/api-blue?force=false&partialUpdate=true") != 1 {
		t.Errorf("requests = %q", srv.Requests())
	}
}

func TestUpdateEnvAndLabelsMerge(t *testing.T) {
	t.Parallel()
	c, srv := bluePair(t, marathontest.Options{}, marathon.Config{})
	_, err := c.Update(context.Background(), blue, marathon.AppUpdate{
		Env:    map[string]string{"LOG_LEVEL": "debug", "FEATURE_X": "on"},
		Labels: map[string]string{marathon.LabelDeploymentColour: marathon.ColourGreen},
	})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := srv.App(blue)
	secret, _ := st.Env["DATABASE_PW"].(map[string]any)
	if st.Env["LOG_LEVEL"] != "debug" || st.Env["FEATURE_X"] != "on" || secret["secret"] != "dbpassword" {
		t.Errorf("env = %v", st.Env)
	}
	if st.Labels[marathon.LabelDeploymentColour] != marathon.ColourGreen || st.Labels[marathon.LabelDeploymentAltPort] != "10001" {
		t.Errorf("labels = %v", st.Labels)
	}
	if st.Image != oldImage {
		t.Errorf("image = %s, want it unchanged", st.Image)
	}
}

func TestUpdateChecksBeforeSending(t *testing.T) {
	t.Parallel()
	c, srv := bluePair(t, marathontest.Options{}, marathon.Config{})
	neg := -1
	tests := []struct {
		name string
		id   string
		u    marathon.AppUpdate
		want error
	}{
		{name: "nothing", id: blue},
		{name: "negative instances", id: blue, u: marathon.AppUpdate{Instances: &neg}},
		{name: "image with space", id: blue, u: marathon.AppUpdate{Image: "shop api"}},
		{name: "env name with =", id: blue, u: marathon.AppUpdate{Env: map[string]string{"A=B": "x"}}},
		{name: "empty label name", id: blue, u: marathon.AppUpdate{Labels: map[string]string{"": "x"}}},
		{name: "bad id", id: "/shop/../admin", u: marathon.AppUpdate{Image: newImage}},
		// A PUT to an unknown id would create an app; the read first fails.
		{name: "unknown app", id: "/shop/nope", u: marathon.AppUpdate{Image: newImage}, want: marathon.ErrNotFound},
	}
	for _, tc := range tests {
		_, err := c.Update(context.Background(), tc.id, tc.u)
		if err == nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	if n := srv.Count("PUT", "/"); n != 0 {
		t.Errorf("%d PUTs sent, want none", n)
	}
	if _, ok := srv.App("/shop/nope"); ok {
		t.Error("the update created /shop/nope")
	}
}

func TestRollingUpdate(t *testing.T) {
	t.Parallel()
	c, _ := bluePair(t, marathontest.Options{DeployPolls: 3}, marathon.Config{})
	ctx := context.Background()
	res, err := c.Update(ctx, blue, marathon.AppUpdate{Image: newImage})
	if err != nil {
		t.Fatal(err)
	}
	ds, err := c.Deployments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].ID != res.DeploymentID || !slices.Equal(ds[0].AffectedApps, []string{blue}) ||
		ds[0].CurrentStep != 1 || ds[0].TotalSteps != 1 || ds[0].CurrentActions[0] != (marathon.Action{Action: "RestartApplication", App: blue}) {
		t.Fatalf("deployments = %+v", ds)
	}
	app, err := c.App(ctx, blue)
	if err != nil {
		t.Fatal(err)
	}
	// Two reads: new tasks are running and checked; old ones still serve.
	if len(app.Tasks) != 4 || app.TasksHealthy != 4 || !slices.Equal(app.Deployments, []marathon.DeploymentRef{{ID: res.DeploymentID}}) {
		t.Fatalf("mid-deployment app: %d tasks, %d healthy, deployments %v", len(app.Tasks), app.TasksHealthy, app.Deployments)
	}
	settle(t, c, 2)
	app, err = c.App(ctx, blue)
	if err != nil {
		t.Fatal(err)
	}
	if app.Image() != newImage || len(app.Tasks) != 2 || len(app.Deployments) != 0 {
		t.Fatalf("after deployment: image %s, %d tasks, deployments %v", app.Image(), len(app.Tasks), app.Deployments)
	}
	for _, task := range app.Tasks {
		if task.Version != res.Version || !app.TaskHealthy(task) {
			t.Errorf("task %+v not healthy at %s", task, res.Version)
		}
	}
}

func TestTasksStageRunAndPassChecks(t *testing.T) {
	t.Parallel()
	c, srv := newPair(t, marathontest.Options{DeployPolls: 5}, marathon.Config{})
	srv.AddApp(marathontest.AppSpec{ID: blue, Instances: 1})
	ctx := context.Background()
	res, err := c.Scale(ctx, blue, 2)
	if err != nil {
		t.Fatal(err)
	}
	var states []string
	for range 3 {
		st, _ := srv.App(blue)
		newest := st.Tasks[len(st.Tasks)-1]
		states = append(states, fmt.Sprintf("%s healthy=%v", newest.State, newest.Healthy))
		srv.Tick()
	}
	want := []string{"TASK_STAGING healthy=false", "TASK_RUNNING healthy=false", "TASK_RUNNING healthy=true"}
	if !slices.Equal(states, want) {
		t.Errorf("states = %q, want %q", states, want)
	}
	app, err := c.App(ctx, blue)
	if err != nil {
		t.Fatal(err)
	}
	if app.TasksHealthy != 2 || app.VersionInfo.LastScalingAt != res.Version || app.VersionInfo.LastConfigChangeAt == res.Version {
		t.Errorf("a scale is not a config change: %d healthy, %+v, version %s", app.TasksHealthy, app.VersionInfo, res.Version)
	}
	// The scale's tasks keep the version they were started with.
	if app.Tasks[0].Version == app.Tasks[1].Version {
		t.Errorf("tasks = %+v", app.Tasks)
	}
}
