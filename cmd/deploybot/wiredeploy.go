package main

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/seed-5eb4e92e/deploybot/backends/jenkins"
	"github.com/seed-5eb4e92e/deploybot/backends/marathon"
	"github.com/seed-5eb4e92e/deploybot/backends/mesos"
	"github.com/seed-5eb4e92e/deploybot/deploy"
	"github.com/seed-5eb4e92e/deploybot/worker"
)

// marathonClient is the Marathon client, or nil when none is configured.
func (a *app) marathonClient(c *fileConfig) (*marathon.Client, error) {
	if c.Marathon.URL == "" {
		return nil, nil
	}
	password, err := secret(c.Marathon.Password, c.Marathon.PasswordFile)
	if err != nil {
		return nil, fmt.Errorf("marathon password: %w", err)
	}
	hc, err := a.backendClient(c.Marathon.TLS, orDefault(c.Marathon.Timeout.D(), 30*time.Second))
	if err != nil {
		return nil, fmt.Errorf("marathon tls: %w", err)
	}
	return marathon.New(marathon.Config{URL: c.Marathon.URL, User: c.Marathon.User, Password: password, Force: c.Marathon.Force}, hc, a.log)
}

// mesosClient is the Mesos client, or nil when none is configured. Its
// scheduler stream is long-lived, so the client has no overall timeout.
func (a *app) mesosClient(c *fileConfig) (*mesos.Client, error) {
	if c.Mesos.URL == "" {
		return nil, nil
	}
	secretValue, err := secret(c.Mesos.Secret, c.Mesos.SecretFile)
	if err != nil {
		return nil, fmt.Errorf("mesos secret: %w", err)
	}
	hc, err := a.backendClient(c.Mesos.TLS, 0)
	if err != nil {
		return nil, fmt.Errorf("mesos tls: %w", err)
	}
	return mesos.New(mesos.Config{
		URL: c.Mesos.URL, Principal: c.Mesos.Principal, Secret: secretValue, Role: c.Mesos.Role,
		FrameworkName: c.Mesos.FrameworkName, User: c.Mesos.User,
	}, hc, a.log)
}

// wireDeploys adds the deploy, promote, rollback and live runners when
// some service deploys anywhere.
func (a *app) wireDeploys(c *fileConfig, jc *jenkins.Client, builds *deploy.Builds, runners map[string]worker.Runner, w wiring) error {
	pipes := pipelines(c)
	if len(pipes) == 0 || c.Marathon.URL == "" {
		return nil
	}
	mc, err := a.marathonClient(c)
	if err != nil {
		return err
	}
	d := &deploy.Deployer{Builds: builds, Apps: mc, Colours: mc, Pipelines: pipes, Poll: orDefault(c.Deploy.Poll.D(), 2*time.Second), AppURL: marathonUI(c)}
	if w.pollInterval > 0 {
		d.Poll = w.pollInterval
	}
	if jc != nil {
		d.Artifacts = jc
	}
	mo, err := a.mesosClient(c)
	if err != nil {
		return err
	}
	if mo != nil {
		d.Tasks = mo
	}
	dr := worker.DeployRunner{Deployer: d, State: a.q, Catalog: catalog(c), RefuseConcurrent: c.Deploy.Concurrent == "refuse", MaxWait: c.Deploy.MaxWait.D(), Recheck: w.recheck,
		LockTTL: a.q.Config().Visibility}
	runners["deploy"], runners["promote"], runners["rollback"] = dr, dr, dr
	runners["live"] = worker.LiveRunner{Deployer: d, Catalog: catalog(c), Locks: a.q}
	return nil
}

// marathonUI links an app to its page in Marathon's web UI.
func marathonUI(c *fileConfig) func(string) string {
	base := c.Marathon.UIURL
	if base == "" {
		base = strings.TrimSuffix(c.Marathon.URL, "/") + "/ui/"
	}
	return func(id string) string {
		return strings.TrimSuffix(base, "/") + "/#/apps/" + url.PathEscape(id)
	}
}
