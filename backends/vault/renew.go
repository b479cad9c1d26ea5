package vault

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/approle"
)

// Start logs in and gets the first certificate, waiting at most until ctx is
// done, then keeps both fresh in the background until Stop. If the first
// certificate cannot be had in time, Start returns why but goes on trying in
// the background, so a worker started during a Vault outage recovers by
// itself.
func (c *Certs) Start(ctx context.Context) error {
	bg, cancel := context.WithCancel(context.Background())
	c.stop, c.done = cancel, make(chan struct{})
	first := make(chan error, 1)
	go c.run(bg, first)
	select {
	case err := <-first:
		return err
	case <-ctx.Done():
		return fmt.Errorf("vault: first certificate: %w", ctx.Err())
	}
}

// Stop ends the background renewal. The held certificate stays usable until
// it expires.
func (c *Certs) Stop() {
	if c.stop != nil {
		c.stop()
		<-c.done
		c.stop = nil
	}
}

// run is the background loop: log in when needed, issue when due, retry
// with backoff when Vault fails, and log in again when the token's renewal
// ends.
func (c *Certs) run(ctx context.Context, first chan<- error) {
	defer close(c.done)
	reported := false
	report := func(err error) {
		if !reported {
			first <- err
			reported = true
		}
	}
	var session *api.LifetimeWatcher
	defer func() {
		if session != nil {
			session.Stop()
		}
	}()
	failures := 0
	for ctx.Err() == nil {
		var err error
		if session == nil && c.client.Token() == "" {
			session, err = c.login(ctx)
		}
		if err == nil && c.due() {
			err = c.issue(ctx)
			var re *api.ResponseError
			if errors.As(err, &re) && (re.StatusCode == http.StatusForbidden || re.StatusCode == http.StatusUnauthorized) {
				c.client.ClearToken() // the token was revoked or expired: log in again
				if session != nil {
					session.Stop()
					session = nil
				}
			}
		}
		if err != nil {
			c.failed(err)
			report(err)
			failures++
			if !sleep(ctx, backoff(failures)) {
				return
			}
			continue
		}
		failures = 0
		c.recovered()
		report(nil)
		var ended <-chan error
		if session != nil {
			ended = session.DoneCh()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(c.renewAt())):
		case err := <-ended:
			// Vault refused to renew the token any more (max TTL, or revoked).
			c.log.Info("vault token renewal ended; logging in again", "reason", fmt.Sprint(err))
			session.Stop()
			session = nil
			c.client.ClearToken()
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// backoff after n failures in a row: 1s, 2s, 4s … up to a minute.
func backoff(n int) time.Duration {
	return min(time.Second<<min(n-1, 6), time.Minute)
}

// renewAt is two thirds into the held certificate's life; with none held,
// the zero time (due at once).
func (c *Certs) renewAt() time.Time {
	h := c.current.Load()
	if h == nil {
		return time.Time{}
	}
	return h.issuedAt.Add(h.notAfter.Sub(h.issuedAt) * 2 / 3)
}

func (c *Certs) due() bool { return !c.now().Before(c.renewAt()) }

// login authenticates and, when the token can be renewed, watches it.
func (c *Certs) login(ctx context.Context) (*api.LifetimeWatcher, error) {
	secret, err := c.authenticate(ctx)
	if err != nil {
		c.metrics.logins.WithLabelValues("error").Inc()
		return nil, err
	}
	c.metrics.logins.WithLabelValues("ok").Inc()
	if secret == nil || secret.Auth == nil || !secret.Auth.Renewable {
		c.log.Info("vault token is not renewable; it is used until it expires")
		return nil, nil
	}
	w, err := c.client.NewLifetimeWatcher(&api.LifetimeWatcherInput{Secret: secret})
	if err != nil {
		return nil, fmt.Errorf("vault: watch token: %w", err)
	}
	go w.Start()
	return w, nil
}

func (c *Certs) authenticate(ctx context.Context) (*api.Secret, error) {
	if c.cfg.Token != "" {
		c.client.SetToken(c.cfg.Token)
		secret, err := c.client.Auth().Token().RenewSelfWithContext(ctx, 0)
		var re *api.ResponseError
		if errors.As(err, &re) && re.StatusCode == http.StatusBadRequest {
			return nil, nil // a token that cannot be renewed (a root or periodic-less token)
		}
		if err != nil {
			c.client.ClearToken()
			return nil, fmt.Errorf("vault: token: %w", err)
		}
		return secret, nil
	}
	sid := &approle.SecretID{FromString: c.cfg.SecretID}
	if c.cfg.SecretID == "" {
		sid = &approle.SecretID{FromFile: c.cfg.SecretIDFile}
	}
	auth, err := approle.NewAppRoleAuth(c.cfg.RoleID, sid, approle.WithMountPath(c.cfg.AppRoleMount))
	if err != nil {
		return nil, fmt.Errorf("vault: approle: %w", err)
	}
	secret, err := c.client.Auth().Login(ctx, auth)
	if err != nil {
		return nil, fmt.Errorf("vault: approle login: %w", err)
	}
	c.log.Info("logged in to vault with approle", "renewable", secret.Auth != nil && secret.Auth.Renewable)
	return secret, nil
}

// issue asks the PKI engine for a new certificate and makes it current.
func (c *Certs) issue(ctx context.Context) error {
	path := c.cfg.PKIMount + "/issue/" + c.cfg.PKIRole
	issuedAt := c.now()
	secret, err := c.client.Logical().WriteWithContext(ctx, path, map[string]any{
		"common_name": c.commonName(),
		"ttl":         c.cfg.TTL.String(),
		"format":      "pem",
	})
	if err != nil {
		c.metrics.renewals.WithLabelValues("error").Inc()
		return fmt.Errorf("vault: issue %s: %w", path, err)
	}
	h, roots, err := parseIssued(secret, issuedAt)
	if err != nil {
		c.metrics.renewals.WithLabelValues("error").Inc()
		return err
	}
	c.current.Store(h)
	c.mu.Lock()
	c.roots = roots
	c.mu.Unlock()
	c.metrics.renewals.WithLabelValues("ok").Inc()
	c.log.Info("client certificate issued", "serial", h.serial, "not_after", h.notAfter.UTC().Format(time.RFC3339))
	if c.OnRenew != nil {
		c.OnRenew(h.cert.Leaf)
	}
	return nil
}

// parseIssued reads a PKI issue response: the certificate, its key, the
// issuing CA and chain.
func parseIssued(secret *api.Secret, issuedAt time.Time) (*held, []*x509.Certificate, error) {
	if secret == nil || secret.Data == nil {
		return nil, nil, errors.New("vault: issue: empty response")
	}
	certPEM, _ := secret.Data["certificate"].(string)
	keyPEM, _ := secret.Data["private_key"].(string)
	issuing, _ := secret.Data["issuing_ca"].(string)
	if certPEM == "" || keyPEM == "" {
		return nil, nil, errors.New("vault: issue: response has no certificate or key")
	}
	var cas []*x509.Certificate
	chainPEM := []string{issuing}
	if list, ok := secret.Data["ca_chain"].([]any); ok {
		for _, v := range list {
			if s, ok := v.(string); ok {
				chainPEM = append(chainPEM, s)
			}
		}
	}
	seen := map[string]bool{}
	for _, p := range chainPEM {
		for _, ca := range parsePEMCerts(p) {
			if !seen[string(ca.Raw)] {
				seen[string(ca.Raw)] = true
				cas = append(cas, ca)
			}
		}
	}
	// Present the leaf with any intermediates, not self-signed roots.
	full := certPEM
	for _, ca := range cas {
		if ca.CheckSignatureFrom(ca) != nil {
			full += "\n" + string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}))
		}
	}
	cert, err := tls.X509KeyPair([]byte(full), []byte(keyPEM))
	if err != nil {
		return nil, nil, fmt.Errorf("vault: issue: key pair: %w", err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, nil, fmt.Errorf("vault: issue: certificate: %w", err)
	}
	cert.Leaf = leaf
	serial, _ := secret.Data["serial_number"].(string)
	return &held{cert: cert, issuedAt: issuedAt, notAfter: leaf.NotAfter, serial: serial}, cas, nil
}

func parsePEMCerts(s string) []*x509.Certificate {
	var out []*x509.Certificate
	rest := []byte(s)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return out
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if c, err := x509.ParseCertificate(b.Bytes); err == nil {
			out = append(out, c)
		}
	}
}

func (c *Certs) failed(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lastErr == nil {
		c.failing = c.now()
	}
	c.lastErr = err
	h := c.current.Load()
	if h != nil && c.now().Before(h.notAfter) {
		c.log.Warn("vault: renewal failed; keeping the current certificate", "err", err, "valid_until", h.notAfter.UTC().Format(time.RFC3339))
	} else {
		c.log.Error("vault: no valid client certificate; backends that need one will refuse calls", "err", err)
	}
}

func (c *Certs) recovered() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lastErr != nil {
		c.log.Info("vault: renewal works again")
	}
	c.lastErr = nil
	c.failing = time.Time{}
}
