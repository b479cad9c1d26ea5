package mesos

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/seed-5eb4e92e/deploybot/backends/mesos/mesostest"
)

// Tests of a run that loses its worker or its connection.

func TestRunTaskResumedByAnotherWorker(t *testing.T) {
	t.Parallel()
	srv := startMaster(t, mesostest.Options{HoldRunning: true})
	ctx, stop := context.WithCancel(testCtx(t))
	rep := newReports()
	done := runAsync(ctx, newClient(t, Config{}, srv), spec("deploybot-42-migrate"), rep)
	running := rep.waitState(t, "TASK_RUNNING")
	stop() // the worker shuts down mid-task
	if r := wait(t, done); !errors.Is(r.err, context.Canceled) || r.status.State != "TASK_RUNNING" {
		t.Fatalf("cancelled run: %+v %v", r.status, r.err)
	}
	eventually(t, "framework disconnected", func() bool { return !srv.Connected(running.FrameworkID) })
	if len(srv.Teardowns()) != 0 {
		t.Fatalf("torn down %v on shutdown; the task must survive for another worker", srv.Teardowns())
	}

	rep2 := newReports()
	done2 := runAsync(testCtx(t), newClient(t, Config{}, srv), spec("deploybot-42-migrate"), rep2)
	rep2.waitState(t, "TASK_RUNNING") // the earlier run's state, then reconciliation's
	srv.Finish("deploybot-42-migrate")
	r := wait(t, done2)
	if r.err != nil || !r.status.Succeeded() || deref(r.status.ExitCode) != 0 {
		t.Fatalf("resumed run: %+v %v", r.status, r.err)
	}
	subs := srv.Subscriptions()
	if len(srv.Launched()) != 1 || len(subs) != 2 || subs[1].RequestedID != running.FrameworkID || len(subs[1].SuppressedRoles) != 1 {
		t.Fatalf("launched %d; subscriptions %+v; want one launch and a re-subscription as %s", len(srv.Launched()), subs, running.FrameworkID)
	}
	if !slices.Contains(srv.Calls(), "RECONCILE") || !slices.Equal(srv.Teardowns(), []string{running.FrameworkID}) {
		t.Fatalf("calls %v, teardowns %v", srv.Calls(), srv.Teardowns())
	}
}

func TestRunTaskMissedHeartbeats(t *testing.T) {
	t.Parallel()
	srv := startMaster(t, mesostest.Options{HoldRunning: true, HeartbeatInterval: fastHeartbeat})
	rep := newReports()
	done := runAsync(testCtx(t), newClient(t, Config{}, srv), spec("deploybot-42-migrate"), rep)
	running := rep.waitState(t, "TASK_RUNNING")
	srv.StallStreams() // a partition: the connection stays open, nothing comes
	eventually(t, "re-subscription", func() bool { return len(srv.Subscriptions()) == 2 })
	srv.Finish("deploybot-42-migrate")
	r := wait(t, done)
	if r.err != nil || !r.status.Succeeded() {
		t.Fatalf("%+v %v", r.status, r.err)
	}
	if sub := srv.Subscriptions()[1]; sub.RequestedID != running.FrameworkID || len(srv.Launched()) != 1 {
		t.Fatalf("re-subscription %+v, %d launches", sub, len(srv.Launched()))
	}
}

func TestRunTaskCancelledLeavesTaskRunning(t *testing.T) {
	t.Parallel()
	srv := startMaster(t, mesostest.Options{HoldRunning: true})
	c := newClient(t, Config{}, srv)
	ctx, stop := context.WithCancel(testCtx(t))
	rep := newReports()
	done := runAsync(ctx, c, spec("deploybot-42-migrate"), rep)
	running := rep.waitState(t, "TASK_RUNNING")
	stop()
	r := wait(t, done)
	if !errors.Is(r.err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", r.err)
	}
	eventually(t, "connection closed", func() bool { return !srv.Connected(running.FrameworkID) })
	got, ok, err := c.Task(testCtx(t), "deploybot-42-migrate")
	if err != nil || !ok || got.State != "TASK_RUNNING" || got.FrameworkID != running.FrameworkID {
		t.Fatalf("after cancel the master has %+v %v %v; want the task still running", got, ok, err)
	}
	if slices.Contains(srv.Calls(), "TEARDOWN") {
		t.Fatalf("calls %v include TEARDOWN", srv.Calls())
	}
}

func TestRunTaskGivesUpWhenMasterIsGone(t *testing.T) {
	t.Parallel()
	srv := startMaster(t, mesostest.Options{HoldRunning: true})
	rep := newReports()
	done := runAsync(testCtx(t), newClient(t, Config{}, srv), spec("deploybot-42-migrate"), rep)
	rep.waitState(t, "TASK_RUNNING")
	srv.Close() // the stream ends and nothing answers any more
	r := wait(t, done)
	if r.err == nil || !strings.Contains(r.err.Error(), "gave up reaching the master") || r.status.State != "TASK_RUNNING" {
		t.Fatalf("%+v %v", r.status, r.err)
	}
}

// TestRunTaskFinishedWhileDisconnected: the task ends while the connection
// is down, and reconciliation, not the agent's slow retry, tells the run.
// The exit status then comes from the master's task list.
func TestRunTaskFinishedWhileDisconnected(t *testing.T) {
	t.Parallel()
	srv := startMaster(t, mesostest.Options{
		HoldRunning: true, HeartbeatInterval: fastHeartbeat, UpdateRetryDelay: time.Hour,
		TaskOutcome: func(mesostest.LaunchedTask) (string, int, string) { return "TASK_FAILED", 2, "" },
	})
	rep := newReports()
	done := runAsync(testCtx(t), newClient(t, Config{}, srv), spec("deploybot-42-migrate"), rep)
	rep.waitState(t, "TASK_RUNNING")
	srv.StallStreams()
	srv.Finish("deploybot-42-migrate")
	r := wait(t, done)
	if r.err != nil || r.status.State != "TASK_FAILED" || deref(r.status.ExitCode) != 2 || r.status.Message != "Command exited with status 2" {
		t.Fatalf("%+v %v", r.status, r.err)
	}
	if len(srv.Launched()) != 1 || len(srv.Teardowns()) != 1 || !slices.Contains(srv.Calls(), "RECONCILE") {
		t.Fatalf("launches %d, teardowns %v, calls %v", len(srv.Launched()), srv.Teardowns(), srv.Calls())
	}
}
