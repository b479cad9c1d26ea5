package main

import (
	"fmt"
	"io"
	"net"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/seed-5eb4e92e/deploybot/authz"
	"github.com/seed-5eb4e92e/deploybot/backends/jenkins"
	"github.com/seed-5eb4e92e/deploybot/commands"
)

// nameRE is what a service or environment may be called: it ends up in
// Redis keys, Jenkins parameters and (later) Marathon app ids.
var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// check validates the config as the roles will use it. Problems stop the
// process; warnings are worth a look.
func (l *loaded) check() {
	c := &l.cfg
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			l.bad("listen", "DEPLOYBOT_LISTEN", "%q is not host:port (e.g. :8080)", c.Listen)
		}
	}
	if c.SlashCommand != "" && (!strings.HasPrefix(c.SlashCommand, "/") || strings.ContainsAny(c.SlashCommand, " \t")) {
		l.bad("slash_command", "", "%q must start with / and have no spaces", c.SlashCommand)
	}
	l.checkSlack()
	l.checkRedis()
	l.checkJenkins()
	l.checkTLS("jenkins.tls", l.cfg.Jenkins.TLS)
	l.checkTLSScheme("jenkins.tls", l.cfg.Jenkins.URL, l.cfg.Jenkins.TLS)
	l.checkGerrit()
	l.checkDeploy()
	l.checkVault()
	l.checkDurations()
	envs := map[string]bool{}
	for i, e := range c.Environments {
		path := fmt.Sprintf("environments.%d", i)
		switch {
		case !nameRE.MatchString(e):
			l.bad(path, "", "%q is not a valid name (lower-case letters, digits and -)", e)
		case envs[e]:
			l.bad(path, "", "%q is listed twice", e)
		}
		envs[e] = true
	}
	for _, name := range sortedKeys(c.Services) {
		l.checkService(name, c.Services[name])
	}
	if len(c.Services) == 0 {
		l.warn("services", "no services are configured; every command will answer that it knows none")
	}
	l.checkPolicy()
	l.checkIdentity()
	l.checkProtected()
}

// bounds are the sensible ranges of durations; zero always means "the
// default".
var bounds = []struct {
	path     string
	get      func(*fileConfig) duration
	min, max time.Duration
	why      string
}{
	{"responder.ack_timeout", func(c *fileConfig) duration { return c.Responder.AckTimeout }, 100 * time.Millisecond, 2500 * time.Millisecond,
		"Slack gives up after 3 s, and Redis needs time to answer"},
	{"responder.dedupe_window", func(c *fileConfig) duration { return c.Responder.DedupeWindow }, time.Second, time.Hour, ""},
	{"queue.visibility_timeout", func(c *fileConfig) duration { return c.Queue.Visibility }, time.Second, time.Hour,
		"workers heartbeat every third of it"},
	{"queue.record_ttl", func(c *fileConfig) duration { return c.Queue.RecordTTL }, time.Hour, 0, ""},
	{"worker.job_timeout", func(c *fileConfig) duration { return c.Worker.JobTimeout }, time.Second, 0, ""},
	{"worker.backoff_base", func(c *fileConfig) duration { return c.Worker.BackoffBase }, 10 * time.Millisecond, 0, ""},
	{"worker.shutdown_grace", func(c *fileConfig) duration { return c.Worker.ShutdownGrace }, 0, 10 * time.Minute, ""},
	{"jenkins.poll_interval", func(c *fileConfig) duration { return c.Jenkins.PollInterval }, 100 * time.Millisecond, 5 * time.Minute, ""},
	{"jenkins.timeout", func(c *fileConfig) duration { return c.Jenkins.Timeout }, time.Second, 10 * time.Minute, ""},
	{"gerrit.timeout", func(c *fileConfig) duration { return c.Gerrit.Timeout }, time.Second, 10 * time.Minute, ""},
	{"marathon.timeout", func(c *fileConfig) duration { return c.Marathon.Timeout }, time.Second, 10 * time.Minute, ""},
	{"deploy.poll_interval", func(c *fileConfig) duration { return c.Deploy.Poll }, 100 * time.Millisecond, time.Minute, ""},
	{"deploy.max_wait", func(c *fileConfig) duration { return c.Deploy.MaxWait }, time.Minute, 7 * 24 * time.Hour,
		"locks last at most a week"},
	{"slack.interval", func(c *fileConfig) duration { return c.Slack.Interval }, 0, time.Minute, ""},
	{"vault.ttl", func(c *fileConfig) duration { return c.Vault.TTL }, time.Minute, 720 * time.Hour,
		"renewal starts at two thirds of it"},
}

