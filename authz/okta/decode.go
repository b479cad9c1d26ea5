package okta

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxEmail is the longest e-mail address looked up (RFC 5321's limit on a
// path, less the angle brackets).
const maxEmail = 254

// maxID is the longest Okta ID accepted; Okta's are 20 characters.
const maxID = 64

// checkOrgURL checks Config.URL and returns the org's origin.
func checkOrgURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, fmt.Errorf("is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// The parse error repeats the URL, which might hold a password.
		return nil, fmt.Errorf("is not a URL")
	}
	if u.User != nil {
		return nil, fmt.Errorf("must not have user info")
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("has no host")
	}
	if u.Scheme != "https" && (u.Scheme != "http" || !loopback(u.Hostname())) {
		return nil, fmt.Errorf("%s: must be https (http only on a loopback host)", u.Redacted())
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" {
		return nil, fmt.Errorf("%s: must have no path, query or fragment", u.Redacted())
	}
	return &url.URL{Scheme: u.Scheme, Host: strings.ToLower(u.Host)}, nil
}

func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkEmail refuses anything but a bare e-mail address before it goes
// into a search expression: no display name, comment or angle brackets,
// and none of the characters that could end or escape the quoted string
// it is put in (quotes, backslashes), nor spaces or control characters.
// Okta stores only characters of up to three bytes in UTF-8, so longer
// ones cannot match and are refused too.
func checkEmail(email string) error {
	switch {
	case email == "":
		return fmt.Errorf("%w: empty", errBadEmail)
	case len(email) > maxEmail:
		return fmt.Errorf("%w: longer than %d bytes", errBadEmail, maxEmail)
	case !utf8.ValidString(email):
		return fmt.Errorf("%w: not UTF-8", errBadEmail)
	}
	if i := strings.IndexFunc(email, badEmailRune); i >= 0 {
		r, _ := utf8.DecodeRuneInString(email[i:])
		return fmt.Errorf("%w %q: character %U not allowed", errBadEmail, email, r)
	}
	a, err := mail.ParseAddress(email)
	if err != nil {
		return fmt.Errorf("%w %q: %w", errBadEmail, email, err)
	}
	if a.Name != "" || a.Address != email {
		return fmt.Errorf("%w %q: not a bare address", errBadEmail, email)
	}
	return nil
}

func badEmailRune(r rune) bool {
	return r == '"' || r == '\\' || unicode.IsSpace(r) || unicode.IsControl(r) ||
		r == utf8.RuneError || r > 0xFFFF || !unicode.IsPrint(r)
}

// checkID accepts an Okta ID: letters and digits only.
func checkID(id string) error {
	if id == "" || len(id) > maxID {
		return fmt.Errorf("an Okta ID has 1 to %d characters", maxID)
	}
	for _, r := range id {
		if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') {
			return fmt.Errorf("an Okta ID has only letters and digits")
		}
	}
	return nil
}

// userObject is what is read of Okta's User object.
type userObject struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Profile struct {
		Login string `json:"login"`
		Email string `json:"email"`
	} `json:"profile"`
}

// groupObject is what is read of Okta's Group object.
type groupObject struct {
	ID      string `json:"id"`
	Profile struct {
		Name string `json:"name"`
	} `json:"profile"`
}

// decodeUsers reads a page of GET /api/v1/users: a JSON array of users.
func decodeUsers(body []byte) ([]User, error) {
	var objs []userObject
	if err := decodeArray(body, &objs); err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	users := make([]User, 0, len(objs))
	for i, o := range objs {
		if err := checkID(o.ID); err != nil {
			return nil, fmt.Errorf("user %d: %w", i, err)
		}
		users = append(users, User{ID: o.ID, Login: o.Profile.Login, Email: o.Profile.Email, Status: o.Status})
	}
	return users, nil
}

// decodeGroups reads a page of GET /api/v1/users/{id}/groups, a JSON array
// of groups, and returns their names. A group without a name is an error:
// it could be one a deny rule is about.
func decodeGroups(body []byte) ([]string, error) {
	var objs []groupObject
	if err := decodeArray(body, &objs); err != nil {
		return nil, fmt.Errorf("groups: %w", err)
	}
	names := make([]string, 0, len(objs))
	for i, o := range objs {
		if o.Profile.Name == "" {
			return nil, fmt.Errorf("group %d (id %q) has no name", i, clean(o.ID, "", maxID))
		}
		names = append(names, o.Profile.Name)
	}
	return names, nil
}

// decodeArray unmarshals body, which must be a JSON array, into v.
func decodeArray(body []byte, v any) error {
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '[' {
		return fmt.Errorf("not a JSON array")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("bad JSON: %w", err)
	}
	return nil
}
