package main

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/seed-5eb4e92e/deploybot/backends/jenkins/jenkinstest"
	"github.com/seed-5eb4e92e/deploybot/backends/marathon"
	"github.com/seed-5eb4e92e/deploybot/backends/marathon/marathontest"
	"github.com/seed-5eb4e92e/deploybot/backends/mesos/mesostest"
	"github.com/seed-5eb4e92e/deploybot/deploy"
)

// The shell's simulated deploys: where its builds push images, the
// version its Marathon apps run before the first deploy, and how many
// instances they run.
const (
	shellRegistry  = "registry.shell.example"
	shellFirst     = "1.0.0"
	shellInstances = 2
	// shellBrokenMigration in a ref builds fine, but the pre-deploy tasks
	// of the image it makes fail.
	shellBrokenMigration = "broken-migration"
)

// demoPipeline is the demo service's deploy pipeline: the image is read
// from the build's description, a migration runs on Mesos before each
// deploy, and it goes dev → staging → prod, prod blue/green.
func demoPipeline(s svcCfg) svcCfg {
	s.Artifact = artifactCfg{From: deploy.FromDescription, Pattern: `image: (\S+)`}
	s.PreDeploy = []taskCfg{{Name: "migrate", Command: "bin/migrate up"}}
	s.Deploy = map[string]targetCfg{
		"dev":     {App: "/shell/api-dev"},
		"staging": {App: "/shell/api-staging"},
		"prod":    {App: "/shell/api-prod", Strategy: deploy.BlueGreen},
	}
	return s
}

var tagUnsafe = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// shellVersion is the version a simulated build of ref makes: "main-3"
// for build #3 of main.
func shellVersion(ref string, n int) string {
	v := strings.Trim(tagUnsafe.ReplaceAllString(ref, "-"), "-.")
	if v == "" {
		v = "build"
	}
	if len(v) > 100 {
		v = v[:100]
	}
	return v + "-" + strconv.Itoa(n)
}

// shellImage is the image a service's artifact settings make of version.
func shellImage(service string, a artifactCfg, version string) string {
	if a.Image != "" {
		return strings.ReplaceAll(a.Image, "{version}", version)
	}
	return shellRegistry + "/" + service + ":" + version
}

// shellFinish has each simulated build leave its image where the
// service's artifact settings look for it: in the description, a
// parameter, or an archived file.
func shellFinish(c *fileConfig) func(string, url.Values, int) jenkinstest.Finished {
	type source struct {
		service, refParam string
		artifact          artifactCfg
	}
	byJob := map[string]source{}
	for name, s := range c.Services {
		if s.Build.Job != "" {
			byJob[s.Build.Job] = source{name, deploy.BuildJob{RefParam: s.Build.RefParam}.RefParamName(), s.Artifact}
		}
	}
	return func(job string, params url.Values, n int) jenkinstest.Finished {
		src, ok := byJob[job]
		if !ok {
			return jenkinstest.Finished{}
		}
		return shellArtifact(src.service, src.artifact, shellVersion(params.Get(src.refParam), n))
	}
}

// shellArtifact is what a build of version leaves behind for a.
func shellArtifact(service string, a artifactCfg, version string) jenkinstest.Finished {
	image := shellImage(service, a, version)
	want := image // what deploy must read: the version when it makes the image itself
	if a.Image != "" {
		want = version
	}
	switch a.From {
	case deploy.FromParam:
		return jenkinstest.Finished{Params: url.Values{a.Param: {fitPattern(a.Pattern, want, "%s", "v%s")}}}
	case deploy.FromDescription:
		return jenkinstest.Finished{Description: fitPattern(a.Pattern, want, "image: %s", "%s", "version: %s", "built %s")}
	case deploy.FromArtifact:
		name := fitPattern(a.Pattern, want, service+"-%s.tar.gz", "%s.tar.gz", "%s")
		return jenkinstest.Finished{Artifacts: map[string][]byte{name: []byte("simulated")}}
	case deploy.FromFile:
		return jenkinstest.Finished{Artifacts: map[string][]byte{a.File: []byte(want + "\n")}}
	}
	return jenkinstest.Finished{}
}

// fitPattern is the first of the formats, filled with want, from which
// pattern picks want out, the way deploy reads an artifact; the first
// format when none fits (the deploy then says the pattern did not match).
func fitPattern(pattern, want string, formats ...string) string {
	re, err := regexp.Compile(pattern)
	for _, f := range formats {
		text := fmt.Sprintf(f, want)
		if pattern == "" || err != nil {
			return text
		}
		m := re.FindStringSubmatch(text)
		if m == nil {
			continue
		}
		got := m[0]
		if len(m) > 1 {
			got = m[1]
		}
		if got == want {
			return text
		}
	}
	return fmt.Sprintf(formats[0], want)
}

// shellTaskOutcome ends a simulated pre-deploy task: it fails when the
// image it runs for was built from a ref containing "broken-migration".
func shellTaskOutcome(t mesostest.LaunchedTask) (string, int, string) {
	if strings.Contains(t.Env["DEPLOY_ARTIFACT"], shellBrokenMigration) || strings.Contains(t.Image, shellBrokenMigration) {
		return "TASK_FAILED", 1, ""
	}
	return "TASK_FINISHED", 0, ""
}

// addApps creates the Marathon apps the services deploy to, as an operator
// would have before the first deploy: each runs version 1.0.0, and a
// blue/green target starts as its blue colour with marathon-lb's labels.
func addApps(m *marathontest.Server, c *fileConfig) {
	for _, name := range sortedKeys(c.Services) {
		svc := c.Services[name]
		for _, env := range sortedKeys(svc.Deploy) {
			t := svc.Deploy[env]
			spec := marathontest.AppSpec{ID: t.App, Image: shellImage(name, svc.Artifact, shellFirst), Instances: shellInstances,
				Labels: map[string]string{marathon.LabelGroup: "internal"}}
			if t.Strategy == deploy.BlueGreen {
				spec.ID = t.App + "-" + marathon.ColourBlue
				spec.Labels = map[string]string{
					marathon.LabelGroup:             "external",
					marathon.LabelDeploymentGroup:   strings.ReplaceAll(strings.Trim(t.App, "/"), "/", "-"),
					marathon.LabelDeploymentColour:  marathon.ColourBlue,
					marathon.LabelAppID:             t.App,
					marathon.LabelServicePort0:      "10000",
					marathon.LabelDeploymentAltPort: "10001",
				}
			}
			m.AddApp(spec)
		}
	}
}
