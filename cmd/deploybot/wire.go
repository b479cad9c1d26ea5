package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/seed-5eb4e92e/deploybot/backends/gerrit"
	"github.com/seed-5eb4e92e/deploybot/backends/vault"
	"github.com/seed-5eb4e92e/deploybot/bot"
	"github.com/seed-5eb4e92e/deploybot/commands"
	"github.com/seed-5eb4e92e/deploybot/deploy"
	"github.com/seed-5eb4e92e/deploybot/worker"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// role is what a process runs.
type role string

const (
	roleServe     role = "serve"
	roleResponder role = "responder"
	roleWorker    role = "worker"
	roleShell     role = "shell"
)

func (r role) responds() bool { return r != roleWorker }
func (r role) works() bool    { return r != roleResponder }

// needsVault reports whether some backend asks for a client certificate
// from Vault.
func needsVault(c *fileConfig) bool {
	for _, t := range []backendTLS{c.Jenkins.TLS, c.Gerrit.TLS, c.Marathon.TLS, c.Mesos.TLS} {
		if t.ClientCert == "vault" {
			return true
		}
	}
	return false
}

// app is a wired process: whichever of responder and workers its role runs,
// and what they share.
type app struct {
	log       *slog.Logger
	certs     certSource
	stream    *gerrit.Stream // Gerrit's SSH stream-events, when configured
	vault     *vault.Certs   // set when certs come from Vault, to start and stop
	reg       *prometheus.Registry
	rdb       redis.UniversalClient
	embedded  *miniredis.Miniredis
	q         *queue.Queue
	slack     *bot.Slack
	health    *bot.Health
	responder *bot.Responder
	// socket connects the responder to Slack over Socket Mode, when the
	// config has an app token.
	socket  *bot.SocketConfig
	pool    *worker.Pool
	handler http.Handler
	hooksLn net.Listener // the mTLS listener for /hooks/, when configured
	// cfg, acc and wiring are what the app was built from, for a reload.
	cfg    fileConfig
	acc    *access
	wiring wiring
}

// wiring holds what differs between a real process and the shell or a
// test: whom to trust, and how fast to poll.
type wiring struct {
	// certs replaces Vault as the source of client certificates (the
	// shell's development CA).
	certs       certSource
	jenkinsHTTP *http.Client
	slackHTTP   *http.Client
	// oidcHTTP reaches the OpenID Provider (tests: one that trusts it).
	oidcHTTP     *http.Client
	pollInterval time.Duration
	workerBlock  time.Duration
	// recheck is how often a job waiting for a lock looks again.
	recheck time.Duration
}

func newApp(l *loaded, r role, log *slog.Logger, w wiring) (*app, error) {
	c := &l.cfg
	a := &app{log: log, reg: prometheus.NewRegistry(), cfg: *c, wiring: w}
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := a.connectRedis(c.Redis.URL, r); err != nil {
		return nil, err
	}
	q, err := queue.New(queue.Config{
		Prefix:        c.Redis.Prefix,
		Visibility:    c.Queue.Visibility.D(),
		MaxDeliveries: c.Queue.MaxDeliveries,
		MaxBacklog:    c.Queue.MaxBacklog,
		RecordTTL:     c.Queue.RecordTTL.D(),
		DeadMaxLen:    c.Queue.DeadMaxLen,
	}, a.rdb, a.reg)
	if err != nil {
		a.close()
		return nil, err
	}
	a.q = q
	metrics := bot.NewMetrics(a.reg)
	if err := a.wireSlack(c, r, w, metrics); err != nil {
		a.close()
		return nil, err
	}
	if r.works() && needsVault(c) {
		if err := a.wireCerts(c, w); err != nil {
			a.close()
			return nil, err
		}
	}
	a.wireHealth(r)
	acc, err := a.wireAccess(c, w)
	if err != nil {
		a.close()
		return nil, err
	}
	a.acc = acc
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}))
	// /hooks/ is registered with /slack/ below, by the responder.
	mux.HandleFunc("GET /healthz", a.health.ServeHealthz)
	mux.HandleFunc("GET /readyz", a.health.ServeReadyz)
	if r.responds() {
		if err := a.wireResponder(l, acc, metrics); err != nil {
			a.close()
			return nil, err
		}
		mux.Handle("/slack/", a.responder.Handler())
		mux.Handle("/hooks/", a.responder.Handler())
		if acc.flow != nil {
			mux.Handle("/oidc/", a.responder.Handler())
		}
	}
	if r.works() {
		if err := a.wireWorkers(l, acc, w); err != nil {
			a.close()
			return nil, err
		}
		if err := a.wireStream(c); err != nil {
			a.close()
			return nil, err
		}
	}
	a.handler = mux
	return a, nil
}

