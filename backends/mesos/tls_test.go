package mesos

import (
	"crypto/tls"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/seed-5eb4e92e/deploybot/backends/mesos/mesostest"
	"github.com/seed-5eb4e92e/deploybot/backends/vault"
)

// TestMutualTLS runs a task against a master that requires a client
// certificate from the development CA, as a Vault-issued one would be.
func TestMutualTLS(t *testing.T) {
	t.Parallel()
	ca, err := vault.NewDevCA("deploybot-worker", time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	serverTLS, err := ca.ServerTLS("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	srv := startMaster(t, mesostest.Options{TLS: serverTLS})
	client := func(withCert bool) *Client {
		cfg := &tls.Config{RootCAs: ca.Roots(nil), MinVersion: tls.VersionTLS12}
		if withCert {
			cfg.GetClientCertificate = ca.GetClientCertificate
		}
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
		c, err := New(Config{URL: srv.URL}, hc, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.retry = retryPolicy{min: time.Millisecond, max: time.Millisecond, attempts: 1}
		return c
	}
	if !strings.HasPrefix(srv.URL, "https://127.0.0.1:") {
		t.Fatalf("master at %s, want https", srv.URL)
	}
	st, err := client(true).RunTask(testCtx(t), spec("deploybot-42-migrate"), nil)
	if err != nil || !st.Succeeded() {
		t.Fatalf("with a client certificate: %+v %v", st, err)
	}
	if _, _, err := client(false).Task(testCtx(t), "deploybot-42-migrate"); err == nil {
		t.Fatal("the master answered a client without a certificate")
	}
}
