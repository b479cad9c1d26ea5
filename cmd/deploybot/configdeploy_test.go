package main

import (
	"strings"
	"testing"
	"time"

	"github.com/seed-5eb4e92e/deploybot/deploy"
)

// deployHead is the top of every config in TestCheckConfigDeploy: lines 1
// to 7, so the cases' own lines start at 8.
const deployHead = `jenkins:
  url: https://jenkins.example.com/
marathon:
  url: https://marathon.example.com:8443/
mesos:
  url: https://mesos.example.com:5050/
environments: [dev, staging, prod]
`

// deployService is a valid deploying service, lines 8 to 13.
const deployService = `services:
  api:
    build: {job: api-build}
    artifact: {image: "registry.example.com/api:{version}"}
    deploy:
      dev: {app: /api/dev}
`

// TestCheckConfigDeploy: each kind of mistake in the marathon, mesos and
// deploy sections and in a service's pipeline is reported at its line,
// with the setting's path and what to do.
func TestCheckConfigDeploy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string // the config after deployHead, or all of it when it starts with "!"
		want string // a problem, as check-config prints it
	}{
		{"bad app id", `services:
  api:
    build: {job: api-build}
    artifact: {image: "registry.example.com/api:{version}"}
    deploy:
      dev: {app: api-dev}
`, `deploybot.yaml:13:13: services.api.deploy.dev.app: app id "api-dev" must start with /`},
		{"reserved app id", strings.Replace(deployService, "/api/dev", "/api/versions", 1),
			`deploybot.yaml:13:13: services.api.deploy.dev.app: app id "/api/versions" must not end with "versions"`},
		{"unknown strategy", deployService + `      staging: {app: /api/staging, strategy: canary}
`, `deploybot.yaml:14:36: services.api.deploy.staging.strategy: "canary" is neither rolling nor blue-green`},
		{"environment not in the order", deployService + `      qa: {app: /api/qa}
`, `deploybot.yaml:14:7: services.api.deploy.qa: "qa" is not in environments (dev, staging, prod), the promotion order`},
		{"no environments", "!" + strings.Replace(deployHead, "environments: [dev, staging, prod]\n", "", 1) + deployService,
			`deploybot.yaml:12:7: services.api.deploy.dev: "dev" is not in environments, which lists none`},
		{"two environments on one app", deployService + `      staging: {app: /api/dev}
`, `deploybot.yaml:14:17: services.api.deploy.staging.app: /api/dev is also deployed by services.api.deploy.dev`},
		{"a blue/green colour is another service's app", deployService + `      prod: {app: /api/prod, strategy: blue-green}
  web:
    build: {job: web-build}
    artifact: {image: "registry.example.com/web:{version}"}
    deploy:
      prod: {app: /api/prod-green}
`, `deploybot.yaml:19:14: services.web.deploy.prod.app: /api/prod-green is also deployed by services.api.deploy.prod`},
		{"deploys without marathon", "!environments: [dev]\njenkins:\n  url: https://jenkins.example.com/\n" + deployService,
			`deploybot.yaml:8:5: services.api.deploy: needs marathon.url`},
		{"pre-deploy without mesos", "!environments: [dev]\njenkins:\n  url: https://jenkins.example.com/\nmarathon:\n  url: https://m.example.com/\n" + deployService + `    pre_deploy:
      - {name: migrate, command: bin/migrate}
`, `deploybot.yaml:12:5: services.api.pre_deploy: needs mesos.url to run its tasks`},
		{"deploys without a build job", `services:
  api:
    gerrit_project: platform/api
    artifact: {image: "registry.example.com/api:{version}"}
    deploy:
      dev: {app: /api/dev}
`, `deploybot.yaml:9:3: services.api.build.job: required: a deploy builds the service first`},
		{"a service named like a command", strings.Replace(deployService, "  api:", "  lock:", 1),
			"deploybot.yaml:9:3: services.lock: a service may not be called \"lock\": `/deploy lock …` is a command"},
		{"bad artifact pattern", `services:
  api:
    build: {job: api-build}
    artifact:
      from: description
      pattern: 'image: (\S+'
    deploy:
      dev: {app: /api/dev}
`, "deploybot.yaml:13:7: services.api.artifact.pattern: error parsing regexp: missing closing ): `image: (\\S+`"},
		{"description without a pattern", `services:
  api:
    build: {job: api-build}
    artifact: {from: description}
    deploy:
      dev: {app: /api/dev}
`, `deploybot.yaml:11:5: services.api.artifact.pattern: required when from is description: it picks the version out`},
		{"unknown artifact source", strings.Replace(deployService, `{image:`, `{from: nexus, image:`, 1),
			`deploybot.yaml:11:16: services.api.artifact.from: "nexus" is not one of ref, param, description, artifact, file`},
		{"param without its name", strings.Replace(deployService, `{image:`, `{from: param, image:`, 1),
			`deploybot.yaml:11:5: services.api.artifact.param: required when from is param`},
		{"file outside the archive", strings.Replace(deployService, `{image:`, `{from: file, file: ../version.txt, image:`, 1),
			`deploybot.yaml:11:28: services.api.artifact.file: a relative path inside the build's artifacts is required when from is file`},
		{"the ref as an image", strings.Replace(deployService, `{image: "registry.example.com/api:{version}"}`, `{from: ref}`, 1),
			`deploybot.yaml:11:5: services.api.artifact.image: required when the version is the ref`},
		{"an image without its version", strings.Replace(deployService, `api:{version}`, `api:latest`, 1),
			`deploybot.yaml:11:16: services.api.artifact.image: "registry.example.com/api:latest" has no {version}: every deploy would run the same image`},
		{"an image template that makes no image", strings.Replace(deployService, `registry.example.com/api:{version}`, `Registry Example/API:{version}`, 1),
			`deploybot.yaml:11:16: services.api.artifact.image: "Registry Example/API:{version}" does not make a Docker image reference`},
		{"verify timeout too short", deployService + `      staging: {app: /api/staging, verify_timeout: 2s}
`, `deploybot.yaml:14:36: services.api.deploy.staging.verify_timeout: 2s is out of range 10s to 24h0m0s`},
		{"verify timeout past the job's", "!worker:\n  job_timeout: 30m\n" + deployHead + deployService + `      staging: {app: /api/staging, verify_timeout: 45m}
`, `deploybot.yaml:16:36: services.api.deploy.staging.verify_timeout: 45m0s is not shorter than worker.job_timeout (30m0s)`},
		{"verify timeout not a duration", deployService + `      staging: {app: /api/staging, verify_timeout: soon}
`, `deploybot.yaml:14: "soon" is not a duration such as 30s, 5m or 1h`},
		{"a blue/green colour past Marathon's 63 characters", deployService + `      prod: {app: /api/` + strings.Repeat("p", 60) + `, strategy: blue-green}
`, `deploybot.yaml:14:14: services.api.deploy.prod.app: its blue/green colours /api/` + strings.Repeat("p", 60) + `-blue`},
		{"negative step", deployService + `      prod: {app: /api/prod, strategy: blue-green, step: -1}
`, `deploybot.yaml:14:52: services.api.deploy.prod.step: may not be negative`},
		{"misspelt target setting", deployService + `      prod: {app: /api/prod, verify_timout: 5m}
`, `deploybot.yaml:14: unknown setting "verify_timout"`},
		{"bad task name", deployService + `    pre_deploy:
      - {name: Migrate DB, command: bin/migrate}
`, `deploybot.yaml:15:10: services.api.pre_deploy.0.name: "Migrate DB": use up to 40 lower-case letters`},
		{"two tasks of one name", deployService + `    pre_deploy:
      - {name: migrate, command: bin/migrate}
      - {name: migrate, command: bin/seed}
`, `deploybot.yaml:16:10: services.api.pre_deploy.1.name: "migrate" is the name of an earlier task too`},
		{"bad task image", deployService + `    pre_deploy:
      - {name: migrate, image: "Not An Image", command: bin/migrate}
`, `deploybot.yaml:15:25: services.api.pre_deploy.0.image: "Not An Image" is not a Docker image reference`},
		{"negative task resources", deployService + `    pre_deploy:
      - {name: migrate, cpus: -1}
`, `deploybot.yaml:15:9: services.api.pre_deploy.0: cpus and mem may not be negative`},
		{"concurrent neither wait nor refuse", "deploy:\n  concurrent: queue\n",
			`deploybot.yaml:9:3: deploy.concurrent: "queue" is neither wait nor refuse`},
		{"max wait too long", "deploy:\n  max_wait: 1000h\n",
			`deploybot.yaml:9:3: deploy.max_wait: 1000h0m0s is out of range 1m0s to 168h0m0s (locks last at most a week)`},
		{"poll interval too short", "deploy:\n  poll_interval: 1ms\n",
			`deploybot.yaml:9:3: deploy.poll_interval: 1ms is out of range 100ms to 1m0s`},
		{"marathon timeout too long", "!marathon:\n  url: https://m.example.com/\n  timeout: 1h\n",
			`deploybot.yaml:3:3: marathon.timeout: 1h0m0s is out of range 1s to 10m0s`},
		{"marathon credentials in the URL", "!marathon:\n  url: https://deploybot:hunter2@m.example.com/\n",
			`deploybot.yaml:2:3: marathon.url: put credentials in user and password, not in the URL`},
		{"marathon password without a user", "!marathon:\n  url: https://m.example.com/\n  password_file: /run/secrets/marathon\n",
			`deploybot.yaml:1:1: marathon.user: required with a password`},
		{"marathon certificate over http", "!marathon:\n  url: http://m.example.com/\n  tls: {client_cert: vault}\nvault:\n  address: https://v.example.com/\n  token: t\n  pki_role: w\n",
			`deploybot.yaml:3:9: marathon.tls.client_cert: vault certificates are only presented over https, and marathon.url is http`},
		{"mesos URL not http", "!mesos:\n  url: zk://zk.example.com:2181/mesos\n",
			`deploybot.yaml:2:3: mesos.url: url must be an absolute http(s) URL`},
		{"mesos bad tls setting", "!mesos:\n  url: https://mesos.example.com/\n  tls: {client_cert: spiffe}\n",
			`deploybot.yaml:3:9: mesos.tls.client_cert: "spiffe": want vault or none`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := deployHead + tc.body
			if strings.HasPrefix(tc.body, "!") {
				body = tc.body[1:]
			}
			l, err := loadConfig(writeConfig(t, body), noEnv)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range l.problems {
				got = append(got, p.String())
				if strings.Contains(p.String(), tc.want) {
					return
				}
			}
			t.Errorf("problems lack %q; got:\n%s", tc.want, strings.Join(got, "\n"))
		})
	}
}

