package authz

import "time"

// Identity is who a Slack user is in the company's identity provider, and
// the groups the policy is matched against. It is stored in Redis for a
// linked user, so its JSON form is part of the stored format.
type Identity struct {
	SlackUser string `json:"slack_user"`
	// Email and Subject (the Okta user ID, the ID token's "sub") are empty
	// for users known only from the config file.
	Email   string `json:"email,omitempty"`
	Subject string `json:"subject,omitempty"`
	// Groups are the user's groups, before the configured filter.
	Groups []string `json:"groups"`
	// Source says where the identity came from: SourceOIDC, SourceOkta or
	// SourceStatic.
	Source string `json:"source"`
	// Expires is when the identity must be looked up (or signed in) again.
	// Zero for SourceStatic.
	Expires time.Time `json:"expires,omitzero"`
}

// Where an Identity came from.
const (
	SourceOIDC   = "oidc"
	SourceOkta   = "okta"
	SourceStatic = "static"
)
