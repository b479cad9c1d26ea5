package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/seed-5eb4e92e/deploybot/commands"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
	"github.com/seed-5eb4e92e/deploybot/worker/queue/queuetest"
)

func TestEnvLocks(t *testing.T) {
	t.Parallel()
	q, _, _ := queuetest.New(t, queue.Config{})
	ctx := context.Background()
	now := time.Now()
	ann := queue.EnvLock{Env: "prod", User: "U_ANN", Reason: "release freeze", Since: now, Until: now.Add(time.Hour)}
	if got, ok, err := q.LockEnv(ctx, ann); err != nil || !ok || got.User != "U_ANN" {
		t.Fatalf("first lock = %+v %v %v", got, ok, err)
	}
	bob := ann
	bob.User, bob.Reason = "U_BOB", "mine"
	got, ok, err := q.LockEnv(ctx, bob)
	if err != nil || ok || got.User != "U_ANN" || got.Reason != "release freeze" {
		t.Fatalf("lock over someone else's = %+v %v %v; want theirs back", got, ok, err)
	}
	ann.Until = now.Add(2 * time.Hour)
	if got, ok, _ := q.LockEnv(ctx, ann); !ok || !got.Until.Equal(ann.Until) {
		t.Fatalf("the holder could not extend the lock: %+v", got)
	}
	if l, found, _ := q.EnvLock(ctx, "prod"); !found || !l.Holds("U_BOB", now) || l.Holds("U_ANN", now) || l.Holds("U_BOB", now.Add(3*time.Hour)) {
		t.Fatalf("lock read back: %+v %v", l, found)
	}
	if l, found, _ := q.UnlockEnv(ctx, "prod"); !found || l.User != "U_ANN" {
		t.Fatalf("unlock = %+v %v", l, found)
	}
	if _, found, _ := q.EnvLock(ctx, "prod"); found {
		t.Fatal("still locked after unlock")
	}
	if _, found, _ := q.UnlockEnv(ctx, "prod"); found {
		t.Fatal("unlocked twice")
	}
	short := queue.EnvLock{Env: "dev", User: "U_ANN", Since: now, Until: time.Now().Add(100 * time.Millisecond)}
	if _, ok, _ := q.LockEnv(ctx, short); !ok {
		t.Fatal("could not lock dev")
	}
	time.Sleep(200 * time.Millisecond) // the lock's own expiry, not the machine's speed
	if _, found, _ := q.EnvLock(ctx, "dev"); found {
		t.Fatal("an expired lock is still reported")
	}
	bobDev := queue.EnvLock{Env: "dev", User: "U_BOB", Since: time.Now(), Until: time.Now().Add(time.Hour)}
	if _, ok, _ := q.LockEnv(ctx, bobDev); !ok {
		t.Fatal("an expired lock stopped someone else from locking")
	}
}

func TestHistoryListsDeploysPerEnvironment(t *testing.T) {
	t.Parallel()
	q, _, _ := queuetest.New(t, queue.Config{})
	ctx := context.Background()
	for _, r := range []commands.Request{
		{Kind: "deploy", Action: "deploy", Service: "api", Ref: "main", Env: "staging"},
		{Kind: "promote", Action: "promote", Service: "api", From: "staging", Env: "prod"},
		{Kind: "build", Action: "build", Service: "api", Ref: "main"},
		{Kind: "deploy", Action: "deploy", Service: "web", Ref: "main", Env: "prod"},
	} {
		if _, err := q.Enqueue(ctx, queue.Job{Request: r, User: "U1", Channel: "C1"}, queue.Dedupe{}); err != nil {
			t.Fatal(err)
		}
	}
	all, _ := q.History(ctx, "api", "", 10)
	prod, _ := q.History(ctx, "api", "prod", 10)
	if len(all) != 2 || len(prod) != 1 || prod[0].Job.Request.Kind != "promote" {
		t.Fatalf("history: all %d, prod %+v", len(all), prod)
	}
}
