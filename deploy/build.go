package deploy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/seed-5eb4e92e/deploybot/backends/jenkins"
)

// Builder runs CI jobs. *jenkins.Client satisfies it.
type Builder interface {
	Trigger(ctx context.Context, job string, params map[string]string) (int64, error)
	QueueItem(ctx context.Context, id int64) (jenkins.QueueItem, error)
	Build(ctx context.Context, job string, number int) (jenkins.Build, error)
}

// BuildJob says how a service is built.
type BuildJob struct {
	// Job is the Jenkins job path, folders separated by "/".
	Job string
	// RefParam is the job parameter that receives the ref. Default "BRANCH".
	RefParam string
	// Params are passed to every build as they are.
	Params map[string]string
}

// ParamsFor returns the parameters of a build of ref: the job's fixed ones
// and the ref in RefParam.
func (j BuildJob) ParamsFor(ref string) map[string]string {
	params := make(map[string]string, len(j.Params)+1)
	for k, v := range j.Params {
		params[k] = v
	}
	params[j.RefParamName()] = ref
	return params
}

// RefParamName is RefParam, or its default "BRANCH".
func (j BuildJob) RefParamName() string {
	if j.RefParam == "" {
		return "BRANCH"
	}
	return j.RefParam
}

// Builds runs build steps.
type Builds struct {
	Builder Builder
	// Jobs maps a service name to its build job.
	Jobs map[string]BuildJob
	// Poll is how often Jenkins is asked for news. Default 2s.
	Poll time.Duration
}

// BuildResult is how a build ended.
type BuildResult struct {
	// Outcome is Jenkins' result (SUCCESS, UNSTABLE, FAILURE, ABORTED,
	// NOT_BUILT), or CANCELLED when the queue item was cancelled.
	Outcome  string
	Number   int
	URL      string
	Duration time.Duration
	// QueueID is the Jenkins queue item the build came from.
	QueueID int64
}

// Succeeded reports whether the build produced something usable.
func (r BuildResult) Succeeded() bool { return r.Outcome == "SUCCESS" }

// Step names in the job's state.
const (
	stepQueueItem = "jenkins_queue_item"
	stepBuild     = "jenkins_build"
)

// Run builds ref of service and follows the build to its end, calling
// report whenever there is news. It resumes from steps: a queue item or
// build already recorded is followed, not triggered again.
func (b *Builds) Run(ctx context.Context, service, ref string, steps Steps, report func(Progress)) (BuildResult, error) {
	cfg, ok := b.Jobs[service]
	if !ok {
		return BuildResult{}, &Failure{Msg: fmt.Sprintf("No build job is configured for %s.", service)}
	}
	number, err := intStep(ctx, steps, stepBuild)
	if err != nil {
		return BuildResult{}, err
	}
	if number == 0 {
		if number, err = b.queue(ctx, cfg, ref, steps, report); err != nil || number == 0 {
			return BuildResult{Outcome: "CANCELLED"}, err
		}
	}
	return b.follow(ctx, cfg, number, report)
}

// queue triggers the build (unless that was done already) and waits for it
// to leave the Jenkins queue. It returns 0 when the item was cancelled.
func (b *Builds) queue(ctx context.Context, cfg BuildJob, ref string, steps Steps, report func(Progress)) (int, error) {
	id, err := intStep(ctx, steps, stepQueueItem)
	if err != nil {
		return 0, err
	}
	if id == 0 {
		if id, err = b.trigger(ctx, cfg, ref, steps); err != nil {
			return 0, err
		}
	}
	last := ""
	for {
		item, err := b.Builder.QueueItem(ctx, int64(id))
		var he *jenkins.HTTPError
		if errors.As(err, &he) && he.Status == http.StatusNotFound {
			return 0, &Failure{
				Msg: fmt.Sprintf("Jenkins no longer knows queue item %d of %s (it forgets items five minutes after they start); look for the build on the job's page.", id, cfg.Job),
				Err: err,
			}
		}
		if err != nil {
			return 0, explain(ctx, err, cfg.Job, "follow")
		}
		switch {
		case item.Cancelled:
			return 0, nil
		case item.Executable != nil && item.Executable.Number > 0:
			if err := steps.Set(ctx, stepBuild, strconv.Itoa(item.Executable.Number)); err != nil {
				return 0, err
			}
			return item.Executable.Number, nil
		}
		if stage := queueStage(item); stage != last {
			report(Progress{Stage: stage})
			last = stage
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(b.poll()):
		}
	}
}