// TestCheckConfigDeployWarnings: settings that work but are probably not
// what was meant are warned about, not refused.
func TestCheckConfigDeployWarnings(t *testing.T) {
	t.Parallel()
	head := strings.Replace(deployHead, "  url: https://marathon.example.com:8443/\n", "  url: https://marathon.example.com:8443/\n  user: deploybot\n  password: hunter2\n", 1)
	path := writeConfig(t, head+deployService+`      staging: {app: /api/staging, step: 2}
  web:
    build: {job: web-build}
    pre_deploy:
      - {name: migrate}
`)
	l, err := loadConfig(path, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	var warnings []string
	for _, w := range l.warnings {
		warnings = append(warnings, w.String())
	}
	all := strings.Join(warnings, "\n")
	for _, want := range []string{
		"deploybot.yaml:16:36: services.api.deploy.staging.step: only blue-green deploys move in steps",
		"deploybot.yaml:13:5: services.api.artifact.from: the image is tagged with the ref, which every build of a branch moves",
		"deploybot.yaml:19:5: services.web.pre_deploy: the service deploys nowhere, so its pre-deploy tasks never run",
		"deploybot.yaml:6:3: marathon.password: a secret in the config file; prefer MARATHON_PASSWORD or password_file",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("warnings lack %q", want)
		}
	}
	if strings.Contains(all, "hunter2") {
		t.Error("a warning shows the password")
	}
	if t.Failed() {
		t.Logf("problems %v\nwarnings:\n%s", l.problems, all)
	}
}

