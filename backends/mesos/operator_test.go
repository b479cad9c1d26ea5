package mesos

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestTaskPrefersLiveThenNewest serves the recorded GET_TASKS answer with
// the task ID also listed among completed tasks (an earlier launch that was
// dropped) and checks which one Task reports.
func TestTaskPrefersLiveThenNewest(t *testing.T) {
	t.Parallel()
	var doc map[string]any
	if err := json.Unmarshal(recorded(t, "get-tasks.json"), &doc); err != nil {
		t.Fatal(err)
	}
	g := doc["get_tasks"].(map[string]any)
	live := g["tasks"].([]any)[0].(map[string]any)
	ended := func(state string, ts float64) map[string]any {
		e := map[string]any{}
		for k, v := range live {
			e[k] = v
		}
		e["state"] = state
		e["statuses"] = []any{map[string]any{"task_id": live["task_id"], "state": state, "timestamp": ts}}
		return e
	}
	for _, tc := range []struct {
		name      string
		tasks     []any
		completed []any
		want      string
	}{
		{"live wins over ended", []any{live}, []any{ended("TASK_DROPPED", 1717430400)}, "TASK_RUNNING"},
		{"newest ended wins", nil, []any{ended("TASK_DROPPED", 1717430400), ended("TASK_FINISHED", 1717430500)}, "TASK_FINISHED"},
		{"newest ended wins in any order", nil, []any{ended("TASK_FINISHED", 1717430500), ended("TASK_DROPPED", 1717430400)}, "TASK_FINISHED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body, _ := json.Marshal(map[string]any{"type": "GET_TASKS", "get_tasks": map[string]any{"tasks": tc.tasks, "completed_tasks": tc.completed}})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/api/v1" || r.Header.Get("Content-Type") != "application/json" {
					http.Error(w, "unexpected request", http.StatusBadRequest)
					return
				}
				_, _ = w.Write(body)
			}))
			defer srv.Close()
			c, err := New(Config{URL: srv.URL}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, ok, err := c.Task(testCtx(t), "deploybot-42-migrate")
			if err != nil || !ok || got.State != tc.want {
				t.Fatalf("%+v %v %v, want %s", got, ok, err, tc.want)
			}
			if _, ok, err := c.Task(testCtx(t), "deploybot-43-migrate"); ok || err != nil {
				t.Fatalf("unknown task found: %v %v", ok, err)
			}
		})
	}
}

func TestLostSubscription(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status int
		body   string
		lost   bool
	}{
		{403, "Framework is not subscribed", true},
		{400, "Framework cannot be found", true},
		{400, "The stream ID 'x' included in this request didn't match the stream ID currently associated with framework ID f", true},
		{503, "No leader elected", true},
		{400, "Failed to validate scheduler::Call: Expecting 'accept' to be present", false},
		{415, "Expecting 'Content-Type' of application/json or application/x-protobuf", false},
	} {
		if got := lostSubscription(&HTTPError{Status: tc.status, Body: tc.body}); got != tc.lost {
			t.Errorf("%d %q: lost %v, want %v", tc.status, tc.body, got, tc.lost)
		}
	}
}
