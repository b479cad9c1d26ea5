package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/seed-5eb4e92e/deploybot/backends/marathon"
)

// k8sObject is what the example manifests' checks read.
type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Spec struct {
				Grace           int `yaml:"terminationGracePeriodSeconds"`
				SecurityContext struct {
					RunAsNonRoot bool `yaml:"runAsNonRoot"`
				} `yaml:"securityContext"`
				Containers []struct {
					Args  []string `yaml:"args"`
					Ports []struct {
						ContainerPort int `yaml:"containerPort"`
					} `yaml:"ports"`
					Readiness probe `yaml:"readinessProbe"`
					Liveness  probe `yaml:"livenessProbe"`
				} `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
		MinAvailable int `yaml:"minAvailable"`
	} `yaml:"spec"`
}

type probe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
	} `yaml:"httpGet"`
}

// TestKubernetesExample: both roles run the binary's real subcommands on
// the default port, as non-root, with readiness on /readyz (red first when
// shutting down), liveness on /healthz, and a disruption budget each.
func TestKubernetesExample(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join("..", "..", "examples", "kubernetes", "deploybot.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	deployments, budgets := map[string]k8sObject{}, map[string]bool{}
	for {
		var o k8sObject
		if err := dec.Decode(&o); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		switch o.Kind {
		case "Deployment":
			deployments[o.Spec.Selector.MatchLabels["role"]] = o
		case "PodDisruptionBudget":
			budgets[o.Spec.Selector.MatchLabels["role"]] = o.Spec.MinAvailable > 0
		}
	}
	for _, r := range []role{roleResponder, roleWorker} {
		d, ok := deployments[string(r)]
		if !ok || len(d.Spec.Template.Spec.Containers) != 1 {
			t.Fatalf("no %s Deployment with one container", r)
		}
		pod := d.Spec.Template.Spec
		c := pod.Containers[0]
		if len(c.Args) == 0 || c.Args[0] != string(r) || c.Ports[0].ContainerPort != 8080 {
			t.Errorf("%s runs %v on %v", r, c.Args, c.Ports)
		}
		if c.Readiness.HTTPGet.Path != "/readyz" || c.Liveness.HTTPGet.Path != "/healthz" || !pod.SecurityContext.RunAsNonRoot {
			t.Errorf("%s: readiness %q, liveness %q, non-root %v", r, c.Readiness.HTTPGet.Path, c.Liveness.HTTPGet.Path, pod.SecurityContext.RunAsNonRoot)
		}
		if !budgets[string(r)] {
			t.Errorf("no PodDisruptionBudget keeps a %s", r)
		}
	}
	if g := deployments["worker"].Spec.Template.Spec.Grace; g <= 30 {
		t.Errorf("worker terminationGracePeriodSeconds %d; it must outlast worker.shutdown_grace (30s)", g)
	}
}

// TestMarathonExample: the seed teams run on Marathon; the example's apps
// have valid ids, run the real roles, and check /healthz and /readyz.
func TestMarathonExample(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join("..", "..", "examples", "marathon", "deploybot.json"))
	if err != nil {
		t.Fatal(err)
	}
	var group struct {
		ID   string `json:"id"`
		Apps []struct {
			marathon.App
			Args            []string `json:"args"`
			ReadinessChecks []struct {
				Path string `json:"path"`
			} `json:"readinessChecks"`
		} `json:"apps"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&group); err != nil {
		t.Fatal(err)
	}
	roles := map[string]bool{}
	for _, a := range group.Apps {
		if err := marathon.CheckAppID(a.ID); err != nil {
			t.Errorf("app id %q: %v", a.ID, err)
		}
		if len(a.Args) == 0 || (a.Args[0] != string(roleResponder) && a.Args[0] != string(roleWorker)) {
			t.Errorf("%s runs %v", a.ID, a.Args)
			continue
		}
		roles[a.Args[0]] = true
		if len(a.HealthChecks) == 0 || a.HealthChecks[0].Path != "/healthz" {
			t.Errorf("%s health checks %+v", a.ID, a.HealthChecks)
		}
		if a.Args[0] == string(roleResponder) && (len(a.ReadinessChecks) == 0 || a.ReadinessChecks[0].Path != "/readyz") {
			t.Errorf("%s has no readiness check on /readyz", a.ID)
		}
	}
	if !roles["responder"] || !roles["worker"] {
		t.Fatalf("roles in the example: %v", roles)
	}
}

// TestPrometheusAlerts: every metric an example alert watches is one
// deploybot registers (by its name in the source), so a renamed metric
// cannot leave an alert that never fires.
func TestPrometheusAlerts(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join("..", "..", "examples", "prometheus", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &rules); err != nil {
		t.Fatal(err)
	}
	source := moduleSource(t)
	metric := regexp.MustCompile(`deploybot_[a-z_]+`)
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			names := metric.FindAllString(r.Expr, -1)
			if len(names) == 0 {
				t.Errorf("alert %s watches no deploybot metric: %s", r.Alert, r.Expr)
			}
			for _, name := range names {
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_count"), "_sum")
				if !strings.Contains(source, `"`+base+`"`) {
					t.Errorf("alert %s watches %s, which deploybot does not export", r.Alert, base)
				}
			}
			n++
		}
	}
	if n < 5 {
		t.Fatalf("only %d alerts", n)
	}
}

// moduleSource is the module's non-test Go source, concatenated.
func moduleSource(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	root := filepath.Join("..", "..")
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			raw, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b.Write(raw)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
