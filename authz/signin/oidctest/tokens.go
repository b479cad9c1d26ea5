package oidctest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"
)

// tokenLifetime is how long Okta's ID and access tokens last.
const tokenLifetime = time.Hour

// tokenResponse is the /v1/token answer, as Okta shapes it.
type tokenResponse struct {
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	AccessToken string `json:"access_token"`
	Scope       string `json:"scope"`
	IDToken     string `json:"id_token"`
}

// IDClaims are the claims of the ID tokens the server signs, named and typed
// as in Okta's ID tokens. Scope-dependent claims are present only when their
// scope was asked for: name and preferred_username (profile), email and
// email_verified (email), groups (groups).
type IDClaims struct {
	Ver               int      `json:"ver"`
	Subject           string   `json:"sub"`
	Issuer            string   `json:"iss"`
	Audience          string   `json:"aud"`
	IssuedAt          int64    `json:"iat"`
	Expiry            int64    `json:"exp"`
	JTI               string   `json:"jti"`
	AMR               []string `json:"amr"`
	IDP               string   `json:"idp"`
	Nonce             string   `json:"nonce,omitempty"`
	AuthTime          int64    `json:"auth_time"`
	AtHash            string   `json:"at_hash,omitempty"`
	Name              string   `json:"name,omitempty"`
	PreferredUsername string   `json:"preferred_username,omitempty"`
	Email             string   `json:"email,omitempty"`
	EmailVerified     *bool    `json:"email_verified,omitempty"`
	Groups            []string `json:"groups,omitempty"`
}

// accessClaims are the claims of Okta's access tokens (a custom
// authorization server's are JWTs for the audience api://default).
type accessClaims struct {
	Ver      int      `json:"ver"`
	JTI      string   `json:"jti"`
	Issuer   string   `json:"iss"`
	Audience string   `json:"aud"`
	IssuedAt int64    `json:"iat"`
	Expiry   int64    `json:"exp"`
	CID      string   `json:"cid"`
	UID      string   `json:"uid"`
	Scopes   []string `json:"scp"`
	AuthTime int64    `json:"auth_time"`
	Subject  string   `json:"sub"`
}

// issue signs the tokens for a spent code, applying the faults in force.
func (s *Server) issue(g grant) (*tokenResponse, error) {
	f := s.currentFaults()
	u := s.opts.User
	iat := time.Now()
	if f.Expired {
		iat = iat.Add(-2 * tokenLifetime)
	}
	scopes := strings.Fields(g.scope)
	access, err := s.sign(accessClaims{
		Ver: 1, JTI: "AT." + rand.Text(), Issuer: s.Issuer(), Audience: "api://default",
		IssuedAt: iat.Unix(), Expiry: iat.Add(tokenLifetime).Unix(),
		CID: s.opts.ClientID, UID: u.Subject, Scopes: scopes, AuthTime: g.authTime.Unix(),
		Subject: u.Login,
	})
	if err != nil {
		return nil, err
	}
	c := s.idClaims(g, f, scopes, iat)
	sum := sha256.Sum256([]byte(access))
	c.AtHash = base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
	id, err := s.sign(c)
	if err != nil {
		return nil, err
	}
	if f.BadSignature {
		id = tamper(id)
	}
	return &tokenResponse{
		TokenType:   "Bearer",
		ExpiresIn:   int(tokenLifetime.Seconds()),
		AccessToken: access,
		Scope:       g.scope,
		IDToken:     id,
	}, nil
}

func (s *Server) idClaims(g grant, f Faults, scopes []string, iat time.Time) IDClaims {
	u := s.opts.User
	c := IDClaims{
		Ver: 1, Subject: u.Subject, Issuer: s.Issuer(), Audience: s.opts.ClientID,
		IssuedAt: iat.Unix(), Expiry: iat.Add(tokenLifetime).Unix(),
		JTI: "ID." + rand.Text(), AMR: []string{"pwd"}, IDP: s.orgID,
		Nonce: g.nonce, AuthTime: min(g.authTime.Unix(), iat.Unix()),
	}
	if f.Audience != "" {
		c.Audience = f.Audience
	}
	if f.Nonce != "" {
		c.Nonce = f.Nonce
	}
	if slices.Contains(scopes, "profile") {
		c.Name, c.PreferredUsername = u.Name, u.Login
	}
	if slices.Contains(scopes, "email") {
		verified := !f.EmailUnverified
		c.Email, c.EmailVerified = u.Email, &verified
	}
	if slices.Contains(scopes, "groups") && !f.OmitGroups {
		c.Groups = append([]string{}, u.Groups...)
	}
	return c
}

func (s *Server) sign(claims any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", &tokenError{status: http.StatusInternalServerError, Code: "server_error", Desc: err.Error()}
	}
	jws, err := s.signer.Sign(payload)
	if err != nil {
		return "", &tokenError{status: http.StatusInternalServerError, Code: "server_error", Desc: err.Error()}
	}
	return jws.CompactSerialize()
}

// tamper flips bits in a compact JWS's signature, leaving it well formed.
func tamper(jws string) string {
	i := strings.LastIndexByte(jws, '.')
	sig, err := base64.RawURLEncoding.DecodeString(jws[i+1:])
	if err != nil || len(sig) == 0 {
		sig = []byte("not a signature")
	}
	sig[0] ^= 0xff
	return jws[:i+1] + base64.RawURLEncoding.EncodeToString(sig)
}