// TestCheckConfigDeployAcceptsPipelines: a pipeline using every setting
// (and one colour of a blue/green pair next to a rolling app of another
// name) has no problems, and is read into the pipeline it describes.
func TestCheckConfigDeployAcceptsPipelines(t *testing.T) {
	t.Parallel()
	path := writeConfig(t, deployHead+`deploy: {concurrent: refuse, max_wait: 2h, poll_interval: 1s}
services:
  api:
    build: {job: api-build}
    artifact: {from: file, file: out/version.txt, pattern: '^v?(\S+)', image: "registry.example.com/api:{version}"}
    pre_deploy:
      - {name: migrate, command: bin/migrate, env: {LOG: debug}, cpus: 0.5, mem: 256}
      - {name: seed_data, image: "registry.example.com/seed:1"}
    deploy:
      dev: {app: /api/dev, verify_timeout: 30s}
      staging: {app: /api/staging, auto_rollback: false}
      prod: {app: /api/prod, strategy: blue-green, step: 2}
  web:
    build: {job: web-build}
    artifact: {from: param, param: IMAGE}
    deploy:
      prod: {app: /api/prod-canary}
`)
	l, err := loadConfig(path, noEnv)
	if err != nil || len(l.problems) != 0 {
		t.Fatalf("problems %v, %v", l.problems, err)
	}
	api := pipelines(&l.cfg)["api"]
	dev, staging, prod := api.Targets["dev"], api.Targets["staging"], api.Targets["prod"]
	if dev.VerifyTimeout != 30*time.Second || !staging.NoAutoRollback || dev.NoAutoRollback || prod.Strategy != deploy.BlueGreen || prod.Step != 2 {
		t.Errorf("targets: dev %+v, staging %+v, prod %+v", dev, staging, prod)
	}
	if len(api.PreDeploy) != 2 || api.PreDeploy[0].Env["LOG"] != "debug" || api.PreDeploy[1].Image == "" {
		t.Errorf("pre-deploy %+v", api.PreDeploy)
	}
	if m := api.Artifact.Pattern.FindStringSubmatch("v1.2.3\n"); m == nil || m[1] != "1.2.3" || api.Artifact.File != "out/version.txt" {
		t.Errorf("artifact %+v", api.Artifact)
	}
	if got := catalog(&l.cfg); len(got.Services) != 2 || strings.Join(got.Services[0].Envs, ",") != "dev,staging,prod" {
		t.Errorf("catalog %+v", got)
	}
}
