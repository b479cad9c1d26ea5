// Package worker runs queued jobs: it takes them from the queue, checks
// again that the requester may still run them, runs them under a timeout
// while heartbeating, reports progress, and retries, fails or dead-letters
// them. On shutdown it stops taking jobs, gives the running ones a grace
// period, and hands back the rest.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seed-5eb4e92e/deploybot/authz"
	"github.com/seed-5eb4e92e/deploybot/commands"
	"github.com/seed-5eb4e92e/deploybot/deploy"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// Reporter shows jobs to the people who asked for them (Slack, or the
// shell's terminal).
type Reporter interface {
	// Report shows rec: it posts a new message when rec.MessageTS is empty
	// and returns its timestamp, and otherwise updates that message.
	Report(ctx context.Context, rec queue.Record) (ts string, err error)
	// Note adds a line to the thread under the job's message.
	Note(ctx context.Context, rec queue.Record, text string) error
}

// Authorizer is asked again, when a job runs, whether its requester may
// still run it: a permission revoked after the request stops queued work.
type Authorizer interface {
	Check(ctx context.Context, user string, perm commands.Permission) error
}

// Outcome is how a job ended when its runner returned no error.
type Outcome struct {
	Succeeded bool
	// Result is the backend's verdict, e.g. "SUCCESS" or "FAILURE".
	Result   string
	Link     string
	LinkText string
	// Artifact is what a deploy put in place; Links are more places to
	// look; PromoteTo is the environment the job's Promote button deploys
	// to.
	Artifact  string
	Links     []deploy.Link
	PromoteTo string
	// Live is what a status job found running where; LiveTasks the
	// one-off tasks running on Mesos, or LiveTasksError why it could not
	// tell.
	Live           []queue.LiveApp
	LiveTasks      []queue.LiveTask
	LiveTasksError string
}

// Runner runs one kind of job (one command's Kind).
type Runner interface {
	Run(ctx context.Context, job queue.Job, steps *queue.Steps, report func(deploy.Progress)) (Outcome, error)
}

// Config tunes the pool. The zero value works; defaults are on the fields.
type Config struct {
	// Concurrency is how many jobs run at once. Default 4.
	Concurrency int
	// JobTimeout bounds one run of a job. Default 1h.
	JobTimeout time.Duration
	// MaxAttempts bounds runs after retryable failures; then the job is
	// dead-lettered. Default 5.
	MaxAttempts int
	// BackoffBase and BackoffMax shape the exponential backoff between
	// attempts, with jitter. Defaults 2s and 2m.
	BackoffBase, BackoffMax time.Duration
	// Grace is how long running jobs may go on after shutdown starts before
	// they are handed back. Default 30s.
	Grace time.Duration
	// Consumer names this process in the consumer group. Default
	// host-pid-random.
	Consumer string
	// Block is how long one read waits for a job. Default 2s.
	Block time.Duration
	// Audit, if set, gets an entry for each job stopped because its
	// requester's permission was revoked after the request.
	Audit Auditor
	// Approval lists the environments where a deploy, promote or rollback
	// runs only with someone else's approval. The responder asks for it;
	// the worker refuses a job without one, whoever queued it.
	Approval map[string]bool
}

// Auditor appends to the audit trail.
type Auditor interface {
	Append(ctx context.Context, e authz.Entry) (string, error)
}

func (c Config) withDefaults() Config {
	if c.Concurrency <= 0 {
		c.Concurrency = 4
	}
	if c.JobTimeout <= 0 {
		c.JobTimeout = time.Hour
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 5
	}
	if c.BackoffBase <= 0 {
		c.BackoffBase = 2 * time.Second
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 2 * time.Minute
	}
	if c.Grace <= 0 {
		c.Grace = 30 * time.Second
	}
	if c.Consumer == "" {
		host, _ := os.Hostname()
		c.Consumer = fmt.Sprintf("%s-%d-%04x", host, os.Getpid(), rand.IntN(1<<16))
	}
	if c.Block <= 0 {
		c.Block = 2 * time.Second
	}
	return c
}

