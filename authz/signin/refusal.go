package signin

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// refusal is why a callback did not link anyone: what the user is told
// (status, title, msg) and what is logged (err). Neither carries codes,
// tokens, the verifier or the client secret.
type refusal struct {
	status int
	title  string
	msg    string
	err    error
}

func refuse(status int, msg string, err error) *refusal {
	title := "Sign-in refused"
	if status >= 500 {
		title = "Sign-in failed"
	}
	return &refusal{status: status, title: title, msg: msg, err: err}
}

func (r *refusal) level() slog.Level {
	if r.status >= 500 {
		return slog.LevelError
	}
	return slog.LevelWarn
}

func userAttr(p Pending) slog.Attr { return slog.String("user", p.SlackUser) }
func errAttr(err error) slog.Attr  { return slog.String("error", err.Error()) }

// exchangeRefusal explains a failed code exchange. Of the token endpoint's
// answer only the RFC 6749 error code and description are kept: the body
// itself is not logged.
func exchangeRefusal(err error) *refusal {
	if re, ok := errors.AsType[*oauth2.RetrieveError](err); ok {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		logged := fmt.Errorf("signin: exchange: token endpoint answered %d %q %q", status, clip(re.ErrorCode), clip(re.ErrorDescription))
		why := "Okta did not accept the sign-in"
		if re.ErrorCode != "" {
			why += " (" + clip(re.ErrorCode) + ")"
		}
		return refuse(http.StatusBadRequest, why+"; run /deploy login again.", logged)
	}
	return refuse(http.StatusBadGateway, "Could not reach Okta to finish the sign-in; run /deploy login again.",
		fmt.Errorf("signin: exchange: %w", err))
}

// verifyRefusal explains an ID token go-oidc refused. go-oidc's errors name
// the check that failed but never include the token.
func verifyRefusal(err error) *refusal {
	logged := fmt.Errorf("signin: verify id token: %w", err)
	msg := err.Error()
	if strings.Contains(msg, "fetching keys") || strings.Contains(msg, "get keys failed") {
		return refuse(http.StatusBadGateway, "Could not fetch Okta's signing keys; run /deploy login again in a minute.", logged)
	}
	why := "it is not valid"
	switch _, expired := errors.AsType[*oidc.TokenExpiredError](err); {
	case expired:
		why = "it has expired (is the server's clock right?)"
	case strings.Contains(msg, "audience"):
		why = "it was issued to a different application (wrong audience)"
	case strings.Contains(msg, "issued by a different provider"):
		why = "it was issued by a different provider"
	case strings.Contains(msg, "signature"):
		why = "its signature does not verify"
	case strings.Contains(msg, "malformed"):
		why = "it is malformed"
	}
	return refuse(http.StatusBadRequest, "The ID token from Okta was refused: "+why+". Run /deploy login again.", logged)
}

// claims are what the identity is made of, besides the subject.
type claims struct {
	email  string
	groups []string
}

// readClaims takes email, email_verified and the groups claim from a
// verified ID token.
func readClaims(idt *oidc.IDToken, groupsClaim string) (claims, *refusal) {
	var raw map[string]json.RawMessage
	if err := idt.Claims(&raw); err != nil {
		return claims{}, refuse(http.StatusBadGateway, "Okta sent an ID token the bot cannot read.", fmt.Errorf("signin: claims: %w", err))
	}
	var c claims
	if v, ok := raw["email"]; ok {
		if err := json.Unmarshal(v, &c.email); err != nil {
			return claims{}, refuse(http.StatusBadGateway, "Okta sent an email claim the bot cannot read.", fmt.Errorf("signin: claims: email: %w", err))
		}
	}
	if c.email == "" {
		return claims{}, refuse(http.StatusBadRequest, "Okta did not send your email address; ask an admin to grant this app the email scope.",
			errors.New("signin: claims: no email (is the email scope granted?)"))
	}
	verified, err := optionalBool(raw["email_verified"])
	if err != nil {
		return claims{}, refuse(http.StatusBadGateway, "Okta sent an email_verified claim the bot cannot read.", fmt.Errorf("signin: claims: email_verified: %w", err))
	}
	if verified != nil && !*verified {
		return claims{}, refuse(http.StatusForbidden, "Your email address "+c.email+" is not verified in Okta, so it cannot be linked; verify it in Okta and run /deploy login again.",
			errors.New("signin: claims: email_verified is false"))
	}
	c.groups = []string{}
	if v, ok := raw[groupsClaim]; ok && string(v) != "null" {
		if err := json.Unmarshal(v, &c.groups); err != nil {
			return claims{}, refuse(http.StatusBadGateway, "Okta sent a groups claim that is not a list of group names.",
				fmt.Errorf("signin: claims: %s: %w", groupsClaim, err))
		}
	}
	return c, nil
}

// optionalBool reads a claim that is a JSON boolean or, as some providers
// send it, the string "true" or "false". Absent or null is nil.
func optionalBool(v json.RawMessage) (*bool, error) {
	if len(v) == 0 || string(v) == "null" {
		return nil, nil
	}
	var b bool
	if err := json.Unmarshal(v, &b); err == nil {
		return &b, nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return nil, fmt.Errorf("not a boolean: %s", clip(string(v)))
	}
	switch s {
	case "true":
		b = true
	case "false":
		b = false
	default:
		return nil, fmt.Errorf("not a boolean: %q", clip(s))
	}
	return &b, nil
}
