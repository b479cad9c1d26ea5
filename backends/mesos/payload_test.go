package mesos

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
)

func recorded(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile("mesostest/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestRecordedEvents decodes the events recorded from Mesos directly, so
// the client's types are checked against Mesos, not only against the
// double.
func TestRecordedEvents(t *testing.T) {
	t.Parallel()
	ev := decodeRecorded(t, "subscribed.json")
	if ev.Subscribed == nil || ev.Subscribed.FrameworkID.Value != "628984d0-4213-4140-bcb0-99d7ef46b1df-0000" || ev.Subscribed.HeartbeatIntervalSeconds != 15 {
		t.Errorf("subscribed: %+v", ev.Subscribed)
	}
	ev = decodeRecorded(t, "offers.json")
	if len(ev.Offers) != 1 || ev.Offers[0].Hostname != "agent-1.example.com" || len(ev.Offers[0].Resources) != 4 {
		t.Fatalf("offers: %+v", ev.Offers)
	}
	if got := usable(ev.Offers[0].Resources).total(); got != (amounts{cpus: 2, mem: 1024, disk: 1024}) {
		t.Errorf("usable resources %+v (ports must be left out)", got)
	}
	if ev = decodeRecorded(t, "rescind.json"); ev.Rescind == nil || ev.Rescind.OfferID.Value != "628984d0-4213-4140-bcb0-99d7ef46b1df-O1" {
		t.Errorf("rescind: %+v", ev.Rescind)
	}
	if ev = decodeRecorded(t, "error.json"); errorEvent(ev.errorMessage()) != ErrFrameworkRemoved {
		t.Errorf("error: %q", ev.errorMessage())
	}
	if ev = decodeRecorded(t, "failure.json"); ev.Failure == nil || ev.Failure.Status == nil || *ev.Failure.Status != 256 {
		t.Errorf("failure: %+v", ev.Failure)
	}
	if ev = decodeRecorded(t, "heartbeat.json"); ev.Type != "HEARTBEAT" {
		t.Errorf("heartbeat: %q", ev.Type)
	}
	for _, tc := range []struct {
		file, state, source, uuid string
		exit                      *int
	}{
		{"update.json", "TASK_RUNNING", "SOURCE_EXECUTOR", "hTaLQ0b5Q1OZuab7QclTKQ==", nil},
		{"update-failed.json", "TASK_FAILED", "SOURCE_EXECUTOR", "IWjmPnfgQCWxGVlNNwctcg==", ptr(3)},
		{"update-master.json", "TASK_DROPPED", "SOURCE_MASTER", "", nil},
	} {
		ev := decodeRecorded(t, tc.file)
		s := ev.Update.Status.status("fw")
		if s.State != tc.state || s.Source != tc.source || s.UUID != tc.uuid || !sameInt(s.ExitCode, tc.exit) ||
			s.TaskID != "deploybot-42-migrate" || s.AgentID != "628984d0-4213-4140-bcb0-99d7ef46b1df-S0" || s.Timestamp < 1.7e9 {
			t.Errorf("%s: %+v", tc.file, s)
		}
	}
}

func decodeRecorded(t *testing.T, name string) event {
	t.Helper()
	ev, err := decodeEvent(recorded(t, name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return ev
}

func TestDocumentedShapesAccepted(t *testing.T) {
	t.Parallel()
	// The HTTP API doc shows OFFERS with a bare array and ERROR with a
	// top-level message; scheduler.proto nests both. Either is read.
	ev, err := decodeEvent([]byte(`{"type":"OFFERS","offers":[{"id":{"value":"o1"},"hostname":"h"}]}`))
	if err != nil || len(ev.Offers) != 1 || ev.Offers[0].ID.Value != "o1" {
		t.Errorf("bare offers: %+v %v", ev.Offers, err)
	}
	ev, err = decodeEvent([]byte(`{"type":"ERROR","message":"Framework is not authorized"}`))
	if err != nil || ev.errorMessage() != "Framework is not authorized" {
		t.Errorf("flat error: %q %v", ev.errorMessage(), err)
	}
	if _, err := decodeEvent([]byte(`{"offers":{}}`)); err == nil {
		t.Error("an event without a type was accepted")
	}
}

func TestRecordedGetTasks(t *testing.T) {
	t.Parallel()
	var out getTasks
	if err := json.Unmarshal(recorded(t, "get-tasks.json"), &out); err != nil {
		t.Fatal(err)
	}
	running := out.GetTasks.Tasks[0].latest()
	if running.State != "TASK_RUNNING" || running.UUID != "" || running.ExecutorID != "deploybot-42-migrate" ||
		running.FrameworkID != "628984d0-4213-4140-bcb0-99d7ef46b1df-0000" || running.Timestamp != 1717430402.07315 {
		t.Errorf("running task: %+v", running)
	}
	done := out.GetTasks.CompletedTasks[0].latest()
	if !done.Succeeded() || deref(done.ExitCode) != 0 || done.TaskID != "eb5cb680-a998-4605-8811-e79db8734c02" {
		t.Errorf("completed task: %+v", done)
	}
}

func TestTerminalStates(t *testing.T) {
	t.Parallel()
	for state, want := range map[string]bool{
		"TASK_STAGING": false, "TASK_STARTING": false, "TASK_RUNNING": false, "TASK_KILLING": false,
		"TASK_UNREACHABLE": false, "TASK_UNKNOWN": false,
		"TASK_FINISHED": true, "TASK_FAILED": true, "TASK_KILLED": true, "TASK_ERROR": true, "TASK_LOST": true,
		"TASK_DROPPED": true, "TASK_GONE": true, "TASK_GONE_BY_OPERATOR": true,
	} {
		s := TaskStatus{State: state}
		if s.Terminal() != want || s.Succeeded() != (state == "TASK_FINISHED") {
			t.Errorf("%s: terminal %v succeeded %v", state, s.Terminal(), s.Succeeded())
		}
	}
}

func TestExitCode(t *testing.T) {
	t.Parallel()
	for msg, want := range map[string]*int{
		"Command exited with status 0":                                    ptr(0),
		"Command exited with status 3":                                    ptr(3),
		"Container exited with status 42":                                 ptr(42),
		"Command exited with status 137: Memory limit exceeded":           ptr(137),
		"Command terminated with signal Killed":                           nil,
		"Command terminated with signal Segmentation fault (core dumped)": nil,
		"Failed to get exit status for Command":                           nil,
		"Command exited with status 999":                                  nil,
		"Reconciliation: Latest task state":                               nil,
		"":                                                                nil,
	} {
		if got := exitCode(msg); !sameInt(got, want) {
			t.Errorf("%q: %v, want %v", msg, deref(got), deref(want))
		}
	}
}

func TestTaskSpecValidation(t *testing.T) {
	t.Parallel()
	ok := spec("deploybot-42-migrate")
	for _, tc := range []struct {
		name string
		edit func(*TaskSpec)
		bad  bool
	}{
		{name: "valid", edit: func(*TaskSpec) {}},
		{name: "dots and underscores", edit: func(s *TaskSpec) { s.ID = "deploybot.42_migrate-v2" }},
		{name: "255 characters", edit: func(s *TaskSpec) { s.ID = strings.Repeat("a", 255) }},
		{name: "256 characters", edit: func(s *TaskSpec) { s.ID = strings.Repeat("a", 256) }, bad: true},
		{name: "empty id", edit: func(s *TaskSpec) { s.ID = "" }, bad: true},
		{name: "dot dot", edit: func(s *TaskSpec) { s.ID = ".." }, bad: true},
		{name: "slash", edit: func(s *TaskSpec) { s.ID = "a/b" }, bad: true},
		{name: "space", edit: func(s *TaskSpec) { s.ID = "a b" }, bad: true},
		{name: "url syntax", edit: func(s *TaskSpec) { s.ID = "a#b?c" }, bad: true},
		{name: "no image", edit: func(s *TaskSpec) { s.Image = "" }, bad: true},
		{name: "negative cpus", edit: func(s *TaskSpec) { s.CPUs = -1 }, bad: true},
		{name: "empty env name", edit: func(s *TaskSpec) { s.Env = map[string]string{"": "x"} }, bad: true},
	} {
		s := ok
		tc.edit(&s)
		if _, err := s.withDefaults(); (err != nil) != tc.bad {
			t.Errorf("%s: error %v, want bad=%v", tc.name, err, tc.bad)
		}
	}
	d, _ := TaskSpec{ID: "x", Image: "i"}.withDefaults()
	if d.Name != "x" || d.CPUs != 0.1 || d.MemMB != 128 {
		t.Errorf("defaults %+v", d)
	}
}

func TestSandboxURL(t *testing.T) {
	t.Parallel()
	c, err := New(Config{URL: "https://mesos.example.com:5050/mesos"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := TaskStatus{TaskID: "deploybot-42-migrate", AgentID: "a1-S0", FrameworkID: "f1-0000"}
	want := "https://mesos.example.com:5050/mesos/#/agents/a1-S0/frameworks/f1-0000/executors/deploybot-42-migrate/tasks/deploybot-42-migrate/browse"
	if got := c.SandboxURL(s); got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
	s.ExecutorID = "other executor"
	if got := c.SandboxURL(s); !strings.Contains(got, "/executors/other%20executor/") {
		t.Errorf("executor not escaped: %s", got)
	}
	if got := c.SandboxURL(TaskStatus{TaskID: "t", State: "TASK_DROPPED"}); got != "" {
		t.Errorf("sandbox for a task that never ran: %s", got)
	}
}

func TestNewChecksConfig(t *testing.T) {
	t.Parallel()
	for _, cfg := range []Config{
		{URL: ""}, {URL: "mesos:5050"}, {URL: "ftp://mesos/"}, {URL: "http://user:pw@mesos:5050/"},
		{URL: "http://mesos:5050/", Secret: "s"}, {URL: "http://[::1"},
	} {
		if _, err := New(cfg, nil, nil); err == nil {
			t.Errorf("%+v accepted", cfg)
		} else if strings.Contains(err.Error(), "pw") {
			t.Errorf("error shows the password: %v", err)
		}
	}
	c, err := New(Config{URL: "http://mesos:5050"}, &http.Client{Timeout: 3e9}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.cfg.Role != "*" || c.cfg.User != "root" || c.cfg.FrameworkName != "deploybot" || c.cfg.FailoverTimeout.Hours() != 1 ||
		c.hc.Timeout != 3e9 || c.stream.Timeout != 0 || c.base.String() != "http://mesos:5050/" {
		t.Errorf("defaults: %+v, call timeout %v, stream timeout %v", c.cfg, c.hc.Timeout, c.stream.Timeout)
	}
}

func TestHTTPErrorTemporary(t *testing.T) {
	t.Parallel()
	for status, want := range map[int]bool{400: false, 401: false, 403: false, 415: false, 429: true, 500: true, 503: true} {
		e := &HTTPError{Method: "POST", Path: "/api/v1", Status: status, Body: "No leader elected"}
		if e.Temporary() != want || !strings.Contains(e.Error(), "No leader elected") {
			t.Errorf("%d: temporary %v, text %q", status, e.Temporary(), e.Error())
		}
	}
	if got := excerpt(bytes.Repeat([]byte("a \n"), 400)); len(got) > 510 || strings.Contains(got, "\n") {
		t.Errorf("excerpt %q", got)
	}
}
