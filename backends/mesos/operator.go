package mesos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// wireTask is master.proto's Task as GET_TASKS lists it.
type wireTask struct {
	Name        string       `json:"name"`
	TaskID      id           `json:"task_id"`
	FrameworkID id           `json:"framework_id"`
	ExecutorID  *id          `json:"executor_id"`
	AgentID     id           `json:"agent_id"`
	State       string       `json:"state"`
	Statuses    []wireStatus `json:"statuses"`
	Labels      *labels      `json:"labels"`
}

type getTasks struct {
	Type     string `json:"type"`
	GetTasks struct {
		PendingTasks     []wireTask `json:"pending_tasks"`
		Tasks            []wireTask `json:"tasks"`
		UnreachableTasks []wireTask `json:"unreachable_tasks"`
		CompletedTasks   []wireTask `json:"completed_tasks"`
	} `json:"get_tasks"`
}

// Task asks the master (operator API, GET_TASKS) for the task with this ID
// and returns its latest status. The master lists tasks that are pending,
// launched (including terminal ones whose last update is not yet
// acknowledged), unreachable, and a bounded number of completed ones per
// framework, which it forgets on failover: a task can end and later be
// unknown again. When several tasks have the ID (one dropped before launch,
// one run again), a live one wins, then the most recent.
func (c *Client) Task(ctx context.Context, taskID string) (TaskStatus, bool, error) {
	var out getTasks
	if err := c.operator(ctx, "GET_TASKS", &out); err != nil {
		return TaskStatus{}, false, err
	}
	g := out.GetTasks
	var best TaskStatus
	found := false
	for _, list := range [][]wireTask{g.Tasks, g.UnreachableTasks, g.PendingTasks, g.CompletedTasks} {
		for _, t := range list {
			if t.TaskID.Value != taskID {
				continue
			}
			s := t.latest()
			if !found || better(s, best) {
				best, found = s, true
			}
		}
	}
	return best, found, nil
}

// operator makes an operator API call that takes no arguments (GET_TASKS,
// GET_STATE) on the leading master and decodes its answer into out.
func (c *Client) operator(ctx context.Context, callType string, out any) error {
	body, err := json.Marshal(struct {
		Type string `json:"type"`
	}{callType})
	if err != nil {
		return fmt.Errorf("mesos: %s: %w", callType, err)
	}
	resp, _, err := c.post(ctx, c.hc, c.base, operatorPath, body, "")
	if err != nil {
		return err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return c.httpError(resp)
	}
	if err := decodeBody(resp.Body, out); err != nil {
		return fmt.Errorf("mesos: %s: %w", callType, err)
	}
	return nil
}

// better prefers a live task to an ended one, then the newer.
func better(s, than TaskStatus) bool {
	if s.Terminal() != than.Terminal() {
		return !s.Terminal()
	}
	return s.Timestamp > than.Timestamp
}

// latest is the task's newest status for its current state, which carries
// the executor's message (and so the exit status), with the task's IDs
// filled in where the status leaves them out.
func (t wireTask) latest() TaskStatus {
	var w wireStatus
	for i := len(t.Statuses) - 1; i >= 0; i-- {
		if t.Statuses[i].State == t.State {
			w = t.Statuses[i]
			break
		}
	}
	w.TaskID, w.State = t.TaskID, t.State
	if w.AgentID == nil {
		w.AgentID = &t.AgentID
	}
	if w.ExecutorID == nil {
		w.ExecutorID = t.ExecutorID
	}
	if w.Timestamp == 0 && len(t.Statuses) > 0 {
		w.Timestamp = t.Statuses[len(t.Statuses)-1].Timestamp
	}
	s := w.status(t.FrameworkID.Value)
	s.UUID = "" // a listing is not an update to acknowledge
	return s
}

func decodeBody(r io.Reader, v any) error {
	raw, err := io.ReadAll(io.LimitReader(r, maxJSONBody+1))
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if len(raw) > maxJSONBody {
		return fmt.Errorf("answer larger than %d bytes", maxJSONBody)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	return nil
}
