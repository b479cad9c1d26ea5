package main

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/seed-5eb4e92e/deploybot/backends/marathon"
	"github.com/seed-5eb4e92e/deploybot/backends/mesos"
	"github.com/seed-5eb4e92e/deploybot/commands"
	"github.com/seed-5eb4e92e/deploybot/deploy"
)

var taskNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,39}$`)

// Bounds of a target's verify_timeout: long enough for tasks to start and
// pass a health check, short enough that a broken deploy is noticed.
const (
	minVerifyTimeout = 10 * time.Second
	maxVerifyTimeout = 24 * time.Hour
)

// checkDeploy validates the marathon, mesos and deploy sections and each
// service's deploy targets, artifact and pre-deploy tasks.
func (l *loaded) checkDeploy() {
	c := &l.cfg
	if c.Marathon.URL != "" {
		l.checkMarathon()
	}
	if c.Mesos.URL != "" {
		l.checkMesos()
	}
	if v := c.Deploy.Concurrent; v != "" && v != "wait" && v != "refuse" {
		l.bad("deploy.concurrent", "", "%q is neither wait nor refuse", v)
	}
	apps := map[string]string{} // Marathon app id → the target using it
	for _, name := range sortedKeys(c.Services) {
		l.checkServiceDeploy(name, c.Services[name], apps)
	}
}

func (l *loaded) checkMarathon() {
	m := l.cfg.Marathon
	if _, err := marathon.New(marathon.Config{URL: m.URL}, nil, nil); err != nil {
		l.bad("marathon.url", "", "%s", strings.TrimPrefix(redacted(err, m.URL), "marathon: "))
	}
	l.checkTLS("marathon.tls", m.TLS)
	l.checkTLSScheme("marathon.tls", m.URL, m.TLS)
	l.checkCredentials("marathon", "user", m.User, "password", m.Password, m.PasswordFile, "MARATHON_PASSWORD")
}

func (l *loaded) checkMesos() {
	m := l.cfg.Mesos
	if _, err := mesos.New(mesos.Config{URL: m.URL}, nil, nil); err != nil {
		l.bad("mesos.url", "", "%s", strings.TrimPrefix(redacted(err, m.URL), "mesos: "))
	}
	l.checkTLS("mesos.tls", m.TLS)
	l.checkTLSScheme("mesos.tls", m.URL, m.TLS)
	l.checkCredentials("mesos", "principal", m.Principal, "secret", m.Secret, m.SecretFile, "MESOS_SECRET")
}

// checkCredentials checks a backend's basic-auth settings: a secret
// needs a user, a user without a secret and a secret in the file are
// worth a warning.
func (l *loaded) checkCredentials(section, userKey, user, secretKey, value, file, env string) {
	if _, err := secret(value, file); err != nil {
		l.secretFileWarning(section+"."+secretKey+"_file", err)
	}
	switch {
	case user == "" && (value != "" || file != ""):
		l.bad(section+"."+userKey, env, "required with a %s", secretKey)
	case user != "" && value == "" && file == "":
		l.warn(section+"."+userKey, "a %s but no %s: set %s or %s.%s_file", userKey, secretKey, env, section, secretKey)
	}
	if value != "" && !l.envSet(env) {
		l.warn(section+"."+secretKey, "a secret in the config file; prefer %s or %s_file", env, secretKey)
	}
}

func (l *loaded) checkServiceDeploy(name string, s svcCfg, apps map[string]string) {
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
	if len(s.PreDeploy) > 0 && len(s.Deploy) == 0 {
		l.warn(at+".pre_deploy", "the service deploys nowhere, so its pre-deploy tasks never run")
	}
	if len(s.Deploy) > 0 && s.Build.Job == "" {
		l.bad(at+".build.job", "", "required: a deploy builds the service first")
	}
	for _, env := range l.orderedTargets(s) {
		l.checkTarget(at+".deploy."+env, env, s.Deploy[env], apps)
	}
	l.checkTasks(at, s.PreDeploy)
	if len(s.Deploy) > 0 {
		l.checkArtifact(at+".artifact", s.Artifact)
	}
}

// orderedTargets are a service's target environments in promotion order,
// then the ones not in environments, sorted, so that problems are reported
// in a stable order.
func (l *loaded) orderedTargets(s svcCfg) []string {
	var out []string
	for _, env := range l.cfg.Environments {
		if _, ok := s.Deploy[env]; ok && !slices.Contains(out, env) {
			out = append(out, env)
		}
	}
	for _, env := range sortedKeys(s.Deploy) {
		if !slices.Contains(out, env) {
			out = append(out, env)
		}
	}
	return out
}

func (l *loaded) checkTarget(at, env string, t targetCfg, apps map[string]string) {
	if !slices.Contains(l.cfg.Environments, env) {
		if len(l.cfg.Environments) == 0 {
			l.bad(at, "", "%q is not in environments, which lists none: list the environments there, in promotion order", env)
		} else {
			l.bad(at, "", "%q is not in environments (%s), the promotion order", env, strings.Join(l.cfg.Environments, ", "))
		}
	}
	if err := marathon.CheckAppID(t.App); err != nil {
		l.bad(at+".app", "", "%s", strings.TrimPrefix(err.Error(), "marathon: "))
	} else {
		l.claimApps(at, t, apps)
	}
	switch t.Strategy {
	case "", deploy.Rolling:
		if t.Step != 0 {
			l.warn(at+".step", "only blue-green deploys move in steps; a rolling deploy leaves that to Marathon's upgradeStrategy")
		}
	case deploy.BlueGreen:
		if err := marathon.CheckAppID(t.App + "-" + marathon.ColourGreen); err != nil && marathon.CheckAppID(t.App) == nil {
			l.bad(at+".app", "", "its blue/green colours %s-blue and %s-green are not valid app ids: %s", t.App, t.App, strings.TrimPrefix(err.Error(), "marathon: "))
		}
	default:
		l.bad(at+".strategy", "", "%q is neither rolling nor blue-green", t.Strategy)
	}
	if t.Step < 0 {
		l.bad(at+".step", "", "may not be negative")
	}
	d := t.VerifyTimeout.D()
	if d != 0 && (d < minVerifyTimeout || d > maxVerifyTimeout) {
		l.bad(at+".verify_timeout", "", "%s is out of range %s to %s", d, minVerifyTimeout, maxVerifyTimeout)
	}
	verify := orDefault(d, deploy.DefaultVerifyTimeout)
	if job := orDefault(l.cfg.Worker.JobTimeout.D(), time.Hour); verify >= job {
		l.bad(at+".verify_timeout", "", "%s is not shorter than worker.job_timeout (%s): the job would be stopped before the deploy is verified or rolled back", verify, job)
	}
}

// claimApps records the Marathon apps target t deploys (a blue/green
// target also its -blue and -green colours) and reports one that another
// target deploys too: a promotion between them would change nothing, and a
// rollback of one would undo the other.
func (l *loaded) claimApps(at string, t targetCfg, apps map[string]string) {
	ids := []string{t.App}
	if t.Strategy == deploy.BlueGreen {
		ids = append(ids, t.App+"-"+marathon.ColourBlue, t.App+"-"+marathon.ColourGreen)
	}
	for _, id := range ids {
		if other, taken := apps[id]; taken {
			l.bad(at+".app", "", "%s is also deployed by %s; each environment of each service needs its own app", id, other)
			return
		}
	}
	for _, id := range ids {
		apps[id] = at
	}
}

// checkTasks validates a service's pre-deploy tasks. A task's name is its
// step in the job's state, so two tasks of one name would run once.
func (l *loaded) checkTasks(at string, tasks []taskCfg) {
	seen := map[string]bool{}
	for i, t := range tasks {
		p := fmt.Sprintf("%s.pre_deploy.%d", at, i)
		switch {
		case !taskNameRE.MatchString(t.Name):
			l.bad(p+".name", "", "%q: use up to 40 lower-case letters, digits, '-' or '_'", t.Name)
		case seen[t.Name]:
			l.bad(p+".name", "", "%q is the name of an earlier task too", t.Name)
		}
		seen[t.Name] = true
		if t.Image != "" && deploy.CheckImage(t.Image) != nil {
			l.bad(p+".image", "", "%q is not a Docker image reference", t.Image)
		}
		if t.CPUs < 0 || t.MemMB < 0 {
			l.bad(p, "", "cpus and mem may not be negative")
		}
		for k := range t.Env {
			if k == "" || strings.ContainsAny(k, "= \t") {
				l.bad(p+".env", "", "%q is not an environment variable name", k)
			}
		}
	}
}

func (l *loaded) checkArtifact(at string, a artifactCfg) {
	switch a.From {
	case "", deploy.FromRef:
		if a.Image == "" {
			l.bad(at+".image", "", "required when the version is the ref (from: ref, the default): without it the ref itself would be run as an image")
		} else {
			l.warn(at+".from", "the image is tagged with the ref, which every build of a branch moves: Promote and Roll back may then run a later build than the one verified. A tag per build, read with from: param, description, artifact or file, avoids that")
		}
	case deploy.FromDescription, deploy.FromArtifact:
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
	if a.Image == "" {
		return
	}
	if !strings.Contains(a.Image, "{version}") {
		l.bad(at+".image", "", "%q has no {version}: every deploy would run the same image", a.Image)
	} else if deploy.CheckImage(strings.ReplaceAll(a.Image, "{version}", "1.0")) != nil {
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
