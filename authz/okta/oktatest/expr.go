package oktatest

import (
	"encoding/json"
	"fmt"
	"strings"
)

// clause is one comparison of a search or filter expression:
// `profile.email eq "ann@example.com"`.
type clause struct {
	attr, op, value string
}

// parseExpr parses the part of Okta's filter language the server models:
// comparisons joined by "and". Attribute names are case-sensitive,
// operators are not; values are JSON string literals. search allows eq and
// sw; filter only eq, on the properties Okta lists for filter.
func parseExpr(expr string, search bool) ([]clause, error) {
	var out []clause
	rest := strings.TrimSpace(expr)
	for {
		attr, r, ok := strings.Cut(rest, " ")
		if !ok {
			return nil, fmt.Errorf("expected a comparison at %q", rest)
		}
		op, r, ok := strings.Cut(strings.TrimLeft(r, " "), " ")
		if !ok {
			return nil, fmt.Errorf("expected an operator and a value after %s", attr)
		}
		op = strings.ToLower(op)
		if op != "eq" && (op != "sw" || !search) {
			return nil, fmt.Errorf("operator %s not modeled", op)
		}
		if _, ok := userAttr(User{}, attr); !ok {
			return nil, fmt.Errorf("attribute %s not modeled", attr)
		}
		value, r, err := cutString(strings.TrimLeft(r, " "))
		if err != nil {
			return nil, err
		}
		out = append(out, clause{attr: attr, op: op, value: value})
		rest = strings.TrimSpace(r)
		if rest == "" {
			return out, nil
		}
		and, r, ok := strings.Cut(rest, " ")
		if !ok || !strings.EqualFold(and, "and") {
			return nil, fmt.Errorf("only 'and' is modeled, not %q", rest)
		}
		rest = strings.TrimLeft(r, " ")
	}
}

// cutString reads the JSON string literal s starts with and returns its
// value and what follows it.
func cutString(s string) (value, rest string, err error) {
	if !strings.HasPrefix(s, `"`) {
		return "", "", fmt.Errorf("expected a quoted string at %q", s)
	}
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			if err := json.Unmarshal([]byte(s[:i+1]), &value); err != nil {
				return "", "", fmt.Errorf("bad string literal %s: %w", s[:i+1], err)
			}
			return value, s[i+1:], nil
		}
	}
	return "", "", fmt.Errorf("unterminated string at %q", s)
}

// userAttr is the value of the attribute named attr of u.
func userAttr(u User, attr string) (string, bool) {
	switch attr {
	case "id":
		return u.ID, true
	case "status":
		return u.Status, true
	case "profile.email":
		return u.Email, true
	case "profile.login":
		return u.Login, true
	case "profile.firstName":
		return u.FirstName, true
	case "profile.lastName":
		return u.LastName, true
	}
	return "", false
}

// matchAll says whether u meets every clause. Search compares string
// values case-insensitively, filter exactly.
func matchAll(clauses []clause, u User, search bool) bool {
	for _, c := range clauses {
		v, _ := userAttr(u, c.attr)
		want := c.value
		if search {
			v, want = strings.ToLower(v), strings.ToLower(want)
		}
		if (c.op == "eq" && v != want) || (c.op == "sw" && !strings.HasPrefix(v, want)) {
			return false
		}
	}
	return true
}
