package jenkins_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/seed-5eb4e92e/deploybot/backends/jenkins"
	"github.com/seed-5eb4e92e/deploybot/backends/jenkins/jenkinstest"
)

// TestBuildOutputsRecorded reads description, artifacts and parameters from
// the recorded freestyle and Pipeline builds, and checks that the fields
// other packages use still decode next to them.
func TestBuildOutputsRecorded(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file        string
		description string
		params      map[string]string
		artifacts   []jenkins.Artifact
		changes     int
	}{
		{
			file:        "build-release.json",
			description: "image: registry.example.com/api:1.4.2-3f1c2b7",
			params:      map[string]string{"BRANCH": "main", "PUSH_IMAGE": "true"},
			artifacts: []jenkins.Artifact{
				{DisplayPath: "api-1.4.2.tar.gz", FileName: "api-1.4.2.tar.gz", RelativePath: "dist/api-1.4.2.tar.gz"},
				{DisplayPath: "image.txt", FileName: "image.txt", RelativePath: "image.txt"},
			},
		},
		{
			file:        "build-workflow-artifacts.json",
			description: "image: registry.example.com/api:1.4.2-9a8b7c6",
			params:      map[string]string{"VERSION": "1.4.2", "DRY_RUN": "false"},
			artifacts: []jenkins.Artifact{
				{DisplayPath: "darwin/version.txt", FileName: "version.txt", RelativePath: "build/darwin/version.txt"},
				{DisplayPath: "linux/version.txt", FileName: "version.txt", RelativePath: "build/linux/version.txt"},
				{DisplayPath: "api-1.4.2.tgz", FileName: "api-1.4.2.tgz", RelativePath: "charts/api-1.4.2.tgz"},
				{DisplayPath: "image.txt", FileName: "image.txt", RelativePath: "image.txt"},
			},
		},
		{file: "build-success.json", params: map[string]string{"BRANCH": "main", "DEPLOY_ENV": "staging"}, artifacts: []jenkins.Artifact{}, changes: 1},
		{file: "build-workflow.json", params: map[string]string{"VERSION": "1.4.2"}, artifacts: []jenkins.Artifact{}, changes: 1},
		{file: "build-running.json", params: map[string]string{"BRANCH": "main", "DEPLOY_ENV": "staging"}, artifacts: []jenkins.Artifact{}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			var b jenkins.Build
			decodeFile(t, filepath.Join("jenkinstest", "testdata", tc.file), &b)
			if b.Description != tc.description {
				t.Errorf("Description = %q, want %q", b.Description, tc.description)
			}
			if got := b.Params(); !maps.Equal(got, tc.params) {
				t.Errorf("Params() = %v, want %v", got, tc.params)
			}
			if !slices.Equal(b.Artifacts, tc.artifacts) {
				t.Errorf("Artifacts = %+v\nwant %+v", b.Artifacts, tc.artifacts)
			}
			if got := len(b.Changes()); got != tc.changes {
				t.Errorf("%d changes, want %d", got, tc.changes)
			}
		})
	}
}

