package worker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/seed-5eb4e92e/deploybot/backends/gerrit"
	"github.com/seed-5eb4e92e/deploybot/backends/jenkins"
	"github.com/seed-5eb4e92e/deploybot/commands"
	"github.com/seed-5eb4e92e/deploybot/deploy"
	"github.com/seed-5eb4e92e/deploybot/worker/blame"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// EventRunner runs "hook" jobs: a Jenkins build notification or a Gerrit
// event, turned into breakage notices.
type EventRunner struct {
	Blame *blame.Engine
}

// Run reads the job's event and hands its result, if it is one, to blame.
func (e EventRunner) Run(ctx context.Context, job queue.Job, _ *queue.Steps, _ func(deploy.Progress)) (Outcome, error) {
	var res blame.Result
	var ok bool
	switch job.Request.Topic {
	case "jenkins":
		n, err := jenkins.ParseNotification(job.Payload)
		if err != nil {
			return Outcome{}, &deploy.Failure{Msg: "The Jenkins notification could not be read.", Err: err}
		}
		res, ok = blame.FromNotification(n)
	case "gerrit":
		ev, err := gerrit.ParseEvent(job.Payload)
		if err != nil {
			return Outcome{}, &deploy.Failure{Msg: "The Gerrit event could not be read.", Err: err}
		}
		res, ok = e.Blame.FromGerritEvent(ev)
	default:
		return Outcome{}, &deploy.Failure{Msg: fmt.Sprintf("Unknown webhook %q.", job.Request.Topic)}
	}
	if !ok {
		return Outcome{Succeeded: true, Result: "IGNORED"}, nil
	}
	if err := e.Blame.Handle(ctx, res); err != nil {
		return Outcome{}, err
	}
	return Outcome{Succeeded: true, Result: res.Status}, nil
}

// NoticeRunner runs the clicks on a breakage notice's buttons. The job
// carries the permission the notice needed when it was clicked; the runner
// checks it again against the notice as it is now.
type NoticeRunner struct {
	Blame   *blame.Engine
	Auth    Authorizer
	Notices interface {
		Notice(ctx context.Context, id string) (queue.Notice, error)
	}
}

// Run retries or mutes the notice named in the job.
func (n NoticeRunner) Run(ctx context.Context, job queue.Job, steps *queue.Steps, _ func(deploy.Progress)) (Outcome, error) {
	id := job.Request.Topic
	notice, err := n.Notices.Notice(ctx, id)
	if err != nil {
		return Outcome{}, noticeError(err)
	}
	if err := n.Auth.Check(ctx, job.User, queue.NoticePermission(notice)); err != nil {
		return Outcome{}, &deploy.Failure{Msg: "Not done: " + err.Error() + ".", Err: err}
	}
	switch job.Request.Kind {
	case "notice-mute":
		if _, err := n.Blame.Mute(ctx, id, job.User, blame.MuteFor); err != nil {
			return Outcome{}, noticeError(err)
		}
		return Outcome{Succeeded: true, Result: "MUTED"}, nil
	default:
		var done blame.Steps
		if steps != nil {
			done = steps
		}
		_, err := n.Blame.Retry(ctx, id, job.User, done)
		if errors.Is(err, blame.ErrAlreadyRetried) {
			return Outcome{Succeeded: true, Result: "ALREADY RETRIED"}, nil
		}
		if err != nil {
			return Outcome{}, noticeError(err)
		}
		return Outcome{Succeeded: true, Result: "RETRIED"}, nil
	}
}

func noticeError(err error) error {
	switch {
	case errors.Is(err, queue.ErrNotFound):
		return &deploy.Failure{Msg: "That notice is no longer known.", Err: err}
	case errors.Is(err, blame.ErrNotOpen), errors.Is(err, blame.ErrCannotRetry):
		return &deploy.Failure{Msg: "Not retried: " + err.Error() + ".", Err: err}
	}
	var he *gerrit.HTTPError
	if errors.As(err, &he) && !he.Temporary() {
		return &deploy.Failure{Msg: "Gerrit refused: " + he.Reason(), Err: err}
	}
	return err
}

