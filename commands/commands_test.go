package commands

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

var testCatalog = Catalog{
	Services: []Service{
		{Name: "api", DefaultRef: "main"},
		{Name: "web", DefaultRef: "trunk"},
		{Name: "worker"},
	},
	Environments: []string{"dev", "staging", "prod"},
}

func testTable(t *testing.T) *Table {
	t.Helper()
	tab, err := NewTable("/deploy", Builtin())
	if err != nil {
		t.Fatalf("NewTable(Builtin()): %v", err)
	}
	return tab
}

func TestParse(t *testing.T) {
	t.Parallel()
	tab := testTable(t)
	tests := []struct {
		name    string
		text    string
		want    Request
		wantErr string // substring of the usage error; empty means success
	}{
		{name: "empty is help", text: "  ", want: Request{Kind: "help"}},
		{name: "help", text: "help", want: Request{Kind: "help"}},
		{name: "help topic", text: "help build", want: Request{Kind: "help", Topic: "build"}},
		{name: "build with ref", text: "build api feature/login", want: Request{Kind: "build", Action: "build", Service: "api", Ref: "feature/login"}},
		{name: "build default ref", text: "build web", want: Request{Kind: "build", Action: "build", Service: "web", Ref: "trunk"}},
		{name: "build default ref is main", text: "build worker", want: Request{Kind: "build", Action: "build", Service: "worker", Ref: "main"}},
		{name: "case-insensitive names", text: "BUILD API v1.2.3", want: Request{Kind: "build", Action: "build", Service: "api", Ref: "v1.2.3"}},
		{name: "extra spaces", text: "  build\tapi   main  ", want: Request{Kind: "build", Action: "build", Service: "api", Ref: "main"}},
		{name: "slack link label", text: "build api <http://release.v2|release.v2>", want: Request{Kind: "build", Action: "build", Service: "api", Ref: "release.v2"}},
		{name: "sha", text: "build api 3f1c2ab", want: Request{Kind: "build", Action: "build", Service: "api", Ref: "3f1c2ab"}},
		{name: "status all", text: "status", want: Request{Kind: "status"}},
		{name: "recheck number", text: "recheck 1503", want: Request{Kind: "recheck", Action: "recheck", Change: 1503}},
		{name: "recheck url", text: "recheck <https://gerrit.example.com/c/platform/api/+/1503|https://gerrit.example.com/c/platform/api/+/1503>", want: Request{Kind: "recheck", Action: "recheck", Change: 1503}},
		{name: "recheck url with patch set", text: "recheck https://gerrit.example.com/c/platform/api/+/1503/2", want: Request{Kind: "recheck", Action: "recheck", Change: 1503}},
		{name: "submit", text: "submit 77", want: Request{Kind: "submit", Action: "submit", Change: 77}},
		{name: "old url", text: "submit https://gerrit.example.com/#/c/1503/", want: Request{Kind: "submit", Action: "submit", Change: 1503}},
		{name: "short url", text: "submit https://gerrit.example.com/1503", want: Request{Kind: "submit", Action: "submit", Change: 1503}},
		{name: "recheck nothing", text: "recheck", wantErr: "takes one Gerrit change"},
		{name: "recheck junk", text: "recheck abc", wantErr: "not a Gerrit change"},
		{name: "submit zero", text: "submit 0", wantErr: "not a Gerrit change number"},
		{name: "status one", text: "status api", want: Request{Kind: "status", Service: "api"}},
		{name: "unknown command suggests", text: "biuld api", wantErr: "Did you mean `/deploy build`?"},
		{name: "unknown command lists help", text: "frobnicate", wantErr: "Commands:"},
		{name: "build without service", text: "build", wantErr: "Which service"},
		{name: "unknown service suggests", text: "build apu main", wantErr: "Did you mean `api`?"},
		{name: "unknown service lists known", text: "build zzz main", wantErr: "Known services: api, web, worker."},
		{name: "too many words", text: "build api main extra", wantErr: "at most one ref"},
		{name: "bad ref dotdot", text: "build api a..b", wantErr: "cannot contain .."},
		{name: "bad ref option", text: "build api --upload-pack=x", wantErr: "cannot start with -"},
		{name: "bad ref lock", text: "build api feature.lock", wantErr: ".lock"},
		{name: "bad ref tilde", text: "build api HEAD~1", wantErr: "cannot contain '~'"},
		{name: "bad ref escaped angle", text: "build api a&lt;b", wantErr: ""},
		{name: "status unknown service", text: "status nope", wantErr: "Known services"},
		{name: "help too many", text: "help a b", wantErr: "at most one"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := tab.Parse(tc.text, testCatalog)
			if tc.name == "bad ref escaped angle" {
				// "<" is legal in git refs; the point is that the entity is decoded.
				if err != nil || got.Ref != "a<b" {
					t.Fatalf("Parse(%q) = %+v, %v; want ref a<b", tc.text, got, err)
				}
				return
			}
			if tc.wantErr != "" {
				var ue *UsageError
				if !errors.As(err, &ue) {
					t.Fatalf("Parse(%q) error = %v, want a *UsageError", tc.text, err)
				}
				if !strings.Contains(ue.Error(), tc.wantErr) {
					t.Fatalf("Parse(%q) error = %q, want it to contain %q", tc.text, ue.Error(), tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.text, err)
			}
			if got != tc.want {
				t.Fatalf("Parse(%q) = %+v, want %+v", tc.text, got, tc.want)
			}
		})
	}
}

