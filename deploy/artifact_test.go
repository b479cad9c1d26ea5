package deploy_test

import (
	"errors"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/seed-5eb4e92e/deploybot/backends/jenkins/jenkinstest"
	"github.com/seed-5eb4e92e/deploybot/backends/marathon/marathontest"
	"github.com/seed-5eb4e92e/deploybot/deploy"
)

const (
	builtImage    = "registry.example.com/platform/api:2.0.1"
	imageTemplate = "registry.example.com/platform/api:{version}"
)

// artifactEnv is a deployEnv whose pipeline reads its artifact as src
// says from builds that leave fin behind.
func artifactEnv(t *testing.T, src deploy.ArtifactSource, fin jenkinstest.Finished) *deployEnv {
	t.Helper()
	e := newDeployEnv(t, deploy.Target{})
	e.jenkins.AddJob("platform/api-build", "BRANCH", "IMAGE_TAG")
	e.setFinish(func(url.Values, int) jenkinstest.Finished { return fin })
	p := e.d.Pipelines["api"]
	p.Artifact = src
	e.d.Pipelines["api"] = p
	e.marathon.AddApp(marathontest.AppSpec{ID: "/platform/api-staging", Image: oldImage, Instances: 1})
	return e
}

// TestArtifactSources: each place a build can leave its version in gives
// the image that is deployed.
func TestArtifactSources(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ref  string
		src  deploy.ArtifactSource
		fin  jenkinstest.Finished
	}{
		{name: "ref is the image", ref: builtImage},
		{name: "ref into a template", ref: "2.0.1", src: deploy.ArtifactSource{From: deploy.FromRef, Image: imageTemplate}},
		{name: "ref through a pattern", ref: "v2.0.1", src: deploy.ArtifactSource{Pattern: regexp.MustCompile(`^v(\d+\.\d+\.\d+)$`), Image: imageTemplate}},
		{name: "param", src: deploy.ArtifactSource{From: deploy.FromParam, Param: "IMAGE_TAG", Image: imageTemplate},
			fin: jenkinstest.Finished{Params: url.Values{"IMAGE_TAG": {"2.0.1"}}}},
		{name: "description, first group", src: deploy.ArtifactSource{From: deploy.FromDescription, Pattern: regexp.MustCompile(`pushed <b>([^<]+)</b>`)},
			fin: jenkinstest.Finished{Description: "tests passed; pushed <b>" + builtImage + "</b> in 3m"}},
		{name: "description, whole match", src: deploy.ArtifactSource{From: deploy.FromDescription, Pattern: regexp.MustCompile(`\d+\.\d+\.\d+`), Image: imageTemplate},
			fin: jenkinstest.Finished{Description: "release 2.0.1"}},
		{name: "description as it is", src: deploy.ArtifactSource{From: deploy.FromDescription},
			fin: jenkinstest.Finished{Description: "  " + builtImage + "\n"}},
		{name: "archived file name", src: deploy.ArtifactSource{From: deploy.FromArtifact, Pattern: regexp.MustCompile(`(?m)^api-(\d+\.\d+\.\d+)\.tar\.gz$`), Image: imageTemplate},
			fin: jenkinstest.Finished{Artifacts: map[string][]byte{"reports/junit.xml": []byte("<testsuite/>"), "dist/api-2.0.1.tar.gz": []byte("gz")}}},
		{name: "file contents", src: deploy.ArtifactSource{From: deploy.FromFile, File: "build/image.txt"},
			fin: jenkinstest.Finished{Artifacts: map[string][]byte{"build/image.txt": []byte(builtImage + "\n")}}},
		{name: "file contents through a pattern", src: deploy.ArtifactSource{From: deploy.FromFile, File: "version.properties", Pattern: regexp.MustCompile(`(?m)^version=(\S+)$`), Image: imageTemplate},
			fin: jenkinstest.Finished{Artifacts: map[string][]byte{"version.properties": []byte("group=platform\nversion=2.0.1\n")}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := artifactEnv(t, tc.src, tc.fin)
			steps := &memSteps{}
			res, stages, err := e.deploy(t, request(tc.ref), steps)
			if err != nil {
				t.Fatalf("deploy: %v (stages %q)", err, stages)
			}
			app, _ := e.marathon.App("/platform/api-staging")
			if res.Artifact != builtImage || app.Image != builtImage || steps.get("artifact") != builtImage {
				t.Fatalf("artifact %q, app runs %q, step %q; want %q", res.Artifact, app.Image, steps.get("artifact"), builtImage)
			}
		})
	}
}

