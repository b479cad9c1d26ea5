package mesostest

import (
	"encoding/json"
	"fmt"
)

type resourceJSON struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Scalar *struct {
		Value float64 `json:"value"`
	} `json:"scalar"`
}

func scalars(rs []resourceJSON) (cpus, mem, disk float64) {
	for _, r := range rs {
		if r.Type != "SCALAR" || r.Scalar == nil {
			continue
		}
		switch r.Name {
		case "cpus":
			cpus += r.Scalar.Value
		case "mem":
			mem += r.Scalar.Value
		case "disk":
			disk += r.Scalar.Value
		}
	}
	return cpus, mem, disk
}

type launchGroupJSON struct {
	Type        string `json:"type"`
	LaunchGroup *struct {
		Executor struct {
			Type        string         `json:"type"`
			ExecutorID  idJSON         `json:"executor_id"`
			FrameworkID *idJSON        `json:"framework_id"`
			Resources   []resourceJSON `json:"resources"`
		} `json:"executor"`
		TaskGroup struct {
			Tasks []json.RawMessage `json:"tasks"`
		} `json:"task_group"`
	} `json:"launch_group"`
}

type taskJSON struct {
	Name      string         `json:"name"`
	TaskID    idJSON         `json:"task_id"`
	AgentID   idJSON         `json:"agent_id"`
	Resources []resourceJSON `json:"resources"`
	Command   *struct {
		Shell       *bool  `json:"shell"`
		Value       string `json:"value"`
		Environment *struct {
			Variables []struct {
				Name  string `json:"name"`
				Value string `json:"value"`
			} `json:"variables"`
		} `json:"environment"`
	} `json:"command"`
	Container *struct {
		Type  string `json:"type"`
		Mesos *struct {
			Image *struct {
				Docker *struct {
					Name string `json:"name"`
				} `json:"docker"`
			} `json:"image"`
		} `json:"mesos"`
	} `json:"container"`
	Labels *struct {
		Labels []struct {
			Key   string `json:"key"`
			Value string `json:"value"`
		} `json:"labels"`
	} `json:"labels"`
}

// accept carries out an ACCEPT like Master::accept: with an offer that is
// no longer valid every launch is dropped; otherwise each LAUNCH_GROUP is
// validated and launched or refused with TASK_ERROR.
func (s *Server) accept(fw *framework, offerIDs []idJSON, ops []json.RawMessage, refuse float64) {
	s.accepts++
	var offers []*offerState
	invalid := ""
	for _, id := range offerIDs {
		o := fw.offers[id.Value]
		if o == nil && invalid == "" {
			invalid = "Offer " + id.Value + " is no longer valid"
		}
		if o != nil {
			offers = append(offers, o)
			delete(fw.offers, id.Value)
		}
	}
	if len(offerIDs) == 0 {
		invalid = "No offers specified"
	}
	for _, raw := range ops {
		var op launchGroupJSON
		if json.Unmarshal(raw, &op) != nil || op.Type != "LAUNCH_GROUP" || op.LaunchGroup == nil {
			continue // other operations are not simulated
		}
		tasks := parseTasks(op.LaunchGroup.TaskGroup.Tasks)
		if invalid != "" {
			state := "TASK_DROPPED"
			if !fw.partitionAware {
				state = "TASK_LOST"
			}
			for _, t := range tasks {
				s.sendMaster(fw, masterStatus(t.TaskID.Value, t.AgentID.Value, state, "REASON_INVALID_OFFERS",
					"Task launched with invalid offers: "+invalid))
			}
			continue
		}
		if err := s.validateGroup(fw, op, tasks, offers); err != "" {
			for _, t := range tasks {
				s.sendMaster(fw, masterStatus(t.TaskID.Value, t.AgentID.Value, "TASK_ERROR", "REASON_TASK_GROUP_INVALID", err))
			}
			continue
		}
		for i, t := range tasks {
			s.launch(fw, op, t, op.LaunchGroup.TaskGroup.Tasks[i])
		}
	}
	for _, o := range offers {
		s.filter(fw, o.agent, refuse) // what the launch left is declined
	}
}

func parseTasks(raws []json.RawMessage) []taskJSON {
	tasks := make([]taskJSON, len(raws))
	for i, raw := range raws {
		_ = json.Unmarshal(raw, &tasks[i])
	}
	return tasks
}

