package main

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/seed-5eb4e92e/deploybot"

// allowedInternal lists, per package, the packages of this module it may
// import (DESIGN.md, "Layout"). Packages under a listed one's folder (such
// as backends/jenkins/jenkinstest) follow the rule of the closest entry.
var allowedInternal = map[string][]string{
	"commands":               {},
	"authz":                  {"commands"},
	"authz/okta":             {},
	"authz/signin":           {"authz", "commands"},
	"worker/queue":           {"commands"},
	"backends/internal":      {},
	"backends/jenkins":       {"backends/jenkins", "backends/internal"},
	"backends/vault":         {},
	"backends/gerrit":        {"backends/internal"},
	"backends/marathon":      {"backends/internal"},
	"backends/mesos":         {"backends/internal"},
	"deploy":                 {"backends/jenkins", "backends/marathon", "backends/mesos"},
	"worker":                 {"commands", "authz", "deploy", "worker/queue", "worker/blame", "backends/jenkins", "backends/gerrit"},
	"worker/blame":           {"worker/queue", "backends/jenkins", "backends/gerrit"},
	"bot":                    {"commands", "authz", "worker/queue"},
	"bot/slacktest":          {},
	"worker/queue/queuetest": {"worker/queue", "commands"},
	// The load test's floor stays a plain responder of its own.
	"bench": {},
}

// ioPackages may not be imported by the pure command grammar.
var ioPackages = []string{"net", "net/http", "os", "os/exec", "io", "io/fs", "syscall", "database/sql", "log", "log/slog"}

type listedPackage struct {
	ImportPath string
	Imports    []string
	Deps       []string
	Standard   bool
}

// TestDependencyDirection checks the layout with `go list`: the build, not a
// reviewer, keeps the architecture.
func TestDependencyDirection(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-json", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var pkgs []listedPackage
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 8 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	for _, p := range pkgs {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, module+"/cmd") {
				t.Errorf("%s imports %s: nothing may import cmd", rel, imp)
			}
		}
		if strings.HasPrefix(rel, "cmd/") {
			continue
		}
		rule, ok := closestRule(rel)
		if !ok {
			t.Errorf("%s has no dependency rule; add it to allowedInternal (and DESIGN.md's layout)", rel)
			continue
		}
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			target := strings.TrimPrefix(imp, module+"/")
			if !allowed(rule, rel, target) {
				t.Errorf("%s imports %s, which the layout does not allow", rel, target)
			}
		}
		if rel == "commands" {
			for _, imp := range p.Imports {
				for _, bad := range ioPackages {
					if imp == bad {
						t.Errorf("commands imports %s; the grammar must do no I/O", imp)
					}
				}
			}
			for _, d := range p.Deps {
				if strings.Contains(strings.SplitN(d, "/", 2)[0], ".") {
					t.Errorf("commands depends on %s; it may use the standard library only", d)
				}
			}
		}
		if strings.HasPrefix(rel, "backends/") {
			for _, imp := range p.Imports {
				if strings.HasPrefix(imp, module+"/") && !strings.HasPrefix(imp, module+"/backends/") {
					t.Errorf("backend %s imports %s", rel, imp)
				}
			}
		}
	}
}

func closestRule(rel string) ([]string, bool) {
	for p := rel; p != "" && p != "."; {
		if r, ok := allowedInternal[p]; ok {
			return r, true
		}
		i := strings.LastIndexByte(p, '/')
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return nil, false
}

func allowed(rule []string, self, target string) bool {
	if strings.HasPrefix(target, self+"/") {
		return true // a package's own test helpers and subpackages
	}
	for _, a := range rule {
		if target == a || strings.HasPrefix(target, a+"/") {
			return true
		}
	}
	return false
}