// TestArtifactNotFound: a build that does not say what it made stops the
// deploy with a message a user can act on, before Marathon is changed.
func TestArtifactNotFound(t *testing.T) {
	t.Parallel()
	description := deploy.ArtifactSource{From: deploy.FromDescription, Pattern: regexp.MustCompile(`pushed (\S+)`)}
	tests := []struct {
		name string
		src  deploy.ArtifactSource
		fin  jenkinstest.Finished
		want string
	}{
		{name: "description does not match", src: description, fin: jenkinstest.Finished{Description: "skipped the push"},
			want: "The build's description does not match the artifact pattern `pushed (\\S+)`"},
		{name: "no description", src: description, want: "The build's description does not match"},
		{name: "no archived file matches", src: deploy.ArtifactSource{From: deploy.FromArtifact, Pattern: regexp.MustCompile(`api-(\S+)\.tar\.gz`)},
			fin: jenkinstest.Finished{Artifacts: map[string][]byte{"reports/junit.xml": nil}}, want: "The build's artifact does not match the artifact pattern"},
		{name: "ref does not match", src: deploy.ArtifactSource{Pattern: regexp.MustCompile(`^v(\d+)$`)}, want: "The build's ref does not match"},
		{name: "empty group", src: deploy.ArtifactSource{From: deploy.FromDescription, Pattern: regexp.MustCompile(`pushed (\S*)`)},
			fin: jenkinstest.Finished{Description: "pushed "}, want: "The build left no artifact version in its description."},
		{name: "param not set", src: deploy.ArtifactSource{From: deploy.FromParam, Param: "IMAGE_TAG", Image: imageTemplate},
			want: "The build left no artifact version in its param."},
		{name: "file not archived", src: deploy.ArtifactSource{From: deploy.FromFile, File: "build/image.txt"},
			want: "I could not read build/image.txt from build #1."},
		{name: "file too large", src: deploy.ArtifactSource{From: deploy.FromFile, File: "image.txt"},
			fin: jenkinstest.Finished{Artifacts: map[string][]byte{"image.txt": []byte(strings.Repeat("a", 5000))}}, want: "I could not read image.txt from build #1."},
		{name: "file holds no image", src: deploy.ArtifactSource{From: deploy.FromFile, File: "image.txt"},
			fin: jenkinstest.Finished{Artifacts: map[string][]byte{"image.txt": []byte("<html>404</html>")}}, want: `"<html>404</html>" is not a Docker image reference`},
		{name: "template makes no image", src: deploy.ArtifactSource{From: deploy.FromParam, Param: "IMAGE_TAG", Image: imageTemplate},
			fin: jenkinstest.Finished{Params: url.Values{"IMAGE_TAG": {"2.0.1 --privileged"}}}, want: "is not a Docker image reference, so I won't deploy it."},
		{name: "unknown source", src: deploy.ArtifactSource{From: "nexus"}, want: `Unknown artifact source "nexus".`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := artifactEnv(t, tc.src, tc.fin)
			steps := &memSteps{}
			res, _, err := e.deploy(t, request("main"), steps)
			var f *deploy.Failure
			if !errors.As(err, &f) || !strings.Contains(f.Msg, tc.want) {
				t.Fatalf("err = %v; want a Failure saying %q", err, tc.want)
			}
			if res.Artifact != "" || steps.get("artifact") != "" || len(changes(e.marathon)) != 0 {
				t.Fatalf("artifact %q, step %q, Marathon got %q; want nothing deployed", res.Artifact, steps.get("artifact"), changes(e.marathon))
			}
		})
	}
}

