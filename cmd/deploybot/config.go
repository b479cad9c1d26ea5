package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/seed-5eb4e92e/deploybot/authz"
)

// fileConfig is the YAML config file; examples/deploybot.yaml documents
// every field. Zero values mean "the default".
type fileConfig struct {
	Listen       string            `yaml:"listen"`
	SlashCommand string            `yaml:"slash_command"`
	Slack        slackConfig       `yaml:"slack"`
	Redis        redisConfig       `yaml:"redis"`
	Responder    responderConfig   `yaml:"responder"`
	Queue        queueConfig       `yaml:"queue"`
	Worker       workerConfig      `yaml:"worker"`
	Jenkins      jenkinsConfig     `yaml:"jenkins"`
	Gerrit       gerritConfig      `yaml:"gerrit"`
	Vault        vaultConfig       `yaml:"vault"`
	Hooks        hooksConfig       `yaml:"hooks"`
	Marathon     marathonConfig    `yaml:"marathon"`
	Mesos        mesosConfig       `yaml:"mesos"`
	Deploy       deployConfig      `yaml:"deploy"`
	Notices      noticesConfig     `yaml:"notices"`
	Environments []string          `yaml:"environments"`
	Services     map[string]svcCfg `yaml:"services"`
	Policy       authz.Policy      `yaml:"policy"`
	Identity     identityConfig    `yaml:"identity"`
	Audit        auditConfig       `yaml:"audit"`
	// Protected are the protected environments.
	Protected map[string]protectedConfig `yaml:"protected_environments"`
}

type slackConfig struct {
	SigningSecret     string `yaml:"signing_secret"`
	SigningSecretFile string `yaml:"signing_secret_file"`
	BotToken          string `yaml:"bot_token"`
	BotTokenFile      string `yaml:"bot_token_file"`
	// AppToken (xapp-…) turns on Socket Mode.
	AppToken     string   `yaml:"app_token"`
	AppTokenFile string   `yaml:"app_token_file"`
	APIURL       string   `yaml:"api_url"`
	Interval     duration `yaml:"interval"`
}

type redisConfig struct {
	URL    string `yaml:"url"`
	Prefix string `yaml:"prefix"`
}

type responderConfig struct {
	AckTimeout   duration `yaml:"ack_timeout"`
	DedupeWindow duration `yaml:"dedupe_window"`
	MaxBody      int64    `yaml:"max_body"`
}

type queueConfig struct {
	Visibility    duration `yaml:"visibility_timeout"`
	MaxDeliveries int64    `yaml:"max_deliveries"`
	MaxBacklog    int64    `yaml:"max_backlog"`
	RecordTTL     duration `yaml:"record_ttl"`
	DeadMaxLen    int64    `yaml:"dead_max_len"`
}

type workerConfig struct {
	Concurrency   int      `yaml:"concurrency"`
	JobTimeout    duration `yaml:"job_timeout"`
	MaxAttempts   int      `yaml:"max_attempts"`
	BackoffBase   duration `yaml:"backoff_base"`
	BackoffMax    duration `yaml:"backoff_max"`
	ShutdownGrace duration `yaml:"shutdown_grace"`
}

type jenkinsConfig struct {
	URL          string     `yaml:"url"`
	User         string     `yaml:"user"`
	APIToken     string     `yaml:"api_token"`
	APITokenFile string     `yaml:"api_token_file"`
	PollInterval duration   `yaml:"poll_interval"`
	Timeout      duration   `yaml:"timeout"`
	TLS          backendTLS `yaml:"tls"`
}

// backendTLS is how deploybot authenticates to a backend over TLS.
type backendTLS struct {
	// ClientCert is "vault" (a certificate from Vault's PKI, renewed in the
	// background) or "none" (the default).
	ClientCert string `yaml:"client_cert"`
	// CAFile is a PEM bundle of CAs to trust for the backend's server
	// certificate, instead of the system's; the Vault PKI's issuing CA is
	// trusted as well when ClientCert is "vault".
	CAFile string `yaml:"ca_file"`
}

type vaultConfig struct {
	Address      string   `yaml:"address"`
	CAFile       string   `yaml:"ca_file"`
	Auth         string   `yaml:"auth"`
	Token        string   `yaml:"token"`
	RoleID       string   `yaml:"role_id"`
	SecretID     string   `yaml:"secret_id"`
	SecretIDFile string   `yaml:"secret_id_file"`
	AppRoleMount string   `yaml:"approle_mount"`
	PKIMount     string   `yaml:"pki_mount"`
	PKIRole      string   `yaml:"pki_role"`
	CommonName   string   `yaml:"common_name"`
	TTL          duration `yaml:"ttl"`
}

