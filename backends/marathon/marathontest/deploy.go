package marathontest

import (
	"reflect"
	"strings"
)

// Mesos task states the simulation uses.
const (
	stateStaging = "TASK_STAGING"
	stateRunning = "TASK_RUNNING"
)

// maxVersions is Marathon's --zk_max_versions default: older versions are
// dropped.
const maxVersions = 50

type app struct {
	id string
	// def is the current definition, with version and versionInfo.
	def map[string]any
	// history holds every kept version's definition, oldest first.
	history []map[string]any
	tasks   []*task
}

type task struct {
	instance    string
	incarnation int
	version     string
	state       string
	stagedAt    string
	startedAt   string
	port        int
	// Health, once checked: Marathon's Health record.
	checked, alive                         bool
	failures                               int
	firstSuccess, lastSuccess, lastFailure string
	cause                                  string
}

// kinds of deployment, by what changed.
type kind int

const (
	kindNone kind = iota
	kindStart
	kindScale
	kindRestart
	kindStop
)

// actions are the deployment steps Marathon plans for each kind
// (DeploymentPlan.apply: a new app is started at 0 instances, then scaled).
var actions = map[kind][]string{
	kindStart:   {"StartApplication", "ScaleApplication"},
	kindScale:   {"ScaleApplication"},
	kindRestart: {"RestartApplication"},
	kindStop:    {"StopApplication"},
}

type deployment struct {
	id, version string
	appID       string
	kind        kind
	polls       int
	// target is the app version the deployment rolls out.
	target    string
	instances int
	// stopping are the tasks of a deleted app.
	stopping []*task
	// before is the definition before the change, for a rollback; nil
	// when the deployment created the app.
	before map[string]any
}

func (a *app) version() string { return a.def["version"].(string) }

func (a *app) hasChecks() bool {
	hc, _ := a.def["healthChecks"].([]any)
	return len(hc) > 0
}

// check returns the first health check's protocol and maxConsecutiveFailures.
func (a *app) check() (string, int) {
	protocol, _ := lookup(a.def, "healthChecks", "0", "protocol").(string)
	max, _ := lookup(a.def, "healthChecks", "0", "maxConsecutiveFailures").(float64)
	return protocol, int(max)
}

// ready says whether t serves: running, and passing its health checks if
// the app has any.
func (a *app) ready(t *task) bool {
	return t.state == stateRunning && (!a.hasChecks() || t.checked && t.alive)
}

func (s *Server) newTask(version string) *task {
	return &task{instance: uuid(1), incarnation: 1, version: version, state: stateStaging,
		stagedAt: stamp(s.now()), port: 16916 + len(s.requests)%1000}
}

// classify tells what a change from definition cur to next is.
func classify(cur, next map[string]any) kind {
	strip := func(d map[string]any, also ...string) map[string]any {
		c := clone(d)
		delete(c, "version")
		delete(c, "versionInfo")
		for _, k := range also {
			delete(c, k)
		}
		return c
	}
	switch {
	case reflect.DeepEqual(strip(cur), strip(next)):
		return kindNone
	case reflect.DeepEqual(strip(cur, "instances"), strip(next, "instances")):
		return kindScale
	}
	return kindRestart
}

// setVersion stamps a definition as GroupVersioningUtil does: a scale moves
// lastScalingAt only, a configuration change both.
func setVersion(def map[string]any, v string, config bool) {
	def["version"] = v
	vi, _ := def["versionInfo"].(map[string]any)
	if vi == nil {
		vi = map[string]any{}
	}
	vi["lastScalingAt"] = v
	if config {
		vi["lastConfigChangeAt"] = v
	}
	def["versionInfo"] = vi
}

// change makes def the app's definition and starts the deployment that
// rolls it out; before is the previous definition (nil for a new app).
// It returns nil when nothing changed.
func (s *Server) change(a *app, before, def map[string]any) *deployment {
	k := kindStart
	if before != nil {
		if k = classify(before, def); k == kindNone {
			return nil
		}
	}
	setVersion(def, s.stamp(), k != kindScale)
	a.def = def
	a.history = append(a.history, clone(def))
	if len(a.history) > maxVersions {
		a.history = a.history[len(a.history)-maxVersions:]
	}
	d := &deployment{id: uuid(4), version: a.version(), appID: a.id, kind: k, target: a.version(),
		instances: intField(def, "instances"), before: before}
	switch k {
	case kindScale:
		for len(a.tasks) > d.instances { // killSelection YOUNGEST_FIRST
			a.tasks = a.tasks[:len(a.tasks)-1]
		}
		for len(a.tasks) < d.instances {
			a.tasks = append(a.tasks, s.newTask(d.target))
		}
	default:
		for range d.instances {
			a.tasks = append(a.tasks, s.newTask(d.target))
		}
	}
	s.deployments = append(s.deployments, d)
	return d
}

