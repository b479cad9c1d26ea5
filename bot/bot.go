// Package bot is deploybot's Slack front: the HTTP handlers for slash
// commands, button clicks and events, the signature check, the ack that
// always comes within Slack's three seconds, Block Kit rendering, and the
// Slack Web API client the workers report through.
//
// The responder never calls Jenkins, Vault or any other backend: it
// verifies, parses, checks permission, de-duplicates, writes one job to the
// queue and answers.
package bot

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slack-go/slack"

	"github.com/seed-5eb4e92e/deploybot/authz"
	"github.com/seed-5eb4e92e/deploybot/commands"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// Queue is what the responder needs of the job queue.
type Queue interface {
	Enqueue(ctx context.Context, job queue.Job, dd queue.Dedupe) (queue.Enqueued, error)
	Record(ctx context.Context, id string) (queue.Record, error)
	Recent(ctx context.Context, service string, n int64) ([]queue.Record, error)
}

// Authorizer decides whether a Slack user may have a permission, and
// explains its decisions (for whoami and perms test).
type Authorizer interface {
	Check(ctx context.Context, user string, perm commands.Permission) error
	Explain(ctx context.Context, user string, perm commands.Permission) (authz.Explanation, error)
}

// OIDC serves the two steps of signing in in a browser.
type OIDC interface {
	ServeLogin(w http.ResponseWriter, r *http.Request)
	ServeCallback(w http.ResponseWriter, r *http.Request)
}

// FollowUpper sends a message to a response_url after the ack.
type FollowUpper interface {
	FollowUp(ctx context.Context, responseURL string, msg *slack.WebhookMessage) error
}

// NoticeReader reads breakage notices, for their buttons.
type NoticeReader interface {
	Notice(ctx context.Context, id string) (queue.Notice, error)
}

// Deps are the responder's collaborators. FollowUp may be nil (no
// follow-ups are sent), and so may Notices (notice buttons are refused).
type Deps struct {
	Queue   Queue
	Notices NoticeReader
	// Envs holds environment locks and deploy history; nil when deploybot
	// deploys nothing.
	Envs     Envs
	Auth     Authorizer
	FollowUp FollowUpper
	Health   *Health
	Metrics  *Metrics
	// Policy is the policy SREs edit with /deploy perms; nil when the
	// policy is only the config file's.
	Policy *authz.PolicyStore
	// Audit is the audit trail; nil keeps none.
	Audit AuditLog
	// SignIn and OIDC are /deploy login and its browser endpoints; nil
	// when signing in is not configured.
	SignIn SignIn
	OIDC   OIDC
	// Views, Approvals and Poster serve protected environments: the
	// confirmation dialog, the requests waiting in it or for approval, and
	// the approval message.
	Views     Views
	Approvals Approvals
	Poster    Poster
	// Home publishes the App Home tab; nil leaves it empty.
	Home HomePublisher
}

// Config tunes the responder. Defaults are on the fields.
type Config struct {
	// SigningSecret verifies requests (v0 HMAC-SHA256). Required, unless
	// SocketMode is set: then, without it, Slack requests over HTTP are
	// refused with 404.
	SigningSecret string
	// SocketMode says Slack reaches the responder over Socket Mode
	// (ServeSocketMode).
	SocketMode bool
	// AckTimeout bounds the whole ack path, well inside Slack's 3 s.
	// Default 2s.
	AckTimeout time.Duration
	// DedupeWindow is how long the same command from the same user in the
	// same channel is answered with the first job. Default 10s.
	DedupeWindow time.Duration
	// RetryWindow is how long a Retry button, once used, points at the job
	// it started instead of starting another. Default 30 days.
	RetryWindow time.Duration
	// MaxBody caps request bodies. Default 1 MiB.
	MaxBody int64
	// Recent is how many jobs /deploy status lists. Default 10.
	Recent int64
	// Protected maps an environment to what a deploy, promote or rollback
	// there must pass first: a confirmation dialog, and perhaps a second
	// person's approval.
	Protected map[string]Protection
	// Hooks maps a webhook ("jenkins", "gerrit") to how its sender proves
	// who it is. A hook with neither a secret nor clients is not served.
	Hooks map[string]HookAuth
}

// HookAuth is what a webhook's sender must present: the shared secret, or
// a client certificate, verified by the TLS listener, whose common name or
// DNS name is one of Clients.
type HookAuth struct {
	Secret  string
	Clients []string
}

func (h HookAuth) enabled() bool { return h.Secret != "" || len(h.Clients) > 0 }

func (c Config) withDefaults() Config {
	if c.AckTimeout <= 0 {
		c.AckTimeout = 2 * time.Second
	}
	if c.DedupeWindow <= 0 {
		c.DedupeWindow = 10 * time.Second
	}
	if c.RetryWindow <= 0 {
		c.RetryWindow = 30 * 24 * time.Hour
	}
	if c.MaxBody <= 0 {
		c.MaxBody = 1 << 20
	}
	if c.Recent <= 0 {
		c.Recent = 10
	}
	return c
}

