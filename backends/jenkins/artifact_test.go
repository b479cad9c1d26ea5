package jenkins_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/seed-5eb4e92e/deploybot/backends/jenkins"
	"github.com/seed-5eb4e92e/deploybot/backends/jenkins/jenkinstest"
)

// finishedBuild runs one build of job "api" that archives files, and
// returns its number.
func finishedBuild(t *testing.T, c *jenkins.Client, srv *jenkinstest.Server) int {
	t.Helper()
	srv.AddJob("api", "BRANCH")
	id, err := c.Trigger(context.Background(), "api", map[string]string{"BRANCH": "main"})
	if err != nil {
		t.Fatal(err)
	}
	return follow(t, c, "api", id).Number
}

func archiving(files map[string][]byte) func(string, url.Values, int) jenkinstest.Finished {
	return func(string, url.Values, int) jenkinstest.Finished { return jenkinstest.Finished{Artifacts: files} }
}

func TestArtifactPath(t *testing.T) {
	t.Parallel()
	good := map[string]string{
		"image.txt":                 "image.txt",
		"dist/api-1.4.2.tar.gz":     "dist/api-1.4.2.tar.gz",
		"out dir/a b.txt":           "out%20dir/a%20b.txt",
		"100%.txt":                  "100%25.txt",
		"a#b/c":                     "a%23b/c",
		"dir/x:y.txt":               "dir/x:y.txt", // only a first element with ":" looks like a scheme or drive
		"ünïcode/версия.txt":        "%C3%BCn%C3%AFcode/%D0%B2%D0%B5%D1%80%D1%81%D0%B8%D1%8F.txt",
		"..hidden/file..name.txt..": "..hidden/file..name.txt..",
	}
	for in, want := range good {
		if got, err := jenkins.ArtifactPath(in); err != nil || got != want {
			t.Errorf("ArtifactPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// TestArtifactRejectsPaths checks that no bad path reaches Jenkins.
func TestArtifactRejectsPaths(t *testing.T) {
	t.Parallel()
	c, srv := newPair(t, jenkinstest.Options{Finish: archiving(map[string][]byte{"image.txt": []byte("x")})})
	n := finishedBuild(t, c, srv)
	tests := []struct{ name, path string }{
		{"empty", ""},
		{"parent", ".."},
		{"traversal", "../../../secrets/master.key"},
		{"traversal inside", "dist/../../x"},
		{"dot", "./image.txt"},
		{"absolute", "/etc/passwd"},
		{"scheme", "https://evil.example.com/x"},
		{"file scheme", "file:/etc/passwd"},
		{"drive letter", "C:/Windows/win.ini"},
		{"encoded slash", "dist%2Fapi.tar.gz"},
		{"encoded traversal", "..%2F..%2Fsecrets"},
		{"encoded dots", "%2e%2e/x"},
		{"double encoded", "%252F"},
		{"backslash", `dist\api.tar.gz`},
		{"backslash traversal", `..\..\x`},
		{"empty element", "dist//api.tar.gz"},
		{"trailing slash", "dist/"},
		{"glob", "*.txt"},
		{"zip command", "dist/*zip*/dist.zip"},
		{"question mark", "image.txt?x=1"},
		{"path parameter", "image.txt;jsessionid=1"},
		{"newline", "image.txt\n"},
		{"nul", "a\x00b"},
		{"too long", strings.Repeat("a/", 600) + "x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := jenkins.ArtifactPath(tc.path); err == nil {
				t.Errorf("ArtifactPath(%q) accepted", tc.path)
			}
			if b, err := c.Artifact(context.Background(), "api", n, tc.path, 1<<10); err == nil {
				t.Errorf("Artifact(%q) = %q, want an error", tc.path, b)
			}
		})
	}
	t.Cleanup(func() {
		for _, r := range srv.Requests() {
			if strings.Contains(r, "/artifact") {
				t.Errorf("a rejected path reached Jenkins: %s", r)
			}
		}
	})
}

func TestArtifactSizeLimitAndErrors(t *testing.T) {
	t.Parallel()
	c, srv := newPair(t, jenkinstest.Options{User: "u", Token: "tok", Finish: archiving(map[string][]byte{
		"image.txt":       []byte("registry.example.com/api:1.4.2\n"),
		"big/archive.bin": []byte(strings.Repeat("x", 4096)),
	})})
	n := finishedBuild(t, c, srv)
	ctx := context.Background()
	tests := []struct {
		name     string
		job      string
		number   int
		path     string
		max      int64
		want     string
		sentinel error
		status   int
	}{
		{name: "fits", job: "api", number: n, path: "image.txt", max: 31, want: "registry.example.com/api:1.4.2\n"},
		{name: "one byte over", job: "api", number: n, path: "image.txt", max: 30, sentinel: jenkins.ErrArtifactTooLarge},
		{name: "large", job: "api", number: n, path: "big/archive.bin", max: 1024, sentinel: jenkins.ErrArtifactTooLarge},
		{name: "no such artifact", job: "api", number: n, path: "version.txt", max: 1024, status: 404},
		{name: "no such build", job: "api", number: n + 1, path: "image.txt", max: 1024, status: 404},
		{name: "no such job", job: "web", number: 1, path: "image.txt", max: 1024, status: 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := c.Artifact(ctx, tc.job, tc.number, tc.path, tc.max)
			var he *jenkins.HTTPError
			switch {
			case tc.sentinel != nil:
				if !errors.Is(err, tc.sentinel) {
					t.Fatalf("Artifact = %q, %v; want %v", got, err, tc.sentinel)
				}
			case tc.status != 0:
				if !errors.As(err, &he) || he.Status != tc.status {
					t.Fatalf("Artifact = %q, %v; want status %d", got, err, tc.status)
				}
			case err != nil || string(got) != tc.want:
				t.Fatalf("Artifact = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	for _, limit := range []int64{0, -1} {
		if _, err := c.Artifact(ctx, "api", n, "image.txt", limit); err == nil {
			t.Errorf("Artifact with limit %d accepted", limit)
		}
	}
	if _, err := c.Artifact(ctx, "api", 0, "image.txt", 10); err == nil {
		t.Error("Artifact of build 0 accepted")
	}
	if _, err := c.Artifact(ctx, "api", n, "big", 1<<20); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Errorf("Artifact of a directory = %v, want a directory error", err)
	}
}

// TestArtifactBeforeFinish: the double's artifacts appear when the build
// finishes.
func TestArtifactBeforeFinish(t *testing.T) {
	t.Parallel()
	c, srv := newPair(t, jenkinstest.Options{BuildPolls: 1 << 30, Finish: archiving(map[string][]byte{"image.txt": []byte("x")})})
	srv.AddJob("api")
	ctx := context.Background()
	id, err := c.Trigger(ctx, "api", nil)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for i := 0; i < 10 && n == 0; i++ {
		item, err := c.QueueItem(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if item.Executable != nil {
			n = item.Executable.Number
		}
	}
	_, err = c.Artifact(ctx, "api", n, "image.txt", 10)
	var he *jenkins.HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusNotFound {
		t.Fatalf("Artifact of a running build = %v, want 404", err)
	}
}

// TestArtifactRedirectNotFollowed uses a Jenkins with a resource root URL,
// which answers every artifact request with 302 to a URL carrying a token.
func TestArtifactRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	const token = "fV3QWc2SbtB0tcAXdqHZhmPIaZFgWuTXNv1jBEvRWMo"
	var other atomic.Int32
	resources := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { other.Add(1) }))
	t.Cleanup(resources.Close)
	jenkinsSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/job/api/7/artifact/image.txt" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Location", resources.URL+"/static-files/"+token+"/image.txt")
		w.WriteHeader(http.StatusFound)
	}))
	t.Cleanup(jenkinsSrv.Close)
	c, err := jenkins.New(jenkins.Config{URL: jenkinsSrv.URL, User: "u", APIToken: "tok"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Artifact(context.Background(), "api", 7, "image.txt", 100)
	if !errors.Is(err, jenkins.ErrArtifactRedirected) {
		t.Fatalf("Artifact = %v, want ErrArtifactRedirected", err)
	}
	if strings.Contains(err.Error(), token) {
		t.Errorf("error text carries the resource token: %v", err)
	}
	if other.Load() != 0 {
		t.Errorf("the redirect was followed")
	}
}

// TestArtifactWithoutLength reads a streamed (chunked) answer, whose size
// is only known by reading it.
func TestArtifactWithoutLength(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < 4; i++ {
			_, _ = w.Write([]byte(strings.Repeat("y", 100)))
			w.(http.Flusher).Flush()
		}
	}))
	t.Cleanup(srv.Close)
	c, err := jenkins.New(jenkins.Config{URL: srv.URL}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Artifact(ctx, "api", 1, "log.txt", 399); !errors.Is(err, jenkins.ErrArtifactTooLarge) {
		t.Errorf("399-byte limit: %v, want ErrArtifactTooLarge", err)
	}
	if b, err := c.Artifact(ctx, "api", 1, "log.txt", 400); err != nil || len(b) != 400 {
		t.Errorf("400-byte limit: %d bytes, %v", len(b), err)
	}
}

func FuzzArtifactPath(f *testing.F) {
	for _, s := range []string{"image.txt", "dist/a b.tar.gz", "../x", "%2e%2e/x", "a//b", `a\b`, "C:/x", "100%.txt"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		esc, err := jenkins.ArtifactPath(in)
		if err != nil {
			return
		}
		u, err := url.Parse("http://jenkins.example.com/job/api/1/artifact/" + esc)
		if err != nil {
			t.Fatalf("ArtifactPath(%q) = %q, not a URL path: %v", in, esc, err)
		}
		if u.RawQuery != "" || u.Fragment != "" {
			t.Fatalf("ArtifactPath(%q) = %q leaks a query or fragment", in, esc)
		}
		if got := strings.TrimPrefix(u.Path, "/job/api/1/artifact/"); got != in {
			t.Fatalf("ArtifactPath(%q) = %q decodes to %q", in, esc, got)
		}
		for _, seg := range strings.Split(in, "/") {
			if seg == "" || seg == "." || seg == ".." || strings.ContainsAny(seg, `\*?;`) {
				t.Fatalf("ArtifactPath(%q) accepted element %q", in, seg)
			}
		}
	})
}
