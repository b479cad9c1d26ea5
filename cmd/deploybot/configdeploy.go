package main

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/seed-5eb4e92e/deploybot/backends/marathon"
	"github.com/seed-5eb4e92e/deploybot/commands"
	"github.com/seed-5eb4e92e/deploybot/deploy"
)

type marathonConfig struct {
	URL          string     `yaml:"url"`
	User         string     `yaml:"user"`
	Password     string     `yaml:"password"`
	PasswordFile string     `yaml:"password_file"`
	Force        bool       `yaml:"force"`
	Timeout      duration   `yaml:"timeout"`
	TLS          backendTLS `yaml:"tls"`
	// UIURL is where Marathon's web UI is, for links; default URL + "ui/".
	UIURL string `yaml:"ui_url"`
}

type mesosConfig struct {
	URL           string     `yaml:"url"`
	Principal     string     `yaml:"principal"`
	Secret        string     `yaml:"secret"`
	SecretFile    string     `yaml:"secret_file"`
	Role          string     `yaml:"role"`
	FrameworkName string     `yaml:"framework_name"`
	User          string     `yaml:"user"`
	TLS           backendTLS `yaml:"tls"`
}

// deployConfig tunes every deploy.
type deployConfig struct {
	// Concurrent is what a deploy does while another of the same service
	// to the same environment runs: "wait" (the default) or "refuse".
	Concurrent string   `yaml:"concurrent"`
	MaxWait    duration `yaml:"max_wait"`
	Poll       duration `yaml:"poll_interval"`
}

type artifactCfg struct {
	From    string `yaml:"from"`
	Param   string `yaml:"param"`
	File    string `yaml:"file"`
	Pattern string `yaml:"pattern"`
	Image   string `yaml:"image"`
}

type taskCfg struct {
	Name    string            `yaml:"name"`
	Image   string            `yaml:"image"`
	Command string            `yaml:"command"`
	Env     map[string]string `yaml:"env"`
	CPUs    float64           `yaml:"cpus"`
	MemMB   float64           `yaml:"mem"`
}

type targetCfg struct {
	App           string   `yaml:"app"`
	Strategy      string   `yaml:"strategy"`
	VerifyTimeout duration `yaml:"verify_timeout"`
	AutoRollback  *bool    `yaml:"auto_rollback"`
	Step          int      `yaml:"step"`
}

var taskNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,39}$`)

// checkDeploy validates the marathon, mesos and deploy sections and each
// service's deploy targets, artifact and pre-deploy tasks.
func (l *loaded) checkDeploy() {
	c := &l.cfg
	if c.Marathon.URL != "" {
		if _, err := marathon.New(marathon.Config{URL: c.Marathon.URL}, nil, nil); err != nil {
			l.bad("marathon.url", "", "%s", strings.TrimPrefix(redacted(err, c.Marathon.URL), "marathon: "))
		}
		l.checkTLS("marathon.tls", c.Marathon.TLS)
		l.checkTLSScheme("marathon.tls", c.Marathon.URL, c.Marathon.TLS)
	}
	if c.Mesos.URL != "" {
		l.checkTLS("mesos.tls", c.Mesos.TLS)
		l.checkTLSScheme("mesos.tls", c.Mesos.URL, c.Mesos.TLS)
	}
	if v := c.Deploy.Concurrent; v != "" && v != "wait" && v != "refuse" {
		l.bad("deploy.concurrent", "", "%q is neither wait nor refuse", v)
	}
	for _, name := range sortedKeys(c.Services) {
		l.checkServiceDeploy(name, c.Services[name])
	}
}

func (l *loaded) checkServiceDeploy(name string, s svcCfg) {
	c := &l.cfg
	at := "services." + name
	if _, isCommand := builtinNames()[name]; isCommand && len(s.Deploy) > 0 {
		l.bad(at, "", "a service may not be called %q: `/deploy %s …` is a command", name, name)
	}
	if len(s.Deploy) > 0 && c.Marathon.URL == "" {
		l.bad(at+".deploy", "", "needs marathon.url")
	}
	if len(s.PreDeploy) > 0 && c.Mesos.URL == "" {
		l.bad(at+".pre_deploy", "", "needs mesos.url to run its tasks")
	}
	if len(s.Deploy) > 0 && s.Build.Job == "" {
		l.bad(at+".build.job", "", "required: a deploy builds the service first")
	}
	for _, env := range sortedKeys(s.Deploy) {
		l.checkTarget(at+".deploy."+env, env, s.Deploy[env])
	}
	for i, t := range s.PreDeploy {
		p := fmt.Sprintf("%s.pre_deploy[%d]", at, i)
		if !taskNameRE.MatchString(t.Name) {
			l.bad(p+".name", "", "%q: use up to 40 lower-case letters, digits, '-' or '_'", t.Name)
		}
		if t.Image != "" && deploy.CheckImage(t.Image) != nil {
			l.bad(p+".image", "", "%q is not a Docker image reference", t.Image)
		}
		if t.CPUs < 0 || t.MemMB < 0 {
			l.bad(p, "", "cpus and mem may not be negative")
		}
	}
	if len(s.Deploy) > 0 {
		l.checkArtifact(at+".artifact", s.Artifact)
	}
}

func (l *loaded) checkTarget(at, env string, t targetCfg) {
	if !slices.Contains(l.cfg.Environments, env) {
		l.bad(at, "", "%q is not one of environments (%s)", env, strings.Join(l.cfg.Environments, ", "))
	}
	if err := marathon.CheckAppID(t.App); err != nil {
		l.bad(at+".app", "", "%s", strings.TrimPrefix(err.Error(), "marathon: "))
	}
	if t.Strategy != "" && t.Strategy != deploy.Rolling && t.Strategy != deploy.BlueGreen {
		l.bad(at+".strategy", "", "%q is neither rolling nor blue-green", t.Strategy)
	}
	if t.Step < 0 {
		l.bad(at+".step", "", "may not be negative")
	}
}

func (l *loaded) checkArtifact(at string, a artifactCfg) {
	switch a.From {
	case "", deploy.FromRef, deploy.FromDescription, deploy.FromArtifact:
	case deploy.FromParam:
		if a.Param == "" {
			l.bad(at+".param", "", "required when from is param")
		}
	case deploy.FromFile:
		if a.File == "" || strings.Contains(a.File, "..") || strings.HasPrefix(a.File, "/") {
			l.bad(at+".file", "", "a relative path inside the build's artifacts is required when from is file")
		}
	default:
		l.bad(at+".from", "", "%q is not one of ref, param, description, artifact, file", a.From)
	}
	if a.Pattern != "" {
		if _, err := regexp.Compile(a.Pattern); err != nil {
			l.bad(at+".pattern", "", "%v", err)
		}
	} else if a.From == deploy.FromDescription || a.From == deploy.FromArtifact {
		l.bad(at+".pattern", "", "required when from is %s: it picks the version out", a.From)
	}
	if a.Image != "" && deploy.CheckImage(strings.ReplaceAll(a.Image, "{version}", "1.0")) != nil {
		l.bad(at+".image", "", "%q does not make a Docker image reference with {version} filled in", a.Image)
	}
}

func builtinNames() map[string]bool {
	names := map[string]bool{}
	for _, c := range commands.Builtin() {
		names[c.Name] = true
	}
	return names
}

// pipelines turns the services' config into deploy pipelines.
func pipelines(c *fileConfig) map[string]deploy.Pipeline {
	out := map[string]deploy.Pipeline{}
	for name, s := range c.Services {
		if len(s.Deploy) == 0 {
			continue
		}
		p := deploy.Pipeline{
			Service: name,
			Build:   deploy.BuildJob{Job: s.Build.Job, RefParam: s.Build.RefParam, Params: s.Build.Params},
			Artifact: deploy.ArtifactSource{
				From: s.Artifact.From, Param: s.Artifact.Param, File: s.Artifact.File, Image: s.Artifact.Image,
			},
			Targets: map[string]deploy.Target{},
		}
		if s.Artifact.Pattern != "" {
			p.Artifact.Pattern = regexp.MustCompile(s.Artifact.Pattern) // check-config compiled it
		}
		for _, t := range s.PreDeploy {
			p.PreDeploy = append(p.PreDeploy, deploy.Task{Name: t.Name, Image: t.Image, Command: t.Command, Env: t.Env, CPUs: t.CPUs, MemMB: t.MemMB})
		}
		for env, t := range s.Deploy {
			p.Targets[env] = deploy.Target{
				App: t.App, Strategy: t.Strategy, VerifyTimeout: time.Duration(t.VerifyTimeout), Step: t.Step,
				NoAutoRollback: t.AutoRollback != nil && !*t.AutoRollback,
			}
		}
		out[name] = p
	}
	return out
}

// deployEnvs lists the environments a service deploys to, in the config's
// order.
func deployEnvs(c *fileConfig, s svcCfg) []string {
	if c.Marathon.URL == "" {
		return nil
	}
	var envs []string
	for _, env := range c.Environments {
		if _, ok := s.Deploy[env]; ok {
			envs = append(envs, env)
		}
	}
	return envs
}