type svcCfg struct {
	DefaultRef string   `yaml:"default_ref"`
	Build      buildCfg `yaml:"build"`
	// Channel gets the service's breakage notices.
	Channel string `yaml:"channel"`
	// GerritProject is the service's Gerrit project.
	GerritProject string `yaml:"gerrit_project"`
	// JenkinsJobs are further Jenkins jobs (gating, post-merge) whose
	// results are the service's; the build job always is.
	JenkinsJobs []string `yaml:"jenkins_jobs"`
	// Artifact says where a build leaves what is deployed; PreDeploy are
	// tasks run before each deploy; Deploy maps an environment to the
	// Marathon app the service runs as there.
	Artifact  artifactCfg          `yaml:"artifact"`
	PreDeploy []taskCfg            `yaml:"pre_deploy"`
	Deploy    map[string]targetCfg `yaml:"deploy"`
}

type gerritConfig struct {
	URL          string     `yaml:"url"`
	User         string     `yaml:"user"`
	Password     string     `yaml:"password"`
	PasswordFile string     `yaml:"password_file"`
	Timeout      duration   `yaml:"timeout"`
	TLS          backendTLS `yaml:"tls"`
	// CIAccounts are the usernames or e-mail addresses of CI accounts: their
	// votes on VerifyLabel are CI results, and they are never blamed.
	CIAccounts     []string  `yaml:"ci_accounts"`
	VerifyLabel    string    `yaml:"verify_label"`
	RecheckComment string    `yaml:"recheck_comment"`
	SSH            gerritSSH `yaml:"ssh"`
}

// gerritSSH reads `gerrit stream-events`, an alternative to the webhooks
// plugin.
type gerritSSH struct {
	Addr           string `yaml:"addr"`
	User           string `yaml:"user"`
	KeyFile        string `yaml:"key_file"`
	KnownHostsFile string `yaml:"known_hosts_file"`
}

type hooksConfig struct {
	JenkinsSecret     string `yaml:"jenkins_secret"`
	JenkinsSecretFile string `yaml:"jenkins_secret_file"`
	GerritSecret      string `yaml:"gerrit_secret"`
	GerritSecretFile  string `yaml:"gerrit_secret_file"`
	// JenkinsClients and GerritClients name the client certificates
	// (common name or DNS name) that may call each hook on the mTLS
	// listener, instead of presenting the secret.
	JenkinsClients []string `yaml:"jenkins_clients"`
	GerritClients  []string `yaml:"gerrit_clients"`
	TLS            hooksTLS `yaml:"tls"`
}

// hooksTLS is a second listener that serves only /hooks/ and requires a
// client certificate signed by ClientCAFile.
type hooksTLS struct {
	Listen       string `yaml:"listen"`
	CertFile     string `yaml:"cert_file"`
	KeyFile      string `yaml:"key_file"`
	ClientCAFile string `yaml:"client_ca_file"`
}

type noticesConfig struct {
	// Channel gets breakages no service claims.
	Channel string `yaml:"channel"`
	// DM also sends each notice to the people it names.
	DM bool `yaml:"dm"`
	// Aliases map an e-mail address, Gerrit username or Jenkins user to a
	// Slack user ID or to the address Slack knows.
	Aliases map[string]string `yaml:"aliases"`
}

type buildCfg struct {
	Job      string            `yaml:"job"`
	RefParam string            `yaml:"ref_param"`
	Params   map[string]string `yaml:"params"`
}

// duration is a time.Duration written as "90s" or "2m" in YAML.
type duration time.Duration

// UnmarshalYAML reports a bad duration as a *yaml.TypeError, so decoding
// goes on and every other problem in the file is reported too.
func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	switch {
	case err != nil:
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %q is not a duration such as 30s, 5m or 1h", n.Line, n.Value)}}
	case v < 0:
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %q is negative", n.Line, n.Value)}}
	}
	*d = duration(v)
	return nil
}

func (d duration) D() time.Duration { return time.Duration(d) }

// problem is one thing wrong with a config, with where it is.
type problem struct {
	where string // "deploybot.yaml:12:5" or "environment"
	path  string // "services.api.build.job"
	msg   string
}

func (p problem) String() string {
	if p.path == "" {
		return p.where + ": " + p.msg
	}
	return p.where + ": " + p.path + ": " + p.msg
}

// loaded is a config file read and checked: the values, and where each
// came from, so problems can point at lines.
type loaded struct {
	cfg      fileConfig
	name     string
	root     *yaml.Node
	problems []problem
	warnings []problem
	// fromEnv names the settings the environment overrode.
	fromEnv map[string]string
}

var (
	yamlLineRE     = regexp.MustCompile(`^line (\d+): (.*)$`)
	unknownFieldRE = regexp.MustCompile(`^field (\S+) not found in type `)
)

