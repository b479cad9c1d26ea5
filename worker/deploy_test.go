package worker_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/seed-5eb4e92e/deploybot/deploy"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// lockLine is how a refusal names a lock: who, until when, why.
func lockLine(l queue.EnvLock) string {
	return fmt.Sprintf("%s is locked by {{@%s}} until %s UTC: %s", l.Env, l.User, l.Until.UTC().Format("Jan 2 15:04"), l.Reason)
}

// TestLockedEnvironmentRefusesDeploy: the lock is taken after the deploy
// was queued; the worker checks it when the job runs and refuses, naming
// who holds the lock, until when and why. Nothing is built or changed.
func TestLockedEnvironmentRefusesDeploy(t *testing.T) {
	t.Parallel()
	e := newDeployEnv(t, deploy.Target{})
	job := e.enqueue(t, deployJob("U_ANN", "staging", "v1"))
	l := e.lock(t, "staging", "U_BOB", "release freeze")
	e.start(t)
	rec := e.final(t, job.ID)
	want := "Not started: " + lockLine(l) + " (locks are checked again when a job starts)."
	if rec.State != queue.StateFailed || rec.Error != want {
		t.Fatalf("record = %+v\nwant error %q", rec, want)
	}
	if n := e.jenkins.QueueItemsCreated(); n != 0 {
		t.Fatalf("%d builds started for a refused deploy", n)
	}
	if n := e.puts(stagingApp); n != 0 {
		t.Fatalf("%d changes asked of Marathon for a refused deploy", n)
	}
}

// TestLockHoldersOwnDeployPasses: the lock stops everyone but its holder.
func TestLockHoldersOwnDeployPasses(t *testing.T) {
	t.Parallel()
	e := newDeployEnv(t, deploy.Target{})
	e.lock(t, "staging", "U_ANN", "testing the login flow")
	out, err := e.run(context.Background(), e.runner, e.enqueue(t, deployJob("U_ANN", "staging", "v1")), nil)
	if err != nil || !out.Succeeded || out.Artifact != image("v1", 1) || out.PromoteTo != "prod" {
		t.Fatalf("holder's deploy = %+v, %v", out, err)
	}
	if got := e.app(t, stagingApp).Image; got != image("v1", 1) {
		t.Fatalf("staging runs %q", got)
	}
}

// TestDeployQueuedBehindLock: a deploy that asked to wait for the lock is
// postponed — not retried, its attempt not counted — and runs once the
// lock is lifted.
func TestDeployQueuedBehindLock(t *testing.T) {
	t.Parallel()
	e := newDeployEnv(t, deploy.Target{})
	l := e.lock(t, "staging", "U_BOB", "release freeze")
	job := deployJob("U_ANN", "staging", "v1")
	job.WaitForLock = true
	id := e.enqueue(t, job).ID
	e.start(t)
	stage := "waiting for the lock on staging: " + lockLine(l)
	e.until(t, id, "looked at the lock twice", func(r queue.Record) bool {
		return r.Stage == stage && counter(t, e.reg, "postponed") >= 2
	})
	if n, p := e.jenkins.QueueItemsCreated(), e.puts(stagingApp); n != 0 || p != 0 {
		t.Fatalf("while waiting for the lock: %d builds, %d Marathon changes", n, p)
	}
	// Each look is not another edit of the same message in Slack.
	if n := e.rep.count(id, stage); n != 1 {
		t.Fatalf("the waiting message was shown %d times, want once", n)
	}
	if _, found, err := e.q.UnlockEnv(context.Background(), "staging"); err != nil || !found {
		t.Fatalf("UnlockEnv = %v, %v", found, err)
	}
	rec := e.final(t, id)
	if rec.State != queue.StateSucceeded || rec.Artifact != image("v1", 1) || rec.Job.Attempt != 1 {
		t.Fatalf("record = %+v; want success on attempt 1", rec)
	}
	if got := counter(t, e.reg, "retried"); got != 0 {
		t.Fatalf("waiting for a lock counted %v retries", got)
	}
	if got := e.app(t, stagingApp).Image; got != image("v1", 1) {
		t.Fatalf("staging runs %q", got)
	}
}

// TestWaitingForLockGivesUp: a job does not wait for a lock for ever.
func TestWaitingForLockGivesUp(t *testing.T) {
	t.Parallel()
	e := newDeployEnv(t, deploy.Target{})
	l := e.lock(t, "staging", "U_BOB", "release freeze")
	job := deployJob("U_ANN", "staging", "v1")
	job.WaitForLock = true
	job = e.enqueue(t, job)
	r := e.runner
	r.MaxWait = 30 * time.Minute // the lock lasts an hour
	r.Now = func() time.Time { return job.CreatedAt.Add(29 * time.Minute) }
	_, err := e.run(context.Background(), r, job, nil)
	var w *deploy.Wait
	if !errors.As(err, &w) || w.After != e.runner.Recheck || !strings.Contains(w.Stage, lockLine(l)) {
		t.Fatalf("within MaxWait: err = %v; want to wait %s", err, e.runner.Recheck)
	}
	r.Now = func() time.Time { return job.CreatedAt.Add(31 * time.Minute) }
	_, err = e.run(context.Background(), r, job, nil)
	want := "Gave up after waiting 30m0s: waiting for the lock on staging: " + lockLine(l) + "."
	if got := failureMsg(t, err); got != want {
		t.Fatalf("past MaxWait: %q\nwant %q", got, want)
	}
	if n := e.jenkins.QueueItemsCreated(); n != 0 {
		t.Fatalf("%d builds started by a job that never got the lock", n)
	}
}

