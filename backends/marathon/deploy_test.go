package marathon_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/seed-5eb4e92e/deploybot/backends/marathon"
	"github.com/seed-5eb4e92e/deploybot/backends/marathon/marathontest"
)

func reason(err error) string {
	var he *marathon.HTTPError
	if errors.As(err, &he) {
		return he.Reason()
	}
	return ""
}

// failing makes tasks of versions newer than the one stored unhealthy.
type failing struct{ after atomic.Value }

func (f *failing) healthy(_, version string) bool {
	after, _ := f.after.Load().(string)
	return after == "" || version <= after
}

// failingRollout starts an update whose new tasks fail their health checks
// (killed after two failures), and returns the update's result and the good
// version.
func failingRollout(t *testing.T) (*marathon.Client, *marathontest.Server, *failing, marathon.DeploymentResult) {
	t.Helper()
	f := &failing{}
	c, srv := newPair(t, marathontest.Options{Healthy: f.healthy}, marathon.Config{})
	f.after.Store(srv.AddApp(marathontest.AppSpec{ID: blue, Instances: 2,
		Fields: map[string]any{"healthChecks": []any{map[string]any{"protocol": "MESOS_HTTP", "path": "/healthz", "maxConsecutiveFailures": 2}}}}))
	res, err := c.Update(context.Background(), blue, marathon.AppUpdate{Image: newImage})
	if err != nil {
		t.Fatal(err)
	}
	for range 6 {
		srv.Tick()
	}
	return c, srv, f, res
}

func TestUnhealthyDeploymentNeverFinishes(t *testing.T) {
	t.Parallel()
	c, _, _, res := failingRollout(t)
	ctx := context.Background()
	ds, err := c.Deployments(ctx)
	if err != nil || len(ds) != 1 || ds[0].ID != res.DeploymentID {
		t.Fatalf("deployments = %+v, %v; want %s still running", ds, err, res.DeploymentID)
	}
	app, err := c.App(ctx, blue)
	if err != nil {
		t.Fatal(err)
	}
	// The old tasks keep serving (minimumHealthCapacity 1); the new ones
	// are unhealthy or starting again.
	if app.TasksHealthy != 2 || app.TasksUnhealthy+app.TasksStaged != 2 || app.Image() != newImage {
		t.Fatalf("counts: %d healthy, %d unhealthy, %d staged", app.TasksHealthy, app.TasksUnhealthy, app.TasksStaged)
	}
	relaunched := false
	for _, task := range app.Tasks {
		if task.Version == res.Version && app.TaskHealthy(task) {
			t.Errorf("new task %s is healthy", task.ID)
		}
		relaunched = relaunched || strings.HasSuffix(task.ID, "._app.2") || strings.HasSuffix(task.ID, "._app.3")
	}
	if !relaunched {
		t.Errorf("no task was killed and relaunched: %+v", app.Tasks)
	}
}

func TestForcedRollbackReplacesFailingDeployment(t *testing.T) {
	t.Parallel()
	c, srv, f, res := failingRollout(t)
	ctx := context.Background()
	good := f.after.Load().(string)
	_, err := c.Rollback(ctx, blue, good)
	var he *marathon.HTTPError
	if !errors.Is(err, marathon.ErrLocked) || !errors.As(err, &he) || he.Status != 409 || he.Temporary() ||
		!slices.Equal(he.Deployments, []marathon.DeploymentRef{{ID: res.DeploymentID}}) || !strings.Contains(he.Reason(), res.DeploymentID) {
		t.Fatalf("rollback without force: %v", err)
	}
	forced, err := marathon.New(marathon.Config{URL: srv.URL, Force: true}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := forced.Rollback(ctx, blue, good)
	if err != nil {
		t.Fatal(err)
	}
	if got := srv.Deployments(); !slices.Equal(got, []string{rb.DeploymentID}) {
		t.Errorf("deployments = %v, want only the rollback %s", got, rb.DeploymentID)
	}
	f.after.Store(rb.Version) // the rolled-back definition is healthy
	settle(t, c, 5)
	app, err := c.App(ctx, blue)
	if err != nil {
		t.Fatal(err)
	}
	if app.Image() != oldImage || app.Version != rb.Version || app.TasksHealthy != 2 || len(app.Tasks) != 2 {
		t.Errorf("after rollback: image %s, version %s (want %s), %d/%d healthy", app.Image(), app.Version, rb.Version, app.TasksHealthy, len(app.Tasks))
	}
	if n := srv.Count("PUT", "/v2/apps/shop/api-blue?force=true"); n != 1 {
		t.Errorf("%d forced PUTs, want 1", n)
	}
}

func TestCancelDeployment(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		force bool
		image string
	}{
		{name: "rollback", image: oldImage},
		{name: "force", force: true, image: newImage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, srv := bluePair(t, marathontest.Options{DeployPolls: 100}, marathon.Config{})
			ctx := context.Background()
			res, err := c.Update(ctx, blue, marathon.AppUpdate{Image: newImage})
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.CancelDeployment(ctx, res.DeploymentID, tc.force)
			if err != nil {
				t.Fatal(err)
			}
			st, _ := srv.App(blue)
			if st.Image != tc.image {
				t.Errorf("image = %s, want %s", st.Image, tc.image)
			}
			if tc.force && (got != marathon.DeploymentResult{} || len(st.Deployments) != 0) {
				t.Errorf("forced cancel: %+v, deployments %v", got, st.Deployments)
			}
			if !tc.force && (got.DeploymentID == "" || got.DeploymentID == res.DeploymentID || !slices.Equal(st.Deployments, []string{got.DeploymentID}) || got.Version <= res.Version) {
				t.Errorf("rollback: %+v, deployments %v", got, st.Deployments)
			}
			_, err = c.CancelDeployment(ctx, res.DeploymentID, tc.force)
			if !errors.Is(err, marathon.ErrNotFound) || !strings.Contains(reason(err), "does not exist") {
				t.Errorf("second cancel: %v", err)
			}
		})
	}
}

