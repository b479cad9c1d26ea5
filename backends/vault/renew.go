package vault

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/approle"
)

// Start logs in and gets the first certificate, then keeps both fresh in the
// background until Stop. It returns once the first certificate is held, or
// when ctx is done (with the last failure); either way renewal goes on in
// the background, so a worker started during a Vault outage recovers by
// itself.
func (c *Certs) Start(ctx context.Context) error {
	c.mu.Lock()
	if c.stop != nil {
		c.mu.Unlock()
		return errors.New("vault: already started")
	}
	bg, cancel := context.WithCancel(context.Background())
	c.stop, c.done, c.ready = cancel, make(chan struct{}), make(chan struct{})
	done, ready := c.done, c.ready
	c.mu.Unlock()
	go c.run(bg)
	select {
	case <-ready:
		return nil
	case <-done:
		return errors.New("vault: stopped before the first certificate")
	case <-ctx.Done():
		if err := c.lastError(); err != nil {
			return fmt.Errorf("vault: no certificate yet: %w", err)
		}
		return fmt.Errorf("vault: no certificate yet: %w", ctx.Err())
	}
}

// Stop ends the background renewal and revokes the AppRole token. The held
// certificate stays usable until it expires.
func (c *Certs) Stop() {
	c.mu.Lock()
	stop, done := c.stop, c.done
	c.stop = nil
	c.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}

// session is the loop's view of the current token.
type session struct {
	watcher *api.LifetimeWatcher
	// relogin is when a token that cannot be renewed should be replaced;
	// zero when nothing needs doing.
	relogin time.Time
	// denied is set when Vault refused a freshly issued token: a policy
	// problem that logging in again will not fix.
	denied bool
}

// run is the background loop: log in when needed, issue when due, retry
// with backoff when Vault fails, and log in again before the token lapses.
func (c *Certs) run(ctx context.Context) {
	defer close(c.done)
	st := &session{}
	defer c.dropToken(st)
	failures := 0
	for {
		err := c.step(ctx, st)
		if ctx.Err() != nil {
			return // stopping; an interrupted call is not a failure
		}
		if err != nil {
			failures++
			c.failed(err)
			if !sleep(ctx, backoff(failures)) {
				return
			}
			continue
		}
		failures = 0
		c.recovered()
		if !c.wait(ctx, st) {
			return
		}
	}
}

// step logs in if there is no token and issues a certificate if one is due.
// A token that Vault no longer accepts is replaced at once, without counting
// as a failure.
func (c *Certs) step(ctx context.Context, st *session) error {
	// While failing, the loop does not wait on the token's timers; check
	// them here so a token that lapsed meanwhile is replaced.
	if st.watcher != nil {
		select {
		case <-st.watcher.DoneCh():
			c.dropToken(st)
		default:
		}
	}
	if !st.relogin.IsZero() && !c.now().Before(st.relogin) {
		c.dropToken(st)
	}
	fresh := false
	if c.client.Token() == "" {
		if err := c.login(ctx, st); err != nil {
			return err
		}
		fresh = true
	}
	if !c.due() {
		return nil
	}
	err := c.issue(ctx)
	if isDenied(err) && !fresh && !st.denied && c.cfg.Token == "" {
		c.log.Info("vault no longer accepts the token; logging in again")
		c.dropToken(st)
		if err := c.login(ctx, st); err != nil {
			return err
		}
		err = c.issue(ctx)
	}
	st.denied = isDenied(err)
	if err != nil {
		c.metrics.renewals.WithLabelValues("error").Inc()
		if st.denied {
			return fmt.Errorf("%w (the token is fresh, so its policy must allow update on %s/issue/%s)", err, c.cfg.PKIMount, c.cfg.PKIRole)
		}
		return err
	}
	c.metrics.renewals.WithLabelValues("ok").Inc()
	return nil
}

func isDenied(err error) bool {
	var re *api.ResponseError
	return errors.As(err, &re) && (re.StatusCode == http.StatusForbidden || re.StatusCode == http.StatusUnauthorized)
}