// TestStartedDeployIsNotStoppedByLaterLock: a worker died mid-rollout;
// meanwhile someone locked the environment. The job run again finishes
// the rollout it began, while a deploy that had not begun is refused.
func TestStartedDeployIsNotStoppedByLaterLock(t *testing.T) {
	t.Parallel()
	e := newDeployEnv(t, deploy.Target{})
	job := e.enqueue(t, deployJob("U_ANN", "staging", "v1"))
	ctx, kill := context.WithCancel(context.Background())
	if _, err := e.run(ctx, e.runner, job, untilStage("deploying: ", kill)); !errors.Is(err, context.Canceled) {
		t.Fatalf("first run: %v", err)
	}
	if e.step(t, job.ID, "deploy_started") == "" {
		t.Fatal("the first run did not record that it began the rollout")
	}
	l := e.lock(t, "staging", "U_BOB", "incident 42")
	out, err := e.run(context.Background(), e.runner, job, nil)
	if err != nil || !out.Succeeded || out.Artifact != image("v1", 1) {
		t.Fatalf("run again after the lock: %+v, %v", out, err)
	}
	if n := e.puts(stagingApp); n != 1 {
		t.Fatalf("%d changes asked of Marathon; the second run must follow the first one's", n)
	}
	other := e.enqueue(t, deployJob("U_ANN", "staging", "v2"))
	_, err = e.run(context.Background(), e.runner, other, nil)
	if got := failureMsg(t, err); !strings.Contains(got, lockLine(l)) {
		t.Fatalf("a new deploy under the lock: %q", got)
	}
}

// TestRollbackUnderwayIsNotStoppedByLaterLock: as for a deploy, a rollback
// that has begun changing Marathon finishes when run again.
func TestRollbackUnderwayIsNotStoppedByLaterLock(t *testing.T) {
	t.Parallel()
	e := newDeployEnv(t, deploy.Target{})
	stop := e.start(t)
	first := e.final(t, e.enqueue(t, deployJob("U_ANN", "staging", "v1")).ID)
	stop() // from here on the test runs the job as a worker would
	if first.State != queue.StateSucceeded {
		t.Fatalf("deploy: %+v", first)
	}
	back := e.enqueue(t, rollbackJob("U_ANN", "staging", ""))
	ctx, kill := context.WithCancel(context.Background())
	if _, err := e.run(ctx, e.runner, back, untilStage("deploying: ", kill)); !errors.Is(err, context.Canceled) {
		t.Fatalf("first run: %v", err)
	}
	e.lock(t, "staging", "U_BOB", "incident 42")
	out, err := e.run(context.Background(), e.runner, back, nil)
	if err != nil || !out.Succeeded || out.Result != "ROLLED BACK" {
		t.Fatalf("rollback run again after the lock: %+v, %v", out, err)
	}
	if got := e.app(t, stagingApp).Image; got != baseImage {
		t.Fatalf("staging runs %q after the rollback", got)
	}
}