func (l *loaded) checkDurations() {
	for _, b := range bounds {
		d := b.get(&l.cfg).D()
		if d == 0 {
			continue
		}
		if d < b.min || (b.max > 0 && d > b.max) {
			msg := fmt.Sprintf("%s is out of range: at least %s", d, b.min)
			if b.max > 0 {
				msg = fmt.Sprintf("%s is out of range %s to %s", d, b.min, b.max)
			}
			if b.why != "" {
				msg += " (" + b.why + ")"
			}
			l.bad(b.path, "", "%s", msg)
		}
	}
	w := l.cfg.Worker
	if w.BackoffBase > 0 && w.BackoffMax > 0 && w.BackoffBase > w.BackoffMax {
		l.bad("worker.backoff_max", "", "%s is less than backoff_base %s", w.BackoffMax.D(), w.BackoffBase.D())
	}
	if w.Concurrency < 0 || w.MaxAttempts < 0 || l.cfg.Queue.MaxBacklog < 0 || l.cfg.Queue.MaxDeliveries < 0 || l.cfg.Queue.DeadMaxLen < 0 || l.cfg.Responder.MaxBody < 0 {
		l.bad("worker", "", "counts and sizes cannot be negative")
	}
}

// redacted is err's text with the password in raw (a URL) hidden, so a
// config problem can be printed and logged.
func redacted(err error, raw string) string {
	msg := err.Error()
	if u, perr := url.Parse(raw); perr == nil && u.User != nil {
		return strings.ReplaceAll(msg, raw, u.Redacted())
	}
	if raw != "" {
		return strings.ReplaceAll(msg, raw, "(the URL)")
	}
	return msg
}

func (l *loaded) checkSlack() {
	s := &l.cfg.Slack
	if s.APIURL != "" {
		if u, err := url.Parse(s.APIURL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			l.bad("slack.api_url", "SLACK_API_URL", "it is not an absolute http(s) URL")
		}
	}
	socket := s.AppToken != "" || s.AppTokenFile != ""
	if _, err := secret(s.SigningSecret, s.SigningSecretFile); err != nil {
		l.secretFileWarning("slack.signing_secret_file", err)
	} else if s.SigningSecret == "" && s.SigningSecretFile == "" && !socket {
		l.warn("slack", "no signing secret: set SLACK_SIGNING_SECRET or slack.signing_secret_file (or SLACK_APP_TOKEN for Socket Mode); serve and responder refuse to start without one")
	}
	if app, err := secret(s.AppToken, s.AppTokenFile); err != nil {
		l.secretFileWarning("slack.app_token_file", err)
	} else if app != "" && !strings.HasPrefix(app, "xapp-") {
		l.bad("slack.app_token", "SLACK_APP_TOKEN", "it is not an app-level token (xapp-…); Socket Mode needs one with connections:write")
	}
	if s.AppToken != "" && !l.envSet("SLACK_APP_TOKEN") {
		l.warn("slack.app_token", "a secret in the config file; prefer SLACK_APP_TOKEN or app_token_file")
	}
	if _, err := secret(s.BotToken, s.BotTokenFile); err != nil {
		l.secretFileWarning("slack.bot_token_file", err)
	} else if s.BotToken == "" && s.BotTokenFile == "" {
		l.warn("slack", "no bot token: set SLACK_BOT_TOKEN or slack.bot_token_file; serve and worker refuse to start without one")
	}
	if s.SigningSecret != "" && !l.envSet("SLACK_SIGNING_SECRET") {
		l.warn("slack.signing_secret", "a secret in the config file; prefer SLACK_SIGNING_SECRET or signing_secret_file")
	}
	if s.BotToken != "" && !l.envSet("SLACK_BOT_TOKEN") {
		l.warn("slack.bot_token", "a secret in the config file; prefer SLACK_BOT_TOKEN or bot_token_file")
	}
}

func (l *loaded) envSet(name string) bool { _, ok := l.fromEnv[name]; return ok }

// secretFileWarning reports a secret file that cannot be read here. It is a
// warning: secret files are usually mounted only where deploybot runs, and
// serve refuses to start if it cannot read one.
func (l *loaded) secretFileWarning(path string, err error) {
	l.warn(path, "cannot read it here (%v); it must be readable where deploybot runs", err)
}

func (l *loaded) checkRedis() {
	r := l.cfg.Redis
	if r.URL != "" {
		rdb, err := redisClient(r.URL)
		if err != nil {
			l.bad("redis.url", "REDIS_URL", "%s", strings.TrimPrefix(err.Error(), "redis url: "))
		} else {
			rdb.Close() // made to check the URL; it never connected
		}
	}
	if r.Prefix != "" && strings.ContainsAny(r.Prefix, "{}: \t") {
		l.bad("redis.prefix", "", "%q may not contain braces, colons or spaces (deploybot adds the hash tag itself)", r.Prefix)
	}
}