func TestUsageErrorCarriesUsage(t *testing.T) {
	t.Parallel()
	_, err := testTable(t).Parse("build api a..b", testCatalog)
	var ue *UsageError
	if !errors.As(err, &ue) {
		t.Fatalf("want *UsageError, got %v", err)
	}
	if !strings.Contains(ue.Usage, "/deploy build &lt;service&gt; [ref]") {
		t.Fatalf("usage = %q, want the build synopsis", ue.Usage)
	}
}

func TestNewTableRejectsBadTables(t *testing.T) {
	t.Parallel()
	parse := func([]string, Catalog) (Request, error) { return Request{}, nil }
	tests := []struct {
		name string
		cmds []Command
	}{
		{name: "duplicate", cmds: []Command{{Name: "a", Parse: parse}, {Name: "a", Parse: parse}}},
		{name: "empty name", cmds: []Command{{Name: "", Parse: parse}}},
		{name: "space in name", cmds: []Command{{Name: "a b", Parse: parse}}},
		{name: "no parser", cmds: []Command{{Name: "a"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := NewTable("/deploy", tc.cmds); err == nil {
				t.Fatal("NewTable accepted a bad table")
			}
		})
	}
}

func TestPermission(t *testing.T) {
	t.Parallel()
	tests := []struct {
		p    Permission
		want string
	}{
		{Permission{Action: "build", Service: "api"}, "build:api"},
		{Permission{Action: "deploy", Service: "api", Env: "staging"}, "deploy:staging:api"},
	}
	for _, tc := range tests {
		if got := tc.p.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.p, got, tc.want)
		}
	}
	req, err := testTable(t).Parse("status api", testCatalog)
	if err != nil || !req.Permission().ReadOnly() {
		t.Fatalf("status should be read-only: %+v, %v", req, err)
	}
}

func TestCheckRef(t *testing.T) {
	t.Parallel()
	good := []string{"main", "feature/login", "v1.2.3", "release-2026.11", "users/ann/fix_1", "3f1c2ab", "a@b", "ünïcode"}
	for _, ref := range good {
		if err := CheckRef(ref); err != nil {
			t.Errorf("CheckRef(%q) = %v, want nil", ref, err)
		}
	}
	bad := []string{"", "@", "-x", "/a", "a/", "a.", "a//b", "a..b", "a@{1}", "a b", "a~1", "a^", "a:b", "a?", "a*", "a[", "a\\b",
		".hidden", "a/.b", "x.lock", "a/b.lock/c", "a\x00b", "a\x7fb", strings.Repeat("a", MaxRefLen+1), "\xff"}
	for _, ref := range bad {
		err := CheckRef(ref)
		var ue *UsageError
		if !errors.As(err, &ue) {
			t.Errorf("CheckRef(%q) = %v, want a *UsageError", ref, err)
		}
	}
}

func TestUnescape(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"build api main", "build api main"},
		{"a &amp; b &lt;c&gt;", "a & b <c>"},
		{"<http://x.io|x.io>", "x.io"},
		{"<https://x.io/a>", "https://x.io/a"},
		{"test <@U123|ann> deploy", "test <@U123|ann> deploy"},
		{"<#C1|general>", "<#C1|general>"},
		{"unterminated <http://x", "unterminated <http://x"},
	}
	for _, tc := range tests {
		if got := Unescape(tc.in); got != tc.want {
			t.Errorf("Unescape(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestHelpGolden(t *testing.T) {
	t.Parallel()
	tab := testTable(t)
	tests := []struct{ name, topic string }{
		{name: "all", topic: ""},
		{name: "build", topic: "build"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			golden(t, "help-"+tc.name+".golden", tab.Help(tc.topic, testCatalog))
		})
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Fatalf("%s differs from the golden file (go test -update rewrites it)\n got:\n%s\nwant:\n%s", name, got, want)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"build api main", "status", "help build", "build api <http://a|a>", "build api a..b", "&amp;&lt;<", "build \x00 \xff"} {
		f.Add(s)
	}
	tab, err := NewTable("/deploy", Builtin())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text string) {
		req, err := tab.Parse(text, testCatalog)
		if err != nil {
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("Parse(%q) returned a non-usage error %T: %v", text, err, err)
			}
			return
		}
		if req.Kind == "build" {
			if _, ok := testCatalog.Service(req.Service); !ok {
				t.Fatalf("Parse(%q) accepted unknown service %q", text, req.Service)
			}
			if err := CheckRef(req.Ref); err != nil {
				t.Fatalf("Parse(%q) accepted bad ref %q: %v", text, req.Ref, err)
			}
		}
	})
}