// Responder answers Slack's requests.
type Responder struct {
	cfg       Config
	menu      atomic.Pointer[menu]
	q         Queue
	notices   NoticeReader
	envs      Envs
	auth      Authorizer
	policy    *authz.PolicyStore
	audit     AuditLog
	signIn    SignIn
	oidc      OIDC
	views     Views
	approvals Approvals
	poster    Poster
	home      HomePublisher
	follow    FollowUpper
	health    *Health
	metrics   *Metrics
	log       *slog.Logger
	now       func() time.Time
	bg        sync.WaitGroup
	auditQ    auditQueue
	handler   http.Handler
}

// New returns a responder.
func New(cfg Config, table *commands.Table, catalog commands.Catalog, d Deps, log *slog.Logger) (*Responder, error) {
	if cfg.SigningSecret == "" && !cfg.SocketMode {
		return nil, errors.New("bot: a signing secret is required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if d.Metrics == nil {
		d.Metrics = NewMetrics(nil)
	}
	if d.Health == nil {
		d.Health = NewHealth(HealthInput{})
	}
	r := &Responder{
		cfg: cfg.withDefaults(), q: d.Queue, notices: d.Notices, envs: d.Envs, auth: d.Auth,
		policy: d.Policy, audit: d.Audit, signIn: d.SignIn, oidc: d.OIDC, views: d.Views, approvals: d.Approvals, poster: d.Poster,
		home: d.Home, follow: d.FollowUp, health: d.Health, metrics: d.Metrics, log: log, now: time.Now,
	}
	r.SetCommands(table, catalog)
	r.handler = r.routes()
	return r, nil
}

// menu is what the responder understands: the command table and the
// services and environments it checks names against. A reload swaps it
// whole, so a request sees one or the other, never a mix.
type menu struct {
	table   *commands.Table
	catalog commands.Catalog
}

// SetCommands replaces the command table and catalog, e.g. after the
// config's services or environments changed. Requests in flight finish
// with the old ones.
func (r *Responder) SetCommands(table *commands.Table, catalog commands.Catalog) {
	r.menu.Store(&menu{table: table, catalog: catalog})
}

func (r *Responder) cmds() *menu { return r.menu.Load() }

// Handler serves the Slack endpoints and the health checks.
func (r *Responder) Handler() http.Handler { return r.handler }

func (r *Responder) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /slack/commands", r.timed("commands", r.handleCommand))
	mux.Handle("POST /slack/interactions", r.timed("interactions", r.handleInteraction))
	mux.Handle("POST /slack/events", r.timed("events", r.handleEvent))
	mux.Handle("POST /hooks/jenkins", r.timed("hooks_jenkins", r.hook("jenkins")))
	mux.Handle("POST /hooks/gerrit", r.timed("hooks_gerrit", r.hook("gerrit")))
	if r.oidc != nil {
		mux.HandleFunc("GET /oidc/login", r.oidc.ServeLogin)
		mux.HandleFunc("GET /oidc/callback", r.oidc.ServeCallback)
	}
	mux.HandleFunc("GET /healthz", r.health.ServeHealthz)
	mux.HandleFunc("GET /readyz", r.health.ServeReadyz)
	return mux
}

// Wait blocks until follow-ups sent after acks are done.
func (r *Responder) Wait() { r.bg.Wait() }

// outcome is what a handler did, for metrics and logs.
type outcome string

func (r *Responder) timed(endpoint string, h func(http.ResponseWriter, *http.Request) outcome) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		start := time.Now()
		out := h(w, req)
		r.metrics.ack.WithLabelValues(endpoint).Observe(time.Since(start).Seconds())
		r.metrics.requests.WithLabelValues(endpoint, string(out)).Inc()
	})
}

// ephemeral is a slash-command answer only the requester sees.
type ephemeral struct {
	ResponseType string        `json:"response_type"`
	Text         string        `json:"text"`
	Blocks       []slack.Block `json:"blocks,omitempty"`
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func reply(w http.ResponseWriter, text string) {
	writeJSON(w, ephemeral{ResponseType: "ephemeral", Text: text, Blocks: []slack.Block{section(text)}})
}

// followUp sends text, seen only by the user, to a response_url after the
// ack, without holding it up.
func (r *Responder) followUp(responseURL, text string, log *slog.Logger) {
	r.respond(responseURL, &slack.WebhookMessage{ResponseType: "ephemeral", Text: text}, log)
}

// replace rewrites the message a button was on, after the ack.
func (r *Responder) replace(responseURL, text string, log *slog.Logger) {
	msg := &slack.WebhookMessage{ReplaceOriginal: true, Text: text, Blocks: &slack.Blocks{BlockSet: []slack.Block{section(text)}}}
	r.respond(responseURL, msg, log)
}

func (r *Responder) respond(responseURL string, msg *slack.WebhookMessage, log *slog.Logger) {
	if r.follow == nil || responseURL == "" {
		return
	}
	r.bg.Add(1)
	go func() {
		defer r.bg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.follow.FollowUp(ctx, responseURL, msg); err != nil {
			log.Warn("follow-up failed", "err", err)
		}
	}()
}
