// Package blame turns CI results into notices: when a Jenkins job or a
// change's gating breaks, it works out who broke it — from the Gerrit change
// behind the build, else from the commits of the first failing build, else
// from Jenkins' culprits — finds them on Slack by e-mail address, and posts
// one notice that @-mentions them, however often the failure is reported.
// When the thing is fixed, the notice says who fixed it.
package blame

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/seed-5eb4e92e/deploybot/backends/jenkins"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// Builds reads Jenkins builds and starts them again. *jenkins.Client
// satisfies it.
type Builds interface {
	Build(ctx context.Context, job string, number int) (jenkins.Build, error)
	Trigger(ctx context.Context, job string, params map[string]string) (int64, error)
}

// Changes asks Gerrit's CI to verify a change again. *gerrit.Client
// satisfies it.
type Changes interface {
	Recheck(ctx context.Context, project string, number int, comment string) error
}

// Directory finds a Slack user by e-mail address; found is false when
// there is none. *bot.Slack satisfies it.
type Directory interface {
	LookupEmail(ctx context.Context, email string) (id string, found bool, err error)
}

// Notifier shows notices in Slack.
type Notifier interface {
	// Show posts n when n.MessageTS is empty, and returns the channel ID
	// (Slack resolves a #name to one) and timestamp of the message;
	// otherwise it updates that message. It returns once Slack has it.
	Show(ctx context.Context, n queue.Notice) (channel, ts string, err error)
	// DM sends n to a user directly.
	DM(ctx context.Context, user string, n queue.Notice) error
}

// Store keeps notices. *queue.Queue satisfies it.
type Store interface {
	Notice(ctx context.Context, id string) (queue.Notice, error)
	SaveNotice(ctx context.Context, n queue.Notice) error
	WithLock(ctx context.Context, name string, ttl, wait time.Duration, fn func(context.Context) error) error
}

// Service is where a service's breakages are reported.
type Service struct {
	Name    string
	Channel string
	// Project is the service's Gerrit project.
	Project string
	// Jobs are the Jenkins jobs whose results are the service's.
	Jobs []string
	// BuildJob is the job /deploy build runs, with the ref in RefParam:
	// only its builds of DefaultRef are the service's; a feature branch
	// failing is news only to whoever built it.
	BuildJob, RefParam, DefaultRef string
}

// Config says where to report and how to recognise people.
type Config struct {
	Services []Service
	// Channel takes breakages of jobs and projects no service claims; with
	// none they are not reported.
	Channel string
	// CIAccounts are the usernames or e-mail addresses of CI accounts, which
	// are never blamed.
	CIAccounts []string
	// Aliases map an e-mail address, a Gerrit username or a Jenkins user
	// name to a Slack user ID ("U…") or to the e-mail address Slack knows.
	Aliases map[string]string
	// DM also sends each notice to the people it names.
	DM bool
	// RecheckComment is what Retry posts on a change. Default "recheck".
	RecheckComment string
	// VerifyLabel is the Gerrit label CI votes on. Default "Verified".
	VerifyLabel string
}

// MuteFor is how long the Mute button quiets a subject.
const MuteFor = time.Hour

// Deps are the engine's collaborators. Builds and Changes may be nil when
// there is no Jenkins or Gerrit to talk to.
type Deps struct {
	Builds    Builds
	Changes   Changes
	Directory Directory
	Notifier  Notifier
	Store     Store
}

// Engine decides what to post about CI results.
type Engine struct {
	cfg     Config
	builds  Builds
	changes Changes
	dir     Directory
	notify  Notifier
	store   Store
	log     *slog.Logger
	now     func() time.Time
}

// New returns an engine.
func New(cfg Config, d Deps, log *slog.Logger) *Engine {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	aliases := make(map[string]string, len(cfg.Aliases))
	for k, v := range cfg.Aliases {
		aliases[strings.ToLower(k)] = v // matched regardless of case
	}
	cfg.Aliases = aliases
	if cfg.RecheckComment == "" {
		cfg.RecheckComment = "recheck"
	}
	if cfg.VerifyLabel == "" {
		cfg.VerifyLabel = "Verified"
	}
	return &Engine{cfg: cfg, builds: d.Builds, changes: d.Changes, dir: d.Directory, notify: d.Notifier, store: d.Store, log: log, now: time.Now}
}

// Account is a person as a CI system names them.
type Account struct {
	Name     string
	Email    string
	Username string
}

// Change is the Gerrit change behind a result.
type Change struct {
	Project  string
	Number   int
	PatchSet int
	Subject  string
	URL      string
	Owner    Account
	Uploader Account
}

