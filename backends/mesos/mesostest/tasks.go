package mesostest

import (
	"fmt"
	"sync"
	"time"
)

type agent struct {
	Agent
}

type framework struct {
	id, user, name string
	partitionAware bool
	stream         *stream // nil while disconnected
	removed        bool
	suppressed     bool
	offers         map[string]*offerState // outstanding offers by ID
	filters        map[string]time.Time   // agent ID → declined until
	tasks          map[string]*task       // by ID, launched and not completed
	order          []*task                // every task, in launch order
}

type offerState struct {
	id    string
	agent *agent
	cpus  float64
	mem   float64
	disk  float64
}

type stream struct {
	id      string
	queue   [][]byte // guarded by Server.mu, like stalled
	stalled bool
	wake    chan struct{}
	closed  chan struct{}
	once    sync.Once
}

func (st *stream) close() { st.once.Do(func() { close(st.closed) }) }

type outcome struct {
	state    string
	exitCode int
	message  string
}

// task is a launched task and its status update stream, as the agent keeps
// it: updates are delivered one at a time, the next only after the
// previous is acknowledged.
type task struct {
	LaunchedTask
	launch    map[string]any // the TaskInfo as sent, for GET_TASKS
	state     string         // latest state the agent reported
	statuses  []map[string]any
	pending   []map[string]any // unacknowledged; pending[0] is being delivered
	held      bool
	outcome   *outcome
	completed bool
}

func terminal(state string) bool {
	switch state {
	case "TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_LOST", "TASK_ERROR",
		"TASK_DROPPED", "TASK_GONE", "TASK_GONE_BY_OPERATOR":
		return true
	}
	return false
}

// offer sends one OFFERS event with an offer for every agent that has free
// resources, no outstanding offer to fw and no filter from fw.
func (s *Server) offer(fw *framework) {
	if fw.stream == nil || fw.suppressed || fw.removed {
		return
	}
	var offers []any
	var first *offerState
	for _, a := range s.agents {
		if until, ok := fw.filters[a.ID]; ok && time.Now().Before(until) || s.offeredOn(fw, a) {
			continue
		}
		o := s.newOffer(fw, a)
		if o == nil {
			continue
		}
		if first == nil {
			first = o
		}
		offers = append(offers, s.offerJSON(fw, o))
	}
	if len(offers) == 0 {
		return
	}
	ev := template("offers.json")
	ev["offers"] = map[string]any{"offers": offers}
	s.push(fw.stream, ev)
	if s.opts.RescindFirstOffer && !s.rescinded {
		s.rescinded = true
		delete(fw.offers, first.id)
		ev := template("rescind.json")
		ev["rescind"] = map[string]any{"offer_id": map[string]any{"value": first.id}}
		s.push(fw.stream, ev)
		s.offer(fw)
	}
}

func (s *Server) offeredOn(fw *framework, a *agent) bool {
	for _, o := range fw.offers {
		if o.agent == a {
			return true
		}
	}
	return false
}

// newOffer makes an offer of a's free resources, or nil if it has none.
func (s *Server) newOffer(fw *framework, a *agent) *offerState {
	cpus, mem, disk := a.CPUs, a.MemMB, a.DiskMB
	for _, f := range s.frameworks {
		for _, t := range f.tasks {
			if t.AgentID == a.ID && !terminal(t.state) {
				cpus -= t.CPUs + t.ExecutorCPUs
				mem -= t.MemMB + t.ExecutorMemMB
				disk -= t.ExecutorDiskMB
			}
		}
	}
	if cpus <= 0 || mem <= 0 {
		return nil
	}
	s.nextOffer++
	o := &offerState{id: fmt.Sprintf("%s-O%d", s.masterID, s.nextOffer), agent: a, cpus: cpus, mem: mem, disk: disk}
	fw.offers[o.id] = o
	return o
}

