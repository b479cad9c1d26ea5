package okta

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"unicode/utf8"
)

func readRecorded(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("oktatest", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDecodeRecorded reads Okta's own examples.
func TestDecodeRecorded(t *testing.T) {
	t.Parallel()
	users, err := decodeUsers(readRecorded(t, "users-search.json"))
	want := User{ID: "00ub0oNGTSWTBKOLGLNR", Login: "isaac.brock@example.com", Email: "isaac.brock@example.com", Status: "ACTIVE"}
	if err != nil || len(users) != 1 || users[0] != want {
		t.Errorf("users-search.json: %+v, %v; want %+v", users, err, want)
	}
	tests := []struct {
		file string
		want []string
	}{
		{"user-groups.json", []string{"Cloud App Users", "Internal App Users"}},
		{"groups.json", []string{"West Coast Users", "Engineering Users"}},
	}
	for _, tt := range tests {
		if got, err := decodeGroups(readRecorded(t, tt.file)); err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("%s: %q, %v; want %q", tt.file, got, err, tt.want)
		}
	}
	he := httpError(429, readRecorded(t, "error-rate-limited.json"), token)
	if he.Code != "E0000047" || he.ID != "oaeWaNHfOyQSES34-a2Dw6Phw" || !strings.Contains(he.Error(), "HTTP 429 Too Many Requests: E0000047") {
		t.Errorf("error-rate-limited.json: %+v %q", he, he)
	}
}

func TestDecodeRefuses(t *testing.T) {
	t.Parallel()
	for _, body := range []string{``, `null`, `{}`, `"x"`, `[{"id":"0g1","profile":{}}]`, `[{"id":"0g1"}]`, `[1]`, `[{"id":"0g1","profile":{"name":""}}]`, `[`} {
		if got, err := decodeGroups([]byte(body)); err == nil {
			t.Errorf("decodeGroups(%s) = %q, want an error", body, got)
		}
	}
	for _, body := range []string{`null`, `[{"id":"../admin","status":"ACTIVE"}]`, `[{"id":"","status":"ACTIVE"}]`, `[{"id":"00u a"}]`} {
		if got, err := decodeUsers([]byte(body)); err == nil {
			t.Errorf("decodeUsers(%s) = %+v, want an error", body, got)
		}
	}
}

func TestNextLink(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		values []string
		want   string
		bad    bool
	}{
		{"none", nil, "", false},
		{"self only", []string{`<https://o/x?limit=2>; rel="self"`}, "", false},
		{"separate headers", []string{`<https://o/x>; rel="self"`, `<https://o/x?after=a&limit=2>; rel="next"`}, "https://o/x?after=a&limit=2", false},
		{"one header", []string{`<https://o/x>; rel="self", <https://o/x?after=b>; rel="next"`}, "https://o/x?after=b", false},
		{"unquoted, upper case", []string{`<https://o/x?after=c>;REL=Next`}, "https://o/x?after=c", false},
		{"several relations", []string{`<https://o/x?after=d>; rel="prev next"`}, "https://o/x?after=d", false},
		{"comma in a quoted title", []string{`<https://o/a>; title="a, b"; rel="self", <https://o/b>; rel="next"`}, "https://o/b", false},
		{"next is not nextish", []string{`<https://o/x>; rel="nextpage"`}, "", false},
		{"no brackets", []string{`https://o/x; rel="next"`}, "", true},
		{"unclosed", []string{`<https://o/x; rel="next"`}, "", true},
		{"two different nexts", []string{`<https://o/a>; rel="next"`, `<https://o/b>; rel="next"`}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := nextLink(tt.values)
			if (err != nil) != tt.bad || got != tt.want {
				t.Errorf("nextLink = %q, %v; want %q, error %v", got, err, tt.want, tt.bad)
			}
		})
	}
}

// endless is a server whose every page links to another: page n to n+1, or
// with loop, always to the same page.
func endless(t *testing.T, loop bool) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		if loop {
			n = 1
		}
		if strings.HasSuffix(r.URL.Path, "/groups") {
			w.Header().Add("Link", fmt.Sprintf(`<%s%s?after=%d>; rel="next"`, srv.URL, r.URL.Path, n))
			w.Write([]byte(`[{"id":"00g1","profile":{"name":"g"}}]`))
			return
		}
		w.Write([]byte(`[{"id":"00uANN","status":"ACTIVE","profile":{"email":"ann@example.com","login":"ann@example.com"}}]`))
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func TestPaginationStops(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		loop     bool
		errHas   string
		requests int32
	}{
		{"page cap", false, fmt.Sprintf("more than %d pages", maxPages), 1 + maxPages},
		{"loop", true, "already read", 1 + 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, hits := endless(t, tt.loop)
			_, groups, err := client(t, srv.URL, token, nil).UserGroups(context.Background(), "ann@example.com")
			if err == nil || !strings.Contains(err.Error(), tt.errHas) || groups != nil {
				t.Fatalf("groups %v, err %v; want %q", groups, err, tt.errHas)
			}
			if hits.Load() != tt.requests {
				t.Errorf("%d requests, want %d", hits.Load(), tt.requests)
			}
		})
	}
}

func TestCheckID(t *testing.T) {
	t.Parallel()
	for id, ok := range map[string]bool{
		"00ub0oNGTSWTBKOLGLNR": true, "0gabcd1234": true, "": false, "00u/../x": false,
		"00u%2F": false, "00u ab": false, "00u\u00e9": false, strings.Repeat("a", maxID+1): false,
	} {
		if err := checkID(id); (err == nil) != ok {
			t.Errorf("checkID(%q) = %v, want ok %v", id, err, ok)
		}
	}
}

// FuzzDecodeGroups: the parser never panics, and what it accepts is a
// named group for every element of a JSON array.
func FuzzDecodeGroups(f *testing.F) {
	for _, name := range []string{"user-groups.json", "groups.json", "users-search.json", "error-not-found.json"} {
		f.Add(readRecorded(f, name))
	}
	f.Add([]byte(`[{"id":"0g1","profile":{"name":"\u00e9quipe"}}, {"profile":{"name":"x","name":"y"}}]`))
	f.Add([]byte(` [ ] `))
	f.Fuzz(func(t *testing.T, body []byte) {
		names, err := decodeGroups(body)
		if err != nil {
			if names != nil {
				t.Fatalf("names %q with error %v", names, err)
			}
			return
		}
		var elems []json.RawMessage
		if jerr := json.Unmarshal(body, &elems); jerr != nil {
			t.Fatalf("accepted %q, which is not a JSON array: %v", body, jerr)
		}
		if len(names) != len(elems) {
			t.Fatalf("%d names from %d groups", len(names), len(elems))
		}
		for _, n := range names {
			if n == "" || !utf8.ValidString(n) {
				t.Fatalf("accepted a bad name %q", n)
			}
		}
	})
}

// FuzzNextLink: any Link header either fails or yields a target taken
// from between angle brackets.
func FuzzNextLink(f *testing.F) {
	f.Add(`<https://acme.okta.com/api/v1/users?after=00ud4tVDDXYVKPXKVLCO&limit=200>; rel="next"`)
	f.Add(`<https://o/x>; rel="self", <https://o/y>; rel="next"`)
	f.Add(`<a>; title="x,<b>; rel=next"`)
	f.Fuzz(func(t *testing.T, header string) {
		next, err := nextLink([]string{header})
		if err == nil && next != "" && (strings.ContainsAny(next, "<>") || !strings.Contains(header, "<"+next+">")) {
			t.Fatalf("nextLink(%q) = %q", header, next)
		}
	})
}
