package worker_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/seed-5eb4e92e/deploybot/deploy"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// TestLockTakenDuringBuildStopsDeploy: the lock is taken while the job's
// build runs; the deploy stops before it changes anything, and a job that
// asked to wait goes on once the lock is lifted, without building again.
func TestLockTakenDuringBuildStopsDeploy(t *testing.T) {
	t.Parallel()
	e := newDeployEnv(t, deploy.Target{})
	job := e.enqueue(t, deployJob("U_ANN", "staging", "v1"))
	var l queue.EnvLock
	_, err := e.run(context.Background(), e.runner, job, untilStage("building", func() { l = e.lock(t, "staging", "U_BOB", "incident 7") }))
	if got := failureMsg(t, err); !strings.Contains(got, lockLine(l)) {
		t.Fatalf("deploy after a lock taken during its build: %q", got)
	}
	if n := e.puts(stagingApp); n != 0 {
		t.Fatalf("%d changes asked of Marathon past the lock", n)
	}

	waiting := deployJob("U_ANN", "staging", "v2")
	waiting.WaitForLock = true
	waiting = e.enqueue(t, waiting)
	if _, _, err := e.q.UnlockEnv(context.Background(), "staging"); err != nil {
		t.Fatal(err)
	}
	_, err = e.run(context.Background(), e.runner, waiting, untilStage("building", func() { e.lock(t, "staging", "U_BOB", "incident 8") }))
	var w *deploy.Wait
	if !errors.As(err, &w) || e.puts(stagingApp) != 0 {
		t.Fatalf("a job that waits for locks: %v, %d Marathon changes", err, e.puts(stagingApp))
	}
	if _, _, err := e.q.UnlockEnv(context.Background(), "staging"); err != nil {
		t.Fatal(err)
	}
	builds := e.jenkins.QueueItemsCreated()
	out, err := e.run(context.Background(), e.runner, waiting, nil)
	if err != nil || !out.Succeeded || e.jenkins.QueueItemsCreated() != builds {
		t.Fatalf("after the unlock: %+v, %v, %d new builds", out, err, e.jenkins.QueueItemsCreated()-builds)
	}
}

// TestPromotionRunAgainDeploysWhatItResolved: a typed promotion resolves
// what staging runs; its worker dies; staging moves on; the promotion run
// again still deploys what it resolved the first time.
func TestPromotionRunAgainDeploysWhatItResolved(t *testing.T) {
	t.Parallel()
	e := newDeployEnv(t, deploy.Target{})
	ctx := context.Background()
	if _, err := e.run(ctx, e.runner, e.enqueue(t, deployJob("U_ANN", "staging", "v1")), nil); err != nil {
		t.Fatal(err)
	}
	promo := e.enqueue(t, promoteJob("U_BOB", "staging", "prod", ""))
	killed, kill := context.WithCancel(ctx)
	if _, err := e.run(killed, e.runner, promo, untilStage("deploying", kill)); !errors.Is(err, context.Canceled) {
		t.Fatalf("first run: %v", err)
	}
	if _, err := e.run(ctx, e.runner, e.enqueue(t, deployJob("U_ANN", "staging", "v2")), nil); err != nil {
		t.Fatal(err)
	}
	out, err := e.run(ctx, e.runner, promo, nil)
	if err != nil || out.Artifact != image("v1", 1) || e.app(t, prodApp).Image != image("v1", 1) {
		t.Fatalf("promotion run again: %+v, %v; prod runs %q", out, err, e.app(t, prodApp).Image)
	}
}

// TestRollbackFollowsWhatMarathonRuns: a deploy queued behind a lock runs
// after a newer one by the lock's holder; the last deploy is the one
// Marathon runs, not the newest asked for.
func TestRollbackFollowsWhatMarathonRuns(t *testing.T) {
	t.Parallel()
	e := newDeployEnv(t, deploy.Target{})
	e.start(t)
	e.deployed(t, deployJob("U_ANN", "staging", "v1"))
	e.lock(t, "staging", "U_BOB", "release")
	behind := deployJob("U_ANN", "staging", "v2")
	behind.WaitForLock = true
	behind = e.enqueue(t, behind)
	e.until(t, behind.ID, "waited for the lock", func(r queue.Record) bool { return strings.HasPrefix(r.Stage, "waiting for the lock") })
	newer := e.deployed(t, deployJob("U_BOB", "staging", "v3"))
	if _, _, err := e.q.UnlockEnv(context.Background(), "staging"); err != nil {
		t.Fatal(err)
	}
	if rec := e.final(t, behind.ID); rec.State != queue.StateSucceeded || e.app(t, stagingApp).Image != rec.Artifact {
		t.Fatalf("the deploy behind the lock: %+v; staging runs %q", rec, e.app(t, stagingApp).Image)
	}
	rec := e.final(t, e.enqueue(t, rollbackJob("U_BOB", "staging", behind.ID)).ID)
	if rec.State != queue.StateSucceeded || rec.Artifact != newer.Artifact || e.app(t, stagingApp).Image != newer.Artifact {
		t.Fatalf("rollback: %+v; staging runs %q; want %s back", rec, e.app(t, stagingApp).Image, newer.Artifact)
	}
}

// TestPromoteDoesNotGoBackwards: Promote on an old message, or from an
// environment rolled back since, would put an older build in prod than
// prod runs; it is refused, and prod keeps what it runs.
func TestPromoteDoesNotGoBackwards(t *testing.T) {
	t.Parallel()
	e := newDeployEnv(t, deploy.Target{})
	e.start(t)
	v1 := e.deployed(t, deployJob("U_ANN", "staging", "v1"))
	e.deployed(t, promoteJob("U_ANN", "staging", "prod", v1.Job.ID))
	v2 := e.deployed(t, deployJob("U_ANN", "staging", "v2"))
	e.deployed(t, promoteJob("U_ANN", "staging", "prod", v2.Job.ID))

	old := e.final(t, e.enqueue(t, promoteJob("U_BOB", "staging", "prod", v1.Job.ID)).ID)
	if old.State != queue.StateFailed || !strings.Contains(old.Error, "promoting would go back") {
		t.Fatalf("Promote on the old message: %+v", old)
	}
	if rb := e.final(t, e.enqueue(t, rollbackJob("U_ANN", "staging", "")).ID); rb.State != queue.StateSucceeded || rb.Artifact != v1.Artifact {
		t.Fatalf("staging rollback: %+v", rb)
	}
	typed := e.final(t, e.enqueue(t, promoteJob("U_BOB", "staging", "prod", "")).ID)
	if typed.State != queue.StateFailed || !strings.Contains(typed.Error, "promoting would go back") {
		t.Fatalf("promote from the rolled-back staging: %+v", typed)
	}
	if got := e.app(t, prodApp).Image; got != v2.Artifact {
		t.Fatalf("prod runs %q, want %q", got, v2.Artifact)
	}
}
