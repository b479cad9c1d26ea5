package authz

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-5eb4e92e/deploybot/worker/queue/queuetest"
)

func TestAuditAppendReadExport(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb, prefix := queuetest.Redis(t)
	var mirrored []Entry
	var mu sync.Mutex
	a := NewAudit(AuditConfig{Mirror: func(e Entry) { mu.Lock(); mirrored = append(mirrored, e); mu.Unlock() }}, rdb, prefix)
	start := time.Now().Add(-time.Minute)
	var i int
	a.now = func() time.Time { return start.Add(time.Duration(i) * time.Second) }
	for j, e := range []Entry{
		{User: "U_ANN", Kind: "command", What: "/deploy api main to staging", Service: "api", Env: "staging", Outcome: "queued", Job: "j1"},
		{User: "U_BOB", Kind: "command", What: "/deploy web main to prod", Service: "web", Env: "prod", Outcome: "denied", Detail: "deploy:prod:web"},
		{User: "U_SRE", Kind: "policy", What: "/deploy perms grant dev build *", Outcome: "changed", Detail: "version 2"},
	} {
		i = j
		e.Time = time.Time{} // Append stamps it
		if _, err := a.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	all, err := a.Recent(ctx, AuditFilter{}, 10)
	if err != nil || len(all) != 3 || all[0].User != "U_SRE" || all[2].Job != "j1" || !all[2].Time.Equal(start) {
		t.Fatalf("Recent = %+v, %v; want all three, newest first", all, err)
	}
	bob, _ := a.Recent(ctx, AuditFilter{User: "U_BOB"}, 10)
	api, _ := a.Recent(ctx, AuditFilter{Service: "api"}, 10)
	if len(bob) != 1 || bob[0].Detail != "deploy:prod:web" || len(api) != 1 || api[0].Env != "staging" {
		t.Fatalf("filters: by user %+v, by service %+v", bob, api)
	}
	var buf bytes.Buffer
	n, err := a.Export(ctx, start.Add(500*time.Millisecond), &buf)
	if err != nil || n != 2 || strings.Count(buf.String(), "\n") != 2 || strings.Contains(buf.String(), `"j1"`) {
		t.Fatalf("Export since the second entry wrote %d: %s (%v)", n, buf.String(), err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(mirrored) != 3 || mirrored[0].ID == "" {
		t.Fatalf("mirrored %+v", mirrored)
	}
}

// AppendAll writes a batch in order, mirrors each entry with its ID, and
// reports an ID for each.
func TestAuditAppendAll(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb, prefix := queuetest.Redis(t)
	var mirrored []string
	a := NewAudit(AuditConfig{Mirror: func(e Entry) { mirrored = append(mirrored, e.ID) }}, rdb, prefix)
	batch := []Entry{{User: "U1", Kind: "command", What: "one"}, {User: "U2", Kind: "command", What: "two"}, {User: "U3", Kind: "click", What: "three"}}
	ids, errs := a.AppendAll(ctx, batch)
	for i := range batch {
		if errs[i] != nil || ids[i] == "" {
			t.Fatalf("entry %d: id %q, err %v", i, ids[i], errs[i])
		}
	}
	if strings.Join(mirrored, ",") != strings.Join(ids, ",") {
		t.Errorf("mirrored %v, want the IDs in order %v", mirrored, ids)
	}
	got, err := a.Recent(ctx, AuditFilter{}, 10)
	if err != nil || len(got) != 3 || got[0].What != "three" || got[2].What != "one" || got[2].ID != ids[0] {
		t.Fatalf("Recent = %+v, %v; want three, two, one", got, err)
	}
}
