package bot

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/seed-5eb4e92e/deploybot/authz"
)

// AuditLog is where the responder appends what people asked for and how
// it ended.
type AuditLog interface {
	AppendAll(ctx context.Context, entries []authz.Entry) ([]string, []error)
	Recent(ctx context.Context, f authz.AuditFilter, n int) ([]authz.Entry, error)
}

type entryKey struct{}

// withEntry carries the audit entry of the request being handled, so the
// code that learns its job ID or why it was denied can fill it in.
func withEntry(ctx context.Context, e *authz.Entry) context.Context {
	return context.WithValue(ctx, entryKey{}, e)
}

// entryOf is the request's audit entry; a throwaway one outside a request.
func entryOf(ctx context.Context) *authz.Entry {
	if e, ok := ctx.Value(entryKey{}).(*authz.Entry); ok {
		return e
	}
	return &authz.Entry{}
}

// auditQueue holds the entries waiting to be written. One writer at a time
// takes all of them and writes them in one round trip (a group commit): at
// a few thousand requests a second, one Redis write per request cost more
// CPU than the rest of the request (docs/performance.md).
type auditQueue struct {
	mu      sync.Mutex
	pending []authz.Entry
	logs    []*slog.Logger
	writing bool
}

// record appends e to the audit trail after the answer has gone: Slack's
// three seconds are for the answer. Entries are written in the order they
// were recorded. A failure is logged, and does not undo what was done.
func (r *Responder) record(e *authz.Entry, out outcome, log *slog.Logger) {
	if r.audit == nil {
		return
	}
	e.Outcome = string(out)
	if e.Time.IsZero() {
		e.Time = r.now()
	}
	q := &r.auditQ
	q.mu.Lock()
	q.pending = append(q.pending, *e)
	q.logs = append(q.logs, log)
	start := !q.writing
	q.writing = true
	q.mu.Unlock()
	if start {
		r.bg.Add(1)
		go r.writeAudit()
	}
}

// writeAudit writes what is pending, batch after batch, until nothing is.
func (r *Responder) writeAudit() {
	defer r.bg.Done()
	q := &r.auditQ
	for {
		q.mu.Lock()
		entries, logs := q.pending, q.logs
		q.pending, q.logs = nil, nil
		if len(entries) == 0 {
			q.writing = false
			q.mu.Unlock()
			return
		}
		q.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, errs := r.audit.AppendAll(ctx, entries)
		cancel()
		for i, err := range errs {
			if err != nil {
				logs[i].Error("audit entry not saved", "err", err, "kind", entries[i].Kind, "outcome", entries[i].Outcome)
			}
		}
	}
}
