package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/seed-5eb4e92e/deploybot/backends/gerrit/gerrittest"
	"github.com/seed-5eb4e92e/deploybot/backends/jenkins/jenkinstest"
	"github.com/seed-5eb4e92e/deploybot/backends/marathon/marathontest"
	"github.com/seed-5eb4e92e/deploybot/backends/mesos/mesostest"
	"github.com/seed-5eb4e92e/deploybot/backends/vault"
	"github.com/seed-5eb4e92e/deploybot/bot/slacktest"
	"github.com/seed-5eb4e92e/deploybot/deploy"
)

// The shell's people: you, and the CI account that votes.
var (
	shellYou = gerrittest.Account{ID: 1000100, Name: "You", Email: "you@example.com", Username: "you"}
	shellCI  = gerrittest.Account{ID: 1000098, Name: "CI Bot", Email: "ci@example.com", Username: "ci", ServiceUser: true}
)

// sims are the shell's stand-ins: Jenkins, Gerrit, Marathon and a Mesos
// master behind mutual TLS, the development CA that issues their and the
// worker's certificates, and Slack.
type sims struct {
	ca             *vault.DevCA
	jenkins        *jenkinstest.Server
	gerrit         *gerrittest.Server
	gerritPassword string
	marathon       *marathontest.Server
	mesos          *mesostest.Server
	slack          *slacktest.Server
}

// startSims starts the simulations; c is the config the shell runs, whose
// services' builds leave images where their artifact settings look.
func startSims(c *fileConfig, log *slog.Logger) (*sims, error) {
	ca, err := vault.NewDevCA("deploybot-shell-worker", time.Hour, log)
	if err != nil {
		return nil, err
	}
	serverTLS, err := ca.ServerTLS("127.0.0.1")
	if err != nil {
		return nil, err
	}
	password := randomHex()
	return &sims{
		ca: ca,
		jenkins: jenkinstest.Start(jenkinstest.Options{QuietPolls: 1, ExecutorPolls: 2, BuildPolls: 4,
			Outcome: shellOutcome(), Finish: shellFinish(c), TLS: serverTLS}),
		gerrit:         gerrittest.Start(gerrittest.Options{User: "deploybot", Password: password, Account: shellCI, TLS: serverTLS.Clone()}),
		gerritPassword: password,
		marathon:       marathontest.Start(marathontest.Options{DeployPolls: 2, TLS: serverTLS.Clone()}),
		mesos:          mesostest.Start(mesostest.Options{TaskOutcome: shellTaskOutcome, HeartbeatInterval: time.Second, TLS: serverTLS.Clone()}),
		slack:          slacktest.Start(shellToken),
	}, nil
}

func (s *sims) Close() {
	s.jenkins.Close()
	s.gerrit.Close()
	s.marathon.Close()
	s.mesos.Close()
	s.slack.Close()
}

// shellChange is the demo change of a service's Gerrit project.
type shellChange struct {
	project string
	number  int
}

