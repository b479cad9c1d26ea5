package main

import (
	"net"
	"net/url"
	"regexp"
	"slices"

	"github.com/seed-5eb4e92e/deploybot/bot"
)

// identityConfig says where users' Okta groups come from, besides the
// policy's static groups.
type identityConfig struct {
	// GroupFilter is a regular expression; only groups it matches count
	// (e.g. "^deploybot-"). Empty: all.
	GroupFilter string     `yaml:"group_filter"`
	Okta        oktaConfig `yaml:"okta"`
	OIDC        oidcConfig `yaml:"oidc"`
}

// oktaConfig is the Okta API, for finding users by their Slack e-mail.
type oktaConfig struct {
	URL          string   `yaml:"url"`
	APIToken     string   `yaml:"api_token"`
	APITokenFile string   `yaml:"api_token_file"`
	CacheTTL     duration `yaml:"cache_ttl"`
	Timeout      duration `yaml:"timeout"`
}

// oidcConfig is signing in with /deploy login.
type oidcConfig struct {
	Issuer           string   `yaml:"issuer"`
	ClientID         string   `yaml:"client_id"`
	ClientSecret     string   `yaml:"client_secret"`
	ClientSecretFile string   `yaml:"client_secret_file"`
	RedirectURL      string   `yaml:"redirect_url"`
	GroupsClaim      string   `yaml:"groups_claim"`
	LinkTTL          duration `yaml:"link_ttl"`
}

// auditConfig is where the audit trail is mirrored and how much is kept.
type auditConfig struct {
	// Channel, if set, gets a line for every audit entry.
	Channel string `yaml:"channel"`
	// MaxEntries trims the audit stream to about this many entries; 0
	// keeps all.
	MaxEntries int64 `yaml:"max_entries"`
}

// protectedConfig is what a protected environment asks before a deploy,
// promote or rollback there.
type protectedConfig struct {
	// Approval: someone else holding approve:<env> must approve.
	Approval bool `yaml:"approval"`
	// Expires is how long a request waits for approval; default 1h.
	Expires duration `yaml:"expires"`
}

// checkProtected reports protected environments that are not environments.
func (l *loaded) checkProtected() {
	for _, env := range sortedKeys(l.cfg.Protected) {
		if !slices.Contains(l.cfg.Environments, env) {
			l.bad("protected_environments."+env, "", "%q is not one of the environments %v", env, l.cfg.Environments)
		}
		if p := l.cfg.Protected[env]; p.Expires.D() < 0 {
			l.bad("protected_environments."+env+".expires", "", "must be positive")
		}
	}
}

// checkIdentity reports problems in the identity section.
func (l *loaded) checkIdentity() {
	id := l.cfg.Identity
	if id.GroupFilter != "" {
		if _, err := regexp.Compile(id.GroupFilter); err != nil {
			l.bad("identity.group_filter", "", "not a regular expression: %v", err)
		}
	}
	if o := id.Okta; o.URL != "" {
		l.checkURL("identity.okta.url", o.URL)
		if _, err := secret(o.APIToken, o.APITokenFile); err != nil {
			l.secretFileWarning("identity.okta.api_token_file", err)
		}
		if o.APIToken == "" && o.APITokenFile == "" {
			l.bad("identity.okta.api_token", "OKTA_API_TOKEN", "the Okta API needs a token: set OKTA_API_TOKEN or identity.okta.api_token_file")
		}
		if o.APIToken != "" && !l.envSet("OKTA_API_TOKEN") {
			l.warn("identity.okta.api_token", "a secret in the config file; prefer OKTA_API_TOKEN or api_token_file")
		}
	}
	if o := id.OIDC; o.Issuer != "" || o.ClientID != "" {
		l.checkURL("identity.oidc.issuer", o.Issuer)
		l.checkURL("identity.oidc.redirect_url", o.RedirectURL)
		if o.ClientID == "" {
			l.bad("identity.oidc.client_id", "", "signing in needs the client ID of deploybot's Okta app")
		}
		if u, err := url.Parse(o.RedirectURL); err == nil && u.Path != "/oidc/callback" {
			l.bad("identity.oidc.redirect_url", "", "must end in /oidc/callback, where deploybot serves the callback (got %q)", u.Path)
		}
	}
	if l.cfg.Audit.MaxEntries < 0 {
		l.bad("audit.max_entries", "", "must be 0 (keep all) or more")
	}
}

// checkURL reports a URL that is not absolute https (http only on
// loopback, for tests).
func (l *loaded) checkURL(path, raw string) {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		l.bad(path, "", "is required")
	case err != nil || u.Host == "":
		l.bad(path, "", "%q is not an absolute URL", raw)
	case u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())):
		l.bad(path, "", "%q must be https", raw)
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// protected is the protected environments as the responder takes them.
func protected(c *fileConfig) map[string]bot.Protection {
	out := map[string]bot.Protection{}
	for env, p := range c.Protected {
		out[env] = bot.Protection{Approval: p.Approval, Expires: p.Expires.D()}
	}
	return out
}

// approvalEnvs are the environments whose jobs need an approval.
func approvalEnvs(c *fileConfig) map[string]bool {
	out := map[string]bool{}
	for env, p := range c.Protected {
		out[env] = p.Approval
	}
	return out
}
