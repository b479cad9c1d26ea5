package bot

import (
	"context"
	"log/slog"
	"time"

	"github.com/seed-5eb4e92e/deploybot/authz"
)

// AuditLog is where the responder appends what people asked for and how
// it ended.
type AuditLog interface {
	Append(ctx context.Context, e authz.Entry) (string, error)
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

// record appends e to the audit trail after the answer has gone: Slack's
// three seconds are for the answer. A failure is logged, and does not undo
// what was done.
func (r *Responder) record(e *authz.Entry, out outcome, log *slog.Logger) {
	if r.audit == nil {
		return
	}
	e.Outcome = string(out)
	if e.Time.IsZero() {
		e.Time = r.now()
	}
	entry := *e
	r.bg.Add(1)
	go func() {
		defer r.bg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := r.audit.Append(ctx, entry); err != nil {
			log.Error("audit entry not saved", "err", err, "kind", entry.Kind, "outcome", entry.Outcome)
		}
	}()
}
