package mesos

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/seed-5eb4e92e/deploybot/backends/mesos/mesostest"
)

func TestRunTaskOutcomes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		outcome   func(mesostest.LaunchedTask) (string, int, string)
		state     string
		exit      *int
		succeeded bool
	}{
		{name: "finished", state: "TASK_FINISHED", exit: ptr(0), succeeded: true},
		{
			name:    "exit 3",
			outcome: func(mesostest.LaunchedTask) (string, int, string) { return "TASK_FAILED", 3, "" },
			state:   "TASK_FAILED", exit: ptr(3),
		},
		{
			name: "killed by a signal",
			outcome: func(mesostest.LaunchedTask) (string, int, string) {
				return "TASK_FAILED", 0, "Command terminated with signal Killed"
			},
			state: "TASK_FAILED",
		},
		{
			name: "memory limit",
			outcome: func(mesostest.LaunchedTask) (string, int, string) {
				return "TASK_FAILED", 0, "Command exited with status 137: Memory limit exceeded"
			},
			state: "TASK_FAILED", exit: ptr(137),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := startMaster(t, mesostest.Options{TaskOutcome: tc.outcome})
			c := newClient(t, Config{}, srv)
			rep := newReports()
			st, err := c.RunTask(testCtx(t), spec("deploybot-42-migrate"), rep.add)
			if err != nil {
				t.Fatal(err)
			}
			if st.State != tc.state || st.Succeeded() != tc.succeeded || !st.Terminal() {
				t.Fatalf("status %+v, want %s", st, tc.state)
			}
			if !sameInt(st.ExitCode, tc.exit) {
				t.Fatalf("exit code %v, want %v (message %q)", deref(st.ExitCode), deref(tc.exit), st.Message)
			}
			want := []string{"TASK_STARTING", "TASK_RUNNING", tc.state}
			if got := rep.list(); !slices.Equal(got, want) {
				t.Fatalf("reports %v, want %v", got, want)
			}
			checkCleanRun(t, srv, st)
		})
	}
}

// checkCleanRun checks what every successful run leaves: one launch, every
// update acknowledged, the framework torn down.
func checkCleanRun(t *testing.T, srv *mesostest.Server, st TaskStatus) {
	t.Helper()
	launched := srv.Launched()
	if len(launched) != 1 {
		t.Fatalf("%d launches, want 1", len(launched))
	}
	var acked []string
	for _, a := range srv.Acks() {
		acked = append(acked, a.State)
	}
	if want := []string{"TASK_STARTING", "TASK_RUNNING", st.State}; !slices.Equal(acked, want) {
		t.Fatalf("acknowledged %v, want %v", acked, want)
	}
	if td := srv.Teardowns(); len(td) != 1 || td[0] != st.FrameworkID {
		t.Fatalf("teardowns %v, want [%s]", td, st.FrameworkID)
	}
}

func TestRunTaskLaunchesWhatWasAsked(t *testing.T) {
	t.Parallel()
	srv := startMaster(t, mesostest.Options{})
	c := newClient(t, Config{}, srv)
	st, err := c.RunTask(testCtx(t), spec("deploybot-42-migrate"), nil)
	if err != nil {
		t.Fatal(err)
	}
	lt := srv.Launched()[0]
	switch {
	case lt.TaskID != "deploybot-42-migrate" || lt.Name != "migrate api" || lt.ExecutorID != lt.TaskID || lt.ExecutorType != "DEFAULT":
		t.Errorf("ids %+v", lt)
	case lt.ContainerType != "MESOS" || lt.Image != "registry.example.com/api:1.4.2":
		t.Errorf("container %q image %q", lt.ContainerType, lt.Image)
	case !lt.Shell || lt.Command != "bin/migrate up" || lt.Env["DATABASE_URL"] != "postgres://db.example.com/api":
		t.Errorf("command %v %q %v", lt.Shell, lt.Command, lt.Env)
	case lt.CPUs != 0.5 || lt.MemMB != 256 || lt.ExecutorCPUs != 0.1 || lt.ExecutorMemMB != 32 || lt.ExecutorDiskMB != 32:
		t.Errorf("resources %+v", lt)
	case lt.Labels["deploybot.job"] != "42":
		t.Errorf("labels %v", lt.Labels)
	}
	subs := srv.Subscriptions()
	if len(subs) != 1 || subs[0].RequestedID != "" || subs[0].User != "root" || subs[0].Name != "deploybot" ||
		subs[0].FailoverTimeout != 3600 || !subs[0].Checkpoint || !slices.Equal(subs[0].Roles, []string{"*"}) ||
		!slices.Equal(subs[0].Capabilities, []string{"MULTI_ROLE", "PARTITION_AWARE"}) {
		t.Errorf("subscription %+v", subs)
	}
	want := c.base.String() + "#/agents/" + lt.AgentID + "/frameworks/" + st.FrameworkID +
		"/executors/deploybot-42-migrate/tasks/deploybot-42-migrate/browse"
	if got := c.SandboxURL(st); got != want || st.AgentID != lt.AgentID {
		t.Errorf("sandbox %q, want %q", got, want)
	}
}

