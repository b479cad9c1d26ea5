package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"
)

// SlackConfig configures the Slack Web API client. The zero value talks to
// slack.com with no token, which Slack refuses; serve requires a token.
type SlackConfig struct {
	// Token is the bot token (xoxb-…).
	Token string
	// APIURL is the Web API base. Default "https://slack.com/api/".
	APIURL string
	// Interval is the least time between two calls for one channel. Slack
	// allows about one message per second per channel. Default 1s.
	Interval time.Duration
	// ResponseHosts are the hosts a response_url may point at. Default
	// hooks.slack.com; the host of a non-default APIURL is added, so a fake
	// Slack works in tests and in the shell.
	ResponseHosts []string
}

// Slack is the bot's Slack Web API client. Calls for one channel go out in
// order, at most one per Interval; updates of a message that is still
// waiting to be sent replace each other, so a fast job costs one call per
// interval, not one per change; a 429 is waited out with its Retry-After and
// the call tried again. It is safe for concurrent use.
type Slack struct {
	api      *slack.Client
	hc       *http.Client
	cfg      SlackConfig
	log      *slog.Logger
	metrics  *Metrics
	hosts    map[string]bool
	sleep    func(context.Context, time.Duration) error
	ctx      context.Context
	cancel   context.CancelFunc
	mu       sync.Mutex
	channels map[string]*channelQueue
	wg       sync.WaitGroup
	people   people
}

type opKind int

const (
	opPost opKind = iota
	opUpdate
	opThread
)

type op struct {
	kind    opKind
	channel string
	ts      string
	text    string
	blocks  []slack.Block
	// ctx and done are set when a caller waits for the result; a call
	// whose caller has given up is not sent.
	ctx  context.Context
	done chan opResult
}

type opResult struct {
	channel string // the channel's ID, which Slack resolves a #name to
	ts      string
	err     error
}

type channelQueue struct {
	ops     []*op
	next    time.Time
	running bool
}

// NewSlack returns a client; hc nil means a client with a 10 s timeout.
// Call Stop to deliver what is still queued.
func NewSlack(cfg SlackConfig, hc *http.Client, m *Metrics, log *slog.Logger) (*Slack, error) {
	if cfg.APIURL == "" {
		cfg.APIURL = "https://slack.com/api/"
	}
	if !strings.HasSuffix(cfg.APIURL, "/") {
		cfg.APIURL += "/" // slack-go appends method names to it as they are
	}
	u, err := url.Parse(cfg.APIURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("bot: slack api url %q is not an absolute http(s) URL", cfg.APIURL)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	hosts := map[string]bool{"hooks.slack.com": true}
	for _, h := range cfg.ResponseHosts {
		hosts[h] = true
	}
	if u.Host != "slack.com" {
		hosts[u.Host] = true
	}
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Slack{
		api:      slack.New(cfg.Token, slack.OptionAPIURL(cfg.APIURL), slack.OptionHTTPClient(hc)),
		hc:       hc,
		cfg:      cfg,
		log:      log.With("backend", "slack"),
		metrics:  m,
		hosts:    hosts,
		sleep:    sleepCtx,
		ctx:      ctx,
		cancel:   cancel,
		channels: map[string]*channelQueue{},
	}
	return s, nil
}

// Stop delivers what is queued, waiting at most until ctx is done, then
// drops the rest.
func (s *Slack) Stop(ctx context.Context) {
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.cancel()
		<-done
	}
	s.cancel()
}

// Idle reports whether no call is queued or in flight.
func (s *Slack) Idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, q := range s.channels {
		if q.running {
			return false
		}
	}
	return true
}

// Post sends a new message and returns its timestamp once Slack has it.
func (s *Slack) Post(ctx context.Context, channel, text string, blocks []slack.Block) (string, error) {
	sent, err := s.PostMessage(ctx, channel, text, blocks)
	return sent.TS, err
}

// Sent is where Slack put a message: the channel's ID (a #name is resolved
// to it, and chat.update takes only IDs) and the message's timestamp.
type Sent struct{ Channel, TS string }