// wireHealth sets up readiness: Redis, and the client certificate for
// roles that run workers.
func (a *app) wireHealth(r role) {
	var checks []bot.Check
	if a.certs != nil {
		ready := a.certs.Ready
		if r.responds() {
			// The responder never needs a certificate: a worker's Vault
			// trouble must not take Slack's endpoint out of service.
			ready = func() error { return degradedOnly(a.certs.Ready()) }
		}
		checks = append(checks, bot.Check{Name: "vault", Func: ready})
	}
	a.health = bot.NewHealth(bot.HealthInput{Ping: a.q.Ping, Checks: checks, Log: a.log})
}

// wireSlack makes the Slack client; workers need a bot token to post.
func (a *app) wireSlack(c *fileConfig, r role, w wiring, m *bot.Metrics) error {
	token, err := secret(c.Slack.BotToken, c.Slack.BotTokenFile)
	if err != nil {
		return fmt.Errorf("slack bot token: %w", err)
	}
	if token == "" && r.works() && r != roleShell {
		return errors.New("no Slack bot token: set SLACK_BOT_TOKEN or slack.bot_token_file")
	}
	a.slack, err = bot.NewSlack(bot.SlackConfig{Token: token, APIURL: c.Slack.APIURL, Interval: c.Slack.Interval.D()}, w.slackHTTP, m, a.log)
	return err
}

func (a *app) connectRedis(url string, r role) error {
	if url == "" {
		if r == roleResponder || r == roleWorker {
			return errors.New("responder and worker must share one Redis: set REDIS_URL")
		}
		m, err := miniredis.Run()
		if err != nil {
			return fmt.Errorf("embedded redis: %w", err)
		}
		a.embedded = m
		a.log.Warn("REDIS_URL is not set: using an embedded in-process Redis that keeps nothing across restarts; for development only", "addr", m.Addr())
		url = "redis://" + m.Addr()
	}
	rdb, err := redisClient(url)
	if err != nil {
		return err
	}
	a.rdb = rdb
	return nil
}

func (a *app) wireWorkers(l *loaded, acc *access, w wiring) error {
	c := &l.cfg
	runners, err := a.runners(c, acc, w)
	if err != nil {
		return err
	}
	a.pool = worker.New(worker.Config{
		Concurrency: c.Worker.Concurrency,
		JobTimeout:  c.Worker.JobTimeout.D(),
		MaxAttempts: c.Worker.MaxAttempts,
		BackoffBase: c.Worker.BackoffBase.D(),
		BackoffMax:  c.Worker.BackoffMax.D(),
		Grace:       c.Worker.ShutdownGrace.D(),
		Block:       w.workerBlock,
		Audit:       acc.audit,
		Approval:    approvalEnvs(c),
	}, a.q, runners, acc.auth, bot.NewReporter(a.slack, a.log), a.log)
	return nil
}

// runners are the workers' runners for the config's services and
// backends, one per job kind.
func (a *app) runners(c *fileConfig, acc *access, w wiring) (map[string]worker.Runner, error) {
	jc, err := a.jenkinsClient(c, w)
	if err != nil {
		return nil, err
	}
	gc, err := a.gerritClient(c)
	if err != nil {
		return nil, err
	}
	engine := a.blameEngine(c, jc, gc)
	notices := worker.NoticeRunner{Blame: engine, Auth: acc.auth, Notices: a.q}
	runners := map[string]worker.Runner{
		"hook":         worker.EventRunner{Blame: engine},
		"notice-retry": notices,
		"notice-mute":  notices,
	}
	var builds *deploy.Builds
	if jc != nil {
		jobs, defaults := map[string]deploy.BuildJob{}, map[string]string{}
		cat := catalog(c)
		for name, s := range c.Services {
			jobs[name] = deploy.BuildJob{Job: s.Build.Job, RefParam: s.Build.RefParam, Params: s.Build.Params}
			svc, _ := cat.Service(name)
			defaults[name] = svc.DefaultRef
		}
		poll := c.Jenkins.PollInterval.D()
		if w.pollInterval > 0 {
			poll = w.pollInterval
		}
		builds = &deploy.Builds{Builder: jc, Jobs: jobs, Poll: poll}
		runners["build"] = worker.BuildRunner{Builds: builds, Blame: engine, DefaultRefs: defaults, Log: a.log}
	}
	if err := a.wireDeploys(c, jc, builds, runners, w); err != nil {
		return nil, err
	}
	if gc != nil {
		changes := worker.ChangeRunner{Gerrit: gc, Auth: acc.auth, Service: projectService(c), RecheckComment: c.Gerrit.RecheckComment}
		runners["recheck"], runners["submit"] = changes, changes
	}
	return runners, nil
}