// offerJSON fills the recorded offer with o.
func (s *Server) offerJSON(fw *framework, o *offerState) map[string]any {
	m := template("offers.json")["offers"].(map[string]any)["offers"].([]any)[0].(map[string]any)
	m["id"] = map[string]any{"value": o.id}
	m["framework_id"] = map[string]any{"value": fw.id}
	m["agent_id"] = map[string]any{"value": o.agent.ID}
	m["hostname"] = o.agent.Hostname
	addr := m["url"].(map[string]any)["address"].(map[string]any)
	addr["hostname"] = o.agent.Hostname
	amount := map[string]float64{"cpus": o.cpus, "mem": o.mem, "disk": o.disk}
	var kept []any
	for _, r := range m["resources"].([]any) {
		rm := r.(map[string]any)
		if v, ok := amount[rm["name"].(string)]; ok {
			if v <= 0 {
				continue
			}
			rm["scalar"] = map[string]any{"value": v}
		}
		kept = append(kept, rm)
	}
	m["resources"] = kept
	return m
}

// filter keeps a's resources from fw for refuse seconds, then offers again.
func (s *Server) filter(fw *framework, a *agent, refuse float64) {
	d := time.Duration(refuse * float64(time.Second))
	fw.filters[a.ID] = time.Now().Add(d)
	s.timers = append(s.timers, time.AfterFunc(d, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.offer(fw)
	}))
}

// sendHead delivers the update at the head of t's stream, if fw listens.
func (s *Server) sendHead(fw *framework, t *task) {
	if fw.stream == nil || len(t.pending) == 0 {
		return
	}
	s.push(fw.stream, map[string]any{"type": "UPDATE", "update": map[string]any{"status": t.pending[0]}})
}

// enqueue records a status update from the executor and delivers it if
// nothing is waiting for an acknowledgement.
func (s *Server) enqueue(fw *framework, t *task, status map[string]any) {
	t.state = status["state"].(string)
	t.statuses = append(t.statuses, status)
	t.pending = append(t.pending, status)
	if len(t.pending) == 1 {
		s.sendHead(fw, t)
	}
}

// acknowledge pops the head of the task's update stream if uuid is its,
// and lets the task move on. An acknowledgement of anything else (a
// duplicate) is ignored, as the agent does.
func (s *Server) acknowledge(fw *framework, taskID, uuid string) {
	t := fw.tasks[taskID]
	if t == nil || len(t.pending) == 0 || t.pending[0]["uuid"] != uuid {
		return
	}
	head := t.pending[0]
	t.pending = t.pending[1:]
	s.acks = append(s.acks, Ack{TaskID: taskID, State: head["state"].(string), UUID: uuid})
	if terminal(head["state"].(string)) {
		t.completed = true
		delete(fw.tasks, taskID)
		return
	}
	s.sendHead(fw, t)
	s.advance(fw, t)
}

// advance makes the executor's next update once the last one is
// acknowledged: TASK_RUNNING after TASK_STARTING, then the outcome.
func (s *Server) advance(fw *framework, t *task) {
	if len(t.pending) > 0 || terminal(t.state) {
		return
	}
	switch {
	case t.state == "TASK_STARTING":
		s.enqueue(fw, t, s.executorStatus(t, "TASK_RUNNING", ""))
	case t.state == "TASK_RUNNING" && !t.held:
		o := t.outcome
		if o == nil {
			o = s.decide(t)
		}
		s.enqueue(fw, t, s.executorStatus(t, o.state, o.message))
	}
}

func (s *Server) decide(t *task) *outcome {
	o := &outcome{state: "TASK_FINISHED"}
	if s.opts.TaskOutcome != nil {
		o.state, o.exitCode, o.message = s.opts.TaskOutcome(t.LaunchedTask)
	}
	if o.message == "" {
		// The default executor's "Command " + WSTRINGIFY(status).
		o.message = fmt.Sprintf("Command exited with status %d", o.exitCode)
	}
	return o
}

