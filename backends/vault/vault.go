// Package vault gives workers short-lived client certificates from Vault's
// PKI engine. It logs in (AppRole or a token), keeps the token renewed and
// logs in again when renewal is refused, issues a certificate, keeps it and
// its key in memory only, and renews it in the background at about two
// thirds of its lifetime, so a job never waits on Vault once the first
// certificate exists. If Vault is down when a renewal is due, the current
// certificate is used until it expires while renewal is retried with
// backoff, and Ready says so.
//
// Backends get the certificate through tls.Config.GetClientCertificate, so
// a renewed certificate is used by the next connection without a restart.
package vault

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/api"
)

// Config says which Vault to use, how to log in and what to ask for.
type Config struct {
	// Address of Vault, e.g. "https://vault.example.com:8200" (VAULT_ADDR).
	Address string
	// CAFile verifies Vault's own TLS certificate (VAULT_CACERT); empty
	// means the system roots.
	CAFile string
	// Token logs in with a token (VAULT_TOKEN). Otherwise RoleID and
	// SecretID (or SecretIDFile) log in with AppRole.
	Token        string
	RoleID       string
	SecretID     string
	SecretIDFile string
	// AppRoleMount is where AppRole is enabled. Default "approle".
	AppRoleMount string
	// PKIMount is where the PKI engine is mounted. Default "pki".
	PKIMount string
	// PKIRole is the PKI role certificates are issued under. Required.
	PKIRole string
	// CommonName is the certificate's subject; "{host}" is replaced by the
	// host name, so each worker has its own. Default "{host}".
	CommonName string
	// TTL is the certificate's requested lifetime. Default 1h.
	TTL time.Duration
}

func (c Config) withDefaults() Config {
	if c.AppRoleMount == "" {
		c.AppRoleMount = "approle"
	}
	if c.PKIMount == "" {
		c.PKIMount = "pki"
	}
	if c.CommonName == "" {
		c.CommonName = "{host}"
	}
	if c.TTL <= 0 {
		c.TTL = time.Hour
	}
	return c
}

// Check reports what is missing or wrong in c, one message per problem.
func (c Config) Check() []string {
	var out []string
	if c.Address == "" {
		out = append(out, "address: required (or VAULT_ADDR)")
	} else if !strings.HasPrefix(c.Address, "https://") && !strings.HasPrefix(c.Address, "http://") {
		out = append(out, "address: must be an http(s) URL")
	}
	if c.Token == "" && c.RoleID == "" {
		out = append(out, "auth: set a token (VAULT_TOKEN) or an AppRole role_id (VAULT_ROLE_ID)")
	}
	if c.RoleID != "" && c.SecretID == "" && c.SecretIDFile == "" && c.Token == "" {
		out = append(out, "auth: AppRole needs a secret_id (VAULT_SECRET_ID) or secret_id_file")
	}
	if c.PKIRole == "" {
		out = append(out, "pki_role: required: the PKI role client certificates are issued under")
	}
	for _, p := range []struct{ name, v string }{{"approle_mount", c.AppRoleMount}, {"pki_mount", c.PKIMount}, {"pki_role", c.PKIRole}} {
		if strings.ContainsAny(p.v, " \t\r\n?#") || strings.Contains(p.v, "..") || strings.HasPrefix(p.v, "/") {
			out = append(out, fmt.Sprintf("%s: %q is not a valid Vault path", p.name, p.v))
		}
	}
	if c.TTL < 0 || (c.TTL > 0 && c.TTL < time.Second) {
		out = append(out, fmt.Sprintf("ttl: %s is too short", c.TTL))
	}
	return out
}

// Named errors callers branch on.
var (
	// ErrNoCertificate means no valid certificate is held: none was issued
	// yet, or the last one expired while Vault could not be reached.
	ErrNoCertificate = errors.New("vault: no valid client certificate")
)

// RenewalError says renewal is failing while the current certificate is
// still valid: work goes on, but someone should look.
type RenewalError struct {
	Since      time.Time
	ValidUntil time.Time
	Err        error
}

// Error says since when renewal fails, why, and how long the certificate
// lasts.
func (e *RenewalError) Error() string { return e.Summary() + ": " + e.Err.Error() }

// Summary is Error without Vault's own message (which names internal
// addresses and paths), for a public readiness page.
func (e *RenewalError) Summary() string {
	return fmt.Sprintf("certificate renewal failing since %s; current certificate valid until %s",
		e.Since.UTC().Format(time.RFC3339), e.ValidUntil.UTC().Format(time.RFC3339))
}

// Unwrap returns the last renewal error.
func (e *RenewalError) Unwrap() error { return e.Err }

// Degraded marks the error as one readiness reports without failing.
func (e *RenewalError) Degraded() bool { return true }

