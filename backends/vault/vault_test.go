package vault

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

func TestConfigCheck(t *testing.T) {
	t.Parallel()
	good := Config{Address: "https://vault:8200", RoleID: "r", SecretIDFile: "/run/s", PKIRole: "worker"}
	if p := good.Check(); len(p) != 0 {
		t.Fatalf("good config: %v", p)
	}
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no address", func(c *Config) { c.Address = "" }, "address: required"},
		{"not a URL", func(c *Config) { c.Address = "vault:8200" }, "http(s) URL"},
		{"no auth", func(c *Config) { c.RoleID = ""; c.SecretIDFile = "" }, "set a token"},
		{"no secret id", func(c *Config) { c.SecretIDFile = "" }, "needs a secret_id"},
		{"no role", func(c *Config) { c.PKIRole = "" }, "pki_role: required"},
		{"bad mount", func(c *Config) { c.PKIMount = "../sys" }, "not a valid Vault path"},
		{"ttl too short", func(c *Config) { c.TTL = time.Millisecond }, "too short"},
	}
	for _, tc := range tests {
		c := good
		tc.edit(&c)
		if p := strings.Join(c.Check(), "; "); !strings.Contains(p, tc.want) {
			t.Errorf("%s: problems %q, want %q", tc.name, p, tc.want)
		}
	}
	if _, err := New(Config{}, nil, nil, nil); err == nil {
		t.Fatal("New accepted an empty config")
	}
}

// mtlsServer serves 200 to clients with a certificate from ca.
func mtlsServer(t *testing.T, ca *DevCA) *httptest.Server {
	t.Helper()
	cfg, err := ca.ServerTLS("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	srv.TLS = cfg
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func TestDevCAMutualTLS(t *testing.T) {
	t.Parallel()
	ca, err := NewDevCA("worker-1", time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := mtlsServer(t, ca)
	roots := func() *x509.CertPool { return ca.Roots(nil) }
	resp, err := HTTPClient(ca, roots, 5*time.Second).Get(srv.URL)
	if err != nil {
		t.Fatalf("a client with the CA's certificate was refused: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "worker-1" {
		t.Fatalf("server saw client %q", body)
	}
	if _, err := HTTPClient(nil, roots, 5*time.Second).Get(srv.URL); err == nil {
		t.Fatal("a client without a certificate was let in")
	}
	other, _ := NewDevCA("intruder", time.Hour, nil)
	if _, err := HTTPClient(other, roots, 5*time.Second).Get(srv.URL); err == nil {
		t.Fatal("a client with another CA's certificate was let in")
	}
	// And the client checks the server: one that the trusted CA did not
	// certify is refused.
	if _, err := HTTPClient(ca, func() *x509.CertPool { return other.Roots(nil) }, 5*time.Second).Get(srv.URL); err == nil {
		t.Fatal("a server certificate from an untrusted CA was accepted")
	}
}

func TestDevCARenewsItsClientCertificate(t *testing.T) {
	t.Parallel()
	ca, _ := NewDevCA("w", 3*time.Minute, nil)
	a, err := ca.GetClientCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := ca.GetClientCertificate(nil)
	if a != b {
		t.Fatal("a fresh certificate was replaced")
	}
	// Age it past two thirds of its life.
	ca.mu.Lock()
	old := *a
	leaf := *a.Leaf
	leaf.NotAfter = time.Now().Add(30 * time.Second)
	old.Leaf = &leaf
	ca.client = &old
	ca.mu.Unlock()
	c, _ := ca.GetClientCertificate(nil)
	if c.Leaf.SerialNumber.Cmp(a.Leaf.SerialNumber) == 0 {
		t.Fatal("an aging certificate was not renewed")
	}
}

// issuedSecret is a PKI issue response's shape, filled with certificates
// from a DevCA (the real shape is exercised against Vault in vaultit).
func issuedSecret(t testing.TB, ca *DevCA, ttl time.Duration) *api.Secret {
	t.Helper()
	cert, err := ca.Issue("worker", ttl)
	if err != nil {
		t.Fatal(err)
	}
	keyDER := mustMarshalKey(t, cert)
	caPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.ca.Raw}))
	return &api.Secret{Data: map[string]any{
		"certificate":   string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})),
		"private_key":   string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})),
		"issuing_ca":    caPEM,
		"ca_chain":      []any{caPEM},
		"serial_number": "11:22",
	}}
}