// certSource gives client certificates: Vault's PKI, or the development CA.
type certSource interface {
	vault.CertSource
	Ready() error
	Roots(base *x509.CertPool) *x509.CertPool
}

// wireCerts sets up where client certificates come from. Vault is not
// contacted until the app starts.
func (a *app) wireCerts(c *fileConfig, w wiring) error {
	if w.certs != nil {
		a.certs = w.certs
		return nil
	}
	certs, err := vault.New(vaultSettings(c.Vault), nil, a.log, vault.NewMetrics(a.reg))
	if err != nil {
		return err
	}
	a.certs, a.vault = certs, certs
	return nil
}

// backendClient is the HTTP client for one backend's tls settings.
func (a *app) backendClient(t backendTLS, timeout time.Duration) (*http.Client, error) {
	var base *x509.CertPool
	if t.CAFile != "" {
		pool, err := readPool(t.CAFile)
		if err != nil {
			return nil, err
		}
		base = pool
	}
	if t.ClientCert != "vault" {
		if base == nil {
			return &http.Client{Timeout: timeout}, nil
		}
		return vault.HTTPClient(nil, func() *x509.CertPool { return base }, timeout), nil
	}
	if base == nil {
		if sys, err := x509.SystemCertPool(); err == nil {
			base = sys
		} else {
			base = x509.NewCertPool()
		}
	}
	certs := a.certs
	return vault.HTTPClient(certs, func() *x509.CertPool { return certs.Roots(base) }, timeout), nil
}

// startCerts waits up to 15 s for the first client certificate before
// workers start. If Vault cannot be reached, workers start anyway: calls
// needing a certificate fail and are retried, /readyz says why, and the
// certificate is fetched as soon as Vault answers. (The renewal loop logs
// each failure itself.)
func (a *app) startCerts(ctx context.Context) {
	if a.vault == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if a.vault.Start(ctx) != nil {
		a.log.Warn("workers start without a client certificate; Vault is retried in the background")
	}
}

// degradedOnly turns a failing check into a degraded one.
func degradedOnly(err error) error {
	if err == nil {
		return nil
	}
	return degraded{err}
}

type degraded struct{ error }

func (degraded) Degraded() bool { return true }

func (d degraded) Unwrap() error { return d.error }

// available are the commands this config can run: no recheck or submit
// without Gerrit, no deploys without anything to deploy to, no login
// without a sign-in.
func available(c *fileConfig) []commands.Command {
	deploys := false
	for _, s := range c.Services {
		deploys = deploys || len(deployEnvs(c, s)) > 0
	}
	var out []commands.Command
	for _, cmd := range commands.Builtin() {
		switch cmd.Name {
		case "recheck", "submit":
			if c.Gerrit.URL == "" {
				continue
			}
		case "deploy", "promote", "rollback", "history", "lock", "unlock":
			if !deploys {
				continue
			}
		case "login":
			if c.Identity.OIDC.Issuer == "" {
				continue
			}
		}
		out = append(out, cmd)
	}
	return out
}

func catalog(c *fileConfig) commands.Catalog {
	cat := commands.Catalog{Environments: c.Environments}
	for _, name := range sortedKeys(c.Services) {
		s := c.Services[name]
		cat.Services = append(cat.Services, commands.Service{Name: name, DefaultRef: s.DefaultRef, Envs: deployEnvs(c, s)})
	}
	return cat
}

func (a *app) close() {
	if a.rdb != nil {
		a.rdb.Close()
	}
	if a.embedded != nil {
		a.embedded.Close()
	}
}

// shutdown stops the app in the order that loses nothing: readiness goes
// red, workers finish or hand back their jobs, queued Slack calls go out.
func (a *app) shutdown(ctx context.Context) {
	a.health.Drain()
	if a.vault != nil {
		a.vault.Stop()
	}
	if a.responder != nil {
		a.responder.Wait()
	}
	a.slack.Stop(ctx)
	a.health.Stop()
	a.close()
}