func (l *loaded) checkJenkins() {
	j := l.cfg.Jenkins
	needed := false
	for _, s := range l.cfg.Services {
		needed = needed || s.Build.Job != ""
	}
	if j.URL == "" {
		if needed {
			l.bad("jenkins.url", "", "services have build jobs, so the Jenkins URL is required")
		}
		return
	}
	if _, err := jenkins.New(jenkins.Config{URL: j.URL}, nil, nil); err != nil {
		l.bad("jenkins.url", "", "%s", strings.TrimPrefix(redacted(err, j.URL), "jenkins: "))
	}
	if _, err := secret(j.APIToken, j.APITokenFile); err != nil {
		l.secretFileWarning("jenkins.api_token_file", err)
	}
	if j.User != "" && j.APIToken == "" && j.APITokenFile == "" {
		l.warn("jenkins.user", "a user but no API token: set JENKINS_API_TOKEN or jenkins.api_token_file")
	}
	if j.APIToken != "" && !l.envSet("JENKINS_API_TOKEN") {
		l.warn("jenkins.api_token", "a secret in the config file; prefer JENKINS_API_TOKEN or api_token_file")
	}
}

func (l *loaded) checkService(name string, s svcCfg) {
	base := "services." + name
	if !nameRE.MatchString(name) {
		l.bad(base, "", "%q is not a valid service name (lower-case letters, digits and -, at most 63)", name)
	}
	if s.DefaultRef != "" {
		if err := commands.CheckRef(s.DefaultRef); err != nil {
			l.bad(base+".default_ref", "", "%v", err)
		}
	}
	if s.Build.Job == "" {
		if s.GerritProject == "" && len(s.JenkinsJobs) == 0 {
			l.bad(base, "", "has no build job, Gerrit project or Jenkins jobs: nothing to do for it")
		} else {
			l.warn(base+".build.job", "no build job: /deploy build %s will be refused", name)
		}
		return
	}
	if _, err := jenkins.JobPath(s.Build.Job); err != nil {
		l.bad(base+".build.job", "", "%v", strings.TrimPrefix(err.Error(), "jenkins: "))
	}
	params := map[string]string{}
	for k, v := range s.Build.Params {
		params[k] = v
	}
	if s.Build.RefParam != "" {
		params[s.Build.RefParam] = "main"
	}
	if err := jenkins.CheckParams(params); err != nil {
		l.bad(base+".build", "", "%v", strings.TrimPrefix(err.Error(), "jenkins: "))
	}
}

func (l *loaded) checkPolicy() {
	p := l.cfg.Policy
	if err := authz.CheckRules(p.Rules); err != nil {
		l.bad("policy", "", "%v", strings.TrimPrefix(err.Error(), "authz: "))
	}
	if len(p.Rules) == 0 {
		l.warn("policy", "no rules: everything is denied to everyone (the default); add groups and rules to let people build")
	}
	okta := l.cfg.Identity.Okta.URL != "" || l.cfg.Identity.OIDC.Issuer != ""
	for i, r := range p.Rules {
		if _, static := p.Groups[r.Group]; !static && !okta {
			l.bad(fmt.Sprintf("policy.rules.%d.group", i), "", "group %q has no members: list them under policy.groups, or set up identity.okta or identity.oidc to take groups from Okta", r.Group)
		}
	}
	for g, users := range p.Groups {
		for i, u := range users {
			if !slackUserRE.MatchString(u) {
				l.bad(fmt.Sprintf("policy.groups.%s.%d", g, i), "", "%q is not a Slack user ID (like U0123ABCD)", u)
			}
		}
	}
}

var slackUserRE = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// runCheckConfig is `deploybot check-config --config FILE`.
func runCheckConfig(path string, getenv func(string) string, stdout, stderr io.Writer) int {
	if path == "" {
		fmt.Fprintln(stderr, "check-config: --config FILE (or DEPLOYBOT_CONFIG) is required")
		return 2
	}
	l, err := loadConfig(path, getenv)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	for _, w := range l.warnings {
		fmt.Fprintln(stderr, "warning: "+w.String())
	}
	for _, p := range l.problems {
		fmt.Fprintln(stderr, p.String())
	}
	if len(l.problems) > 0 {
		fmt.Fprintf(stderr, "%s: %d problem(s)\n", path, len(l.problems))
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok (%d services, %d environments)\n", path, len(l.cfg.Services), len(l.cfg.Environments))
	return 0
}