func TestParseIssuedAndReadiness(t *testing.T) {
	t.Parallel()
	ca, _ := NewDevCA("w", time.Hour, nil)
	now := time.Now()
	h, roots, err := parseIssued(issuedSecret(t, ca, 30*time.Minute), now)
	if err != nil {
		t.Fatal(err)
	}
	if len(roots) != 1 || h.serial != "11:22" || len(h.cert.Certificate) != 1 {
		t.Fatalf("parsed %d roots, serial %q, chain %d (a self-signed root must not be presented)", len(roots), h.serial, len(h.cert.Certificate))
	}
	if _, _, err := parseIssued(&api.Secret{Data: map[string]any{"certificate": "x"}}, now); err == nil {
		t.Fatal("a response without a key was accepted")
	}

	c := &Certs{now: func() time.Time { return now }, metrics: NewMetrics(nil), log: discard()}
	if _, err := c.GetClientCertificate(nil); !errors.Is(err, ErrNoCertificate) {
		t.Fatalf("no certificate yet: %v", err)
	}
	if err := c.Ready(); !errors.Is(err, ErrNoCertificate) {
		t.Fatalf("Ready without a certificate = %v", err)
	}
	if !c.due() {
		t.Fatal("with no certificate held, issuing is not due")
	}
	c.current.Store(h)
	if c.due() {
		t.Fatal("a fresh certificate is due for renewal")
	}
	if err := c.Ready(); err != nil {
		t.Fatalf("Ready = %v", err)
	}
	if want := now.Add(h.notAfter.Sub(now) * 2 / 3); !c.renewAt().Equal(want) {
		t.Fatalf("renewAt %v, want two thirds in (%v)", c.renewAt(), want)
	}
	c.failed(errors.New("connection refused"))
	var re *RenewalError
	if err := c.Ready(); !errors.As(err, &re) || !re.Degraded() {
		t.Fatalf("Ready while renewal fails = %v, want a degraded RenewalError", err)
	}
	if _, err := c.GetClientCertificate(nil); err != nil {
		t.Fatalf("the current certificate must stay usable while renewal fails: %v", err)
	}
	c.now = func() time.Time { return h.notAfter.Add(time.Second) }
	if err := c.Ready(); !errors.Is(err, ErrNoCertificate) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Ready after expiry = %v", err)
	}
	if _, err := c.GetClientCertificate(nil); !errors.Is(err, ErrNoCertificate) {
		t.Fatal("an expired certificate was handed out")
	}
	c.recovered()
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, time.Minute, time.Minute}
	for i, w := range want {
		if got := backoff(i + 1); got != w {
			t.Errorf("backoff(%d) = %v, want %v", i+1, got, w)
		}
	}
}

var _ CertSource = (*Certs)(nil)
var _ CertSource = (*DevCA)(nil)

func mustMarshalKey(t testing.TB, cert tls.Certificate) []byte {
	t.Helper()
	der, err := marshalECKey(cert)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestServerIdentityIsChecked: a trusted CA's certificate for another name
// or another address does not let a server pass for the backend.
func TestServerIdentityIsChecked(t *testing.T) {
	t.Parallel()
	ca, _ := NewDevCA("worker", time.Hour, nil)
	roots := func() *x509.CertPool { return ca.Roots(nil) }
	for _, tc := range []struct {
		name  string
		hosts []string
		ok    bool
	}{
		{"right IP", []string{"127.0.0.1"}, true},
		{"another name", []string{"evil.example"}, false},
		{"another IP", []string{"10.9.8.7"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := ca.ServerTLS(tc.hosts...)
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			srv.TLS = cfg
			srv.StartTLS()
			defer srv.Close()
			_, err = HTTPClient(ca, roots, 5*time.Second).Get(srv.URL)
			if (err == nil) != tc.ok {
				t.Fatalf("GET %s with a certificate for %v: err = %v, want ok=%v", srv.URL, tc.hosts, err, tc.ok)
			}
		})
	}
}

// TestStopWhileStarting: with Vault unreachable, Start waits; Stop ends it
// instead of leaving it blocked.
func TestStopWhileStarting(t *testing.T) {
	t.Parallel()
	c, err := New(Config{Address: "https://127.0.0.1:1", RoleID: "r", SecretID: "s", PKIRole: "worker"}, nil, discard(), nil)
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan error, 1)
	go func() { started <- c.Start(context.Background()) }()
	for c.lastError() == nil {
		time.Sleep(time.Millisecond) // wait for a failed attempt: the loop is running
	}
	if err := c.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "already started") {
		t.Fatalf("a second Start = %v", err)
	}
	c.Stop()
	select {
	case err := <-started:
		if err == nil {
			t.Fatal("Start reported success without a certificate")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Start did not return after Stop")
	}
	if err := c.Ready(); !errors.Is(err, ErrNoCertificate) {
		t.Fatalf("Ready = %v", err)
	}
	var nc *NoCertificateError
	if !errors.As(c.Ready(), &nc) || strings.Contains(nc.Summary(), "127.0.0.1") {
		t.Fatalf("the summary for a public page leaks the address: %v", c.Ready())
	}
}