// PostMessage sends a new message and says where it went once Slack has
// it. If ctx ends while the message still waits its turn, it is not sent.
func (s *Slack) PostMessage(ctx context.Context, channel, text string, blocks []slack.Block) (Sent, error) {
	r := s.wait(ctx, &op{kind: opPost, channel: channel, text: text, blocks: blocks})
	return Sent{Channel: r.channel, TS: r.ts}, r.err
}

// Update replaces message ts in channel. It returns at once; if an update of
// the same message is still waiting, this one takes its place.
func (s *Slack) Update(channel, ts, text string, blocks []slack.Block) {
	s.enqueue(&op{kind: opUpdate, channel: channel, ts: ts, text: text, blocks: blocks})
}

// UpdateWait replaces message ts in channel and returns once Slack has the
// new text, so that a caller holding a lock knows its edit is not
// overtaken by an older one from another process.
func (s *Slack) UpdateWait(ctx context.Context, channel, ts, text string, blocks []slack.Block) error {
	return s.wait(ctx, &op{kind: opUpdate, channel: channel, ts: ts, text: text, blocks: blocks}).err
}

func (s *Slack) wait(ctx context.Context, o *op) opResult {
	o.ctx, o.done = ctx, make(chan opResult, 1)
	s.enqueue(o)
	select {
	case r := <-o.done:
		return r
	case <-ctx.Done():
		select {
		case r := <-o.done: // Slack answered as the caller gave up: keep the answer
			return r
		default:
			return opResult{err: ctx.Err()}
		}
	}
}

// Reply adds text to the thread of message ts. It returns at once.
func (s *Slack) Reply(channel, ts, text string) {
	s.enqueue(&op{kind: opThread, channel: channel, ts: ts, text: text})
}

func (s *Slack) enqueue(o *op) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.channels[o.channel]
	if q == nil {
		q = &channelQueue{}
		s.channels[o.channel] = q
	}
	if o.kind == opUpdate && o.done == nil {
		for _, p := range q.ops {
			if p.kind == opUpdate && p.ts == o.ts && p.done == nil {
				p.text, p.blocks = o.text, o.blocks
				s.metrics.slackCoalesced.Inc()
				return
			}
		}
	}
	q.ops = append(q.ops, o)
	if !q.running {
		q.running = true
		s.wg.Add(1)
		go s.drain(o.channel, q)
	}
}

// drain sends a channel's queued calls in order, pacing them, and exits when
// the queue is empty. An op is taken off the queue before it is sent, so a
// newer update never changes a call in flight; it waits for the next slot.
func (s *Slack) drain(channel string, q *channelQueue) {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		if len(q.ops) == 0 {
			q.running = false
			s.mu.Unlock()
			return
		}
		wait := time.Until(q.next)
		s.mu.Unlock()
		if wait > 0 {
			if err := s.sleep(s.ctx, wait); err != nil {
				s.abandon(channel, q, err)
				return
			}
		}
		s.mu.Lock()
		o := q.ops[0]
		q.ops = q.ops[1:]
		s.mu.Unlock()
		if o.ctx != nil && o.ctx.Err() != nil {
			o.done <- opResult{err: o.ctx.Err()} // its caller has gone; a late post would be a duplicate
			continue
		}
		res := s.call(o)
		s.mu.Lock()
		q.next = time.Now().Add(s.cfg.Interval)
		s.mu.Unlock()
		if o.done != nil {
			o.done <- res
		} else if res.err != nil {
			s.log.Warn("slack call dropped", "channel", channel, "err", res.err)
		}
	}
}

func (s *Slack) abandon(channel string, q *channelQueue, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range q.ops {
		if o.done != nil {
			o.done <- opResult{err: err}
		}
	}
	if len(q.ops) > 0 {
		s.log.Warn("slack calls dropped at shutdown", "channel", channel, "count", len(q.ops))
	}
	q.ops = nil
	q.running = false
}

// transientTries bounds how often a call that failed for a passing reason
// (Slack's 5xx, a network error) is tried again.
const transientTries = 3

