package gerrit

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body string
		ok         bool
	}{
		{"compact", ")]}'\n{\"_number\":7}\n", true},
		{"pretty, pre-3.3", ")]}'\n{\n  \"_number\": 7\n}\n", true},
		{"crlf", ")]}'\r\n{\"_number\":7}", true},
		{"no prefix", "{\"_number\":7}", false},
		{"html", "<html>Sign in</html>", false},
		{"prefix only", ")]}'\n", false},
		{"trailing junk", ")]}'\n{\"_number\":7}\n)]}'", false},
		{"wrong type", ")]}'\n[{\"_number\":7}]", false},
	}
	for _, tc := range tests {
		var ci ChangeInfo
		err := decode([]byte(tc.body), &ci)
		if (err == nil) != tc.ok || tc.ok && ci.Number != 7 {
			t.Errorf("%s: decode = %v (%+v), want ok=%v", tc.name, err, ci, tc.ok)
		}
	}
}

func FuzzDecodeChange(f *testing.F) {
	for _, name := range []string{"change-query.json", "change-detail.json", "submit-response.json", "review-response.json"} {
		raw, err := os.ReadFile(filepath.Join("gerrittest", "testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte(")]}'\n{\"created\":\"2025-03-10 09:15:02.5\"}"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var ci ChangeInfo
		if decode(raw, &ci) == nil {
			if !bytes.HasPrefix(raw, []byte(xssiPrefix)) {
				t.Fatalf("decoded a body without the )]}' line: %q", raw)
			}
			_, _ = ci.Current()
			for _, l := range ci.Labels {
				_, _ = l.Vote(ci.Owner.AccountID)
			}
		}
		var list []ChangeInfo
		_ = decode(raw, &list)
	})
}

func TestReadLine(t *testing.T) {
	t.Parallel()
	in := "{\"a\":1}\n" + strings.Repeat("x", 40) + "\n\n{\"b\":2}\n{\"cut"
	br := bufio.NewReaderSize(strings.NewReader(in), 16) // smaller than a line
	var got []string
	for {
		line, err := readLine(br, 20)
		if err != nil {
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("last error = %v, want io.ErrUnexpectedEOF for the cut line", err)
			}
			break
		}
		if line == nil {
			got = append(got, "<too long>")
			continue
		}
		got = append(got, string(line))
	}
	want := `{"a":1}|<too long>||{"b":2}`
	if strings.Join(got, "|") != want {
		t.Fatalf("lines = %q, want %q", strings.Join(got, "|"), want)
	}
	br = bufio.NewReader(strings.NewReader("{}\n"))
	if _, err := readLine(br, 20); err != nil {
		t.Fatal(err)
	}
	if _, err := readLine(br, 20); err != io.EOF {
		t.Fatalf("at the end: %v, want io.EOF", err)
	}
}
