package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDockerfileBuildsAStaticBinary runs the Dockerfile's build step (the
// Docker engine can't run here) and checks what the final stage relies on:
// a static binary, which a distroless image without libc can run, at the
// path the ENTRYPOINT names, run as non-root.
func TestDockerfileBuildsAStaticBinary(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var build []string
	lines := strings.Split(string(raw), "\n")
	for _, l := range lines {
		if rest, ok := strings.CutPrefix(l, "RUN CGO_ENABLED=0 go build "); ok {
			build = shellWords(rest)
		}
	}
	if build == nil {
		t.Fatal("the Dockerfile has no `RUN CGO_ENABLED=0 go build` step")
	}
	out := filepath.Join(t.TempDir(), "deploybot")
	for i, a := range build {
		switch {
		case a == "-o" && i+1 < len(build):
			build[i+1] = out
		}
	}
	cmd := exec.Command("go", append([]string{"build"}, build...)...)
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %v: %v\n%s", build, err, msg)
	}
	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("the binary needs a dynamic loader; distroless/static has none")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Fatalf("the binary links %v", libs)
	}
	text := string(raw)
	for _, want := range []string{"COPY --from=build /out/deploybot /usr/local/bin/deploybot", `ENTRYPOINT ["/usr/local/bin/deploybot"]`, "USER nonroot:nonroot"} {
		if !strings.Contains(text, want) {
			t.Errorf("the Dockerfile lacks %q", want)
		}
	}
}

// shellWords splits a RUN line as sh would, for the double quotes it uses.
func shellWords(s string) []string {
	var words []string
	var w strings.Builder
	quoted, started := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, started = !quoted, true
		case (r == ' ' || r == '\t') && !quoted:
			if started {
				words = append(words, w.String())
				w.Reset()
				started = false
			}
		default:
			w.WriteRune(r)
			started = true
		}
	}
	if started {
		words = append(words, w.String())
	}
	return words
}
