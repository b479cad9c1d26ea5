package mesos

import (
	"context"
	"math"
	"time"
)

// State is the part of the master's state (operator API, GET_STATE) that
// deploybot reads: which frameworks are registered, how many agents, and
// the tasks, so that status can say which one-off tasks are running.
type State struct {
	// Frameworks are the registered frameworks, connected or failing over;
	// torn-down ones are left out.
	Frameworks []Framework
	// Agents counts the registered agents.
	Agents int
	// Tasks are the tasks the master knows: launched ones (including ones
	// that ended but whose last update is not yet acknowledged),
	// unreachable ones, and a bounded number of completed ones per
	// framework, which a master forgets on failover.
	Tasks []Task
}

// Framework is a framework registered with the master.
type Framework struct {
	ID, Name string
	// Active is false while the framework is disconnected or deactivated.
	Active bool
}

// Task is a task as the master lists it.
type Task struct {
	ID, Name, FrameworkID, AgentID string
	// State is the latest TaskState name, "TASK_RUNNING", ….
	State string
	// Labels are the task's labels, as it was launched with them.
	Labels map[string]string
	// Updated is when the task's latest status was made; zero when the
	// master has none.
	Updated time.Time
}

// Terminal reports whether the task has ended, as TaskStatus.Terminal.
func (t Task) Terminal() bool { return terminalState(t.State) }

// getState is master.proto's Response for GET_STATE, cut to what State
// needs. The master writes get_tasks without pending_tasks.
type getState struct {
	Type     string `json:"type"`
	GetState struct {
		GetTasks struct {
			Tasks            []wireTask `json:"tasks"`
			UnreachableTasks []wireTask `json:"unreachable_tasks"`
			CompletedTasks   []wireTask `json:"completed_tasks"`
		} `json:"get_tasks"`
		GetFrameworks struct {
			Frameworks []struct {
				FrameworkInfo struct {
					ID   *id    `json:"id"`
					Name string `json:"name"`
				} `json:"framework_info"`
				Active bool `json:"active"`
			} `json:"frameworks"`
		} `json:"get_frameworks"`
		GetAgents struct {
			Agents []struct{} `json:"agents"`
		} `json:"get_agents"`
	} `json:"get_state"`
}

// State asks the master for the cluster's state (GET_STATE). Like Task,
// it is answered by the leading master, wherever Config.URL points.
func (c *Client) State(ctx context.Context) (State, error) {
	var out getState
	if err := c.operator(ctx, "GET_STATE", &out); err != nil {
		return State{}, err
	}
	return out.state(), nil
}

func (g getState) state() State {
	gs := g.GetState
	st := State{Agents: len(gs.GetAgents.Agents)}
	for _, f := range gs.GetFrameworks.Frameworks {
		st.Frameworks = append(st.Frameworks, Framework{ID: f.FrameworkInfo.ID.String(), Name: f.FrameworkInfo.Name, Active: f.Active})
	}
	gt := gs.GetTasks
	for _, list := range [][]wireTask{gt.Tasks, gt.UnreachableTasks, gt.CompletedTasks} {
		for _, t := range list {
			st.Tasks = append(st.Tasks, t.task())
		}
	}
	return st
}

func (t wireTask) task() Task {
	out := Task{
		ID: t.TaskID.Value, Name: t.Name, FrameworkID: t.FrameworkID.Value, AgentID: t.AgentID.Value,
		State: t.State,
	}
	if t.Labels != nil && len(t.Labels.Labels) > 0 {
		out.Labels = make(map[string]string, len(t.Labels.Labels))
		for _, l := range t.Labels.Labels {
			out.Labels[l.Key] = l.Value
		}
	}
	var newest double
	for _, s := range t.Statuses {
		if s.Timestamp > newest { // NaN never is
			newest = s.Timestamp
		}
	}
	out.Updated = unixTime(float64(newest))
	return out
}

// unixTime is a Mesos timestamp (Unix seconds, a double) as a time; zero
// for none or nonsense.
func unixTime(s float64) time.Time {
	if !(s > 0) || math.IsInf(s, 0) || s > math.MaxInt64/1e9 {
		return time.Time{}
	}
	sec, frac := math.Modf(s)
	return time.Unix(int64(sec), int64(math.Round(frac*1e6))*1e3).UTC()
}
