package worker_test

import (
	"context"
	"strings"
	"testing"

	"github.com/seed-5eb4e92e/deploybot/authz"
	"github.com/seed-5eb4e92e/deploybot/commands"
	"github.com/seed-5eb4e92e/deploybot/deploy"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
	"github.com/seed-5eb4e92e/deploybot/worker/queue/queuetest"
)

// TestRevokedPermissionStopsQueuedDeploy: a deploy allowed when it was
// asked for, whose permission an SRE revokes while it waits in the queue,
// is refused when a worker picks it up: no build, no Marathon change, and
// the refusal is in the audit trail.
func TestRevokedPermissionStopsQueuedDeploy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newDeployEnv(t, deploy.Target{})
	rdb, prefix := queuetest.Redis(t)
	store := authz.NewPolicyStore(rdb, prefix)
	if _, err := store.Seed(ctx, []authz.Rule{{Group: "dev", Allow: []string{"build:*", "deploy:staging:*"}}}); err != nil {
		t.Fatal(err)
	}
	ids := authz.NewIdentities(authz.IdentitiesConfig{Static: map[string][]string{"dev": {"U_ANN"}}}, rdb, prefix, nil)
	audit := authz.NewAudit(authz.AuditConfig{}, rdb, prefix)
	e.auth, e.audit = authz.NewAuthorizer(ids, store, nil, ""), audit

	job := deployJob("U_ANN", "staging", "v1")
	if err := e.auth.Check(ctx, "U_ANN", job.Request.Permission()); err != nil {
		t.Fatalf("the deploy is not allowed when asked for: %v", err)
	}
	id := e.enqueue(t, job).ID
	if _, err := store.Revoke(ctx, "U_SRE", "dev", "deploy:staging:*"); err != nil {
		t.Fatal(err)
	}
	e.start(t)
	rec := e.final(t, id)
	if rec.State != queue.StateFailed || !strings.Contains(rec.Error, "Not run: you may not deploy api in staging") {
		t.Fatalf("record = %+v; want it refused at run time", rec)
	}
	if n, p := e.jenkins.QueueItemsCreated(), e.puts(stagingApp); n != 0 || p != 0 {
		t.Fatalf("a revoked deploy ran %d builds and %d Marathon changes", n, p)
	}
	entries, err := audit.Recent(ctx, authz.AuditFilter{User: "U_ANN"}, 10)
	if err != nil || len(entries) != 1 {
		t.Fatalf("audit = %+v, %v; want the refusal", entries, err)
	}
	if got := entries[0]; got.Kind != "job" || got.Outcome != "denied" || got.Job != id || got.Detail != (commands.Permission{Action: "deploy", Service: "api", Env: "staging"}).String() {
		t.Fatalf("audit entry = %+v", got)
	}
}

// TestUnapprovedJobToApprovalEnvironmentIsRefused: a prod deploy that
// needs an approval runs only with one, even if something queued it
// without (an older responder during an upgrade, say).
func TestUnapprovedJobToApprovalEnvironmentIsRefused(t *testing.T) {
	t.Parallel()
	e := newDeployEnv(t, deploy.Target{})
	e.approval = map[string]bool{"prod": true}
	id := e.enqueue(t, deployJob("U_ANN", "prod", "v1")).ID
	e.start(t)
	rec := e.final(t, id)
	if rec.State != queue.StateFailed || !strings.Contains(rec.Error, "prod needs someone else's approval") {
		t.Fatalf("record = %+v; want it refused", rec)
	}
	if n, p := e.jenkins.QueueItemsCreated(), e.puts(prodApp); n != 0 || p != 0 {
		t.Fatalf("an unapproved prod deploy ran %d builds and %d Marathon changes", n, p)
	}
}