// Result is one CI result to act on.
type Result struct {
	// Job and Number name the Jenkins build, if the result is one.
	Job    string
	Number int
	// Status is Jenkins' result (SUCCESS, FAILURE, UNSTABLE, ABORTED, …);
	// a Gerrit vote is SUCCESS or FAILURE.
	Status string
	URL    string
	// Change is the Gerrit change the build verified or merged, if any.
	Change *Change
	// Gating is true when the result is a verdict on a change under review
	// rather than on its branch.
	Gating bool
	// EventType and EventAccount are the Gerrit event that started the
	// build (GERRIT_EVENT_TYPE, GERRIT_EVENT_ACCOUNT_*).
	EventType    string
	EventAccount Account
	// Vote describes a Gerrit vote result, e.g. "Verified-1 by CI Bot".
	Vote string
	// Params are the build's parameters, to run it again.
	Params map[string]string
	// Culprits are Jenkins user IDs from the notification.
	Culprits []string
	// Key identifies the event the result came from, however it was
	// delivered; empty for builds deploybot followed itself.
	Key string
	// QueueID is the Jenkins queue item the build came from. Queue IDs
	// only grow, even when a job's build numbers start again.
	QueueID int64
}

// Statuses of Gerrit events that are not verdicts: a new patch set, and
// an abandoned change.
const (
	StatusUploaded  = "UPLOADED"
	StatusAbandoned = "ABANDONED"
)

func failed(status string) bool { return status == "FAILURE" || status == "UNSTABLE" }

// Handle acts on one result: a failure opens (or adds to) a notice, a
// success of something broken closes it. Re-deliveries, and results older
// than the newest one heard of, change nothing.
func (e *Engine) Handle(ctx context.Context, r Result) error {
	svc, channel, ok := e.route(r)
	if !ok {
		e.log.Debug("no service or channel for this result; not reported", "job", r.Job)
		return nil
	}
	subject := "job:" + r.Job
	if r.Gating && r.Change != nil {
		subject = fmt.Sprintf("change:%s:%d", r.Change.Project, r.Change.Number)
	}
	return e.store.WithLock(ctx, "notice:"+queue.NoticeID(subject), time.Minute, 30*time.Second, func(ctx context.Context) error {
		n, err := e.load(ctx, subject)
		if err != nil {
			return err
		}
		switch {
		case r.Key != "" && n.SawEvent(r.Key):
			return nil
		case stale(n, r):
			e.log.Info("result older than the newest one heard of; ignored", "subject", subject, "result", label(r))
			return nil
		case failed(r.Status):
			return e.failure(ctx, n, svc, channel, r)
		case r.Status == "SUCCESS":
			return e.success(ctx, n, r)
		case r.Status == StatusUploaded:
			heard(&n, r)
			return e.store.SaveNotice(ctx, n)
		case r.Status == StatusAbandoned:
			return e.abandoned(ctx, n, r)
		}
		return nil
	})
}

// route finds the service and channel of a result: the service's channel,
// else the channel for breakages no service claims.
func (e *Engine) route(r Result) (service, channel string, ok bool) {
	name := ""
	for _, s := range e.cfg.Services {
		byProject := r.Change != nil && s.Project != "" && s.Project == r.Change.Project
		if byProject || (r.Job != "" && slices.Contains(s.Jobs, r.Job)) {
			if r.Job != "" && r.Job == s.BuildJob && !mainline(s, r.Params) {
				return "", "", false
			}
			name, channel = s.Name, s.Channel
			break
		}
	}
	channel = cmp.Or(channel, e.cfg.Channel)
	return name, channel, channel != ""
}

// label names a failure for the notice's list and for recognising
// re-deliveries: "platform-api-verify #87", or the vote.
func label(r Result) string {
	if r.Job != "" {
		return fmt.Sprintf("%s #%d", r.Job, r.Number)
	}
	if r.Change != nil {
		return fmt.Sprintf("%s on patch set %d", r.Vote, r.Change.PatchSet)
	}
	return r.Vote
}

func remove(list []string, s string) []string {
	out := list[:0]
	for _, v := range list {
		if v != s {
			out = append(out, v)
		}
	}
	return out
}

func (e *Engine) load(ctx context.Context, subject string) (queue.Notice, error) {
	n, err := e.store.Notice(ctx, queue.NoticeID(subject))
	if errors.Is(err, queue.ErrNotFound) {
		return queue.Notice{Subject: subject}, nil
	}
	return n, err
}

// isCI reports whether an account is a CI bot's.
func (e *Engine) isCI(a Account) bool {
	for _, c := range e.cfg.CIAccounts {
		if c != "" && (strings.EqualFold(c, a.Username) || strings.EqualFold(c, a.Email)) {
			return true
		}
	}
	return false
}
