package jenkinstest

import (
	"slices"
	"strings"
	"testing"
)

// TestDisplayPaths uses the cases of Jenkins' RunTest.artifactListDisambiguation1-3.
func TestDisplayPaths(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		paths, want []string
	}{
		{"distinct names", []string{"a/b/c.xml", "d/f/g.xml", "h/i/j.xml"}, []string{"c.xml", "g.xml", "j.xml"}},
		{"shared name", []string{"a/b/c.xml", "d/f/g.xml", "h/i/g.xml"}, []string{"c.xml", "f/g.xml", "i/g.xml"}},
		{"file and directory", []string{"a.xml", "a/a.xml"}, []string{"a.xml", "a/a.xml"}},
		{"same parent name", []string{"x/build/v.txt", "y/build/v.txt"}, []string{"x/build/v.txt", "y/build/v.txt"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := displayPaths(tc.paths); !slices.Equal(got, tc.want) {
				t.Fatalf("displayPaths(%q) = %q, want %q", tc.paths, got, tc.want)
			}
		})
	}
}

func TestArtifactList(t *testing.T) {
	t.Parallel()
	files := map[string][]byte{"image.txt": nil, "B/x": nil, "a/y": nil, "a.txt": nil, "a/Z/z": nil}
	var got []string
	for _, a := range artifactList(files) {
		m := a.(map[string]any)
		got = append(got, m["relativePath"].(string)+"="+m["fileName"].(string))
	}
	// Each directory sorted ignoring case, depth first: "a" before "a.txt".
	want := []string{"a/y=y", "a/Z/z=z", "a.txt=a.txt", "B/x=x", "image.txt=image.txt"}
	if !slices.Equal(got, want) {
		t.Fatalf("order %q, want %q", got, want)
	}

	many := map[string][]byte{}
	for i := range listCutoff + 1 {
		many["f"+strings.Repeat("x", i)] = nil
	}
	for _, a := range artifactList(many) {
		if d := a.(map[string]any)["displayPath"]; d != nil {
			t.Fatalf("displayPath %v past the cutoff, want null", d)
		}
	}
	if l := artifactList(nil); l == nil || len(l) != 0 {
		t.Fatalf("no artifacts gave %#v, want []", l)
	}
}