// trigger starts the build and records its queue item before anything
// else happens.
func (b *Builds) trigger(ctx context.Context, cfg BuildJob, ref string, steps Steps) (int, error) {
	qid, err := b.Builder.Trigger(ctx, cfg.Job, cfg.ParamsFor(ref))
	if err != nil {
		return 0, explain(ctx, err, cfg.Job, "start")
	}
	if err := steps.Set(ctx, stepQueueItem, strconv.FormatInt(qid, 10)); err != nil {
		return 0, err
	}
	return int(qid), nil
}

func queueStage(item jenkins.QueueItem) string {
	switch item.Kind() {
	case "WaitingItem":
		return "queued in Jenkins"
	case "BlockedItem":
		if item.Why != "" {
			return "blocked: " + item.Why
		}
		return "blocked"
	case "BuildableItem":
		return "waiting for an executor"
	default:
		return "starting"
	}
}

func (b *Builds) follow(ctx context.Context, cfg BuildJob, number int, report func(Progress)) (BuildResult, error) {
	reported := false
	for {
		build, err := b.Builder.Build(ctx, cfg.Job, number)
		if err != nil {
			return BuildResult{}, explain(ctx, err, cfg.Job, "follow")
		}
		if !build.Building && build.Result != "" {
			return BuildResult{
				Outcome:  build.Result,
				Number:   build.Number,
				URL:      build.URL,
				Duration: time.Duration(build.Duration) * time.Millisecond,
				QueueID:  build.QueueID,
			}, nil
		}
		if !reported {
			report(Progress{Stage: "building", Link: build.URL, LinkText: "#" + strconv.Itoa(build.Number)})
			reported = true
		}
		select {
		case <-ctx.Done():
			return BuildResult{}, ctx.Err()
		case <-time.After(b.poll()):
		}
	}
}

func (b *Builds) poll() time.Duration {
	if b.Poll <= 0 {
		return 2 * time.Second
	}
	return b.Poll
}

// explain wraps a Jenkins error in a Failure whose text a user can act on.
// The cause stays reachable with errors.As, so the worker still sees
// whether it is worth retrying (5xx, network errors).
func explain(ctx context.Context, err error, job, doing string) error {
	if ctx.Err() != nil {
		return err // the job's own time ran out, or the worker is stopping
	}
	var he *jenkins.HTTPError
	if !errors.As(err, &he) {
		var ne net.Error
		switch {
		case errors.Is(err, jenkins.ErrNotQueued):
			return &Failure{Msg: fmt.Sprintf("Jenkins accepted the request for %s but did not queue a build; is the job parameterized?", job), Err: err}
		case errors.As(err, &ne) && ne.Timeout():
			return &Failure{Msg: fmt.Sprintf("Jenkins did not answer in time while deploybot tried to %s %s.", doing, job), Err: err}
		}
		return &Failure{Msg: fmt.Sprintf("Jenkins could not be reached while deploybot tried to %s %s.", doing, job), Err: err}
	}
	var msg string
	switch he.Status {
	case http.StatusNotFound:
		msg = fmt.Sprintf("Jenkins has no job %s (or deploybot may not see it).", job)
	case http.StatusConflict:
		msg = fmt.Sprintf("Jenkins says %s is not buildable; is it disabled?", job)
	case http.StatusBadRequest:
		msg = fmt.Sprintf("Jenkins refused the build request for %s; check the job's parameters against the service's config.", job)
	case http.StatusUnauthorized, http.StatusForbidden:
		msg = fmt.Sprintf("Jenkins refused deploybot's credentials for %s.", job)
	default:
		msg = fmt.Sprintf("Jenkins answered %d %s while deploybot tried to %s %s.", he.Status, http.StatusText(he.Status), doing, job)
	}
	return &Failure{Msg: msg, Err: err}
}

func intStep(ctx context.Context, steps Steps, name string) (int, error) {
	v, err := steps.Get(ctx, name)
	if err != nil || v == "" {
		return 0, err
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("deploy: step %s holds %q: %w", name, v, err)
	}
	return n, nil
}