// Pool is a set of workers sharing one queue.
type Pool struct {
	cfg     Config
	q       *queue.Queue
	runners atomic.Pointer[map[string]Runner]
	auth    Authorizer
	rep     Reporter
	log     *slog.Logger
	now     func() time.Time

	mu   sync.Mutex
	idle *sync.Cond
	busy int
}

// SetRunners replaces the runners, e.g. after the config's services
// changed. Jobs already running finish with the runner they started with.
func (p *Pool) SetRunners(runners map[string]Runner) { p.runners.Store(&runners) }

// New returns a pool; runners maps a command kind ("build") to its runner.
func New(cfg Config, q *queue.Queue, runners map[string]Runner, auth Authorizer, rep Reporter, log *slog.Logger) *Pool {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Pool{cfg: cfg.withDefaults(), q: q, auth: auth, rep: rep, log: log, now: time.Now}
	p.SetRunners(runners)
	p.idle = sync.NewCond(&p.mu)
	return p
}

// Run works until ctx is cancelled, then stops taking jobs, lets running
// ones finish within the grace period, hands back the others and returns.
func (p *Pool) Run(ctx context.Context) error {
	if err := p.q.Init(ctx); err != nil {
		return err
	}
	if err := p.q.Prune(ctx, 24*time.Hour); err != nil {
		p.log.Warn("could not remove stale consumers", "err", err)
	}
	jobCtx, cancelJobs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelJobs()
	go func() {
		<-ctx.Done()
		t := time.NewTimer(p.cfg.Grace)
		defer t.Stop()
		select {
		case <-t.C:
			cancelJobs()
		case <-jobCtx.Done():
		}
	}()
	var wg sync.WaitGroup
	consumers := make([]string, p.cfg.Concurrency)
	for i := range consumers {
		consumers[i] = fmt.Sprintf("%s/%d", p.cfg.Consumer, i)
		wg.Add(1)
		go func(consumer string) {
			defer wg.Done()
			p.loop(ctx, jobCtx, consumer)
		}(consumers[i])
	}
	wg.Wait()
	leaveCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	for _, c := range consumers {
		if err := p.q.Leave(leaveCtx, c); err != nil {
			p.log.Warn("could not leave the consumer group", "consumer", c, "err", err)
		}
	}
	return nil
}

// WaitIdle blocks until no job is running.
func (p *Pool) WaitIdle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.busy > 0 {
		p.idle.Wait()
	}
}

func (p *Pool) loop(ctx, jobCtx context.Context, consumer string) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		d, err := p.q.Next(ctx, consumer, p.cfg.Block)
		var poison *queue.PoisonError
		switch {
		case errors.As(err, &poison):
			p.reportPoison(jobCtx, poison)
			continue
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			p.log.Error("queue read failed", "consumer", consumer, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 10*time.Second)
			continue
		case d == nil:
			continue
		}
		backoff = 100 * time.Millisecond
		if ctx.Err() != nil {
			// Read as shutdown began: hand it straight back.
			if err := p.q.Release(context.WithoutCancel(ctx), d); err != nil {
				p.log.Error("hand back job", "job_id", d.Job.ID, "err", err)
			}
			return
		}
		p.mu.Lock()
		p.busy++
		p.mu.Unlock()
		p.handle(jobCtx, d)
		p.mu.Lock()
		p.busy--
		p.idle.Broadcast()
		p.mu.Unlock()
	}
}

// backoff is the delay before attempt+1: exponential, capped, with jitter
// between half and all of it so retries of many jobs spread out.
func (p *Pool) backoff(attempt int) time.Duration {
	d := p.cfg.BackoffBase
	for i := 1; i < attempt && d < p.cfg.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, p.cfg.BackoffMax)
	return d/2 + rand.N(d/2+1)
}
