package mesostest

import "encoding/json"

// getState fills the recorded GET_STATE answer with the master's state:
// its tasks (as GET_TASKS lists them; none is unreachable, the double has
// no partitions), the executors of its live tasks, its frameworks next to
// the recorded other one (torn-down ones under completed_frameworks), and
// its agents. Like the master's jsonifyGetState, it writes every list,
// empty or not.
func (s *Server) getState() map[string]any {
	m := template("get-state.json")
	gs := m["get_state"].(map[string]any)
	s.stateTasks(gs["get_tasks"].(map[string]any))
	s.stateExecutors(gs["get_executors"].(map[string]any))
	s.stateFrameworks(gs["get_frameworks"].(map[string]any))
	s.stateAgents(gs["get_agents"].(map[string]any))
	return m
}

func (s *Server) stateTasks(g map[string]any) {
	shape := g["tasks"].([]any)[0].(map[string]any)
	completed := g["completed_tasks"].([]any)
	active := []any{}
	for _, fw := range s.sortedFrameworks() {
		for _, t := range fw.order {
			if entry := t.listing(shape, fw); t.completed {
				completed = append(completed, entry)
			} else {
				active = append(active, entry)
			}
		}
	}
	g["tasks"], g["unreachable_tasks"], g["completed_tasks"] = active, []any{}, completed
}

func (s *Server) stateExecutors(g map[string]any) {
	shape := g["executors"].([]any)[0].(map[string]any)
	list := []any{}
	for _, fw := range s.sortedFrameworks() {
		for _, t := range fw.order {
			if t.completed {
				continue
			}
			e := deepCopy(shape)
			e["agent_id"] = map[string]any{"value": t.AgentID}
			info := e["executor_info"].(map[string]any)
			info["type"] = t.ExecutorType
			info["executor_id"] = map[string]any{"value": t.ExecutorID}
			info["framework_id"] = map[string]any{"value": fw.id}
			setScalars(info["resources"].([]any), map[string]float64{"cpus": t.ExecutorCPUs, "mem": t.ExecutorMemMB, "disk": t.ExecutorDiskMB})
			list = append(list, e)
		}
	}
	g["executors"] = list
}

// stateFrameworks lists the master's frameworks in the shape of the
// recorded deploybot framework, and keeps the recorded other framework,
// whose completed task stays in get_tasks.
func (s *Server) stateFrameworks(g map[string]any) {
	recorded := g["frameworks"].([]any)
	shape := recorded[0].(map[string]any)
	registered, completed := []any{}, []any{}
	for _, fw := range s.sortedFrameworks() {
		e := deepCopy(shape)
		info := e["framework_info"].(map[string]any)
		info["id"] = map[string]any{"value": fw.id}
		info["name"], info["user"] = fw.name, fw.user
		e["active"], e["connected"] = fw.stream != nil, fw.stream != nil
		if fw.removed {
			completed = append(completed, e)
		} else {
			registered = append(registered, e)
		}
	}
	g["frameworks"] = append(registered, recorded[1:]...)
	g["completed_frameworks"] = completed
}

func (s *Server) stateAgents(g map[string]any) {
	shape := g["agents"].([]any)[0].(map[string]any)
	list := []any{}
	for _, a := range s.agents {
		e := deepCopy(shape)
		info := e["agent_info"].(map[string]any)
		info["id"] = map[string]any{"value": a.ID}
		info["hostname"] = a.Hostname
		amounts := map[string]float64{"cpus": a.CPUs, "mem": a.MemMB, "disk": a.DiskMB}
		setScalars(info["resources"].([]any), amounts)
		setScalars(e["total_resources"].([]any), amounts)
		list = append(list, e)
	}
	g["agents"] = list
}

// setScalars sets the amounts of the named scalar resources in list.
func setScalars(list []any, amounts map[string]float64) {
	for _, r := range list {
		rm := r.(map[string]any)
		if v, ok := amounts[rm["name"].(string)]; ok {
			rm["scalar"] = map[string]any{"value": v}
		}
	}
}

// deepCopy copies a decoded JSON object, so entries built from one shape
// share nothing.
func deepCopy(m map[string]any) map[string]any {
	raw, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		panic(err)
	}
	return out
}