// NoCertificateError says no valid certificate is held, and why if known.
// errors.Is(err, ErrNoCertificate) is true.
type NoCertificateError struct {
	Since time.Time // when renewal started failing, if it did
	Err   error     // the last failure, if any
}

// Error says that there is no certificate, and the last failure.
func (e *NoCertificateError) Error() string {
	if e.Err == nil {
		return ErrNoCertificate.Error()
	}
	return e.Summary() + ": " + e.Err.Error()
}

// Summary is Error without Vault's own message.
func (e *NoCertificateError) Summary() string {
	if e.Since.IsZero() {
		return "no valid client certificate"
	}
	return "no valid client certificate; Vault failing since " + e.Since.UTC().Format(time.RFC3339)
}

// Is makes errors.Is(err, ErrNoCertificate) true.
func (e *NoCertificateError) Is(target error) bool { return target == ErrNoCertificate }

// Unwrap returns the last failure.
func (e *NoCertificateError) Unwrap() error { return e.Err }

// held is an issued certificate with what is needed to decide its renewal.
type held struct {
	cert     tls.Certificate
	issuedAt time.Time
	notAfter time.Time
	serial   string
}

// Certs keeps a client certificate from Vault's PKI engine fresh. It is safe
// for concurrent use.
type Certs struct {
	cfg     Config
	client  *api.Client
	log     *slog.Logger
	metrics *Metrics
	now     func() time.Time
	// OnRenew, if set before Start, is called with each new certificate.
	OnRenew func(leaf *x509.Certificate)

	current atomic.Pointer[held]

	mu      sync.Mutex
	roots   []*x509.Certificate
	failing time.Time
	lastErr error
	stop    context.CancelFunc
	done    chan struct{} // closed when the loop ends
	ready   chan struct{} // closed when the first certificate is held
}

// New returns Certs for cfg; hc (nil: a default client) carries requests to
// Vault. Nothing is contacted until Start.
func New(cfg Config, hc *http.Client, log *slog.Logger, m *Metrics) (*Certs, error) {
	cfg = cfg.withDefaults()
	if problems := cfg.Check(); len(problems) > 0 {
		return nil, fmt.Errorf("vault: %s", strings.Join(problems, "; "))
	}
	// Built by hand, not from api.DefaultConfig, so Vault's environment
	// variables (VAULT_SKIP_VERIFY, VAULT_AGENT_ADDR, …) cannot change what
	// the config says. VAULT_NAMESPACE is still honoured.
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		hc = &http.Client{Transport: tr}
	}
	vc := &api.Config{Address: cfg.Address, HttpClient: hc, MaxRetries: 2, Timeout: 30 * time.Second}
	if cfg.CAFile != "" {
		if err := vc.ConfigureTLS(&api.TLSConfig{CACert: cfg.CAFile}); err != nil {
			return nil, fmt.Errorf("vault: ca_file: %w", err)
		}
	}
	client, err := api.NewClient(vc)
	if err != nil {
		return nil, fmt.Errorf("vault: client: %w", err)
	}
	client.SetToken("") // never pick up a token from the environment by accident
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	c := &Certs{cfg: cfg, client: client, log: log.With("backend", "vault"), metrics: m, now: time.Now}
	m.watch(c)
	return c, nil
}

// commonName is the configured name with {host} filled in.
func (c *Certs) commonName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "deploybot-worker"
	}
	return strings.ReplaceAll(c.cfg.CommonName, "{host}", strings.ToLower(host))
}

// GetClientCertificate hands the current certificate to a TLS handshake. It
// never calls Vault.
func (c *Certs) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	h := c.current.Load()
	if h == nil || !c.now().Before(h.notAfter) {
		return nil, ErrNoCertificate
	}
	return &h.cert, nil
}

// Ready is nil when a valid certificate is held and renewal works; a
// *RenewalError when renewal fails but the certificate still works; and
// ErrNoCertificate (wrapping the last failure) when there is none.
func (c *Certs) Ready() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.current.Load()
	if h == nil || !c.now().Before(h.notAfter) {
		return &NoCertificateError{Since: c.failing, Err: c.lastErr}
	}
	if c.lastErr != nil {
		return &RenewalError{Since: c.failing, ValidUntil: h.notAfter, Err: c.lastErr}
	}
	return nil
}

// Roots returns a pool with the PKI's issuing CA and chain, as learnt from
// the last certificate issued, added to base (nil: an empty pool).
func (c *Certs) Roots(base *x509.CertPool) *x509.CertPool {
	pool := base
	if pool == nil {
		pool = x509.NewCertPool()
	} else {
		pool = pool.Clone()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ca := range c.roots {
		pool.AddCert(ca)
	}
	return pool
}

// Expiry is when the held certificate expires (zero when there is none).
func (c *Certs) Expiry() time.Time {
	if h := c.current.Load(); h != nil {
		return h.notAfter
	}
	return time.Time{}
}
