package mesos

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
)

// TaskSpec is a one-off task: a command in a Docker image, run once to its
// end.
type TaskSpec struct {
	// ID names the task in Mesos. The caller chooses it and keeps it stable
	// across worker restarts ("deploybot-<job id>-migrate"): it is what
	// makes RunTask idempotent. Letters, digits, '.', '_' and '-', at most
	// 255 characters — stricter than Mesos, which only forbids '/', '\' and
	// control characters, because the ID also goes into URLs.
	ID string
	// Name is shown in the Mesos web UI. Default: ID.
	Name string
	// Image is the Docker image, run by the Mesos containerizer (the
	// "unified containerizer" the Mesos docs recommend; agents need
	// --image_providers=docker and --isolation=filesystem/linux,docker/runtime).
	Image string
	// Command is run with /bin/sh -c; empty runs the image's entrypoint
	// and command.
	Command string
	// Env is added to the image's environment.
	Env map[string]string
	// CPUs and MemMB are what the task needs. Defaults 0.1 and 128.
	CPUs, MemMB float64
	// Labels are attached to the task, for people and tools reading the
	// master's state.
	Labels map[string]string
}

// The default executor runs the task and needs resources of its own on top
// of the task's; these are the minimums the Mesos docs use
// (docs/running-workloads.md) and the master enforces (cpus ≥ 0.01,
// mem ≥ 32 MB, some disk).
const (
	executorCPUs   = 0.1
	executorMemMB  = 32
	executorDiskMB = 32
)

var taskIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$`)

func (s TaskSpec) withDefaults() (TaskSpec, error) {
	if !taskIDRE.MatchString(s.ID) {
		return s, fmt.Errorf("mesos: task id %q: use 1-255 letters, digits, '.', '_' or '-', starting with a letter or digit", s.ID)
	}
	if s.Image == "" {
		return s, fmt.Errorf("mesos: task %s: no image", s.ID)
	}
	if s.CPUs < 0 || s.MemMB < 0 {
		return s, fmt.Errorf("mesos: task %s: negative resources", s.ID)
	}
	for k := range s.Env {
		if k == "" {
			return s, fmt.Errorf("mesos: task %s: empty environment variable name", s.ID)
		}
	}
	if s.Name == "" {
		s.Name = s.ID
	}
	if s.CPUs == 0 {
		s.CPUs = 0.1
	}
	if s.MemMB == 0 {
		s.MemMB = 128
	}
	return s, nil
}

// TaskStatus is the state of a task as Mesos last reported it.
type TaskStatus struct {
	TaskID string
	// State is a Mesos TaskState name, "TASK_RUNNING", "TASK_FINISHED", ….
	State string
	// Message explains the state, e.g. "Command exited with status 3".
	Message string
	// Reason is a TaskStatus.Reason name, e.g. "REASON_INVALID_OFFERS".
	Reason string
	// Source is SOURCE_MASTER, SOURCE_AGENT or SOURCE_EXECUTOR.
	Source      string
	AgentID     string
	ExecutorID  string
	FrameworkID string
	// ExitCode is the command's exit status, when Mesos reported one. The
	// v1 TaskStatus has no field for it: the executors write it into the
	// message ("Command exited with status 3"), which is where it is read
	// from; a command killed by a signal has none.
	ExitCode *int
	// Timestamp is when the status was made, in Unix seconds.
	Timestamp float64
	// UUID identifies a reliably delivered update (base64); empty for
	// updates the master made up, which are not acknowledged.
	UUID string
}

// Terminal reports whether the task has ended, with the states Mesos itself
// treats as terminal (isTerminalState in src/common/protobuf_utils.cpp).
// TASK_UNREACHABLE and TASK_UNKNOWN are not: the task may still be running.
func (s TaskStatus) Terminal() bool { return terminalState(s.State) }

func terminalState(state string) bool {
	switch state {
	case "TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_LOST", "TASK_ERROR",
		"TASK_DROPPED", "TASK_GONE", "TASK_GONE_BY_OPERATOR":
		return true
	}
	return false
}

// Succeeded reports whether the task finished on its own with exit status 0,
// which is what TASK_FINISHED means.
func (s TaskStatus) Succeeded() bool { return s.State == "TASK_FINISHED" }

// exitRE matches what the default and command executors write
// ("Command " + WSTRINGIFY(status)) and the Docker executor
// ("Container " + WSTRINGIFY(status)), src/common/status_utils.hpp.
var exitRE = regexp.MustCompile(`^(?:Command|Container) exited with status (\d{1,3})\b`)

func exitCode(message string) *int {
	m := exitRE.FindStringSubmatch(message)
	if m == nil {
		return nil
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n > 255 {
		return nil
	}
	return &n
}

// SandboxURL links to the task's sandbox in the master's web UI, or "" when
// the status does not say where the task ran. The UI route
// (src/webui/app/app.js) asks the agent for the sandbox directory and
// opens the file browser there.
func (c *Client) SandboxURL(s TaskStatus) string {
	if s.AgentID == "" || s.FrameworkID == "" || s.TaskID == "" {
		return ""
	}
	executor := s.ExecutorID
	if executor == "" {
		executor = s.TaskID // RunTask names the executor after the task
	}
	return c.base.String() + "#/agents/" + url.PathEscape(s.AgentID) +
		"/frameworks/" + url.PathEscape(s.FrameworkID) +
		"/executors/" + url.PathEscape(executor) +
		"/tasks/" + url.PathEscape(s.TaskID) + "/browse"
}

// errorEvent turns an ERROR event's message into the matching named error.
func errorEvent(msg string) error {
	switch msg {
	case msgFrameworkRemoved:
		return ErrFrameworkRemoved
	case msgFailedOver:
		return ErrFailedOver
	}
	return fmt.Errorf("%w: %s", ErrRefused, msg)
}

// permanent reports whether err ends a run rather than calling for a new
// subscription.
func permanent(err error) bool {
	if errors.Is(err, errResubscribe) {
		return false
	}
	var he *HTTPError
	if errors.As(err, &he) {
		return !he.Temporary()
	}
	return errors.Is(err, ErrNoOffers) || errors.Is(err, ErrFrameworkRemoved) ||
		errors.Is(err, ErrFailedOver) || errors.Is(err, ErrRefused) || errors.Is(err, errTaskUnknown)
}

var errTaskUnknown = errors.New("mesos: the master does not know the task (TASK_UNKNOWN)")