// executorStatus is an update as the default executor sends it.
func (s *Server) executorStatus(t *task, state, message string) map[string]any {
	st := template("update.json")["update"].(map[string]any)["status"].(map[string]any)
	st["agent_id"] = map[string]any{"value": t.AgentID}
	st["executor_id"] = map[string]any{"value": t.ExecutorID}
	st["task_id"] = map[string]any{"value": t.TaskID}
	st["state"] = state
	st["timestamp"] = now()
	st["uuid"] = newStatusUUID()
	if message != "" {
		st["message"] = message
	}
	return st
}

// masterStatus is an update the master makes up; it has no uuid and is
// not acknowledged.
func masterStatus(taskID, agentID, state, reason, message string) map[string]any {
	st := template("update-master.json")["update"].(map[string]any)["status"].(map[string]any)
	st["agent_id"] = map[string]any{"value": agentID}
	st["task_id"] = map[string]any{"value": taskID}
	st["state"], st["reason"], st["message"], st["timestamp"] = state, reason, message, now()
	return st
}

// sendMaster delivers a master-made update, if fw listens.
func (s *Server) sendMaster(fw *framework, status map[string]any) {
	if fw.stream != nil {
		s.push(fw.stream, map[string]any{"type": "UPDATE", "update": map[string]any{"status": status}})
	}
}

// reconcile answers explicit reconciliation like Master::reconcile: the
// state of the latest update sent, or, for a task the master does not
// have, TASK_GONE (its agent is registered) or TASK_UNKNOWN.
func (s *Server) reconcile(fw *framework, ids []string) {
	if len(ids) == 0 {
		for id := range fw.tasks {
			ids = append(ids, id)
		}
	}
	for _, id := range ids {
		t := fw.tasks[id]
		if t == nil {
			state, msg := "TASK_UNKNOWN", "Reconciliation: Task is unknown"
			if !fw.partitionAware {
				state = "TASK_LOST"
			}
			s.sendMaster(fw, masterStatus(id, "", state, "REASON_RECONCILIATION", msg))
			continue
		}
		state := t.state
		if len(t.pending) > 0 {
			state = t.pending[0]["state"].(string)
		}
		st := masterStatus(id, t.AgentID, state, "REASON_RECONCILIATION", "Reconciliation: Latest task state")
		st["executor_id"] = map[string]any{"value": t.ExecutorID}
		s.sendMaster(fw, st)
	}
}

// removeFramework tears fw down: its live tasks are killed and everything
// it ran is kept as completed.
func (s *Server) removeFramework(fw *framework) {
	for id, t := range fw.tasks {
		if !terminal(t.state) {
			t.state = "TASK_KILLED"
			t.statuses = append(t.statuses, s.executorStatus(t, "TASK_KILLED", "Framework removed"))
		}
		t.pending, t.completed = nil, true
		delete(fw.tasks, id)
	}
	fw.removed = true
	if fw.stream != nil {
		fw.stream.close()
		fw.stream = nil
	}
}

// listing fills the recorded GET_TASKS entry with t.
func (t *task) listing(shape map[string]any, fw *framework) map[string]any {
	m := map[string]any{}
	for k, v := range shape {
		m[k] = v
	}
	m["agent_id"] = map[string]any{"value": t.AgentID}
	m["executor_id"] = map[string]any{"value": t.ExecutorID}
	m["framework_id"] = map[string]any{"value": fw.id}
	m["task_id"] = map[string]any{"value": t.TaskID}
	m["name"] = t.Name
	m["user"] = fw.user
	m["state"] = t.state
	for _, k := range []string{"resources", "container", "labels"} {
		if v, ok := t.launch[k]; ok {
			m[k] = v
		} else {
			delete(m, k)
		}
	}
	statuses := make([]any, len(t.statuses))
	for i, st := range t.statuses {
		statuses[i] = st
	}
	m["statuses"] = statuses
	head := t.statuses[len(t.statuses)-1]
	if len(t.pending) > 0 {
		head = t.pending[0]
	}
	m["status_update_state"], m["status_update_uuid"] = head["state"], head["uuid"]
	return m
}