func TestRunTaskImageEntrypoint(t *testing.T) {
	t.Parallel()
	srv := startMaster(t, mesostest.Options{})
	c := newClient(t, Config{Role: "migrations", User: "deploy", FrameworkName: "deploybot-staging"}, srv)
	s := spec("deploybot-7-migrate")
	s.Command = ""
	st, err := c.RunTask(testCtx(t), s, nil)
	if err != nil || !st.Succeeded() {
		t.Fatalf("%+v %v", st, err)
	}
	if lt := srv.Launched()[0]; lt.Shell || lt.Command != "" {
		t.Fatalf("empty command sent as shell=%v %q; the image's entrypoint needs shell=false", lt.Shell, lt.Command)
	}
	if sub := srv.Subscriptions()[0]; sub.User != "deploy" || sub.Name != "deploybot-staging" || sub.Roles[0] != "migrations" {
		t.Fatalf("subscription %+v", sub)
	}
}

func TestRunTaskRescindedOffer(t *testing.T) {
	t.Parallel()
	srv := startMaster(t, mesostest.Options{RescindFirstOffer: true})
	c := newClient(t, Config{}, srv)
	rep := newReports()
	st, err := c.RunTask(testCtx(t), spec("deploybot-42-migrate"), rep.add)
	if err != nil || !st.Succeeded() {
		t.Fatalf("%+v %v", st, err)
	}
	// The ACCEPT of the rescinded offer reached the master after the
	// RESCIND: TASK_DROPPED, then a launch on the next offer.
	if got, want := rep.list(), []string{"TASK_DROPPED", "TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"}; !slices.Equal(got, want) {
		t.Fatalf("reports %v, want %v", got, want)
	}
	if srv.Accepts() != 2 || len(srv.Launched()) != 1 {
		t.Fatalf("%d accepts, %d launches; want 2 and 1", srv.Accepts(), len(srv.Launched()))
	}
}

func TestRunTaskFollowsRedirectToLeader(t *testing.T) {
	t.Parallel()
	leader := startMaster(t, mesostest.Options{Principal: "deploybot", Secret: "s3cret"})
	standby := startMaster(t, mesostest.Options{Leader: leader, Principal: "deploybot", Secret: "s3cret"})
	c := newClient(t, Config{Principal: "deploybot", Secret: "s3cret"}, standby)
	st, err := c.RunTask(testCtx(t), spec("deploybot-42-migrate"), nil)
	if err != nil || !st.Succeeded() {
		t.Fatalf("%+v %v", st, err)
	}
	if len(leader.Launched()) != 1 || len(standby.Calls()) != 0 {
		t.Fatalf("leader launched %d, standby saw calls %v", len(leader.Launched()), standby.Calls())
	}
	if p := leader.Subscriptions()[0].Principal; p != "deploybot" {
		t.Fatalf("framework principal %q", p)
	}
	got, ok, err := c.Task(testCtx(t), "deploybot-42-migrate")
	if err != nil || !ok || got.State != "TASK_FINISHED" {
		t.Fatalf("Task via standby: %+v %v %v", got, ok, err)
	}
}

func TestRunTaskAlreadyFinished(t *testing.T) {
	t.Parallel()
	srv := startMaster(t, mesostest.Options{
		TaskOutcome: func(mesostest.LaunchedTask) (string, int, string) { return "TASK_FAILED", 3, "" },
	})
	first, err := newClient(t, Config{}, srv).RunTask(testCtx(t), spec("deploybot-42-migrate"), nil)
	if err != nil {
		t.Fatal(err)
	}
	rep := newReports()
	again, err := newClient(t, Config{}, srv).RunTask(testCtx(t), spec("deploybot-42-migrate"), rep.add)
	if err != nil {
		t.Fatal(err)
	}
	if again.State != "TASK_FAILED" || deref(again.ExitCode) != 3 || again.FrameworkID != first.FrameworkID || again.AgentID != first.AgentID {
		t.Fatalf("second run %+v, first %+v", again, first)
	}
	if len(srv.Launched()) != 1 || len(srv.Subscriptions()) != 1 || len(rep.list()) != 0 {
		t.Fatalf("launched %d, subscribed %d, reports %v; want the earlier result only",
			len(srv.Launched()), len(srv.Subscriptions()), rep.list())
	}
}

func TestRunTaskErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		opts    mesostest.Options
		cfg     Config
		midTask string // an ERROR sent while the task runs
		want    error
		text    string
	}{
		{name: "refused", opts: mesostest.Options{SubscribeError: "Framework is not authorized"}, want: ErrRefused, text: "not authorized"},
		{name: "failed over", opts: mesostest.Options{HoldRunning: true}, midTask: "Framework failed over", want: ErrFailedOver},
		{name: "other error", opts: mesostest.Options{HoldRunning: true}, midTask: "Rate limit exceeded", want: ErrRefused, text: "Rate limit exceeded"},
		{
			name: "no offer fits", opts: mesostest.Options{Agents: []mesostest.Agent{{Hostname: "small.example.com", CPUs: 0.2, MemMB: 512, DiskMB: 0}}},
			cfg: Config{OfferTimeout: 200e6}, want: ErrNoOffers, text: "small.example.com",
		},
		{name: "wrong secret", opts: mesostest.Options{Principal: "deploybot", Secret: "right"}, cfg: Config{Principal: "deploybot", Secret: "wrong"}, text: "401"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := startMaster(t, tc.opts)
			rep := newReports()
			done := runAsync(testCtx(t), newClient(t, tc.cfg, srv), spec("deploybot-42-migrate"), rep)
			if tc.midTask != "" {
				running := rep.waitState(t, "TASK_RUNNING")
				srv.SendError(running.FrameworkID, tc.midTask)
			}
			r := wait(t, done)
			if tc.want != nil && !errors.Is(r.err, tc.want) || r.err == nil || !strings.Contains(r.err.Error(), tc.text) {
				t.Fatalf("error %v, want %v containing %q", r.err, tc.want, tc.text)
			}
			if td := srv.Teardowns(); len(td) != 0 && !errors.Is(r.err, ErrNoOffers) {
				t.Fatalf("teardown after an error: %v", td)
			}
		})
	}
}

func TestNoOffersSaysWhatIsMissing(t *testing.T) {
	t.Parallel()
	srv := startMaster(t, mesostest.Options{Agents: []mesostest.Agent{{Hostname: "small.example.com", CPUs: 0.2, MemMB: 512, DiskMB: 0}}})
	_, err := newClient(t, Config{OfferTimeout: 200e6}, srv).RunTask(testCtx(t), spec("deploybot-42-migrate"), nil)
	for _, want := range []string{"cpus 0.2 of 0.6 needed", "disk 0 of 32 needed"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("error %v does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "mem") {
		t.Fatalf("error %v blames memory, which was enough", err)
	}
	if d := srv.Declines(); len(d) == 0 || d[0].RefuseSeconds != refuseShort || len(srv.Launched()) != 0 {
		t.Fatalf("declines %+v, launches %d", d, len(srv.Launched()))
	}
	if len(srv.Teardowns()) != 1 {
		t.Fatalf("teardowns %v: a framework that launched nothing should go", srv.Teardowns())
	}
}

func ptr(n int) *int { return &n }

func deref(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

func sameInt(a, b *int) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }

func TestRunTaskPicksAnOfferThatFits(t *testing.T) {
	t.Parallel()
	srv := startMaster(t, mesostest.Options{Agents: []mesostest.Agent{
		{Hostname: "small.example.com", CPUs: 0.5, MemMB: 4096, DiskMB: 4096},
		{Hostname: "big.example.com", CPUs: 8, MemMB: 16384, DiskMB: 4096},
	}})
	c := newClient(t, Config{}, srv)
	st, err := c.RunTask(testCtx(t), spec("deploybot-42-migrate"), nil)
	if err != nil || !st.Succeeded() {
		t.Fatalf("%+v %v", st, err)
	}
	agents := srv.AgentIDs()
	if st.AgentID != agents[1] || srv.Launched()[0].AgentID != agents[1] {
		t.Fatalf("ran on %s, want the big agent %s", st.AgentID, agents[1])
	}
	d := srv.Declines()
	if len(d) == 0 || len(d[0].OfferIDs) != 1 || d[0].RefuseSeconds != refuseShort {
		t.Fatalf("declines %+v, want the small agent's offer declined", d)
	}
}
