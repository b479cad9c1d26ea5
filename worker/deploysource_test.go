package worker_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/seed-5eb4e92e/deploybot/backends/marathon"
	"github.com/seed-5eb4e92e/deploybot/deploy"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// deployed runs job through the pool and returns its record, which must
// show success unless the job's ref is "broken".
func (e *deployEnv) deployed(t *testing.T, job queue.Job) queue.Record {
	t.Helper()
	rec := e.final(t, e.enqueue(t, job).ID)
	if ok := rec.State == queue.StateSucceeded; ok == (job.Request.Ref == "broken") {
		t.Fatalf("deploy of %s: %+v", job.Request.Ref, rec)
	}
	return rec
}

// TestPromoteDeploysWhatTheSourceVerified: Promote on a deploy's message
// puts exactly that deploy's artifact in the next environment — not what
// runs in staging since, and not a new build.
func TestPromoteDeploysWhatTheSourceVerified(t *testing.T) {
	t.Parallel()
	e := newDeployEnv(t, deploy.Target{})
	e.start(t)
	src := e.deployed(t, deployJob("U_ANN", "staging", "v1"))
	if src.Artifact != image("v1", 1) || src.PromoteTo != "prod" {
		t.Fatalf("source deploy: %+v", src)
	}
	e.deployed(t, deployJob("U_ANN", "staging", "v2"))
	builds := e.jenkins.QueueItemsCreated()
	rec := e.final(t, e.enqueue(t, promoteJob("U_BOB", "staging", "prod", src.Job.ID)).ID)
	if rec.State != queue.StateSucceeded || rec.Result != "LIVE" || rec.Artifact != src.Artifact || rec.PromoteTo != "" {
		t.Fatalf("promotion: %+v", rec)
	}
	if n := e.jenkins.QueueItemsCreated(); n != builds {
		t.Fatalf("the promotion started %d builds", n-builds)
	}
	prod := e.app(t, prodApp)
	if prod.Image != src.Artifact || prod.Labels[deploy.LabelUser] != "U_BOB" || prod.Labels[deploy.LabelJob] != rec.Job.ID {
		t.Fatalf("prod runs %q with labels %v", prod.Image, prod.Labels)
	}
	if got := e.app(t, stagingApp).Image; got != image("v2", 2) {
		t.Fatalf("staging runs %q", got)
	}
}

// TestPromoteFromWhatRuns: promote typed without a source takes what runs,
// settled and healthy, in the environment promoted from.
func TestPromoteFromWhatRuns(t *testing.T) {
	t.Parallel()
	e := newDeployEnv(t, deploy.Target{})
	if _, err := e.run(context.Background(), e.runner, e.enqueue(t, deployJob("U_ANN", "staging", "v1")), nil); err != nil {
		t.Fatal(err)
	}
	out, err := e.run(context.Background(), e.runner, e.enqueue(t, promoteJob("U_BOB", "staging", "prod", "")), nil)
	if err != nil || !out.Succeeded || out.Artifact != image("v1", 1) {
		t.Fatalf("promotion: %+v, %v", out, err)
	}
	if got, n := e.app(t, prodApp).Image, e.jenkins.QueueItemsCreated(); got != image("v1", 1) || n != 1 {
		t.Fatalf("prod runs %q after %d builds; want the staging deploy's artifact and its build only", got, n)
	}
}

// TestPromoteRefusesWhatWasNotVerified: nothing is promoted from a deploy
// that did not succeed, from another service's deploy, from a forgotten
// job, or from an environment that is not settled and healthy.
func TestPromoteRefusesWhatWasNotVerified(t *testing.T) {
	t.Parallel()
	saved := func(service string, state queue.State) func(*testing.T, *deployEnv) string {
		return func(t *testing.T, e *deployEnv) string {
			job := deployJob("U_ANN", "staging", "v9")
			job.Request.Service = service
			rec := queue.Record{Job: e.enqueue(t, job), State: state, Artifact: image("v9", 9), Channel: "C1"}
			if err := e.q.Save(context.Background(), rec); err != nil {
				t.Fatal(err)
			}
			return rec.Job.ID
		}
	}
	tests := []struct {
		name  string
		setup func(*testing.T, *deployEnv) (source string)
		want  string // with "%s" for the source job
	}{
		{"source failed", saved("api", queue.StateFailed), "Job `%s` did not finish a deploy, so there is nothing verified to promote."},
		{"source still running", saved("api", queue.StateRunning), "Job `%s` did not finish a deploy, so there is nothing verified to promote."},
		{"source of another service", saved("web", queue.StateSucceeded), "Job `%s` deployed web, not api."},
		{"source forgotten", func(*testing.T, *deployEnv) string { return queue.NewID(time.Now()) },
			"Job `%s` is no longer known (job records are kept for a limited time)."},
		{"staging unhealthy", func(_ *testing.T, e *deployEnv) string {
			e.setSick(func(app, _ string) bool { return app == stagingApp })
			return ""
		}, "api in staging is not settled and healthy (0/2 healthy), so I won't promote what runs there."},
		{"staging mid-deployment", func(t *testing.T, e *deployEnv) string {
			if _, err := e.mc.Update(context.Background(), stagingApp, marathon.AppUpdate{Image: image("v8", 8)}); err != nil {
				t.Fatal(err)
			}
			return ""
		}, "api in staging is not settled and healthy (0/2 healthy, a deployment under way), so I won't promote what runs there."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newDeployEnv(t, deploy.Target{})
			source := tc.setup(t, e)
			_, err := e.run(context.Background(), e.runner, e.enqueue(t, promoteJob("U_BOB", "staging", "prod", source)), nil)
			want := tc.want
			if strings.Contains(want, "%s") {
				want = fmt.Sprintf(want, source)
			}
			if got := failureMsg(t, err); got != want {
				t.Fatalf("got  %q\nwant %q", got, want)
			}
			if n, p := e.jenkins.QueueItemsCreated(), e.puts(prodApp); n != 0 || p != 0 {
				t.Fatalf("a refused promotion made %d builds and %d changes of prod", n, p)
			}
		})
	}
}

