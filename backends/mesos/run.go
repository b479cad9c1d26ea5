package mesos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"
)

// missedHeartbeats is how many heartbeat intervals may pass without an
// event before the connection is taken for dead and a new subscription is
// made, as the scheduler API docs suggest ("a bunch (e.g., 5)").
const missedHeartbeats = 5

// run is the state of one RunTask, kept across re-subscriptions.
type run struct {
	c      *Client
	spec   TaskSpec
	report func(TaskStatus)
	log    *slog.Logger

	frameworkID string
	agentID     string
	// launched: an ACCEPT with the task was sent (or an earlier run's task
	// was found), so offers are no longer needed; inFlight: no update for
	// it yet, so offers are held in case the launch is dropped.
	launched, inFlight bool
	held               []offer
	drops              int
	offerDeadline      time.Time
	shortfall          string
	last               TaskStatus
}

// maxDrops bounds launching again after TASK_DROPPED (the task did not
// start, e.g. its offer was rescinded just before the ACCEPT arrived).
const maxDrops = 3

// RunTask runs spec to its end and returns its final status; report, if not
// nil, gets every status update on the way, from the run's goroutine.
//
// It is idempotent by spec.ID. It first asks the operator API whether the
// master knows the task: if it ended, its status is returned and nothing
// is launched (a TASK_DROPPED task never started and is launched again);
// if it is still live — launched by a worker that since died — RunTask
// subscribes as that task's framework (the failover timeout kept it),
// reconciles, and follows the task to its end. Otherwise it subscribes as a
// new framework, accepts the first offer the task fits in, and launches it
// with LAUNCH_GROUP on the default executor, the launch method the Mesos
// docs recommend over the legacy LAUNCH.
//
// Updates that carry a uuid are acknowledged. A lost connection or five
// missed heartbeats lead to a new subscription as the same framework, with
// backoff. At the end the framework is torn down. When ctx ends first the
// connection is only closed: the task keeps running for up to
// Config.FailoverTimeout, for another worker's RunTask to pick up.
func (c *Client) RunTask(ctx context.Context, spec TaskSpec, report func(TaskStatus)) (TaskStatus, error) {
	spec, err := spec.withDefaults()
	if err != nil {
		return TaskStatus{}, err
	}
	r := &run{c: c, spec: spec, report: report, log: c.log.With("task_id", spec.ID)}
	prev, found, err := c.Task(ctx, spec.ID)
	if err != nil {
		return TaskStatus{}, fmt.Errorf("mesos: run %s: look for an earlier run: %w", spec.ID, err)
	}
	switch {
	case found && prev.Terminal() && prev.State != "TASK_DROPPED":
		return prev, nil
	case found && !prev.Terminal():
		r.frameworkID, r.agentID, r.launched, r.last = prev.FrameworkID, prev.AgentID, true, prev
		r.log.Info("mesos: following the task an earlier run launched", "framework_id", prev.FrameworkID, "state", prev.State)
		if report != nil {
			report(prev)
		}
	}
	return r.loop(ctx)
}

// loop subscribes until the task ends or the run fails.
func (r *run) loop(ctx context.Context) (TaskStatus, error) {
	r.offerDeadline = time.Now().Add(r.c.cfg.OfferTimeout)
	failures := 0
	for {
		subscribed, err := r.session(ctx)
		if err == nil {
			return r.last, nil
		}
		if ctx.Err() != nil {
			return r.last, fmt.Errorf("mesos: run %s: %w", r.spec.ID, ctx.Err())
		}
		if permanent(err) {
			return r.last, fmt.Errorf("mesos: run %s: %w", r.spec.ID, err)
		}
		if subscribed {
			failures = 0
		}
		failures++
		if failures > r.c.retry.attempts {
			return r.last, fmt.Errorf("mesos: run %s: gave up reaching the master: %w", r.spec.ID, err)
		}
		wait := r.c.retry.backoff(failures)
		r.log.Warn("mesos: subscription lost, subscribing again", "err", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return r.last, fmt.Errorf("mesos: run %s: %w", r.spec.ID, ctx.Err())
		case <-t.C:
		}
	}
}

func (p retryPolicy) backoff(n int) time.Duration {
	d := p.min
	for i := 1; i < n && d < p.max; i++ {
		d *= 2
	}
	d = min(d, p.max)
	return d/2 + rand.N(d/2+1) // jitter spreads many workers out
}

// session runs one subscription. It returns nil once the task has ended
// and the framework was torn down; subscribed says whether SUBSCRIBED came.
func (r *run) session(ctx context.Context) (subscribed bool, err error) {
	sub, err := r.c.subscribe(ctx, r.frameworkID, r.launched)
	if err != nil {
		return false, err
	}
	defer sub.close()
	if r.frameworkID != sub.frameworkID {
		r.log.Info("mesos: subscribed", "framework_id", sub.frameworkID, "master", sub.master.Host)
	}
	r.frameworkID = sub.frameworkID
	if r.launched {
		if err := r.reconcile(ctx, sub); err != nil {
			return true, err
		}
	}
	err = r.follow(ctx, sub)
	if err == nil || errors.Is(err, ErrNoOffers) && !r.launched {
		r.teardown(ctx, sub) // done, or nothing was launched: the framework has no use
	}
	return true, err
}

func (r *run) teardown(ctx context.Context, sub *subscription) {
	if err := r.c.call(ctx, sub, call{Type: "TEARDOWN"}); err != nil {
		r.log.Warn("mesos: teardown failed; the master removes the framework after its failover timeout", "err", err)
	}
}

