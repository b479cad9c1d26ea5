package blame

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/seed-5eb4e92e/deploybot/backends/jenkins"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// Named errors of the notice buttons; their text is fit for Slack.
var (
	ErrNotOpen        = errors.New("it is fixed already; there is nothing to retry")
	ErrAlreadyRetried = errors.New("it was already retried for this failure")
	ErrCannotRetry    = errors.New("deploybot cannot retry this: there is no Jenkins job or Gerrit change to run again")
)

// Steps remembers what a job has done, so a job run again after its
// worker died does not do it twice. *queue.Steps satisfies it.
type Steps interface {
	Get(ctx context.Context, name string) (string, error)
	Set(ctx context.Context, name, value string) error
}

// stepRetried is the step of a notice-retry job that started the rerun.
const stepRetried = "retried"

// Retry runs a notice's failure again, once per failing run: it posts the
// recheck comment on the change, or starts the job again with the same
// parameters. The notice then says who retried it. steps (nil: none)
// keeps a job that is run again from starting a second rerun.
func (e *Engine) Retry(ctx context.Context, id, user string, steps Steps) (queue.Notice, error) {
	var out queue.Notice
	err := e.withNotice(ctx, id, func(ctx context.Context, n *queue.Notice) error {
		done := ""
		if steps != nil {
			var err error
			if done, err = steps.Get(ctx, stepRetried); err != nil {
				return err
			}
		}
		if done == "" {
			switch {
			case !n.Open():
				return ErrNotOpen
			case n.RetriedAt >= n.Runs:
				return ErrAlreadyRetried
			}
			if err := e.rerun(ctx, n.Retry); err != nil {
				return err
			}
			if steps != nil {
				if err := steps.Set(ctx, stepRetried, "1"); err != nil {
					return err
				}
			}
		}
		n.RetriedBy, n.RetriedAt, n.RetryQueue, n.Updated = user, n.Runs, n.NewestQueue, e.now()
		out = *n
		return nil
	})
	return out, err
}

func (e *Engine) rerun(ctx context.Context, t queue.RetryTarget) error {
	switch {
	case t.Kind == "recheck" && e.changes != nil:
		if err := e.changes.Recheck(ctx, t.Project, t.Change, e.cfg.RecheckComment); err != nil {
			return fmt.Errorf("blame: recheck change %d: %w", t.Change, err)
		}
	case t.Kind == "rebuild" && e.builds != nil:
		params := t.Params
		if jenkins.CheckParams(params) != nil {
			params = nil // a notification's odd parameter is not worth refusing the retry over
		}
		_, err := e.builds.Trigger(ctx, t.Job, params)
		var he *jenkins.HTTPError
		if errors.As(err, &he) && he.Status == http.StatusBadRequest && len(params) > 0 {
			// The job takes no parameters (or no longer takes these): run
			// it plainly.
			_, err = e.builds.Trigger(ctx, t.Job, nil)
		}
		if err != nil {
			return fmt.Errorf("blame: rebuild %s: %w", t.Job, err)
		}
	default:
		return ErrCannotRetry
	}
	return nil
}

// Mute quiets the notice's subject for d: no new notices, and the current
// one says who muted it until when.
func (e *Engine) Mute(ctx context.Context, id, user string, d time.Duration) (queue.Notice, error) {
	var out queue.Notice
	err := e.withNotice(ctx, id, func(_ context.Context, n *queue.Notice) error {
		n.MutedUntil, n.MutedBy, n.Updated = e.now().Add(d), user, e.now()
		out = *n
		return nil
	})
	return out, err
}

// withNotice loads notice id under its lock, lets change edit it, and then
// updates its message and saves it. What change refuses is not saved.
func (e *Engine) withNotice(ctx context.Context, id string, change func(context.Context, *queue.Notice) error) error {
	return e.store.WithLock(ctx, "notice:"+id, time.Minute, 30*time.Second, func(ctx context.Context) error {
		n, err := e.store.Notice(ctx, id)
		if err != nil {
			return err
		}
		if err := change(ctx, &n); err != nil {
			return err
		}
		if n.MessageTS != "" {
			if _, _, err := e.notify.Show(ctx, n); err != nil {
				e.log.Warn("could not update the notice", "err", err)
			}
		}
		return e.store.SaveNotice(ctx, n)
	})
}
