package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// State is where a job is in its life.
type State string

// Job states. Succeeded, Failed and Dead are final.
const (
	StateQueued    State = "queued"
	StateRunning   State = "running"
	StateSucceeded State = "succeeded"
	StateFailed    State = "failed"
	StateDead      State = "dead"
)

// Final reports whether a job in state s will not change any more.
func (s State) Final() bool {
	return s == StateSucceeded || s == StateFailed || s == StateDead
}

// Record is what is known about a job: what was asked, where it is, and the
// Slack message that shows it. It is what /deploy status lists and what the
// Slack message is rendered from.
type Record struct {
	Job   Job
	State State
	// Stage says what the job is doing now, in a few words: "waiting for an
	// executor", "building".
	Stage string
	// Link points at what runs (a Jenkins build); LinkText labels it ("#42").
	Link     string
	LinkText string
	// Links are more places to look: a migration's sandbox, the Marathon
	// app.
	Links []Link
	// Artifact is what a deploy put in place, e.g. a Docker image.
	Artifact string
	// PromoteTo is where the job's Promote button deploys its artifact.
	PromoteTo string
	// Live is what a status job found running where; LiveTasks the
	// one-off tasks it found running on Mesos, or LiveTasksError why it
	// could not tell (safe for Slack).
	Live           []LiveApp
	LiveTasks      []LiveTask
	LiveTasksError string
	// Result is the backend's verdict on a finished job, e.g. "FAILURE".
	Result string
	// Error is a message about what went wrong, safe to show in Slack.
	Error string
	// Channel and MessageTS locate the Slack message showing the job.
	Channel   string
	MessageTS string
	// RetriedAs is the job that re-ran this one, RetriedBy who asked for it.
	RetriedAs string
	RetriedBy string
	Created   time.Time
	Started   time.Time
	Finished  time.Time
}

func (r Record) fields() map[string]any {
	body, _ := json.Marshal(r.Job) // Job has only marshalable fields
	return map[string]any{
		"job":              string(body),
		"state":            string(r.State),
		"stage":            r.Stage,
		"link":             r.Link,
		"link_text":        r.LinkText,
		"links":            marshalJSON(r.Links),
		"artifact":         r.Artifact,
		"promote_to":       r.PromoteTo,
		"live":             marshalJSON(r.Live),
		"live_tasks":       marshalJSON(r.LiveTasks),
		"live_tasks_error": r.LiveTasksError,
		"result":           r.Result,
		"error":            r.Error,
		"channel":          r.Channel,
		"ts":               r.MessageTS,
		"retried_as":       r.RetriedAs,
		"retried_by":       r.RetriedBy,
		"created":          formatMillis(r.Created),
		"started":          formatMillis(r.Started),
		"finished":         formatMillis(r.Finished),
	}
}

// marshalJSON encodes a record's list; nil is "".
func marshalJSON[T any](list []T) string {
	if len(list) == 0 {
		return ""
	}
	raw, _ := json.Marshal(list) // records hold only marshalable types
	return string(raw)
}

// LiveApp is what runs of a service in one environment, as Marathon said
// when a status job asked.
type LiveApp struct {
	Service  string    `json:"service"`
	Env      string    `json:"env"`
	App      string    `json:"app,omitempty"`
	Artifact string    `json:"artifact,omitempty"`
	Since    time.Time `json:"since,omitzero"`
	// User and Job are who deployed it with deploybot, when it was.
	User      string   `json:"user,omitempty"`
	Job       string   `json:"job,omitempty"`
	Healthy   int      `json:"healthy"`
	Running   int      `json:"running"`
	Instances int      `json:"instances"`
	Deploying bool     `json:"deploying,omitempty"`
	Lock      *EnvLock `json:"lock,omitempty"`
	// Error says why Marathon could not be asked, safe for Slack.
	Error string `json:"error,omitempty"`
}

// LiveTask is one of deploybot's one-off tasks that Mesos had not seen end
// when a status job asked.
type LiveTask struct {
	Service string `json:"service"`
	Env     string `json:"env"`
	// Task is its name in the pipeline, "migrate".
	Task string `json:"task"`
	// State is Mesos's, "TASK_RUNNING".
	State string `json:"state"`
	// Job and User are the job that launched it and who asked for that.
	Job   string    `json:"job,omitempty"`
	User  string    `json:"user,omitempty"`
	Since time.Time `json:"since,omitzero"`
}

