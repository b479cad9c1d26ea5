package authz

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/seed-5eb4e92e/deploybot/worker/queue/queuetest"
)

func TestPolicyStoreVersions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb, prefix := queuetest.Redis(t)
	s := NewPolicyStore(rdb, prefix)
	if _, err := s.Current(ctx); !errors.Is(err, ErrNoPolicy) {
		t.Fatalf("Current before seeding = %v, want ErrNoPolicy", err)
	}
	seed := []Rule{{Group: "sre", Allow: []string{"*"}}}
	if ok, err := s.Seed(ctx, seed); !ok || err != nil {
		t.Fatalf("Seed = %v, %v", ok, err)
	}
	if ok, err := s.Seed(ctx, []Rule{{Group: "everyone", Allow: []string{"*"}}}); ok || err != nil {
		t.Fatalf("second Seed = %v, %v; the stored policy must win after the first start", ok, err)
	}
	v, err := s.Grant(ctx, "U_SRE", "dev", "deploy:staging:*", false)
	if err != nil || v.N != 2 || v.By != "U_SRE" || v.Change != "grant dev deploy:staging:*" {
		t.Fatalf("Grant = %+v, %v", v, err)
	}
	if _, err := s.Grant(ctx, "U_SRE", "dev", "deploy:staging:*", false); !errors.Is(err, ErrNoChange) {
		t.Fatalf("granting again = %v, want ErrNoChange", err)
	}
	if _, err := s.Revoke(ctx, "U_SRE", "dev", "lock:prod"); !errors.Is(err, ErrNoChange) {
		t.Fatalf("revoking what is not there = %v, want ErrNoChange", err)
	}
	if v, err = s.Revoke(ctx, "U_SRE", "sre", "*"); err != nil || v.N != 3 {
		t.Fatalf("Revoke = %+v, %v", v, err)
	}
	if v, err = s.Rollback(ctx, "U_SRE", 1); err != nil || v.N != 4 || fmt.Sprint(v.Rules) != fmt.Sprint(seed) {
		t.Fatalf("Rollback to 1 = %+v, %v; want version 4 with the seed's rules", v, err)
	}
	if _, err := s.Rollback(ctx, "U_SRE", 99); !errors.Is(err, ErrNoVersion) {
		t.Fatalf("Rollback to 99 = %v, want ErrNoVersion", err)
	}
	hist, err := s.History(ctx, 10)
	if err != nil || len(hist) != 4 {
		t.Fatalf("History = %d versions, %v; want 4", len(hist), err)
	}
	if hist[0].N != 4 || hist[3].By != "config" || hist[1].Change != "revoke sre *" {
		t.Fatalf("History is not newest first with each change kept: %+v", hist)
	}
	// Another process's store sees the change at once.
	other, err := NewPolicyStore(rdb, prefix).Current(ctx)
	if err != nil || other.N != 4 {
		t.Fatalf("a second store reads version %d, %v; want 4", other.N, err)
	}
}

// TestPolicyStoreConcurrentChanges: SREs granting at the same moment lose
// nothing; each grant lands in its own version.
func TestPolicyStoreConcurrentChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb, prefix := queuetest.Redis(t)
	if _, err := NewPolicyStore(rdb, prefix).Seed(ctx, nil); err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := NewPolicyStore(rdb, prefix).Grant(ctx, "U_SRE", fmt.Sprintf("g%d", i), "build:*", false)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	cur, err := NewPolicyStore(rdb, prefix).Current(ctx)
	if err != nil || cur.N != n+1 || len(cur.Rules) != n {
		t.Fatalf("after %d concurrent grants: version %d with %d rules, %v", n, cur.N, len(cur.Rules), err)
	}
}

// The responder's view trusts what it read for maxAge: a change made in
// another process shows once that has passed, one made through the same
// store at once; the store itself always reads the version in force.
func TestPolicyWithin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb, prefix := queuetest.Redis(t)
	now := time.Unix(1_700_000_000, 0)
	s := NewPolicyStore(rdb, prefix)
	s.now = func() time.Time { return now }
	if _, err := s.Seed(ctx, []Rule{{Group: "sre", Allow: []string{"*"}}}); err != nil {
		t.Fatal(err)
	}
	view := s.Within(time.Second)
	if v, err := view.Current(ctx); err != nil || v.N != 1 {
		t.Fatalf("view = %d, %v; want version 1", v.N, err)
	}
	other := NewPolicyStore(rdb, prefix)
	if _, err := other.Grant(ctx, "U_SRE", "dev", "build:*", false); err != nil {
		t.Fatal(err)
	}
	if v, _ := view.Current(ctx); v.N != 1 {
		t.Fatalf("view within a second of its read = version %d, want the one it read (1)", v.N)
	}
	if v, _ := s.Current(ctx); v.N != 2 {
		t.Fatalf("store = version %d, want 2: the store itself always asks Redis", v.N)
	}
	if _, err := other.Grant(ctx, "U_SRE", "ops", "build:*", false); err != nil {
		t.Fatal(err)
	}
	now = now.Add(999 * time.Millisecond)
	if v, _ := view.Current(ctx); v.N != 2 {
		t.Fatalf("view = version %d, want 2 (read by the store 999ms ago)", v.N)
	}
	now = now.Add(time.Millisecond)
	if v, _ := view.Current(ctx); v.N != 3 {
		t.Fatalf("view a second after its read = version %d, want 3", v.N)
	}
	if _, err := s.Revoke(ctx, "U_SRE", "ops", "build:*"); err != nil {
		t.Fatal(err)
	}
	if v, _ := view.Current(ctx); v.N != 4 {
		t.Fatalf("view after a change through its own store = version %d, want 4 at once", v.N)
	}
}
