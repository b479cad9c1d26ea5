package queue

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seed-5eb4e92e/deploybot/commands"
)

// Notice is a message telling a channel that something broke (a Jenkins
// job, or the gating of a Gerrit change) and who broke it, kept so that
// later deliveries update it instead of posting again, and a fix turns it
// into "fixed by …".
type Notice struct {
	// ID names the notice in button values: derived from Subject.
	ID string `json:"id"`
	// Subject is what is broken: "job:<jenkins job>" or
	// "change:<project>:<number>".
	Subject string `json:"subject"`
	Service string `json:"service,omitempty"`
	Channel string `json:"channel"`
	// MessageTS is the Slack message showing it.
	MessageTS string `json:"ts,omitempty"`
	// State is "failing", "fixed" or StateAbandoned.
	State string `json:"state"`
	// Title is what broke, e.g. "platform-api-verify #87".
	Title string `json:"title"`
	// Job is the Jenkins job a job notice is about.
	Job string `json:"job,omitempty"`
	// Gating is set on a notice about a change under review (its CI
	// verdict), rather than about a job.
	Gating bool `json:"gating,omitempty"`
	// Change describes the Gerrit change, when there is one.
	Change *NoticeChange `json:"change,omitempty"`
	Links  []Link        `json:"links,omitempty"`
	// Breakers are who broke it, each with why they are named.
	Breakers []Person `json:"breakers,omitempty"`
	// Failures lists what was seen failing ("platform-api-verify #87"),
	// so a re-delivery is recognised and repeats are summarised.
	Failures []string `json:"failures"`
	// Failing are the jobs still failing for a change's gating.
	Failing []string `json:"failing,omitempty"`
	// FixedBy are who fixed it, or who abandoned the change.
	FixedBy []Person `json:"fixed_by,omitempty"`
	FixedIn string   `json:"fixed_in,omitempty"`
	// Retry says what the Retry button does.
	Retry     RetryTarget `json:"retry"`
	RetriedBy string      `json:"retried_by,omitempty"`
	// Runs counts the failing CI runs: each failing build of a job; for
	// a change, the jobs and the vote of one run count once.
	Runs int `json:"runs,omitempty"`
	// LastKind is "job" or "vote": what the last failure was.
	LastKind string `json:"last_kind,omitempty"`
	// RetriedAt is Runs when the notice was last retried: one retry per
	// run. RetryQueue is NewestQueue then: builds queued later are the
	// retry's.
	RetriedAt  int   `json:"retried_at,omitempty"`
	RetryQueue int64 `json:"retry_queue,omitempty"`
	// Newest is the newest build number (job notices) or patch set
	// (change notices) heard of, failing or passing, and NewestQueue the
	// newest Jenkins queue ID; older results arriving late are stale.
	Newest      int   `json:"newest,omitempty"`
	NewestQueue int64 `json:"newest_queue,omitempty"`
	// Seen are the keys of the latest events acted on, so an event
	// delivered twice, or by both webhook and stream, counts once.
	Seen       []string  `json:"seen,omitempty"`
	MutedUntil time.Time `json:"muted_until,omitempty"`
	MutedBy    string    `json:"muted_by,omitempty"`
	Created    time.Time `json:"created"`
	Updated    time.Time `json:"updated"`
}

// NoticeChange is the Gerrit change a notice is about.
type NoticeChange struct {
	Project  string `json:"project"`
	Number   int    `json:"number"`
	PatchSet int    `json:"patch_set,omitempty"`
	Subject  string `json:"subject,omitempty"`
	URL      string `json:"url,omitempty"`
}

// Link is a labelled URL. Kind ("build", "console", "change") says which
// link a newer one replaces.
type Link struct {
	Kind string `json:"kind,omitempty"`
	Text string `json:"text"`
	URL  string `json:"url"`
}

// Person is someone a notice names: by Slack user ID when known, else by
// name and e-mail address, with the reason they are named.
type Person struct {
	SlackID string `json:"slack_id,omitempty"`
	Name    string `json:"name,omitempty"`
	Email   string `json:"email,omitempty"`
	Reason  string `json:"reason"`
}

