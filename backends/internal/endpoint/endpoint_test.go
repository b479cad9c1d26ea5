package endpoint

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestBase(t *testing.T) {
	t.Parallel()
	cases := []struct{ raw, want, err string }{
		{raw: "https://marathon.internal:8443", want: "https://marathon.internal:8443/"},
		{raw: "https://ci.example.com/jenkins?x=1#top", want: "https://ci.example.com/jenkins/"},
		{raw: "https://u:hunter2@ci.example.com/", err: "put credentials in user and password"},
		{raw: "ftp://ci.example.com/", err: "absolute http(s) URL"},
		{raw: "/relative", err: "absolute http(s) URL"},
		{raw: "https://u:hunter2@ci.example.com/%zz", err: "not a valid URL"},
	}
	for _, tc := range cases {
		got, err := Base("jenkins", tc.raw, "user and password")
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("Base(%q) = %v, %v; want an error saying %q", tc.raw, got, err, tc.err)
		case tc.err != "" && strings.Contains(err.Error(), "hunter2"):
			t.Errorf("Base(%q): the error %q shows the password", tc.raw, err)
		case tc.err == "" && (err != nil || got.String() != tc.want):
			t.Errorf("Base(%q) = %v, %v; want %s", tc.raw, got, err, tc.want)
		}
	}
}

func TestClientDoesNotFollowRedirects(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://elsewhere.example/steal", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	given := &http.Client{Timeout: time.Second}
	c := Client(given, time.Minute)
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect || given.CheckRedirect != nil || c.Timeout != time.Second {
		t.Fatalf("status %d, given client changed %v, timeout %v", resp.StatusCode, given.CheckRedirect != nil, c.Timeout)
	}
	if Client(nil, time.Minute).Timeout != time.Minute {
		t.Fatal("a nil client does not get the default timeout")
	}
}