// TestRollbackPutsBackTheLastGoodVersion: Roll back restores what ran
// before the deploy that is live, passing over deploys that failed and
// left nothing behind.
func TestRollbackPutsBackTheLastGoodVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		target deploy.Target
		// third is the ref of a deploy after v1 and v2 ("" for none);
		// sick makes its rollout fail verification.
		third string
		sick  bool
		want  string
	}{
		{"after two good deploys", deploy.Target{}, "", false, image("v1", 1)},
		{"after a deploy whose build failed", deploy.Target{}, "broken", false, image("v1", 1)},
		{"after a deploy that was rolled back", deploy.Target{VerifyTimeout: 2 * time.Second}, "v3", true, image("v1", 1)},
		{"after a failed deploy left live", deploy.Target{VerifyTimeout: 2 * time.Second, NoAutoRollback: true}, "v3", true, image("v2", 2)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newDeployEnv(t, tc.target)
			e.start(t)
			e.deployed(t, deployJob("U_ANN", "staging", "v1"))
			e.deployed(t, deployJob("U_ANN", "staging", "v2"))
			if tc.third != "" {
				third := deployJob("U_ANN", "staging", tc.third)
				third.ID = queue.NewID(time.Now())
				if tc.sick {
					e.setSick(func(app, version string) bool {
						v, _ := e.q.Steps(third.ID).Get(context.Background(), "marathon_version")
						return app == stagingApp && version == v
					})
				}
				rec := e.final(t, e.enqueue(t, third).ID)
				if rec.State != queue.StateFailed {
					t.Fatalf("third deploy: %+v", rec)
				}
				// Its deployment, left alone, would hold the app and
				// refuse any rollback; let it end.
				e.setSick(nil)
				e.settle(t)
			}
			rec := e.final(t, e.enqueue(t, rollbackJob("U_BOB", "staging", "")).ID)
			if rec.State != queue.StateSucceeded || rec.Result != "ROLLED BACK" || rec.Artifact != tc.want {
				t.Fatalf("rollback: %+v\nwant %s back", rec, tc.want)
			}
			if got := e.app(t, stagingApp).Image; got != tc.want {
				t.Fatalf("staging runs %q, want %q", got, tc.want)
			}
		})
	}
}

// TestRollbackRefusals: with nothing to roll back, or a button on a
// deploy that is no longer the last one, the message says why.
func TestRollbackRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(*testing.T, *deployEnv) (source, want string)
	}{
		{"no deploy known", func(*testing.T, *deployEnv) (string, string) {
			return "", "I know of no deploy of api to staging to roll back."
		}},
		{"the last change was a rollback", func(t *testing.T, e *deployEnv) (string, string) {
			e.deployed(t, deployJob("U_ANN", "staging", "v1"))
			back := e.deployed(t, rollbackJob("U_ANN", "staging", ""))
			return "", "The last change of api in staging was a rollback (job `" + back.Job.ID + "`); to go further back, deploy the ref you want."
		}},
		{"the button's deploy is no longer the last", func(t *testing.T, e *deployEnv) (string, string) {
			a := e.deployed(t, deployJob("U_ANN", "staging", "v1"))
			b := e.deployed(t, deployJob("U_ANN", "staging", "v2"))
			return a.Job.ID, "Job `" + a.Job.ID + "` is no longer the last deploy of api to staging (job `" + b.Job.ID + "` is); roll back from that one's message, or with `rollback api staging`."
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newDeployEnv(t, deploy.Target{})
			e.start(t)
			source, want := tc.setup(t, e)
			image, changes := e.app(t, stagingApp).Image, e.puts(stagingApp)
			rec := e.final(t, e.enqueue(t, rollbackJob("U_BOB", "staging", source)).ID)
			if rec.State != queue.StateFailed || rec.Error != want {
				t.Fatalf("record %+v\nwant error %q", rec, want)
			}
			if got, n := e.app(t, stagingApp).Image, e.puts(stagingApp); got != image || n != changes {
				t.Fatalf("a refused rollback changed staging: %q → %q, %d changes", image, got, n-changes)
			}
		})
	}
}