// stop removes app a and starts the deployment that kills its tasks.
func (s *Server) stop(a *app) *deployment {
	delete(s.apps, a.id)
	d := &deployment{id: uuid(4), version: s.stamp(), appID: a.id, kind: kindStop, stopping: a.tasks, before: a.def}
	s.deployments = append(s.deployments, d)
	return d
}

// holding returns the deployments that lock app id.
func (s *Server) holding(id string) []*deployment {
	var ds []*deployment
	for _, d := range s.deployments {
		if d.appID == id {
			ds = append(ds, d)
		}
	}
	return ds
}

// cancel drops deployments, leaving their apps as they are.
func (s *Server) cancel(drop []*deployment) {
	kept := s.deployments[:0]
	for _, d := range s.deployments {
		if !containsDeployment(drop, d) {
			kept = append(kept, d)
		}
	}
	s.deployments = kept
}

func containsDeployment(ds []*deployment, d *deployment) bool {
	for _, x := range ds {
		if x == d {
			return true
		}
	}
	return false
}

// tick moves the world one read forward: tasks start and get checked, and
// deployments whose tasks are ready (and that have been listed long enough)
// finish.
func (s *Server) tick() {
	for _, id := range sortedKeys(s.apps) {
		a := s.apps[id]
		for _, t := range a.tasks {
			s.progress(a, t)
		}
	}
	var done []*deployment
	for _, d := range s.deployments {
		d.polls++
		if s.finished(d) {
			done = append(done, d)
		}
	}
	s.cancel(done)
}

// progress moves one task: staging → running → checked. A failing task is
// killed past maxConsecutiveFailures and relaunched as the next incarnation
// of its instance (Marathon 1.8+).
func (s *Server) progress(a *app, t *task) {
	now := stamp(s.now())
	switch {
	case t.state == stateStaging:
		t.state, t.startedAt = stateRunning, now
	case !a.hasChecks():
	case s.opts.Healthy == nil || s.opts.Healthy(a.id, t.version):
		t.checked, t.alive, t.failures, t.lastSuccess = true, true, 0, now
		if t.firstSuccess == "" {
			t.firstSuccess = now
		}
	default:
		protocol, max := a.check()
		if max > 0 && t.failures >= max {
			*t = task{instance: t.instance, incarnation: t.incarnation + 1, version: t.version,
				state: stateStaging, stagedAt: now, port: t.port}
			return
		}
		t.checked, t.alive, t.lastFailure = true, false, now
		t.failures++
		t.cause = "" // Mesos health checks report no cause
		if !strings.HasPrefix(protocol, "MESOS_") && protocol != "COMMAND" {
			t.cause = "503 Service Unavailable"
		}
	}
}

func (s *Server) finished(d *deployment) bool {
	if d.kind == kindStop {
		return d.polls >= max(s.opts.DeployPolls, 1)
	}
	a := s.apps[d.appID]
	if a == nil || d.polls < max(s.opts.DeployPolls, 2) {
		return false
	}
	ready := 0
	for _, t := range a.tasks {
		if (d.kind == kindScale || t.version == d.target) && a.ready(t) {
			ready++
		}
	}
	if ready < d.instances || d.kind == kindScale && len(a.tasks) != d.instances {
		return false
	}
	kept := a.tasks[:0]
	for _, t := range a.tasks {
		if d.kind == kindScale || t.version == d.target {
			kept = append(kept, t)
		}
	}
	a.tasks = kept
	return true
}

// currentStep is the 1-based step a deployment shows: one step per read.
func (d *deployment) currentStep() int { return max(1, min(d.polls, len(actions[d.kind]))) }

// revert is what DELETE /v2/deployments/{id} without force does: a new
// deployment that takes the app back to its definition before d.
func (s *Server) revert(d *deployment) *deployment {
	s.cancel([]*deployment{d})
	a := s.apps[d.appID]
	switch {
	case d.before == nil && a != nil:
		return s.stop(a)
	case a == nil:
		a = &app{id: d.appID}
		s.apps[d.appID] = a
		return s.change(a, nil, clone(d.before))
	}
	if r := s.change(a, a.def, clone(d.before)); r != nil {
		return r
	}
	return &deployment{id: uuid(4), version: s.stamp()}
}

// lookup walks a JSON value by object keys and array indexes ("0").
func lookup(v any, path ...string) any {
	for _, p := range path {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			i := 0
			for _, c := range p {
				i = i*10 + int(c-'0')
			}
			if i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func intField(def map[string]any, key string) int {
	switch n := def[key].(type) {
	case float64:
		return int(n)
	case int:
		return n
	}
	return 0
}

func mapField(def map[string]any, key string) map[string]any {
	m, _ := def[key].(map[string]any)
	return m
}