// configure points the config at the simulations, defines each service's
// Jenkins job, its Marathon apps and a Gerrit change of yours in each
// service's project, and uses redisURL (empty: embedded). It returns the
// changes by service.
func (s *sims) configure(c *fileConfig, redisURL string) map[string]shellChange {
	changes := map[string]shellChange{}
	names := sortedKeys(c.Services)
	for i, name := range names {
		svc := c.Services[name]
		if svc.Build.Job != "" {
			params := []string{deploy.BuildJob{RefParam: svc.Build.RefParam}.RefParamName()}
			for p := range svc.Build.Params {
				params = append(params, p)
			}
			if svc.Artifact.From == deploy.FromParam && svc.Artifact.Param != "" {
				params = append(params, svc.Artifact.Param) // set by the build itself
			}
			s.jenkins.AddJob(svc.Build.Job, params...)
		}
		if svc.GerritProject != "" {
			ch := shellChange{project: svc.GerritProject, number: 1503 + i}
			s.gerrit.AddChange(gerrittest.Change{
				Project: ch.project, Number: ch.number, Branch: "main", Subject: "Make " + name + " faster",
				Owner: shellYou, Uploader: shellYou, PatchSet: 1,
			})
			changes[name] = ch
		}
		// The shell has one channel: notices about every service show in it.
		svc.Channel = shellChannel
		c.Services[name] = svc
	}
	c.Notices.Channel = shellChannel
	s.slack.AddUser(shellUser, shellYou.Email)
	s.slack.AddUser(shellAnn, "ann@example.com")
	c.Slack = slackConfig{SigningSecret: randomHex(), BotToken: shellToken, APIURL: s.slack.URL, Interval: duration(200 * time.Millisecond)}
	c.Jenkins = jenkinsConfig{URL: s.jenkins.URL, TLS: backendTLS{ClientCert: "vault"}}
	c.Gerrit = gerritConfig{URL: s.gerrit.URL, User: "deploybot", Password: s.gerritPassword, TLS: backendTLS{ClientCert: "vault"},
		CIAccounts: []string{shellCI.Username}}
	c.Marathon = marathonConfig{URL: s.marathon.URL, TLS: backendTLS{ClientCert: "vault"}}
	c.Mesos = mesosConfig{URL: s.mesos.URL, TLS: backendTLS{ClientCert: "vault"}}
	addApps(s.marathon, c)
	c.Hooks = hooksConfig{GerritSecret: randomHex(), JenkinsSecret: randomHex()}
	c.Redis.URL = redisURL
	if c.Redis.Prefix == "" {
		c.Redis.Prefix = "deploybot-shell"
	}
	c.Worker.BackoffBase = duration(500 * time.Millisecond)
	return changes
}

func randomHex() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// simulate sends what Gerrit's webhooks plugin would: CI's vote on your
// change to a service, failing ("break") or passing on a new patch set
// ("fix").
func (sh *shell) simulate(args []string) {
	if len(args) != 2 || (args[0] != "break" && args[0] != "fix") {
		sh.printf("(shell) usage: simulate break <service> | simulate fix <service>\n")
		return
	}
	ch, ok := sh.changes[args[1]]
	if !ok {
		var known []string
		for name := range sh.changes {
			known = append(known, name)
		}
		sort.Strings(known)
		sh.printf("(shell) %q has no Gerrit project; try one of: %s\n", args[1], strings.Join(known, ", "))
		return
	}
	v, _ := sh.sims.gerrit.EventValues(ch.project, ch.number)
	v.Actor, v.WebURL = shellCI, sh.sims.gerrit.URL
	zero, minus := 0, -1
	if args[0] == "break" {
		sh.breaks[args[1]]++
		v.PatchSet = sh.breaks[args[1]]
		v.Approvals = []gerrittest.Approval{{Label: "Code-Review"}, {Label: "Verified", Value: -1, OldValue: &zero}}
		v.Comment = fmt.Sprintf("Patch Set %d: Verified-1\n\nBuild failed: %sjob/%s-verify/%d/ : FAILURE", v.PatchSet, sh.sims.jenkins.URL, args[1], 40+v.PatchSet)
	} else {
		sh.breaks[args[1]]++
		v.PatchSet = sh.breaks[args[1]]
		v.Approvals = []gerrittest.Approval{{Label: "Code-Review"}, {Label: "Verified", Value: 1, OldValue: &minus}}
		v.Comment = fmt.Sprintf("Patch Set %d: Verified+1\n\nBuild succeeded", v.PatchSet)
	}
	v.Uploader = shellYou
	body, err := gerrittest.WebhookEvent(gerrittest.CommentAdded, v)
	if err != nil {
		sh.printf("(shell) %v\n", err)
		return
	}
	rec := sh.postHook("/hooks/gerrit?token="+sh.hookSecret, body)
	if rec.Code != http.StatusAccepted {
		sh.printf("(shell) the Gerrit hook answered %d: %s\n", rec.Code, rec.Body.String())
		return
	}
	sh.printf("(shell) Gerrit reports: CI voted Verified%+d on change %d, patch set %d\n", v.Approvals[1].Value, ch.number, v.PatchSet)
}