// TestArtifactWithoutJenkins: a source that reads the build needs Jenkins
// to read it from; the ref alone does not.
func TestArtifactWithoutJenkins(t *testing.T) {
	t.Parallel()
	e := artifactEnv(t, deploy.ArtifactSource{From: deploy.FromDescription}, jenkinstest.Finished{Description: builtImage})
	e.d.Artifacts = nil
	_, _, err := e.deploy(t, request("main"), &memSteps{})
	var f *deploy.Failure
	if !errors.As(err, &f) || !strings.Contains(f.Msg, "cannot read build artifacts without Jenkins") {
		t.Fatalf("err = %v", err)
	}
	e = artifactEnv(t, deploy.ArtifactSource{Image: imageTemplate}, jenkinstest.Finished{})
	e.d.Artifacts = nil
	if res, _, err := e.deploy(t, request("2.0.1"), &memSteps{}); err != nil || res.Artifact != builtImage {
		t.Fatalf("from the ref: %+v, %v", res, err)
	}
}

// imageCase is an image and whether CheckImage lets it through.
type imageCase struct {
	name, image string
	ok          bool
}

// imageCases follow the grammar of github.com/distribution/reference.
func imageCases() []imageCase {
	digest := "@sha256:" + strings.Repeat("0123456789abcdef", 4)
	return []imageCase{
		{name: "name only: no tag, so latest", image: "api"},
		{name: "registry port, no tag", image: "localhost:5000/platform/api"},
		{name: "tag", image: "api:1.0", ok: true},
		{name: "registry and path", image: builtImage, ok: true},
		{name: "registry port", image: "localhost:5000/platform/api:latest", ok: true},
		{name: "upper-case registry", image: "Registry.Example.com/api:v1", ok: true},
		{name: "tag characters", image: "api:V1_2.3-rc.1", ok: true},
		{name: "digest", image: "registry.example.com/api" + digest, ok: true},
		{name: "tag and digest", image: "api:1.0" + digest, ok: true},
		{name: "separators", image: "registry.example.com/my_team/my-api.v2:1", ok: true},
		{name: "double underscore", image: "registry.example.com/my__api:1", ok: true},
		{name: "dashes", image: "registry.example.com/my--api:1", ok: true},
		{name: "empty", image: ""},
		{name: "space after", image: "api:1.0 "},
		{name: "space before", image: " api:1.0"},
		{name: "shell", image: "api:1.0;rm -rf /"},
		{name: "newline", image: "api:1.0\n<!channel>"},
		{name: "tab", image: "api:1.0\tx"},
		{name: "NUL", image: "api:1.0\x00"},
		{name: "escape", image: "api:1.0\x1b[31m"},
		{name: "upper-case path", image: "registry.example.com/API:1"},
		{name: "slash in tag", image: "registry.example.com/api:feature/login"},
		{name: "empty tag", image: "api:"},
		{name: "tag starts with a dash", image: "api:-1"},
		{name: "two tags", image: "api:1:2"},
		{name: "tag too long", image: "api:" + strings.Repeat("1", 129)},
		{name: "too long", image: "registry.example.com/" + strings.Repeat("a", 250) + ":1"},
		{name: "short digest", image: "api@sha256:abc"},
		{name: "URL", image: "https://registry.example.com/api:1"},
		{name: "leading separator", image: "-api:1"},
		{name: "trailing separator", image: "api-:1"},
		{name: "triple underscore", image: "my___api:1"},
		{name: "registry starts with a dash", image: "-registry.example.com/api:1"},
		{name: "registry is a dot path", image: "../api:1"},
		{name: "registry starts with a dot", image: ".example.com/api:1"},
		{name: "registry ends with a dash", image: "registry-/api:1"},
		{name: "unicode", image: "api:1.0\u00a0"},
	}
}

func TestCheckImage(t *testing.T) {
	t.Parallel()
	for _, tc := range imageCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := deploy.CheckImage(tc.image)
			if tc.ok {
				if err != nil {
					t.Fatalf("CheckImage(%q) = %v; want it accepted", tc.image, err)
				}
				return
			}
			var f *deploy.Failure
			want := "is not a Docker image reference"
			if strings.HasSuffix(tc.name, "no tag") || strings.HasSuffix(tc.name, "so latest") {
				want = "has no tag or digest"
			}
			if !errors.As(err, &f) || !strings.Contains(f.Msg, want) {
				t.Fatalf("CheckImage(%q) = %v; want a Failure", tc.image, err)
			}
			if strings.ContainsFunc(f.Msg, func(r rune) bool { return r < 0x20 || r == 0x7f }) || len(f.Msg) > 200 {
				t.Fatalf("message %q carries control characters or the whole input into Slack", f.Msg)
			}
		})
	}
}
