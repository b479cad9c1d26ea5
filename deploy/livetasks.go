package deploy

import (
	"cmp"
	"context"
	"slices"
	"time"
)

// Labels deploybot puts on its one-off tasks besides LabelJob and
// LabelUser, so that /deploy status can tell, from the master's state,
// which service, environment and pipeline task a Mesos task is.
const (
	LabelService = "DEPLOYBOT_SERVICE"
	LabelEnv     = "DEPLOYBOT_ENV"
	LabelTask    = "DEPLOYBOT_TASK"
)

// RunningTask is one of deploybot's one-off tasks that Mesos has not seen
// end: staging, starting, running, being killed, or on an unreachable
// agent.
type RunningTask struct {
	Service, Env string
	// Task is its name in the pipeline, "migrate".
	Task string
	// State is Mesos's, "TASK_RUNNING".
	State string
	// Job and User are the job that launched it and who asked for that.
	Job, User string
	// Since is when the task's latest status was made; zero if it has
	// none yet.
	Since time.Time
}

// RunningTasks asks Mesos (GET_STATE) which of deploybot's one-off tasks
// for services have not ended, oldest first. Tasks launched before
// deploybot labelled them with their service are not listed. Without
// Mesos there are none (check-config refuses pre-deploy tasks then). When
// the master cannot be asked, the error is a *Failure whose message says
// so without details.
func (d *Deployer) RunningTasks(ctx context.Context, services []string) ([]RunningTask, error) {
	if d.Tasks == nil {
		return nil, nil
	}
	st, err := d.Tasks.State(ctx)
	if err != nil {
		return nil, &Failure{Msg: "Mesos could not be asked about one-off tasks just now.", Err: err}
	}
	var out []RunningTask
	for _, t := range st.Tasks {
		l := t.Labels
		if t.Terminal() || l[LabelJob] == "" || !slices.Contains(services, l[LabelService]) {
			continue
		}
		out = append(out, RunningTask{
			Service: l[LabelService], Env: l[LabelEnv], Task: l[LabelTask], State: t.State,
			Job: l[LabelJob], User: l[LabelUser], Since: t.Updated,
		})
	}
	slices.SortStableFunc(out, func(a, b RunningTask) int {
		return cmp.Or(a.Since.Compare(b.Since), cmp.Compare(a.Service, b.Service), cmp.Compare(a.Env, b.Env))
	})
	return out, nil
}
