package marathon_test

import (
	"strings"
	"testing"

	"github.com/seed-5eb4e92e/deploybot/backends/marathon"
)

func TestCheckAppID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		id string
		ok bool
	}{
		{"/shop/api-blue", true},
		{"/api", true},
		{"/a/b/c/d", true},
		{"/prod/api.v2", true},
		{"/9lives", true},
		{"/" + strings.Repeat("a", 63), true},
		{"/" + strings.Repeat("a/", 126) + "a", true},
		{"", false},
		{"/", false},
		{"shop/api", false},           // relative: Marathon would resolve it against a group
		{"/shop/api/", false},         // trailing slash: an empty segment
		{"//shop", false},             // empty segment
		{"/shop/../admin", false},     // Marathon canonicalizes: this is /admin
		{"/shop/./api", false},        // and this /shop/api
		{"/..", false},                //
		{"/shop/%2e%2e/admin", false}, // escapes are not decoded here, and % is not allowed
		{"/shop/api?embed=x", false},  // query injection
		{"/shop/api#x", false},
		{"/shop api", false},
		{"/Shop", false},
		{"/shop_api", false},
		{"/-api", false},
		{"/api-", false},
		{"/api.", false},
		{"/.api", false},
		{"/a..b", false},
		{"/shop/api/versions", false}, // reserved: a sub-resource of the app
		{"/shop/tasks", false},
		{"/shop/restart", false},
		{"/versions/api", true}, // reserved only as the last segment
		{"/" + strings.Repeat("a", 64), false},
		{"/" + strings.Repeat("a/", 127) + "a", false},
		{"/shop/api\n", false},
		{"/shöp", false},
		{"\\shop\\api", false},
	}
	for _, tc := range tests {
		if err := marathon.CheckAppID(tc.id); (err == nil) != tc.ok {
			t.Errorf("CheckAppID(%q) = %v, want ok=%v", tc.id, err, tc.ok)
		}
	}
}