func parseRecord(id string, m map[string]string) (Record, error) {
	if len(m) == 0 {
		return Record{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	var r Record
	if err := json.Unmarshal([]byte(m["job"]), &r.Job); err != nil {
		return Record{}, fmt.Errorf("queue: decode record %s: %w", id, err)
	}
	r.State = State(m["state"])
	r.Stage = m["stage"]
	r.Link = m["link"]
	r.LinkText = m["link_text"]
	if raw := m["links"]; raw != "" {
		_ = json.Unmarshal([]byte(raw), &r.Links) // links are a nicety; a bad list shows none
	}
	r.Artifact = m["artifact"]
	r.PromoteTo = m["promote_to"]
	if raw := m["live"]; raw != "" {
		_ = json.Unmarshal([]byte(raw), &r.Live) // shown only; a bad list shows none
	}
	if raw := m["live_tasks"]; raw != "" {
		_ = json.Unmarshal([]byte(raw), &r.LiveTasks)
	}
	r.LiveTasksError = m["live_tasks_error"]
	r.Result = m["result"]
	r.Error = m["error"]
	r.Channel = m["channel"]
	r.MessageTS = m["ts"]
	r.RetriedAs = m["retried_as"]
	r.RetriedBy = m["retried_by"]
	r.Created = parseMillis(m["created"])
	r.Started = parseMillis(m["started"])
	r.Finished = parseMillis(m["finished"])
	return r, nil
}

// Record returns the record of job id, or ErrNotFound.
func (q *Queue) Record(ctx context.Context, id string) (Record, error) {
	if !ValidID(id) {
		return Record{}, fmt.Errorf("%w: %q is not a job ID", ErrNotFound, id)
	}
	m, err := q.rdb.HGetAll(ctx, q.recordKey(id)).Result()
	if err != nil {
		return Record{}, fmt.Errorf("queue: read record %s: %w", id, err)
	}
	return parseRecord(id, m)
}

// Save writes rec. Only the worker holding a job saves its record.
func (q *Queue) Save(ctx context.Context, rec Record) error {
	key := q.recordKey(rec.Job.ID)
	pipe := q.rdb.TxPipeline()
	pipe.HSet(ctx, key, rec.fields())
	pipe.Expire(ctx, key, q.cfg.RecordTTL)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("queue: save record %s: %w", rec.Job.ID, err)
	}
	return nil
}

// MarkRetried notes on job id's record that job retry re-runs it, asked for
// by user.
func (q *Queue) MarkRetried(ctx context.Context, id, retry, user string) error {
	err := q.rdb.HSet(ctx, q.recordKey(id), "retried_as", retry, "retried_by", user).Err()
	if err != nil {
		return fmt.Errorf("queue: mark %s retried: %w", id, err)
	}
	return nil
}

// Recent returns up to n of the latest jobs of service, newest first; with
// an empty service, of every service.
func (q *Queue) Recent(ctx context.Context, service string, n int64) ([]Record, error) {
	index := q.key("recent")
	if service != "" {
		index = q.key("svc", service)
	}
	return q.listed(ctx, index, n)
}

// History returns up to n of the latest deploys, promotions and rollbacks
// of service, newest first: in env, or in every environment when env is "".
func (q *Queue) History(ctx context.Context, service, env string, n int64) ([]Record, error) {
	index := q.key("deploys", service)
	if env != "" {
		index = q.key("deploys", service, env)
	}
	return q.listed(ctx, index, n)
}

func (q *Queue) listed(ctx context.Context, index string, n int64) ([]Record, error) {
	ids, err := q.rdb.ZRevRange(ctx, index, 0, n-1).Result()
	if err != nil {
		return nil, fmt.Errorf("queue: recent jobs: %w", err)
	}
	pipe := q.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGetAll(ctx, q.recordKey(id))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("queue: recent jobs: %w", err)
	}
	out := make([]Record, 0, len(ids))
	for i, c := range cmds {
		rec, err := parseRecord(ids[i], c.Val())
		if err != nil {
			continue // expired or unreadable: status shows what it can
		}
		out = append(out, rec)
	}
	return out, nil
}

// Steps is the durable step state of one job: which external calls were
// made and what they returned, so that a job run again after a crash
// resumes instead of repeating them.
type Steps struct {
	q  *Queue
	id string
}

// Steps returns the step state of job id.
func (q *Queue) Steps(id string) *Steps { return &Steps{q: q, id: id} }

// Get returns the value of step name, or "" if it was never set.
func (s *Steps) Get(ctx context.Context, name string) (string, error) {
	v, err := s.q.rdb.HGet(ctx, s.q.recordKey(s.id), "step:"+name).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("queue: read step %s of %s: %w", name, s.id, err)
	}
	return v, nil
}

// Set records step name's value; it returns only once Redis has it.
func (s *Steps) Set(ctx context.Context, name, value string) error {
	if strings.ContainsAny(name, " \r\n") {
		return fmt.Errorf("queue: bad step name %q", name)
	}
	if err := s.q.rdb.HSet(ctx, s.q.recordKey(s.id), "step:"+name, value).Err(); err != nil {
		return fmt.Errorf("queue: record step %s of %s: %w", name, s.id, err)
	}
	return nil
}

// Int is a convenience for numeric steps; it returns 0 when unset.
func (s *Steps) Int(ctx context.Context, name string) (int, error) {
	v, err := s.Get(ctx, name)
	if err != nil || v == "" {
		return 0, err
	}
	return strconv.Atoi(v)
}

// Mention marks a Slack user in a record's plain text (Stage, Error),
// which Slack shows escaped: the bot turns the mark, and only the mark,
// into a mention, so text from users or backends cannot ping anyone.
func Mention(user string) string { return "{{@" + user + "}}" }