// TestConcurrentDeployIsRefusedOrWaits: while one deploy of api to
// staging runs, a second one is refused when the runner refuses
// concurrent deploys, and otherwise asks to wait; neither builds
// anything. A deploy to another environment is not held up.
func TestConcurrentDeployIsRefusedOrWaits(t *testing.T) {
	t.Parallel()
	e := newDeployEnv(t, deploy.Target{})
	first := e.enqueue(t, deployJob("U_ANN", "staging", "v1"))
	reached, release, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		_, err := e.run(context.Background(), e.runner, first, untilStage("deploying: ", func() { close(reached); <-release }))
		done <- err
	}()
	select {
	case <-reached:
	case err := <-done:
		t.Fatalf("the first deploy ended before its rollout: %v", err)
	}
	second := e.enqueue(t, deployJob("U_CAT", "staging", "v2"))
	holder := fmt.Sprintf("{{@U_ANN}}'s deploy (job `%s`) of api to staging", first.ID)
	refusing := e.runner
	refusing.RefuseConcurrent = true
	_, err := e.run(context.Background(), refusing, second, nil)
	if got, want := failureMsg(t, err), "Not started: "+holder+" is running. Try again when it is done."; got != want {
		t.Fatalf("refused: %q\nwant %q", got, want)
	}
	_, err = e.run(context.Background(), e.runner, second, nil)
	var w *deploy.Wait
	if !errors.As(err, &w) || w.Stage != "waiting for "+holder+" to finish" || w.After != e.runner.Recheck {
		t.Fatalf("waiting: err = %v", err)
	}
	if out, err := e.run(context.Background(), e.runner, e.enqueue(t, deployJob("U_CAT", "prod", "v3")), nil); err != nil || !out.Succeeded {
		t.Fatalf("a deploy to prod while staging's runs: %+v, %v", out, err)
	}
	if n, p := e.jenkins.QueueItemsCreated(), e.puts(stagingApp); n != 2 || p != 1 {
		t.Fatalf("%d builds and %d changes of staging; want the first deploy's and prod's build, one change", n, p)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("first deploy: %v", err)
	}
	if out, err := e.run(context.Background(), refusing, second, nil); err != nil || !out.Succeeded {
		t.Fatalf("the second deploy once the first is done: %+v, %v", out, err)
	}
	if got := e.app(t, stagingApp).Image; got != image("v2", 3) {
		t.Fatalf("staging runs %q", got)
	}
}

// TestConcurrentDeployRunsAfterTheFirst: in the pool, the second deploy is
// postponed (not retried) while the first one's rollout waits for health,
// and rolls out over the first one's result once it is done.
func TestConcurrentDeployRunsAfterTheFirst(t *testing.T) {
	t.Parallel()
	e := newDeployEnv(t, deploy.Target{})
	e.setSick(func(app, version string) bool { return app == stagingApp && version != e.base[stagingApp] })
	e.start(t)
	first := e.enqueue(t, deployJob("U_ANN", "staging", "v1")).ID
	e.until(t, first, "began its rollout", func(r queue.Record) bool { return strings.HasPrefix(r.Stage, "deploying: ") })
	second := e.enqueue(t, deployJob("U_CAT", "staging", "v2")).ID
	stage := fmt.Sprintf("waiting for {{@U_ANN}}'s deploy (job `%s`) of api to staging to finish", first)
	e.until(t, second, "waited for the first", func(r queue.Record) bool {
		return r.Stage == stage && counter(t, e.reg, "postponed") >= 1
	})
	if n, p := e.jenkins.QueueItemsCreated(), e.puts(stagingApp); n != 1 || p != 1 {
		t.Fatalf("%d builds and %d changes of staging while the first deploy ran; want 1 and 1", n, p)
	}
	e.setSick(nil)
	a, b := e.final(t, first), e.final(t, second)
	if a.State != queue.StateSucceeded || b.State != queue.StateSucceeded || b.Job.Attempt != 1 {
		t.Fatalf("first %+v\nsecond %+v", a, b)
	}
	if got := counter(t, e.reg, "retried"); got != 0 {
		t.Fatalf("waiting for another deploy counted %v retries", got)
	}
	if got := e.step(t, second, "previous_artifact"); got != a.Artifact {
		t.Fatalf("the second deploy replaced %q, want the first one's %q", got, a.Artifact)
	}
	if got := e.app(t, stagingApp).Image; got != b.Artifact || b.Artifact != image("v2", 2) {
		t.Fatalf("staging runs %q; second deploy's artifact %q", got, b.Artifact)
	}
}

// TestRerunWaitsForItsOwnEarlierRun: a worker stopped answering in the
// middle of a deploy and the job was handed to another one while the
// first still held the deploy's lock. The second run is not refused for
// the deploy "already running" — that is itself — but waits for the lock.
func TestRerunWaitsForItsOwnEarlierRun(t *testing.T) {
	t.Parallel()
	e := newDeployEnv(t, deploy.Target{})
	job := e.enqueue(t, deployJob("U_ANN", "staging", "v1"))
	reached, release, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		_, err := e.run(context.Background(), e.runner, job, untilStage("deploying: ", func() { close(reached); <-release }))
		done <- err
	}()
	select {
	case <-reached:
	case err := <-done:
		t.Fatalf("the first run ended before its rollout: %v", err)
	}
	refusing := e.runner
	refusing.RefuseConcurrent = true
	_, err := e.run(context.Background(), refusing, job, nil)
	var w *deploy.Wait
	if !errors.As(err, &w) || strings.Contains(w.Stage, job.ID) {
		t.Fatalf("a second run of the same job: err = %v; want it to wait, not to wait for itself", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("first run: %v", err)
	}
	if out, err := e.run(context.Background(), refusing, job, nil); err != nil || !out.Succeeded {
		t.Fatalf("run again: %+v, %v", out, err)
	}
	if n, p := e.jenkins.QueueItemsCreated(), e.puts(stagingApp); n != 1 || p != 1 {
		t.Fatalf("%d builds and %d changes of staging; want one of each", n, p)
	}
}
