package oktatest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

var start = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// get sends a GET with the default token unless auth says otherwise.
func get(t *testing.T, target string, auth ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "SSWS "+DefaultToken)
	for _, a := range auth {
		req.Header.Set("Authorization", a)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func recorded(t *testing.T, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

var people = []User{
	{Email: "ann@example.com", Groups: []string{"deploybot-dev", "Everyone", "sre", "ops", "qa"}},
	{Email: "old@example.com", Status: "DEPROVISIONED", Groups: []string{"Everyone"}},
	{Email: "Bob.Smith@Example.com", FirstName: "Bob", LastName: "Smith"},
}

// TestServedObjectsHaveTheRecordedShape: users and groups carry every
// property of Okta's examples, with the server's origin in their links.
func TestServedObjectsHaveTheRecordedShape(t *testing.T) {
	t.Parallel()
	s := New(t, Options{Users: people})
	_, body := get(t, s.URL+"/api/v1/users?search="+url.QueryEscape(`profile.email eq "ann@example.com"`))
	var users []map[string]any
	if err := json.Unmarshal(body, &users); err != nil || len(users) != 1 {
		t.Fatalf("users = %s, %v; want one", body, err)
	}
	tmpl := firstRecorded(t, "users-search.json")
	if got, want := keys(users[0]), keys(tmpl); !slices.Equal(got, want) {
		t.Errorf("user properties = %v, want the recorded %v", got, want)
	}
	id := UserID("ann@example.com")
	self := users[0]["_links"].(map[string]any)["self"].(map[string]any)["href"]
	if users[0]["id"] != id || self != s.URL+"/api/v1/users/"+id {
		t.Errorf("user id %v, self link %v; want %s on %s", users[0]["id"], self, id, s.URL)
	}
	_, body = get(t, s.URL+"/api/v1/users/"+id+"/groups")
	var groups []map[string]any
	if err := json.Unmarshal(body, &groups); err != nil || len(groups) != 5 {
		t.Fatalf("groups = %s, %v; want five", body, err)
	}
	if got, want := keys(groups[0]), keys(firstRecorded(t, "groups.json")); !slices.Equal(got, want) {
		t.Errorf("group properties = %v, want the recorded %v", got, want)
	}
	gid := GroupID("deploybot-dev")
	users0 := groups[0]["_links"].(map[string]any)["users"].(map[string]any)["href"]
	if groups[0]["id"] != gid || users0 != s.URL+"/api/v1/groups/"+gid+"/users" || groups[0]["type"] != "OKTA_GROUP" {
		t.Errorf("group = %v", groups[0])
	}
}

func firstRecorded(t *testing.T, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var list []map[string]any
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatal(err)
	}
	return list[0]
}

func TestTokenIsRequired(t *testing.T) {
	t.Parallel()
	s := New(t, Options{Users: people, Token: "right"})
	want := recorded(t, "error-invalid-token.json")
	for _, auth := range []string{"", "SSWS wrong", "Bearer right", "SSWS  right", "ssws right"} {
		resp, body := get(t, s.URL+"/api/v1/users", auth)
		var got map[string]any
		if err := json.Unmarshal(body, &got); err != nil || resp.StatusCode != http.StatusUnauthorized || got["errorCode"] != want["errorCode"] || got["errorSummary"] != want["errorSummary"] {
			t.Errorf("Authorization %q: %d %s; want 401 with %v", auth, resp.StatusCode, body, want)
		}
		if resp.Header.Get("X-Rate-Limit-Limit") == "" {
			t.Errorf("Authorization %q: no rate-limit headers", auth)
		}
	}
	if resp, _ := get(t, s.URL+"/api/v1/users", "SSWS right"); resp.StatusCode != http.StatusOK {
		t.Errorf("right token: %d", resp.StatusCode)
	}
	if n := s.Requests(Users); n != 6 {
		t.Errorf("Requests(Users) = %d, want 6", n)
	}
}

func TestUserQueries(t *testing.T) {
	t.Parallel()
	s := New(t, Options{Users: people})
	tests := []struct {
		name, query string
		status      int
		want        []string // e-mails
	}{
		{"search eq ignores the value's case", `search=profile.email eq "ANN@example.COM"`, 200, []string{"ann@example.com"}},
		{"search operators are case-insensitive", `search=profile.email EQ "ann@example.com"`, 200, []string{"ann@example.com"}},
		{"search finds DEPROVISIONED users", `search=profile.email eq "old@example.com"`, 200, []string{"old@example.com"}},
		{"search sw", `search=profile.email sw "b"`, 200, []string{"Bob.Smith@Example.com"}},
		{"search and status", `search=profile.email sw "" and status eq "ACTIVE"`, 200, []string{"ann@example.com", "Bob.Smith@Example.com"}},
		{"filter compares values exactly", `filter=profile.email eq "bob.smith@example.com"`, 200, nil},
		{"filter exact match", `filter=profile.email eq "Bob.Smith@Example.com"`, 200, []string{"Bob.Smith@Example.com"}},
		{"filter has no sw", `filter=profile.email sw "b"`, 400, nil},
		{"property names are case-sensitive", `search=profile.Email eq "ann@example.com"`, 400, nil},
		{"unquoted value", `search=profile.email eq ann@example.com`, 400, nil},
		{"or is not modeled", `search=id eq "x" or id eq "y"`, 400, nil},
		{"no query leaves out DEPROVISIONED", ``, 200, []string{"ann@example.com", "Bob.Smith@Example.com"}},
		{"q is a prefix of a name", `q=smi`, 200, []string{"Bob.Smith@Example.com"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q := ""
			if name, value, ok := strings.Cut(tt.query, "="); ok {
				q = "?" + url.Values{name: {value}}.Encode()
			}
			resp, body := get(t, s.URL+"/api/v1/users"+q)
			if resp.StatusCode != tt.status {
				t.Fatalf("%d %s, want %d", resp.StatusCode, body, tt.status)
			}
			if tt.status == 400 {
				if got := recorded(t, "error-invalid-search.json"); !strings.Contains(string(body), got["errorCode"].(string)) {
					t.Errorf("body %s, want E0000031", body)
				}
				return
			}
			var users []struct{ Profile struct{ Email string } }
			if err := json.Unmarshal(body, &users); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, u := range users {
				got = append(got, u.Profile.Email)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("users %v, want %v", got, tt.want)
			}
		})
	}
}

// TestPagination follows Link rel="next" as Okta documents it.
func TestPagination(t *testing.T) {
	t.Parallel()
	s := New(t, Options{Users: people, PageSize: 2})
	next := s.URL + "/api/v1/users/ann@example.com/groups"
	var names []string
	pages := 0
	for next != "" {
		pages++
		resp, body := get(t, next)
		var groups []struct{ Profile struct{ Name string } }
		if err := json.Unmarshal(body, &groups); err != nil || len(groups) > 2 {
			t.Fatalf("page %d: %s, %v", pages, body, err)
		}
		for _, g := range groups {
			names = append(names, g.Profile.Name)
		}
		links := resp.Header.Values("Link")
		if len(links) == 0 || !strings.HasSuffix(links[0], `>; rel="self"`) {
			t.Fatalf("page %d: Link %q, want a self link first", pages, links)
		}
		next = ""
		if len(links) == 2 {
			target, _, _ := strings.Cut(strings.TrimPrefix(links[1], "<"), ">")
			if !strings.HasSuffix(links[1], `>; rel="next"`) || !strings.Contains(target, "after=") || !strings.Contains(target, "limit=2") {
				t.Fatalf("page %d: next link %q", pages, links[1])
			}
			next = target
		}
	}
	if pages != 3 || !slices.Equal(names, people[0].Groups) {
		t.Errorf("%d pages of %v, want 3 of %v", pages, names, people[0].Groups)
	}
	_, body := get(t, s.URL+"/api/v1/users/ann@example.com/groups?limit=1")
	if strings.Count(string(body), `"objectClass"`) != 1 {
		t.Errorf("limit=1 served %s", body)
	}
}

func TestUnknownUserIsNotFound(t *testing.T) {
	t.Parallel()
	s := New(t, Options{Users: people})
	resp, body := get(t, s.URL+"/api/v1/users/00uNOBODY/groups")
	want := `"errorSummary":"Not found: Resource not found: 00uNOBODY (User)"`
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), want) || !strings.Contains(string(body), "E0000007") {
		t.Errorf("%d %s, want 404 with %s", resp.StatusCode, body, want)
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	clock := NewClock(start)
	s := New(t, Options{Users: people, Limit: 5, Now: clock.Now})
	reset := start.Add(30 * time.Second)
	s.SetRateLimit(Users, 1, reset)
	resp, _ := get(t, s.URL+"/api/v1/users")
	if resp.StatusCode != 200 || resp.Header.Get("X-Rate-Limit-Remaining") != "0" || resp.Header.Get("X-Rate-Limit-Limit") != "5" {
		t.Fatalf("last call: %d, headers %v", resp.StatusCode, resp.Header)
	}
	resp, body := get(t, s.URL+"/api/v1/users")
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body), `"E0000047"`) ||
		resp.Header.Get("X-Rate-Limit-Reset") != strconv.FormatInt(reset.Unix(), 10) {
		t.Fatalf("over the limit: %d %s, headers %v", resp.StatusCode, body, resp.Header)
	}
	if resp, _ := get(t, s.URL+"/api/v1/users/ann@example.com/groups"); resp.StatusCode != 200 {
		t.Errorf("the groups bucket is separate, got %d", resp.StatusCode)
	}
	clock.Advance(30 * time.Second)
	resp, _ = get(t, s.URL+"/api/v1/users")
	if resp.StatusCode != 200 || resp.Header.Get("X-Rate-Limit-Remaining") != "4" {
		t.Errorf("after the reset: %d, remaining %s", resp.StatusCode, resp.Header.Get("X-Rate-Limit-Remaining"))
	}
	if got := resp.Header.Get("Date"); got != clock.Now().Format(http.TimeFormat) {
		t.Errorf("Date %q, want the server clock's", got)
	}
	if n := s.Requests(Users); n != 3 {
		t.Errorf("Requests(Users) = %d, want 3", n)
	}
}

func TestKnobs(t *testing.T) {
	t.Parallel()
	s := New(t, Options{Users: people, PageSize: 1})
	s.SetLinkBase("https://elsewhere.example/")
	resp, _ := get(t, s.URL+"/api/v1/users/ann@example.com/groups")
	if links := resp.Header.Values("Link"); len(links) != 2 || !strings.HasPrefix(links[1], "<https://elsewhere.example/api/v1/users/") {
		t.Errorf("Link %q, want the next link on elsewhere.example", links)
	}
	s.RedirectTo("https://evil.example")
	resp, _ = get(t, s.URL+"/api/v1/users?limit=1")
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "https://evil.example/api/v1/users?limit=1" {
		t.Errorf("redirect: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}