// loadConfig reads path (empty: no file, defaults only), applies the
// environment, and checks the result. An error means the file could not be
// read at all; everything else is in problems.
func loadConfig(path string, getenv func(string) string) (*loaded, error) {
	if path == "" {
		return parseConfig(path, nil, getenv), nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return parseConfig(path, raw, getenv), nil
}

// parseConfig reads the config file named name, whose contents are raw (nil:
// no file), applies the environment and checks the result.
func parseConfig(name string, raw []byte, getenv func(string) string) *loaded {
	l := &loaded{name: name, fromEnv: map[string]string{}}
	if raw != nil {
		var root yaml.Node
		if err := yaml.Unmarshal(raw, &root); err != nil {
			l.addYAMLError(err)
			return l
		}
		l.root = &root
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true) // a misspelt key is a problem, not silence
		if err := dec.Decode(&l.cfg); err != nil && !errors.Is(err, io.EOF) {
			l.addYAMLError(err)
		}
	}
	l.applyEnv(getenv)
	l.check()
	return l
}

func (l *loaded) addYAMLError(err error) {
	var te *yaml.TypeError
	msgs := []string{err.Error()}
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	for _, m := range msgs {
		m = strings.TrimPrefix(m, "yaml: ")
		where := l.name
		if g := yamlLineRE.FindStringSubmatch(m); g != nil {
			where += ":" + g[1]
			m = g[2]
		}
		if g := unknownFieldRE.FindStringSubmatch(m); g != nil {
			m = fmt.Sprintf("unknown setting %q (misspelt, or in the wrong section?)", g[1])
		}
		l.problems = append(l.problems, problem{where: where, msg: m})
	}
}

// applyEnv lets the environment override the file, as DESIGN.md promises.
func (l *loaded) applyEnv(getenv func(string) string) {
	set := func(env string, dst *string) {
		if v := getenv(env); v != "" {
			*dst = v
			l.fromEnv[env] = v
		}
	}
	c := &l.cfg
	set("DEPLOYBOT_LISTEN", &c.Listen)
	set("SLACK_SIGNING_SECRET", &c.Slack.SigningSecret)
	set("SLACK_BOT_TOKEN", &c.Slack.BotToken)
	set("SLACK_APP_TOKEN", &c.Slack.AppToken)
	set("SLACK_API_URL", &c.Slack.APIURL)
	set("REDIS_URL", &c.Redis.URL)
	set("JENKINS_API_TOKEN", &c.Jenkins.APIToken)
	set("GERRIT_HTTP_PASSWORD", &c.Gerrit.Password)
	set("MARATHON_PASSWORD", &c.Marathon.Password)
	set("MESOS_SECRET", &c.Mesos.Secret)
	set("OKTA_API_TOKEN", &c.Identity.Okta.APIToken)
	set("OIDC_CLIENT_SECRET", &c.Identity.OIDC.ClientSecret)
	set("DEPLOYBOT_JENKINS_HOOK_SECRET", &c.Hooks.JenkinsSecret)
	set("DEPLOYBOT_GERRIT_HOOK_SECRET", &c.Hooks.GerritSecret)
	set("VAULT_ADDR", &c.Vault.Address)
	set("VAULT_CACERT", &c.Vault.CAFile)
	set("VAULT_TOKEN", &c.Vault.Token)
	set("VAULT_ROLE_ID", &c.Vault.RoleID)
	set("VAULT_SECRET_ID", &c.Vault.SecretID)
}

// at finds where path (keys separated by dots) is in the file.
func (l *loaded) at(path string) string {
	if l.root == nil || len(l.root.Content) == 0 {
		return "config"
	}
	n := l.root.Content[0]
	line, col := n.Line, n.Column
	for _, key := range strings.Split(path, ".") {
		next := (*yaml.Node)(nil)
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == key {
					line, col = n.Content[i].Line, n.Content[i].Column
					next = n.Content[i+1]
				}
			}
		case yaml.SequenceNode:
			if i, err := strconv.Atoi(key); err == nil && i >= 0 && i < len(n.Content) {
				next = n.Content[i]
				line, col = next.Line, next.Column
			}
		}
		if next == nil {
			break
		}
		n = next
	}
	return fmt.Sprintf("%s:%d:%d", l.name, line, col)
}

// bad records a problem at path; env names the variable that supplied the
// value, if one did.
func (l *loaded) bad(path, env, format string, args ...any) {
	where := l.at(path)
	if _, ok := l.fromEnv[env]; ok && env != "" {
		where = "environment " + env
	}
	l.problems = append(l.problems, problem{where: where, path: path, msg: fmt.Sprintf(format, args...)})
}

func (l *loaded) warn(path, format string, args ...any) {
	l.warnings = append(l.warnings, problem{where: l.at(path), path: path, msg: fmt.Sprintf(format, args...)})
}

// listenAddr is where the plain HTTP listener listens.
func (c *fileConfig) listenAddr() string {
	if c.Listen == "" {
		return ":8080"
	}
	return c.Listen
}

// secret returns a secret from its value or its file.
func secret(value, file string) (string, error) {
	if value != "" || file == "" {
		return value, nil
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(raw)), nil
}