func TestForceReplacesDeployment(t *testing.T) {
	t.Parallel()
	c, srv := bluePair(t, marathontest.Options{DeployPolls: 100}, marathon.Config{Force: true})
	ctx := context.Background()
	first, err := c.Update(ctx, blue, marathon.AppUpdate{Image: newImage})
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.Update(ctx, blue, marathon.AppUpdate{Image: "registry.example.com/shop/api:1.4.4"})
	if err != nil {
		t.Fatal(err)
	}
	if got := srv.Deployments(); !slices.Equal(got, []string{second.DeploymentID}) || first.DeploymentID == second.DeploymentID {
		t.Errorf("deployments = %v, want only %s", got, second.DeploymentID)
	}
}

func TestVersionsAndRollback(t *testing.T) {
	t.Parallel()
	c, srv := bluePair(t, marathontest.Options{}, marathon.Config{})
	ctx := context.Background()
	first := srv.Versions(blue)[0]
	res, err := c.Update(ctx, blue, marathon.AppUpdate{Image: newImage})
	if err != nil {
		t.Fatal(err)
	}
	settle(t, c, 3)
	vs, err := c.Versions(ctx, blue)
	if err != nil {
		t.Fatal(err)
	}
	// The double lists versions oldest first, as Marathon may.
	if !slices.Equal(vs, []string{res.Version, first}) || srv.Versions(blue)[0] != first {
		t.Fatalf("versions = %v, want [%s %s]", vs, res.Version, first)
	}
	old, err := c.AppVersion(ctx, blue, first)
	if err != nil {
		t.Fatal(err)
	}
	if old.Image() != oldImage || old.Version != first || len(old.Tasks) != 0 {
		t.Errorf("version %s = %+v", first, old)
	}
	rb, err := c.Rollback(ctx, blue, first)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := srv.App(blue); st.Image != oldImage || st.Version != rb.Version || rb.Version == first {
		t.Errorf("after rollback: %s at %s, result %+v", st.Image, st.Version, rb)
	}
	for _, v := range []string{"2020-01-01T00:00:00.000Z"} {
		if _, err := c.AppVersion(ctx, blue, v); !errors.Is(err, marathon.ErrNotFound) {
			t.Errorf("AppVersion(%s) = %v", v, err)
		}
		if _, err := c.Rollback(ctx, blue, v); !errors.Is(err, marathon.ErrNotFound) {
			t.Errorf("Rollback(%s) = %v", v, err)
		}
	}
	for _, v := range []string{"", "latest", "2020-01-01", "2020-01-01T00:00:00.000Z/../../x", "2020-13-01T00:00:00Z"} {
		if _, err := c.AppVersion(ctx, blue, v); err == nil {
			t.Errorf("AppVersion(%q) accepted", v)
		}
	}
}

func TestBlueGreenCopyCreateDelete(t *testing.T) {
	t.Parallel()
	c, srv := bluePair(t, marathontest.Options{DeployPolls: 100}, marathon.Config{})
	ctx := context.Background()
	def, err := c.Definition(ctx, blue)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(def, &fields); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"tasks", "tasksRunning", "deployments", "version", "versionInfo"} {
		if _, ok := fields[k]; ok {
			t.Errorf("definition keeps %q", k)
		}
	}
	for _, k := range []string{"secrets", "networks", "unreachableStrategy", "container", "healthChecks"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("definition lost %q", k)
		}
	}
	green, err := marathon.CopyAs(def, "/shop/api-green", map[string]string{marathon.LabelDeploymentColour: marathon.ColourGreen}, 1)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Create(ctx, green)
	if err != nil {
		t.Fatal(err)
	}
	st, ok := srv.App("/shop/api-green")
	if !ok || res.DeploymentID == "" || res.Version != st.Version || st.Instances != 1 || st.Labels[marathon.LabelDeploymentColour] != "green" ||
		st.Labels[marathon.LabelDeploymentGroup] != "shop-api" || !slices.Equal(st.Deployments, []string{res.DeploymentID}) {
		t.Fatalf("created %+v (ok %v), result %+v", st, ok, res)
	}
	if _, err := c.Create(ctx, green); !errors.Is(err, marathon.ErrExists) {
		t.Errorf("second create: %v", err)
	}
	// Still starting: Marathon would cancel that silently (DELETE forces by
	// default); the client asks it not to.
	if _, err := c.Delete(ctx, "/shop/api-green"); !errors.Is(err, marathon.ErrLocked) {
		t.Errorf("delete while starting: %v", err)
	}
	del, err := c.Delete(ctx, blue)
	if err != nil || del.DeploymentID == "" {
		t.Fatalf("delete: %+v, %v", del, err)
	}
	if _, err := c.App(ctx, blue); !errors.Is(err, marathon.ErrNotFound) {
		t.Errorf("App after delete: %v", err)
	}
	if _, err := c.Delete(ctx, blue); !errors.Is(err, marathon.ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
}
