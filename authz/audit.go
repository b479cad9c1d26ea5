package authz

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Entry is one line of the audit trail: who did what, where, and how it
// ended. Entries are appended and never edited.
type Entry struct {
	// ID is the entry's stream ID, set by Append; Time is when it happened,
	// set by Append when the caller did not.
	ID   string    `json:"id,omitempty"`
	Time time.Time `json:"time"`
	// User is the Slack user; Email their linked or looked-up identity,
	// when there is one.
	User  string `json:"user"`
	Email string `json:"email,omitempty"`
	// Kind is what arrived: "command", "click", "approval", "policy".
	Kind string `json:"kind"`
	// What is the command or action as the user asked for it.
	What    string `json:"what"`
	Service string `json:"service,omitempty"`
	Env     string `json:"env,omitempty"`
	// Outcome is how it ended: "queued", "denied", "approved", "changed", …
	Outcome string `json:"outcome"`
	Job     string `json:"job,omitempty"`
	// Detail is anything else worth keeping: the rule that denied, the
	// policy version a change made.
	Detail string `json:"detail,omitempty"`
}

// AuditConfig tunes the audit trail. Its zero value keeps every entry.
type AuditConfig struct {
	// MaxEntries trims the stream to about this many entries (XADD MAXLEN
	// ~). 0 keeps everything: audit retention is a decision, not a default.
	MaxEntries int64
	// Mirror, if set, is called with every entry after it is saved, e.g. to
	// post it to an audit channel. It must not block.
	Mirror func(Entry)
	// Identities fills in Email for entries that lack one; may be nil.
	Identities IdentitySource
}

// Audit is the audit trail, a Redis stream.
type Audit struct {
	cfg AuditConfig
	rdb redis.UniversalClient
	key string
	now func() time.Time
}

// NewAudit returns the audit trail under the key prefix.
func NewAudit(cfg AuditConfig, rdb redis.UniversalClient, prefix string) *Audit {
	return &Audit{cfg: cfg, rdb: rdb, key: "{" + prefix + "}:audit", now: time.Now}
}

// Append saves e and returns its ID.
func (a *Audit) Append(ctx context.Context, e Entry) (string, error) {
	ids, errs := a.AppendAll(ctx, []Entry{e})
	return ids[0], errs[0]
}

// AppendAll saves entries in order in one round trip to Redis, and says
// for each its ID or why it was not saved. The responder writes what it
// answered this way, a batch at a time, after the answers have gone.
func (a *Audit) AppendAll(ctx context.Context, entries []Entry) ([]string, []error) {
	ids, errs := make([]string, len(entries)), make([]error, len(entries))
	cmds := make([]*redis.StringCmd, len(entries))
	_, _ = a.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range entries {
			e := &entries[i]
			if e.Time.IsZero() {
				e.Time = a.now()
			}
			e.Time = e.Time.UTC()
			if e.Email == "" && a.cfg.Identities != nil && e.User != "" {
				if id, err := a.cfg.Identities.Identify(ctx, e.User); err == nil {
					e.Email = id.Email
				}
			}
			args := &redis.XAddArgs{Stream: a.key, Values: e.fields()}
			if a.cfg.MaxEntries > 0 {
				args.MaxLen, args.Approx = a.cfg.MaxEntries, true
			}
			cmds[i] = p.XAdd(ctx, args)
		}
		return nil
	})
	for i, cmd := range cmds {
		e := entries[i]
		id, err := cmd.Result()
		if err != nil {
			errs[i] = fmt.Errorf("authz: audit %s by %s: %w", e.Kind, e.User, err)
			continue
		}
		e.ID, ids[i] = id, id
		if a.cfg.Mirror != nil {
			a.cfg.Mirror(e)
		}
	}
	return ids, errs
}

func (e Entry) fields() []any {
	f := []any{"time", e.Time.Format(time.RFC3339Nano), "user", e.User, "kind", e.Kind, "what", e.What, "outcome", e.Outcome}
	for _, kv := range [][2]string{{"email", e.Email}, {"service", e.Service}, {"env", e.Env}, {"job", e.Job}, {"detail", e.Detail}} {
		if kv[1] != "" {
			f = append(f, kv[0], kv[1])
		}
	}
	return f
}

func entryOf(m redis.XMessage) Entry {
	s := func(k string) string { v, _ := m.Values[k].(string); return v }
	t, _ := time.Parse(time.RFC3339Nano, s("time"))
	return Entry{ID: m.ID, Time: t, User: s("user"), Email: s("email"), Kind: s("kind"), What: s("what"),
		Service: s("service"), Env: s("env"), Outcome: s("outcome"), Job: s("job"), Detail: s("detail")}
}

// AuditFilter picks entries: by Slack user, by service, or all.
type AuditFilter struct {
	User    string
	Service string
}

func (f AuditFilter) match(e Entry) bool {
	return (f.User == "" || e.User == f.User) && (f.Service == "" || e.Service == f.Service)
}

// auditScanLimit bounds how far back Recent looks for matches.
const auditScanLimit = 20000

// Recent returns up to n matching entries, newest first.
func (a *Audit) Recent(ctx context.Context, f AuditFilter, n int) ([]Entry, error) {
	var out []Entry
	end := "+"
	for scanned := 0; len(out) < n && scanned < auditScanLimit; {
		msgs, err := a.rdb.XRevRangeN(ctx, a.key, end, "-", 500).Result()
		if err != nil {
			return nil, fmt.Errorf("authz: read audit: %w", err)
		}
		for _, m := range msgs {
			if e := entryOf(m); f.match(e) && len(out) < n {
				out = append(out, e)
			}
		}
		scanned += len(msgs)
		if len(msgs) < 500 {
			break
		}
		end = "(" + msgs[len(msgs)-1].ID
	}
	return out, nil
}

// exportSkew is how much earlier than asked Export starts reading, in case
// the clocks of Redis and of the process that appended disagree.
const exportSkew = 5 * time.Minute

// Export writes the entries appended since t, oldest first, as JSON lines,
// and returns how many.
func (a *Audit) Export(ctx context.Context, since time.Time, w io.Writer) (int, error) {
	start := strconv.FormatInt(max(since.Add(-exportSkew).UnixMilli(), 0), 10) + "-0"
	enc := json.NewEncoder(w)
	n := 0
	for {
		msgs, err := a.rdb.XRangeN(ctx, a.key, start, "+", 1000).Result()
		if err != nil {
			return n, fmt.Errorf("authz: read audit: %w", err)
		}
		for _, m := range msgs {
			e := entryOf(m)
			if e.Time.Before(since) {
				continue
			}
			if err := enc.Encode(e); err != nil {
				return n, err
			}
			n++
		}
		if len(msgs) < 1000 {
			return n, nil
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
}