// call makes one API call. A rate limit is waited out (at least a second,
// longer if Retry-After says so) and the call tried again, however long it
// takes; a passing failure is tried again a few times with backoff.
func (s *Slack) call(o *op) opResult {
	method := map[opKind]string{opPost: "chat.postMessage", opUpdate: "chat.update", opThread: "chat.postMessage"}[o.kind]
	transient := 0
	for {
		channel, ts, err := s.send(o)
		if err == nil {
			s.metrics.slackCalls.WithLabelValues(method, "ok").Inc()
			return opResult{channel: channel, ts: ts}
		}
		wait, limited, again := retryAfter(err, transient)
		switch {
		case limited:
			s.metrics.slackCalls.WithLabelValues(method, "ratelimited").Inc()
			s.metrics.slackRateLimited.WithLabelValues(method).Inc()
			s.log.Warn("slack rate limit; waiting", "method", method, "retry_after", wait.String())
		case again:
			transient++
			s.metrics.slackCalls.WithLabelValues(method, "error").Inc()
			s.log.Warn("slack call failed; trying again", "method", method, "wait", wait.String(), "err", err)
		default:
			s.metrics.slackCalls.WithLabelValues(method, "error").Inc()
			return opResult{err: fmt.Errorf("slack: %s: %w", method, err)}
		}
		if err := s.sleep(s.ctx, wait); err != nil {
			return opResult{err: err}
		}
		if o.ctx != nil && o.ctx.Err() != nil {
			return opResult{err: o.ctx.Err()} // the caller gave up while we waited; don't post late
		}
	}
}

func (s *Slack) send(o *op) (channel, ts string, err error) {
	opts := []slack.MsgOption{slack.MsgOptionText(o.text, false)}
	if len(o.blocks) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(o.blocks...))
	}
	switch o.kind {
	case opPost:
		channel, ts, err = s.api.PostMessageContext(s.ctx, o.channel, opts...)
	case opUpdate:
		channel, ts, _, err = s.api.UpdateMessageContext(s.ctx, o.channel, o.ts, opts...)
	case opThread:
		channel, ts, err = s.api.PostMessageContext(s.ctx, o.channel, append(opts, slack.MsgOptionTS(o.ts))...)
	}
	return channel, ts, err
}

// retryAfter classifies a failed call: rate limited (wait, then always try
// again), passing (wait, then try again while tries remain), or final.
func retryAfter(err error, tries int) (wait time.Duration, limited, again bool) {
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return max(rl.RetryAfter, time.Second), true, false
	}
	var sc slack.StatusCodeError
	if errors.As(err, &sc) && sc.Code == http.StatusTooManyRequests {
		return time.Second, true, false // a 429 without Retry-After
	}
	var ne net.Error
	passing := errors.As(err, &sc) && sc.Code >= 500 || errors.As(err, &ne)
	if passing && tries < transientTries && !errors.Is(err, context.Canceled) {
		return time.Second << tries, false, true
	}
	return 0, false, false
}

// ChannelUnavailable reports whether err means the bot cannot post in the
// channel (not invited, or the channel is gone).
func ChannelUnavailable(err error) bool {
	var se slack.SlackErrorResponse
	return errors.As(err, &se) && (se.Err == "not_in_channel" || se.Err == "channel_not_found" || se.Err == "is_archived")
}

// FollowUp posts msg to a response_url, after checking it points at Slack.
func (s *Slack) FollowUp(ctx context.Context, responseURL string, msg *slack.WebhookMessage) error {
	if err := s.CheckResponseURL(responseURL); err != nil {
		return err
	}
	err := slack.PostWebhookCustomHTTPContext(ctx, responseURL, s.hc, msg)
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	s.metrics.slackCalls.WithLabelValues("response_url", outcome).Inc()
	if err != nil {
		return fmt.Errorf("slack: response_url: %w", err)
	}
	return nil
}

// CheckResponseURL refuses a response_url that does not point at Slack (or
// at the configured fake), so a payload can never make the bot send a
// request elsewhere.
func (s *Slack) CheckResponseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("bot: response_url: %w", err)
	}
	if !s.hosts[u.Host] || (u.Scheme != "https" && !(u.Scheme == "http" && u.Host != "hooks.slack.com")) || u.User != nil {
		return fmt.Errorf("bot: response_url host %q is not Slack's", u.Host)
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
