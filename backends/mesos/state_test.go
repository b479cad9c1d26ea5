package mesos

import (
	"encoding/json"
	"math"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/seed-5eb4e92e/deploybot/backends/mesos/mesostest"
)

// TestRecordedGetState decodes the recorded GET_STATE answer: Mesos's own
// sample, so the client's types are checked against Mesos, not only
// against the double.
func TestRecordedGetState(t *testing.T) {
	t.Parallel()
	var out getState
	if err := json.Unmarshal(recorded(t, "get-state.json"), &out); err != nil {
		t.Fatal(err)
	}
	st := out.state()
	wantFrameworks := []Framework{
		{ID: "628984d0-4213-4140-bcb0-99d7ef46b1df-0000", Name: "deploybot", Active: true},
		{ID: "628984d0-4213-4140-bcb0-99d7ef46b1df-0001", Name: "default", Active: true},
	}
	if !reflect.DeepEqual(st.Frameworks, wantFrameworks) || st.Agents != 1 || len(st.Tasks) != 2 {
		t.Fatalf("state %+v", st)
	}
	running := Task{
		ID: "deploybot-42-migrate", Name: "migrate api", FrameworkID: "628984d0-4213-4140-bcb0-99d7ef46b1df-0000",
		AgentID: "628984d0-4213-4140-bcb0-99d7ef46b1df-S0", State: "TASK_RUNNING",
		Labels: map[string]string{"DEPLOYBOT_ENV": "staging", "DEPLOYBOT_JOB": "42", "DEPLOYBOT_SERVICE": "api",
			"DEPLOYBOT_TASK": "migrate", "DEPLOYBOT_USER": "U0ANN"},
		Updated: time.Date(2024, 6, 3, 16, 0, 2, 73150000, time.UTC),
	}
	if !reflect.DeepEqual(st.Tasks[0], running) || running.Terminal() {
		t.Errorf("running task:\n got %+v\nwant %+v", st.Tasks[0], running)
	}
	done := st.Tasks[1]
	if done.ID != "eb5cb680-a998-4605-8811-e79db8734c02" || !done.Terminal() || done.Labels != nil ||
		!done.Updated.Equal(time.Unix(1470820172, 93820000)) {
		t.Errorf("completed task: %+v", done)
	}
}

// TestTimestampForms: a TaskStatus timestamp is a double, which Mesos
// writes as a number and proto3's JSON mapping allows as a string.
func TestTimestampForms(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, timestamp string
		want            time.Time
		bad             bool
	}{
		{"number", `1717430402.07315`, time.Unix(1717430402, 73150000), false},
		{"exponent", `1.7174304e9`, time.Unix(1717430400, 0), false},
		{"string", `"1717430402.07315"`, time.Unix(1717430402, 73150000), false},
		{"integer string", `"1717430402"`, time.Unix(1717430402, 0), false},
		{"NaN", `"NaN"`, time.Time{}, false},
		{"Infinity", `"Infinity"`, time.Time{}, false},
		{"null", `null`, time.Time{}, false},
		{"zero", `0`, time.Time{}, false},
		{"not a number", `"soon"`, time.Time{}, true},
		{"bool", `true`, time.Time{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			raw := `{"type":"GET_STATE","get_state":{"get_tasks":{"tasks":[{"task_id":{"value":"t"},"state":"TASK_RUNNING",` +
				`"statuses":[{"state":"TASK_RUNNING","timestamp":` + tc.timestamp + `}]}]}}}`
			var out getState
			err := json.Unmarshal([]byte(raw), &out)
			if (err != nil) != tc.bad {
				t.Fatalf("error %v, want bad=%v", err, tc.bad)
			}
			if tc.bad {
				return
			}
			if got := out.state().Tasks[0].Updated; !got.Equal(tc.want) {
				t.Errorf("updated %v, want %v", got, tc.want)
			}
		})
	}
	if got := unixTime(math.MaxFloat64); !got.IsZero() {
		t.Errorf("a timestamp beyond time.Time: %v", got)
	}
}

// TestStateFromMaster asks the simulated master, directly and through a
// non-leading master's 307, while a task runs and after it ended.
func TestStateFromMaster(t *testing.T) {
	t.Parallel()
	leader := startMaster(t, mesostest.Options{HoldRunning: true, Principal: "deploybot", Secret: "s3cret"})
	standby := startMaster(t, mesostest.Options{Leader: leader, Principal: "deploybot", Secret: "s3cret"})
	direct := newClient(t, Config{Principal: "deploybot", Secret: "s3cret"}, leader)
	redirected := newClient(t, Config{Principal: "deploybot", Secret: "s3cret"}, standby)
	rep := newReports()
	run := runAsync(testCtx(t), direct, spec("deploybot-42-migrate"), rep)
	rep.waitState(t, "TASK_RUNNING")
	for name, c := range map[string]*Client{"leader": direct, "standby": redirected} {
		st, err := c.State(testCtx(t))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		task, ok := findTask(st, "deploybot-42-migrate")
		if !ok || task.State != "TASK_RUNNING" || task.Terminal() || task.Labels["deploybot.job"] != "42" ||
			task.Name != "migrate api" || task.AgentID != leader.AgentIDs()[0] || task.Updated.IsZero() {
			t.Errorf("%s: running task %+v (found %v)", name, task, ok)
		}
		if st.Agents != 1 || !hasFramework(st, task.FrameworkID, "deploybot", true) {
			t.Errorf("%s: agents %d, frameworks %+v", name, st.Agents, st.Frameworks)
		}
	}
	if len(standby.Calls()) != 0 {
		t.Errorf("the standby answered calls itself: %v", standby.Calls())
	}
	leader.Finish("deploybot-42-migrate")
	if r := wait(t, run); r.err != nil || !r.status.Succeeded() {
		t.Fatalf("run: %+v %v", r.status, r.err)
	}
	st, err := redirected.State(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if task, ok := findTask(st, "deploybot-42-migrate"); !ok || task.State != "TASK_FINISHED" || !task.Terminal() {
		t.Errorf("finished task %+v (found %v)", task, ok)
	}
}

func findTask(st State, id string) (Task, bool) {
	for _, t := range st.Tasks {
		if t.ID == id {
			return t, true
		}
	}
	return Task{}, false
}

func hasFramework(st State, id, name string, active bool) bool {
	for _, f := range st.Frameworks {
		if f.ID == id {
			return f.Name == name && f.Active == active
		}
	}
	return false
}

// FuzzGetState feeds arbitrary answers to the GET_STATE decoder.
func FuzzGetState(f *testing.F) {
	raw, err := os.ReadFile("mesostest/testdata/get-state.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Add([]byte(`{"get_state":{"get_tasks":{"tasks":[{"statuses":[{"timestamp":"-Infinity"},{"timestamp":1e300}]}]}}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var out getState
		if err := json.Unmarshal(raw, &out); err != nil {
			return
		}
		for _, task := range out.state().Tasks {
			if !task.Updated.IsZero() && task.Updated.Unix() <= 0 {
				t.Fatalf("task %s updated at %v", task.ID, task.Updated)
			}
		}
	})
}
