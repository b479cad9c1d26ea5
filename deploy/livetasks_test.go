package deploy_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/seed-5eb4e92e/deploybot/backends/mesos"
	"github.com/seed-5eb4e92e/deploybot/deploy"
)

// fixedState is a Mesos that only answers GET_STATE, with st or err.
type fixedState struct {
	deploy.Tasks
	st  mesos.State
	err error
}

func (f fixedState) State(context.Context) (mesos.State, error) { return f.st, f.err }

// TestRunningTasksFilters: only deploybot's tasks of the services asked
// about that have not ended are listed, oldest first.
func TestRunningTasksFilters(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	ours := func(id, service, env, state string, at time.Time) mesos.Task {
		return mesos.Task{ID: id, State: state, Updated: at, Labels: map[string]string{
			deploy.LabelJob: "J-" + id, deploy.LabelUser: "U1", deploy.LabelService: service, deploy.LabelEnv: env, deploy.LabelTask: "migrate"}}
	}
	st := mesos.State{Tasks: []mesos.Task{
		ours("late", "api", "prod", "TASK_RUNNING", t0.Add(time.Minute)),
		ours("early", "api", "staging", "TASK_STARTING", t0),
		ours("cut-off", "api", "dev", "TASK_UNREACHABLE", t0.Add(2*time.Minute)),
		ours("done", "api", "staging", "TASK_FINISHED", t0),
		ours("dropped", "api", "staging", "TASK_DROPPED", t0),
		ours("web", "web", "staging", "TASK_RUNNING", t0),
		{ID: "someone-elses", State: "TASK_RUNNING", Labels: map[string]string{deploy.LabelService: "api"}},
	}}
	d := &deploy.Deployer{Tasks: fixedState{st: st}}
	got, err := d.RunningTasks(context.Background(), []string{"api"})
	if err != nil {
		t.Fatal(err)
	}
	want := []deploy.RunningTask{
		{Service: "api", Env: "staging", Task: "migrate", State: "TASK_STARTING", Job: "J-early", User: "U1", Since: t0},
		{Service: "api", Env: "prod", Task: "migrate", State: "TASK_RUNNING", Job: "J-late", User: "U1", Since: t0.Add(time.Minute)},
		{Service: "api", Env: "dev", Task: "migrate", State: "TASK_UNREACHABLE", Job: "J-cut-off", User: "U1", Since: t0.Add(2 * time.Minute)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("running tasks\n got %+v\nwant %+v", got, want)
	}
}

// TestRunningTasksWithoutMesos: without Mesos there is nothing to list; a
// master that cannot be asked is a Failure whose message shows nothing of
// the cause.
func TestRunningTasksWithoutMesos(t *testing.T) {
	t.Parallel()
	cause := errors.New("mesos: POST http://10.0.0.5:5050/api/v1: connection refused")
	for _, tc := range []struct {
		name  string
		tasks deploy.Tasks
		msg   string
	}{
		{"master down", fixedState{err: cause}, "Mesos could not be asked about one-off tasks just now."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := (&deploy.Deployer{Tasks: tc.tasks}).RunningTasks(context.Background(), []string{"api"})
			var f *deploy.Failure
			if !errors.As(err, &f) || f.Msg != tc.msg {
				t.Fatalf("error %v, want a Failure saying %q", err, tc.msg)
			}
			if !errors.Is(err, cause) {
				t.Errorf("the cause is not kept for the logs: %v", err)
			}
		})
	}
	if got, err := (&deploy.Deployer{}).RunningTasks(context.Background(), []string{"api"}); got != nil || err != nil {
		t.Fatalf("without Mesos: %v, %v; want nothing to list", got, err)
	}
}