func TestParameterValues(t *testing.T) {
	t.Parallel()
	// A password's value is not exported: the parameter is there, without
	// a plain value.
	var b jenkins.Build
	decodeFile(t, filepath.Join("jenkinstest", "testdata", "build-release.json"), &b)
	var names []string
	for _, a := range b.Actions {
		for _, p := range a.Parameters {
			names = append(names, p.Name)
			if _, ok := p.Text(); ok == (p.Name == "REGISTRY_PASSWORD") {
				t.Errorf("%s (%s): Text ok = %v", p.Name, p.Class, ok)
			}
		}
	}
	if want := []string{"BRANCH", "PUSH_IMAGE", "REGISTRY_PASSWORD"}; !slices.Equal(names, want) {
		t.Fatalf("parameters %v, want %v in definition order", names, want)
	}

	tests := []struct {
		name string
		json string
		want map[string]string
	}{
		{
			// cdancy/jenkins-rest build-info.json, recorded before _class.
			name: "without _class",
			json: `{"actions":[{"parameters":[{"name":"bear","value":true},{"name":"fish","value":"salmon"}]},{"causes":[{"shortDescription":"Started by user anonymous","userId":null,"userName":"anonymous"}]},{}]}`,
			want: map[string]string{"bear": "true", "fish": "salmon"},
		},
		{
			name: "null string value",
			json: `{"actions":[{"_class":"hudson.model.ParametersAction","parameters":[{"_class":"hudson.model.StringParameterValue","name":"TAG","value":null}]}]}`,
			want: map[string]string{"TAG": ""},
		},
		{
			name: "run parameter has no value",
			json: `{"actions":[{"_class":"hudson.model.ParametersAction","parameters":[{"_class":"hudson.model.RunParameterValue","jobName":"api-build","name":"FROM","number":"7"}]}]}`,
			want: map[string]string{},
		},
		{
			name: "another action's parameters are not the build's",
			json: `{"actions":[{"_class":"hudson.model.SomeOtherAction","parameters":[{"name":"NOT","value":"ours"}]},{"_class":"hudson.model.ParametersAction","parameters":[{"_class":"hudson.model.StringParameterValue","name":"A","value":"1"}]}]}`,
			want: map[string]string{"A": "1"},
		},
		{
			name: "another action's parameters in another shape",
			json: `{"actions":[{"_class":"org.example.PluginAction","parameters":{"x":1}},{"_class":"hudson.model.ParametersAction","parameters":[{"_class":"hudson.model.StringParameterValue","name":"A","value":"1"}]},null]}`,
			want: map[string]string{"A": "1"},
		},
		{
			name: "no actions",
			json: `{"number":3}`,
			want: map[string]string{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var b jenkins.Build
			if err := json.Unmarshal([]byte(tc.json), &b); err != nil {
				t.Fatal(err)
			}
			if got := b.Params(); !maps.Equal(got, tc.want) {
				t.Fatalf("Params() = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestFinishedBuildFromDouble follows a build of the double whose job
// archived files and set a description, and reads what it left.
func TestFinishedBuildFromDouble(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	calls := 0
	c, srv := newPair(t, jenkinstest.Options{
		User: "deploybot", Token: "tok",
		Outcome: func(string, url.Values, int) string { return "UNSTABLE" },
		Finish: func(job string, params url.Values, n int) jenkinstest.Finished {
			mu.Lock()
			calls++
			mu.Unlock()
			tag := params.Get("BRANCH") + "-" + strings.Repeat("a", 7)
			return jenkinstest.Finished{
				Description: "image: registry.example.com/api:" + tag,
				Artifacts: map[string][]byte{
					"image.txt":                []byte(tag + "\n"),
					"dist/api-1.4.2.tar.gz":    []byte("\x1f\x8b"),
					"build/linux/version.txt":  []byte("1.4.2"),
					"build/Darwin/version.txt": []byte("1.4.2"),
				},
				Params: url.Values{"IMAGE_TAG": {tag}, "UNDEFINED": {"x"}},
			}
		},
	})
	srv.AddJob("team/api", "BRANCH", "IMAGE_TAG")
	ctx := context.Background()
	id, err := c.Trigger(ctx, "team/api", map[string]string{"BRANCH": "main"})
	if err != nil {
		t.Fatal(err)
	}
	b := follow(t, c, "team/api", id)
	if b.Result != "UNSTABLE" {
		t.Errorf("Result = %q; an empty Finished.Result leaves it to Outcome", b.Result)
	}
	if b.Description != "image: registry.example.com/api:main-aaaaaaa" {
		t.Errorf("Description = %q", b.Description)
	}
	if got, want := b.Params(), map[string]string{"BRANCH": "main", "IMAGE_TAG": "main-aaaaaaa"}; !maps.Equal(got, want) {
		t.Errorf("Params() = %v, want %v (only defined names)", got, want)
	}
	want := []jenkins.Artifact{
		{DisplayPath: "Darwin/version.txt", FileName: "version.txt", RelativePath: "build/Darwin/version.txt"},
		{DisplayPath: "linux/version.txt", FileName: "version.txt", RelativePath: "build/linux/version.txt"},
		{DisplayPath: "api-1.4.2.tar.gz", FileName: "api-1.4.2.tar.gz", RelativePath: "dist/api-1.4.2.tar.gz"},
		{DisplayPath: "image.txt", FileName: "image.txt", RelativePath: "image.txt"},
	}
	if !slices.Equal(b.Artifacts, want) {
		t.Errorf("Artifacts = %+v\nwant %+v", b.Artifacts, want)
	}
	for _, a := range b.Artifacts {
		if _, err := c.Artifact(ctx, "team/api", b.Number, a.RelativePath, 1<<10); err != nil {
			t.Errorf("Artifact(%s): %v", a.RelativePath, err)
		}
	}
	got, err := c.Artifact(ctx, "team/api", b.Number, "image.txt", 64)
	if err != nil || string(got) != "main-aaaaaaa\n" {
		t.Errorf("Artifact(image.txt) = %q, %v", got, err)
	}
	if _, err := c.Build(ctx, "team/api", b.Number); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 1 {
		t.Errorf("Finish called %d times, want once per build", calls)
	}
}

func TestUnparameterizedBuildHasNoParameters(t *testing.T) {
	t.Parallel()
	c, srv := newPair(t, jenkinstest.Options{})
	srv.AddJob("nightly")
	id, err := c.Trigger(context.Background(), "nightly", nil)
	if err != nil {
		t.Fatal(err)
	}
	b := follow(t, c, "nightly", id)
	for _, a := range b.Actions {
		if a.Class == "hudson.model.ParametersAction" {
			t.Fatalf("build of a job without parameters has %+v", a)
		}
	}
	if len(b.Params()) != 0 || b.Description != "" || len(b.Artifacts) != 0 || b.Artifacts == nil {
		t.Fatalf("params %v, description %q, artifacts %#v; want none, with artifacts [] not null", b.Params(), b.Description, b.Artifacts)
	}
}
