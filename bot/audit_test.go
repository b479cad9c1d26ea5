package bot

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/seed-5eb4e92e/deploybot/authz"
	"github.com/seed-5eb4e92e/deploybot/commands"
)

// gatedAudit holds its first write until released, and keeps the batches
// it was given.
type gatedAudit struct {
	started chan struct{}
	release chan struct{}
	once    sync.Once
	mu      sync.Mutex
	batches [][]string
}

func (g *gatedAudit) AppendAll(_ context.Context, entries []authz.Entry) ([]string, []error) {
	g.once.Do(func() { close(g.started); <-g.release })
	var whats []string
	for _, e := range entries {
		whats = append(whats, e.What)
	}
	g.mu.Lock()
	g.batches = append(g.batches, whats)
	g.mu.Unlock()
	return make([]string, len(entries)), make([]error, len(entries))
}

func (g *gatedAudit) Recent(context.Context, authz.AuditFilter, int) ([]authz.Entry, error) {
	return nil, nil
}

// While one batch is being written, what is recorded meanwhile waits and
// goes in the next batch, in order: one round trip for many answers.
func TestAuditEntriesAreWrittenInBatchesInOrder(t *testing.T) {
	audit := &gatedAudit{started: make(chan struct{}), release: make(chan struct{})}
	table, err := commands.NewTable("/deploy", commands.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Config{SigningSecret: testSecret}, table, testCatalog, Deps{Audit: audit}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.record(&authz.Entry{What: "e0"}, "queued", r.log)
	<-audit.started
	for i := 1; i < 50; i++ {
		r.record(&authz.Entry{What: fmt.Sprintf("e%d", i)}, "queued", r.log)
	}
	close(audit.release)
	r.Wait()
	if len(audit.batches) != 2 || len(audit.batches[0]) != 1 || len(audit.batches[1]) != 49 {
		t.Fatalf("batches of %v, want one of 1 and then one of 49", audit.batches)
	}
	for i, what := range audit.batches[1] {
		if want := fmt.Sprintf("e%d", i+1); what != want {
			t.Fatalf("entry %d of the second batch is %s, want %s: entries must stay in order", i, what, want)
		}
	}
	r.record(&authz.Entry{What: "later"}, "queued", r.log)
	r.Wait()
	if n := len(audit.batches); n != 3 || audit.batches[2][0] != "later" {
		t.Fatalf("an entry recorded after the writer finished was not written: %v", audit.batches)
	}
}