// wait sleeps until the certificate is due, the token's renewal ends or the
// token should be replaced. It returns false when stopping.
func (c *Certs) wait(ctx context.Context, st *session) bool {
	var ended <-chan error
	if st.watcher != nil {
		ended = st.watcher.DoneCh()
	}
	var relogin <-chan time.Time
	if !st.relogin.IsZero() {
		relogin = time.After(time.Until(st.relogin))
	}
	select {
	case <-ctx.Done():
		return false
	case <-time.After(time.Until(c.renewAt())):
	case err := <-ended:
		// Vault will not renew the token any more (max TTL, or revoked).
		c.log.Info("vault token renewal ended; logging in again", "reason", fmt.Sprint(err))
		c.dropToken(st)
	case <-relogin:
		c.log.Info("vault token is near the end of its life; logging in again")
		c.dropToken(st)
	}
	return true
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

// callTimeout bounds one call to Vault: 30 s, but no more than a quarter
// of the held certificate's remaining life (and no less than 5 s), so one
// hung request cannot use up the time left to renew.
func (c *Certs) callTimeout() time.Duration {
	d := 30 * time.Second
	if h := c.current.Load(); h != nil {
		d = min(d, max(h.notAfter.Sub(c.now())/4, 5*time.Second))
	}
	return d
}

// login authenticates and arranges for the token to stay valid: a
// renewable token is watched, another one replaced at two thirds of its
// life.
func (c *Certs) login(ctx context.Context, st *session) error {
	ctx, cancel := context.WithTimeout(ctx, c.callTimeout())
	defer cancel()
	secret, err := c.authenticate(ctx)
	if err != nil {
		c.metrics.logins.WithLabelValues("error").Inc()
		return err
	}
	c.metrics.logins.WithLabelValues("ok").Inc()
	st.watcher, st.relogin = nil, time.Time{}
	if secret == nil || secret.Auth == nil {
		return nil
	}
	lease := time.Duration(secret.Auth.LeaseDuration) * time.Second
	switch {
	case secret.Auth.Renewable:
		w, err := c.client.NewLifetimeWatcher(&api.LifetimeWatcherInput{Secret: secret})
		if err != nil {
			return fmt.Errorf("vault: watch token: %w", err)
		}
		go w.Start()
		st.watcher = w
	case lease > 0 && c.cfg.Token == "":
		st.relogin = c.now().Add(lease * 2 / 3)
	}
	return nil
}

func (c *Certs) authenticate(ctx context.Context) (*api.Secret, error) {
	if c.cfg.Token != "" {
		c.client.SetToken(c.cfg.Token)
		secret, err := c.client.Auth().Token().RenewSelfWithContext(ctx, 0)
		var re *api.ResponseError
		if errors.As(err, &re) && re.StatusCode == http.StatusBadRequest {
			return nil, nil // a token that cannot be renewed: used as it is until it expires
		}
		if err != nil {
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
		c.client.ClearToken()
		return nil, fmt.Errorf("vault: approle login: %w", err)
	}
	c.log.Info("logged in to vault with approle", "renewable", secret.Auth != nil && secret.Auth.Renewable)
	return secret, nil
}

// dropToken forgets the token; one deploybot logged in for itself is
// revoked first, so replaced tokens do not pile up in Vault.
func (c *Certs) dropToken(st *session) {
	if st.watcher != nil {
		st.watcher.Stop()
		st.watcher = nil
	}
	st.relogin = time.Time{}
	if c.cfg.Token == "" && c.client.Token() != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.client.Auth().Token().RevokeSelfWithContext(ctx, ""); err != nil {
			c.log.Debug("could not revoke the old vault token", "err", err)
		}
	}
	c.client.ClearToken()
}

// issue asks the PKI engine for a new certificate and makes it current.
func (c *Certs) issue(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.callTimeout())
	defer cancel()
	path := c.cfg.PKIMount + "/issue/" + c.cfg.PKIRole
	issuedAt := c.now()
	secret, err := c.client.Logical().WriteWithContext(ctx, path, map[string]any{
		"common_name": c.commonName(),
		"ttl":         c.cfg.TTL.String(),
		"format":      "pem",
	})
	if err != nil {
		return fmt.Errorf("vault: issue %s: %w", path, err)
	}
	h, roots, err := parseIssued(secret, issuedAt)
	if err != nil {
		return err
	}
	c.current.Store(h)
	c.mu.Lock()
	c.roots = roots
	c.mu.Unlock()
	c.log.Info("client certificate issued", "serial", h.serial, "not_after", h.notAfter.UTC().Format(time.RFC3339))
	if c.OnRenew != nil {
		c.OnRenew(h.cert.Leaf)
	}
	return nil
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
	if c.ready != nil && c.current.Load() != nil {
		select {
		case <-c.ready:
		default:
			close(c.ready)
		}
	}
}

func (c *Certs) lastError() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastErr
}