// follow handles events until the task ends (nil) or the subscription
// must be replaced or the run fails (an error).
func (r *run) follow(ctx context.Context, sub *subscription) error {
	quiet := missedHeartbeats * sub.heartbeat
	watchdog := time.NewTimer(quiet)
	defer watchdog.Stop()
	offerTimer := time.NewTimer(time.Until(r.offerDeadline))
	defer offerTimer.Stop()
	for {
		var noOffer <-chan time.Time
		if !r.launched {
			noOffer = offerTimer.C
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-watchdog.C:
			return fmt.Errorf("%w: no event for %s (%d heartbeats)", errResubscribe, quiet, missedHeartbeats)
		case <-noOffer:
			return r.noOffers()
		case it := <-sub.events:
			if it.err != nil {
				return fmt.Errorf("%w: stream ended: %w", errResubscribe, it.err)
			}
			watchdog.Reset(quiet)
			done, err := r.handle(ctx, sub, it.ev)
			if err != nil || done {
				return err
			}
			if !r.launched {
				offerTimer.Reset(time.Until(r.offerDeadline))
			}
		}
	}
}

func (r *run) handle(ctx context.Context, sub *subscription, ev event) (done bool, err error) {
	switch {
	case ev.Type == "OFFERS":
		return false, r.offers(ctx, sub, ev.Offers)
	case ev.Type == "RESCIND" && ev.Rescind != nil:
		r.rescind(ev.Rescind.OfferID.Value)
	case ev.Type == "UPDATE" && ev.Update != nil:
		return r.update(ctx, sub, ev.Update.Status)
	case ev.Type == "ERROR":
		return false, errorEvent(ev.errorMessage())
	case ev.Type == "FAILURE" && ev.Failure != nil:
		r.log.Warn("mesos: agent or executor failed", "agent_id", ev.Failure.AgentID.String(), "executor_id", ev.Failure.ExecutorID.String())
	}
	return false, nil // HEARTBEAT, and events a one-task framework has no use for
}

// update handles a status update: acknowledge, report, and decide.
func (r *run) update(ctx context.Context, sub *subscription, w wireStatus) (bool, error) {
	s := w.status(sub.frameworkID)
	if s.UUID != "" && s.AgentID != "" {
		if err := r.ack(ctx, sub, s); err != nil {
			return false, err // the update comes again after re-subscribing
		}
	}
	if s.TaskID != r.spec.ID {
		return false, nil
	}
	s, lost := r.settle(ctx, s)
	r.inFlight = false
	r.last = s
	if r.report != nil {
		r.report(s)
	}
	switch {
	case (s.State == "TASK_DROPPED" || lost) && r.drops < maxDrops:
		r.drops++
		r.launched = false
		r.offerDeadline = time.Now().Add(r.c.cfg.OfferTimeout)
		r.log.Warn("mesos: launch dropped, launching again", "state", s.State, "message", s.Message, "reason", s.Reason)
		return false, r.relaunch(ctx, sub)
	case s.State == "TASK_UNKNOWN":
		return false, errTaskUnknown
	case s.Terminal():
		return true, nil
	}
	if held := r.held; len(held) > 0 {
		r.held = nil
		return false, r.decline(ctx, sub, held, refuseLong)
	}
	return false, nil
}

// settle looks behind a reconciliation answer that ends the task. Its
// message is only "Reconciliation: Latest task state", and a task the
// master no longer holds is TASK_GONE ("Task is unknown to the agent")
// even when it finished and was acknowledged: the master's list of tasks
// has the executor's own last update, with the exit status. lost reports
// a launch that never reached the master (a lost ACCEPT): the master does
// not list the task at all.
func (r *run) settle(ctx context.Context, s TaskStatus) (_ TaskStatus, lost bool) {
	if s.Reason != "REASON_RECONCILIATION" || !s.Terminal() && s.State != "TASK_UNKNOWN" {
		return s, false
	}
	t, ok, err := r.c.Task(ctx, s.TaskID)
	switch {
	case err != nil:
		return s, false
	case ok && t.Terminal():
		if t.FrameworkID == "" {
			t.FrameworkID = s.FrameworkID
		}
		return t, false
	case !ok && r.inFlight:
		return s, true
	}
	return s, false
}

func (r *run) ack(ctx context.Context, sub *subscription, s TaskStatus) error {
	var cl call
	cl.Type = "ACKNOWLEDGE"
	cl.Acknowledge = &struct {
		AgentID id     `json:"agent_id"`
		TaskID  id     `json:"task_id"`
		UUID    string `json:"uuid"`
	}{AgentID: id{s.AgentID}, TaskID: id{s.TaskID}, UUID: s.UUID}
	return r.c.call(ctx, sub, cl)
}

// reconcile asks the master for the task's current state (explicit
// reconciliation, docs/reconciliation.md): after re-subscribing, updates
// sent while no one listened are only retried by the agent with backoff.
func (r *run) reconcile(ctx context.Context, sub *subscription) error {
	var cl call
	cl.Type = "RECONCILE"
	cl.Reconcile = &struct {
		Tasks []reconcileTask `json:"tasks"`
	}{Tasks: []reconcileTask{{TaskID: id{r.spec.ID}, AgentID: idOf(r.agentID)}}}
	return r.c.call(ctx, sub, cl)
}

func (r *run) noOffers() error {
	if r.shortfall == "" {
		return fmt.Errorf("%w within %s: no offers came (is role %q served?)", ErrNoOffers, r.c.cfg.OfferTimeout, r.c.cfg.Role)
	}
	return fmt.Errorf("%w within %s: last offer too small: %s", ErrNoOffers, r.c.cfg.OfferTimeout, r.shortfall)
}
