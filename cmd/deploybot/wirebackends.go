package main

import (
	"fmt"
	"time"

	"github.com/seed-5eb4e92e/deploybot/backends/gerrit"
	"github.com/seed-5eb4e92e/deploybot/backends/jenkins"
	"github.com/seed-5eb4e92e/deploybot/bot"
	"github.com/seed-5eb4e92e/deploybot/deploy"
	"github.com/seed-5eb4e92e/deploybot/worker/blame"
)

// jenkinsClient is the Jenkins client, or nil when none is configured.
func (a *app) jenkinsClient(c *fileConfig, w wiring) (*jenkins.Client, error) {
	if c.Jenkins.URL == "" {
		return nil, nil
	}
	token, err := secret(c.Jenkins.APIToken, c.Jenkins.APITokenFile)
	if err != nil {
		return nil, fmt.Errorf("jenkins api token: %w", err)
	}
	hc := w.jenkinsHTTP
	if hc == nil {
		if hc, err = a.backendClient(c.Jenkins.TLS, orDefault(c.Jenkins.Timeout.D(), 30*time.Second)); err != nil {
			return nil, fmt.Errorf("jenkins tls: %w", err)
		}
	}
	return jenkins.New(jenkins.Config{URL: c.Jenkins.URL, User: c.Jenkins.User, APIToken: token}, hc, a.log)
}

// gerritClient is the Gerrit client, or nil when none is configured.
func (a *app) gerritClient(c *fileConfig) (*gerrit.Client, error) {
	if c.Gerrit.URL == "" {
		return nil, nil
	}
	password, err := secret(c.Gerrit.Password, c.Gerrit.PasswordFile)
	if err != nil {
		return nil, fmt.Errorf("gerrit password: %w", err)
	}
	hc, err := a.backendClient(c.Gerrit.TLS, orDefault(c.Gerrit.Timeout.D(), 30*time.Second))
	if err != nil {
		return nil, fmt.Errorf("gerrit tls: %w", err)
	}
	return gerrit.New(gerrit.Config{URL: c.Gerrit.URL, User: c.Gerrit.User, Password: password}, hc, a.log)
}

// blameEngine decides breakage notices. Its Jenkins and Gerrit are left
// out (not set to typed nils) when they are not configured.
func (a *app) blameEngine(c *fileConfig, jc *jenkins.Client, gc *gerrit.Client) *blame.Engine {
	cfg := blame.Config{
		Channel:        c.Notices.Channel,
		CIAccounts:     c.Gerrit.CIAccounts,
		Aliases:        c.Notices.Aliases,
		DM:             c.Notices.DM,
		RecheckComment: c.Gerrit.RecheckComment,
		VerifyLabel:    c.Gerrit.VerifyLabel,
	}
	cat := catalog(c)
	for _, name := range sortedKeys(c.Services) {
		s := c.Services[name]
		jobs := append([]string(nil), s.JenkinsJobs...)
		if s.Build.Job != "" {
			jobs = append(jobs, s.Build.Job)
		}
		svc, _ := cat.Service(name)
		cfg.Services = append(cfg.Services, blame.Service{Name: name, Channel: s.Channel, Project: s.GerritProject, Jobs: jobs,
			BuildJob: s.Build.Job, RefParam: deploy.BuildJob{RefParam: s.Build.RefParam}.RefParamName(), DefaultRef: svc.DefaultRef})
	}
	deps := blame.Deps{Directory: a.slack, Notifier: bot.NewNotices(a.slack), Store: a.q}
	if jc != nil {
		deps.Builds = jc
	}
	if gc != nil {
		deps.Changes = gc
	}
	return blame.New(cfg, deps, a.log)
}

// projectService maps a Gerrit project to its service.
func projectService(c *fileConfig) func(string) (string, bool) {
	return func(project string) (string, bool) {
		for _, name := range sortedKeys(c.Services) {
			if p := c.Services[name].GerritProject; p != "" && p == project {
				return name, true
			}
		}
		return "", false
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}
