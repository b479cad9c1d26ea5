package main

import (
	"fmt"
	"net/mail"
	"os"
	"regexp"
	"strings"

	"github.com/seed-5eb4e92e/deploybot/backends/gerrit"
	"github.com/seed-5eb4e92e/deploybot/backends/jenkins"
)

// channelRE is what a notice channel may be: a Slack channel ID or a
// #name.
var channelRE = regexp.MustCompile(`^(?:[CGD][A-Z0-9]{2,}|#[a-z0-9][a-z0-9._-]{0,79})$`)

// checkGerrit validates the gerrit section and the Gerrit-related parts of
// services, hooks and notices.
func (l *loaded) checkGerrit() {
	g := l.cfg.Gerrit
	if g.URL != "" {
		if _, err := gerrit.New(gerrit.Config{URL: g.URL}, nil, nil); err != nil {
			l.bad("gerrit.url", "", "%s", strings.TrimPrefix(redacted(err, g.URL), "gerrit: "))
		}
		if _, err := secret(g.Password, g.PasswordFile); err != nil {
			l.secretFileWarning("gerrit.password_file", err)
		} else if g.User != "" && g.Password == "" && g.PasswordFile == "" {
			l.warn("gerrit.user", "a user but no HTTP password: set GERRIT_HTTP_PASSWORD or gerrit.password_file")
		}
		if g.Password != "" && !l.envSet("GERRIT_HTTP_PASSWORD") {
			l.warn("gerrit.password", "a secret in the config file; prefer GERRIT_HTTP_PASSWORD or password_file")
		}
		l.checkTLS("gerrit.tls", g.TLS)
		l.checkTLSScheme("gerrit.tls", g.URL, g.TLS)
	}
	if (g.URL != "" || l.hookEnabled("gerrit")) && len(g.CIAccounts) == 0 {
		l.warn("gerrit.ci_accounts", "empty: every vote on %s counts as a CI result, and CI accounts could be blamed", orLabel(g.VerifyLabel))
	}
	if s := g.SSH; s.Addr != "" {
		for key, v := range map[string]string{"user": s.User, "key_file": s.KeyFile, "known_hosts_file": s.KnownHostsFile} {
			if v == "" {
				l.bad("gerrit.ssh."+key, "", "required to read stream-events over SSH")
			}
		}
		if s.KeyFile != "" {
			if _, err := os.Stat(s.KeyFile); err != nil {
				l.secretFileWarning("gerrit.ssh.key_file", err)
			}
		}
		if s.KnownHostsFile != "" {
			if _, err := os.Stat(s.KnownHostsFile); err != nil {
				l.bad("gerrit.ssh.known_hosts_file", "", "cannot read it: %v", err)
			}
		}
	}
	l.checkHooks()
	l.checkNotices()
	l.checkRouting()
}

func orLabel(s string) string {
	if s == "" {
		return "Verified"
	}
	return s
}

func (l *loaded) checkNotices() {
	n := l.cfg.Notices
	if n.Channel != "" && !channelRE.MatchString(n.Channel) {
		l.bad("notices.channel", "", "%q is not a channel ID (C…) or a #name", n.Channel)
	}
	for k, v := range n.Aliases {
		_, emailErr := mail.ParseAddress(v)
		if !slackUserRE.MatchString(v) && emailErr != nil {
			l.bad("notices.aliases."+k, "", "%q is neither a Slack user ID (U…) nor an e-mail address", v)
		}
	}
}

// checkRouting validates each service's channel, project and jobs, and that
// no project or job is claimed twice.
func (l *loaded) checkRouting() {
	projects, jobs := map[string]string{}, map[string]string{}
	for _, name := range sortedKeys(l.cfg.Services) {
		s := l.cfg.Services[name]
		base := "services." + name
		if s.Channel != "" && !channelRE.MatchString(s.Channel) {
			l.bad(base+".channel", "", "%q is not a channel ID (C…) or a #name", s.Channel)
		}
		if p := s.GerritProject; p != "" {
			if err := gerrit.CheckProject(p); err != nil {
				l.bad(base+".gerrit_project", "", "%s", strings.TrimPrefix(err.Error(), "gerrit: "))
			} else if other, dup := projects[p]; dup {
				l.bad(base+".gerrit_project", "", "%s is also the project of %s", p, other)
			}
			projects[p] = name
		}
		for i, j := range s.JenkinsJobs {
			path := fmt.Sprintf("%s.jenkins_jobs.%d", base, i)
			if _, err := jenkins.JobPath(j); err != nil {
				l.bad(path, "", "%s", strings.TrimPrefix(err.Error(), "jenkins: "))
			} else if other, dup := jobs[j]; dup && other != name {
				l.bad(path, "", "%s is also a job of %s", j, other)
			}
			jobs[j] = name
		}
	}
}