// Gerrit is what the change commands need of Gerrit. *gerrit.Client
// satisfies it.
type Gerrit interface {
	Change(ctx context.Context, project string, number int) (gerrit.ChangeInfo, error)
	Recheck(ctx context.Context, project string, number int, comment string) error
	Submit(ctx context.Context, project string, number int) (gerrit.ChangeInfo, error)
	ChangeURL(project string, number int) string
}

// ChangeRunner runs /deploy recheck and /deploy submit. The request named
// only a change number; the runner looks up its project, maps it to a
// service and checks the exact permission before acting.
type ChangeRunner struct {
	Gerrit Gerrit
	Auth   Authorizer
	// Service maps a Gerrit project to the service it belongs to.
	Service func(project string) (string, bool)
	// RecheckComment is the comment that makes CI verify again. Default
	// "recheck".
	RecheckComment string
}

// Run rechecks or submits the job's change.
func (c ChangeRunner) Run(ctx context.Context, job queue.Job, steps *queue.Steps, _ func(deploy.Progress)) (Outcome, error) {
	number := job.Request.Change
	ch, err := c.Gerrit.Change(ctx, "", number)
	if err != nil {
		return Outcome{}, explainGerrit(err, number)
	}
	svc, ok := c.Service(ch.Project)
	if !ok {
		return Outcome{}, &deploy.Failure{Msg: fmt.Sprintf("Change %d is in project %s, which belongs to no configured service.", number, ch.Project)}
	}
	perm := commands.Permission{Action: job.Request.Action, Service: svc}
	if err := c.Auth.Check(ctx, job.User, perm); err != nil {
		return Outcome{}, &deploy.Failure{Msg: "Not done: " + err.Error() + ".", Err: err}
	}
	out := Outcome{Succeeded: true, LinkText: "change " + strconv.Itoa(number), Link: c.Gerrit.ChangeURL(ch.Project, number)}
	switch job.Request.Kind {
	case "submit":
		if ch.Status == "MERGED" {
			out.Result = "MERGED"
			return out, nil // merged already, perhaps by this job before a restart
		}
		if _, err := c.Gerrit.Submit(ctx, ch.Project, number); err != nil {
			return Outcome{}, explainGerrit(err, number)
		}
		out.Result = "MERGED"
	default:
		if done, _ := steps.Get(ctx, "rechecked"); done != "" {
			out.Result = "RECHECKED"
			return out, nil
		}
		comment := c.RecheckComment
		if comment == "" {
			comment = "recheck"
		}
		if err := c.Gerrit.Recheck(ctx, ch.Project, number, comment); err != nil {
			return Outcome{}, explainGerrit(err, number)
		}
		if err := steps.Set(ctx, "rechecked", "1"); err != nil {
			return Outcome{}, err
		}
		out.Result = "RECHECKED"
	}
	return out, nil
}

// explainGerrit turns Gerrit's refusals into messages for Slack; Gerrit's
// own reasons (a 409's "not ready: submit requirement …") are written for
// people and are shown. Temporary errors stay retryable.
func explainGerrit(err error, number int) error {
	var he *gerrit.HTTPError
	if !errors.As(err, &he) {
		return &deploy.Failure{Msg: "Gerrit could not be reached.", Err: err}
	}
	switch {
	case he.Temporary():
		return &deploy.Failure{Msg: fmt.Sprintf("Gerrit answered %d %s.", he.Status, http.StatusText(he.Status)), Err: err}
	case he.Status == http.StatusNotFound:
		return &deploy.Failure{Msg: fmt.Sprintf("Gerrit has no change %d (or deploybot may not see it).", number), Err: err}
	case he.Status == http.StatusUnauthorized:
		return &deploy.Failure{Msg: "Gerrit refused deploybot's credentials.", Err: err}
	}
	return &deploy.Failure{Msg: "Gerrit refused: " + he.Reason(), Err: err}
}
