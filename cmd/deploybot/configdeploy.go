package main

import (
	"regexp"
	"time"

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