// RetryTarget is what a notice's Retry button does: post the recheck
// comment on a change ("recheck"), or run a Jenkins job again with the same
// parameters ("rebuild").
type RetryTarget struct {
	Kind    string            `json:"kind,omitempty"`
	Project string            `json:"project,omitempty"`
	Change  int               `json:"change,omitempty"`
	Job     string            `json:"job,omitempty"`
	Params  map[string]string `json:"params,omitempty"`
}

// maxSeen bounds Notice.Seen: re-deliveries come soon after the original.
const maxSeen = 50

// SawEvent reports whether the event with key was acted on already.
func (n Notice) SawEvent(key string) bool {
	for _, k := range n.Seen {
		if k == key {
			return true
		}
	}
	return false
}

// RememberEvent records key among the events acted on.
func (n *Notice) RememberEvent(key string) {
	if key == "" || n.SawEvent(key) {
		return
	}
	n.Seen = append(n.Seen, key)
	if len(n.Seen) > maxSeen {
		n.Seen = n.Seen[len(n.Seen)-maxSeen:]
	}
}

// EveryService is the service of a permission that must cover every
// service: what acting on a notice no service claims needs.
const EveryService = "*"

// NoticePermission is what a notice's buttons need: the permission to run
// its failure again (recheck a change, or build the job). A notice no
// service claims needs that permission on every service, not on some.
func NoticePermission(n Notice) commands.Permission {
	action := "build"
	if n.Retry.Kind == "recheck" {
		action = "recheck"
	}
	svc := n.Service
	if svc == "" {
		svc = EveryService
	}
	return commands.Permission{Action: action, Service: svc}
}

// StateAbandoned is the state of a change's notice once the change is
// abandoned: closed, but not fixed.
const StateAbandoned = "abandoned"

// Open reports whether the notice still says something is broken.
func (n Notice) Open() bool { return n.State == "failing" }

// Muted reports whether new failures of the notice's subject are quiet.
func (n Notice) Muted(now time.Time) bool { return now.Before(n.MutedUntil) }

// NoticeID is the ID of the notice about subject.
func NoticeID(subject string) string {
	sum := sha256.Sum256([]byte(subject))
	return hex.EncodeToString(sum[:16])
}

// ValidNoticeID reports whether s has the form of a notice ID.
func ValidNoticeID(s string) bool {
	if len(s) != 32 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// noticeTTL is how long a notice is remembered after its last change.
const noticeTTL = 30 * 24 * time.Hour

// Notice returns the notice with id, or ErrNotFound.
func (q *Queue) Notice(ctx context.Context, id string) (Notice, error) {
	if !ValidNoticeID(id) {
		return Notice{}, fmt.Errorf("%w: %q is not a notice ID", ErrNotFound, id)
	}
	raw, err := q.rdb.Get(ctx, q.key("notice", id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Notice{}, fmt.Errorf("%w: notice %s", ErrNotFound, id)
	}
	if err != nil {
		return Notice{}, fmt.Errorf("queue: read notice %s: %w", id, err)
	}
	var n Notice
	if err := json.Unmarshal(raw, &n); err != nil {
		return Notice{}, fmt.Errorf("queue: decode notice %s: %w", id, err)
	}
	return n, nil
}

// SaveNotice writes n (its ID is set from its subject).
func (q *Queue) SaveNotice(ctx context.Context, n Notice) error {
	n.ID = NoticeID(n.Subject)
	raw, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("queue: encode notice: %w", err)
	}
	if err := q.rdb.Set(ctx, q.key("notice", n.ID), raw, noticeTTL).Err(); err != nil {
		return fmt.Errorf("queue: save notice %s: %w", n.ID, err)
	}
	return nil
}

// Once reports whether this is the first time key is seen within ttl.
func (q *Queue) Once(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	ok, err := q.rdb.SetNX(ctx, q.key("once", key), "1", ttl).Result()
	if err != nil {
		return false, fmt.Errorf("queue: once %s: %w", key, err)
	}
	return ok, nil
}