// validateGroup does the checks of validation::task::group::validate
// (src/master/validation.cpp) that a one-task framework can trip over, with
// the master's texts.
func (s *Server) validateGroup(fw *framework, op launchGroupJSON, tasks []taskJSON, offers []*offerState) string {
	ex := op.LaunchGroup.Executor
	var have [3]float64
	for _, o := range offers {
		have[0], have[1], have[2] = have[0]+o.cpus, have[1]+o.mem, have[2]+o.disk
	}
	var need [3]float64
	for _, t := range tasks {
		prefix := "Task '" + t.TaskID.Value + "' is invalid: "
		switch {
		case fw.tasks[t.TaskID.Value] != nil:
			return prefix + "Task has duplicate ID: " + t.TaskID.Value
		case len(offers) == 0 || t.AgentID.Value != offers[0].agent.ID:
			return prefix + "Task uses invalid agent: " + t.AgentID.Value
		case t.Container != nil && t.Container.Type == "DOCKER":
			return prefix + "Docker ContainerInfo is not supported on the task"
		}
		c, m, d := scalars(t.Resources)
		if c+m+d == 0 {
			return prefix + "Task uses no resources"
		}
		need[0], need[1], need[2] = need[0]+c, need[1]+m, need[2]+d
	}
	c, m, d := scalars(ex.Resources)
	switch {
	case ex.Type == "":
		return "'ExecutorInfo.type' must be set"
	case ex.Type != "DEFAULT" && ex.Type != "CUSTOM":
		return "Unknown executor type"
	case ex.FrameworkID == nil:
		return "'ExecutorInfo.framework_id' must be set"
	case c < 0.01:
		return fmt.Sprintf("Executor '%s' uses less CPUs (%g) than the minimum required (0.01)", ex.ExecutorID.Value, c)
	case m < 32:
		return fmt.Sprintf("Executor '%s' uses less memory (%gMB) than the minimum required (32MB)", ex.ExecutorID.Value, m)
	case d == 0:
		return "Executor '" + ex.ExecutorID.Value + "' uses no disk"
	}
	need[0], need[1], need[2] = need[0]+c, need[1]+m, need[2]+d
	for i := range need {
		if need[i] > have[i]+1e-9 {
			return fmt.Sprintf("Total resources cpus:%g; mem:%g; disk:%g required by task group and its executor "+
				"are more than available cpus:%g; mem:%g; disk:%g", need[0], need[1], need[2], have[0], have[1], have[2])
		}
	}
	return ""
}

// launch starts one task of a valid group: TASK_STARTING comes first.
func (s *Server) launch(fw *framework, op launchGroupJSON, tj taskJSON, raw json.RawMessage) {
	ex := op.LaunchGroup.Executor
	lt := LaunchedTask{
		TaskID: tj.TaskID.Value, Name: tj.Name, AgentID: tj.AgentID.Value, FrameworkID: fw.id,
		ExecutorID: ex.ExecutorID.Value, ExecutorType: ex.Type, Shell: true,
		Env: map[string]string{}, Labels: map[string]string{},
	}
	lt.CPUs, lt.MemMB, _ = scalars(tj.Resources)
	lt.ExecutorCPUs, lt.ExecutorMemMB, lt.ExecutorDiskMB = scalars(ex.Resources)
	if c := tj.Command; c != nil {
		if c.Shell != nil {
			lt.Shell = *c.Shell
		}
		lt.Command = c.Value
		if c.Environment != nil {
			for _, v := range c.Environment.Variables {
				lt.Env[v.Name] = v.Value
			}
		}
	}
	if c := tj.Container; c != nil {
		lt.ContainerType = c.Type
		if c.Mesos != nil && c.Mesos.Image != nil && c.Mesos.Image.Docker != nil {
			lt.Image = c.Mesos.Image.Docker.Name
		}
	}
	if tj.Labels != nil {
		for _, l := range tj.Labels.Labels {
			lt.Labels[l.Key] = l.Value
		}
	}
	var launch map[string]any
	_ = json.Unmarshal(raw, &launch)
	t := &task{LaunchedTask: lt, launch: launch, held: s.opts.HoldRunning}
	fw.tasks[lt.TaskID] = t
	fw.order = append(fw.order, t)
	s.launched = append(s.launched, lt)
	if lt.Shell && lt.Command == "" {
		// docs/isolators/docker-runtime.md: shell without a value is an
		// error; the container never starts.
		t.outcome = &outcome{state: "TASK_FAILED", message: "Failed to launch container: shell command is empty"}
		s.enqueue(fw, t, s.executorStatus(t, "TASK_FAILED", t.outcome.message))
		return
	}
	s.enqueue(fw, t, s.executorStatus(t, "TASK_STARTING", ""))
}
