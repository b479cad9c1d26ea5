package signin

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/seed-5eb4e92e/deploybot/authz"
)

// What the user is told when the state is unknown, used or expired.
const (
	msgExpired       = "This sign-in link has expired; run /deploy login again."
	msgExpiredOrUsed = "This sign-in link has expired or was already used; run /deploy login again."
	msgWrongBrowser  = "This sign-in was started in a different browser (or your browser dropped its cookie). " +
		"Another browser cannot complete your link: open the link from Slack in this browser, or run /deploy login again."
	msgTryAgain = "Something went wrong on our side; run /deploy login again in a minute."
)

// linkTimeout bounds linking and notifying, which go on even if the browser
// goes away once the code has been spent.
const linkTimeout = 30 * time.Second

// ServeLogin answers GET /oidc/login?state=…: it binds this browser to the
// sign-in with a cookie and redirects to the provider's authorization
// endpoint with the PKCE challenge and the nonce.
func (f *Flow) ServeLogin(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if !allowGet(w, r) {
		return
	}
	ctx := r.Context()
	state := r.URL.Query().Get("state")
	p, err := f.pending(ctx, state, f.states.Peek)
	if errors.Is(err, ErrUnknownState) {
		f.page(w, http.StatusBadRequest, "Sign-in link expired", msgExpired)
		return
	}
	if err != nil {
		f.log.ErrorContext(ctx, "signin: read pending sign-in", "error", err)
		f.page(w, http.StatusInternalServerError, "Sign-in failed", msgTryAgain)
		return
	}
	f.cookie.set(w, state, p.Expires.Sub(f.now()))
	to := f.oauth.AuthCodeURL(state, oauth2.S256ChallengeOption(p.Verifier), oidc.Nonce(p.Nonce))
	http.Redirect(w, r, to, http.StatusFound)
	f.log.DebugContext(ctx, "signin: sent to the provider", "user", p.SlackUser)
}

// ServeCallback answers GET /oidc/callback?code=…&state=…: it checks that
// this browser started the sign-in, spends the state, exchanges the code,
// verifies the ID token, links the identity and tells the Notifier.
func (f *Flow) ServeCallback(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if !allowGet(w, r) {
		return
	}
	ctx := r.Context()
	q := r.URL.Query()
	state := q.Get("state")
	if !f.cookie.matches(r, state) {
		f.log.WarnContext(ctx, "signin: callback from a browser that did not start the sign-in")
		f.page(w, http.StatusBadRequest, "Wrong browser", msgWrongBrowser)
		return
	}
	f.cookie.clear(w)
	p, err := f.pending(ctx, state, f.states.Take)
	if errors.Is(err, ErrUnknownState) {
		f.log.InfoContext(ctx, "signin: callback for an unknown, used or expired state")
		f.page(w, http.StatusBadRequest, "Sign-in link expired", msgExpiredOrUsed)
		return
	}
	if err != nil {
		f.log.ErrorContext(ctx, "signin: take pending sign-in", "error", err)
		f.page(w, http.StatusInternalServerError, "Sign-in failed", msgTryAgain)
		return
	}
	if code := q.Get("error"); code != "" {
		f.log.InfoContext(ctx, "signin: provider refused the sign-in", "user", p.SlackUser, "error", clip(code))
		f.page(w, http.StatusForbidden, "Okta refused the sign-in", providerMessage(code, q.Get("error_description")))
		return
	}
	id, ref := f.identity(ctx, p, q.Get("code"))
	if ref != nil {
		f.log.LogAttrs(ctx, ref.level(), "signin: sign-in refused", userAttr(p), errAttr(ref.err))
		f.page(w, ref.status, ref.title, ref.msg)
		return
	}
	if err := f.save(ctx, id); err != nil {
		f.log.ErrorContext(ctx, "signin: link identity", "user", p.SlackUser, "error", err)
		f.page(w, http.StatusInternalServerError, "Sign-in failed", "You signed in, but the link could not be saved; run /deploy login again.")
		return
	}
	f.log.InfoContext(ctx, "signin: Slack account linked", "user", id.SlackUser, "groups", len(id.Groups))
	f.page(w, http.StatusOK, "Signed in", "Signed in as "+id.Email+" — your Slack account is linked; you may close this tab.")
}

// pending reads the sign-in under state with get (Peek or Take) and treats
// one past its expiry as unknown, whatever the store's TTL says.
func (f *Flow) pending(ctx context.Context, state string, get func(context.Context, string) (Pending, error)) (Pending, error) {
	if state == "" {
		return Pending{}, ErrUnknownState
	}
	p, err := get(ctx, state)
	if err != nil {
		return Pending{}, err
	}
	if !f.now().Before(p.Expires) {
		return Pending{}, ErrUnknownState
	}
	return p, nil
}

// identity exchanges the code and turns the verified ID token into the
// identity to link, or says why not.
func (f *Flow) identity(ctx context.Context, p Pending, code string) (authz.Identity, *refusal) {
	if code == "" {
		return authz.Identity{}, refuse(http.StatusBadRequest, "Okta sent no authorization code.", errors.New("signin: callback without a code"))
	}
	ctx = oidc.ClientContext(ctx, f.hc)
	tok, err := f.oauth.Exchange(ctx, code, oauth2.VerifierOption(p.Verifier))
	if err != nil {
		return authz.Identity{}, exchangeRefusal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return authz.Identity{}, refuse(http.StatusBadGateway, "Okta sent no ID token; run /deploy login again.", errors.New("signin: exchange: no id_token in the answer"))
	}
	idt, err := f.verifier.Verify(ctx, raw)
	if err != nil {
		return authz.Identity{}, verifyRefusal(err)
	}
	if p.Nonce == "" || subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(p.Nonce)) != 1 {
		return authz.Identity{}, refuse(http.StatusBadRequest,
			"The ID token from Okta does not belong to this sign-in (its nonce does not match); run /deploy login again.",
			errors.New("signin: verify id token: nonce mismatch"))
	}
	c, ref := readClaims(idt, f.cfg.GroupsClaim)
	if ref != nil {
		return authz.Identity{}, ref
	}
	return authz.Identity{
		SlackUser: p.SlackUser,
		Email:     c.email,
		Subject:   idt.Subject,
		Groups:    c.groups,
		Source:    authz.SourceOIDC,
		Expires:   f.now().Add(f.cfg.LinkTTL),
	}, nil
}

// save links id and tells the Notifier. It goes on if the browser leaves:
// the code is spent, so the user could not simply retry the callback.
func (f *Flow) save(ctx context.Context, id authz.Identity) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), linkTimeout)
	defer cancel()
	if err := f.link.Link(ctx, id); err != nil {
		return fmt.Errorf("signin: link: %w", err)
	}
	if f.note != nil {
		f.note.Linked(ctx, id)
	}
	return nil
}

func allowGet(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}

// providerMessage says what the provider's error parameters said, cut short.
// The page escapes it.
func providerMessage(code, desc string) string {
	msg := "Okta answered " + clip(code)
	if desc != "" {
		msg += ": " + clip(desc)
	}
	return msg + ". Run /deploy login again, or ask an admin to assign you the deploybot app in Okta."
}

// clip keeps text from the outside to a readable length.
func clip(s string) string {
	const max = 200
	if r := []rune(s); len(r) > max {
		return string(r[:max]) + "…"
	}
	return s
}
