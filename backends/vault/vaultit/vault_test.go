// Package vaultit tests backends/vault against a real Vault server, run in
// process from Vault's own test harness: AppRole login, certificates from
// the PKI engine, mTLS to a backend double, renewal, token re-login, and
// Vault going away. It is a separate module so that the main module, and a
// plain `go test ./...`, never build Vault.
package vaultit

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/builtin/credential/approle"
	"github.com/hashicorp/vault/builtin/logical/pki"
	vaulthttp "github.com/hashicorp/vault/http"
	"github.com/hashicorp/vault/sdk/logical"
	hvault "github.com/hashicorp/vault/vault"

	"github.com/seed-5eb4e92e/deploybot/backends/vault"
)

// testVault is a running Vault with the PKI engine and AppRole set up as
// deploybot's docs describe.
type testVault struct {
	cluster *hvault.TestCluster
	root    *api.Client
	addr    string
	caPool  *x509.CertPool // the cluster's own TLS CA, for talking to Vault
	roleID  string
	stop    func()
	// requests counts every request deploybot's clients make to Vault.
	requests atomic.Int64
}

func startVault(t testing.TB, tokenTTL, tokenMaxTTL string) *testVault {
	t.Helper()
	cluster := hvault.NewTestCluster(harnessT{t}, &hvault.CoreConfig{
		LogicalBackends:    map[string]logical.Factory{"pki": pki.Factory},
		CredentialBackends: map[string]logical.Factory{"approle": approle.Factory},
	}, &hvault.TestClusterOptions{HandlerFunc: vaulthttp.Handler, NumCores: 1, Logger: hclog.NewNullLogger()})
	cluster.Start()
	var once sync.Once
	stop := func() { once.Do(cluster.Cleanup) }
	t.Cleanup(stop)
	root := cluster.Cores[0].Client
	v := &testVault{cluster: cluster, root: root, addr: root.Address(), caPool: x509.NewCertPool(), stop: stop}
	v.caPool.AppendCertsFromPEM(cluster.CACertPEM)

	must(t, root.Sys().Mount("pki", &api.MountInput{Type: "pki", Config: api.MountConfigInput{MaxLeaseTTL: "87600h"}}))
	write(t, root, "pki/root/generate/internal", map[string]any{"common_name": "deploybot test root", "ttl": "87600h"})
	write(t, root, "pki/roles/worker", map[string]any{
		"allow_any_name": true, "client_flag": true, "server_flag": false, "max_ttl": "2h", "key_type": "ec", "key_bits": 256,
	})
	write(t, root, "pki/roles/backend", map[string]any{
		"allow_any_name": true, "allow_ip_sans": true, "server_flag": true, "client_flag": false, "max_ttl": "24h", "key_type": "ec", "key_bits": 256,
	})
	must(t, root.Sys().EnableAuthWithOptions("approle", &api.EnableAuthOptions{Type: "approle"}))
	// The worker's policy can do one thing: issue certificates under its role.
	must(t, root.Sys().PutPolicy("deploybot-worker", `path "pki/issue/worker" { capabilities = ["update"] }`))
	write(t, root, "auth/approle/role/deploybot", map[string]any{
		"token_policies": "deploybot-worker", "token_ttl": tokenTTL, "token_max_ttl": tokenMaxTTL,
	})
	s, err := root.Logical().Read("auth/approle/role/deploybot/role-id")
	must(t, err)
	v.roleID = s.Data["role_id"].(string)
	return v
}

func (v *testVault) secretID(t testing.TB) string {
	t.Helper()
	s := write(t, v.root, "auth/approle/role/deploybot/secret-id", nil)
	return s.Data["secret_id"].(string)
}

// client is how deploybot talks to this Vault: trusting its CA, counting
// requests.
func (v *testVault) client() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: v.caPool}
	return &http.Client{Transport: countingTransport{next: tr, n: &v.requests}, Timeout: 5 * time.Second}
}

type countingTransport struct {
	next http.RoundTripper
	n    *atomic.Int64
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

// certs starts deploybot's certificate keeper with AppRole credentials.
func (v *testVault) certs(t testing.TB, ttl time.Duration, onRenew func(*x509.Certificate)) *vault.Certs {
	t.Helper()
	secretFile := t.TempDir() + "/secret-id"
	must(t, os.WriteFile(secretFile, []byte(v.secretID(t)+"\n"), 0o600))
	c, err := vault.New(vault.Config{
		Address: v.addr, RoleID: v.roleID, SecretIDFile: secretFile,
		PKIRole: "worker", CommonName: "{host}.workers.deploybot.test", TTL: ttl,
	}, v.client(), nil, nil)
	must(t, err)
	c.OnRenew = onRenew
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	must(t, c.Start(ctx))
	t.Cleanup(c.Stop)
	return c
}

// backendTLS is a backend's server side: a server certificate for
// 127.0.0.1 from the same PKI, and client certificates required and
// verified against the PKI's CA.
func (v *testVault) backendTLS(t testing.TB, record func(*x509.Certificate)) *tls.Config {
	t.Helper()
	s := write(t, v.root, "pki/issue/backend", map[string]any{"common_name": "jenkins.test", "ip_sans": "127.0.0.1", "ttl": "1h"})
	cert, err := tls.X509KeyPair([]byte(s.Data["certificate"].(string)), []byte(s.Data["private_key"].(string)))
	must(t, err)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(s.Data["issuing_ca"].(string)))
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	if record != nil {
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			record(cs.PeerCertificates[0])
			return nil
		}
	}
	return cfg
}

// harnessT lets a benchmark start the cluster too: Vault's harness wants a
// Parallel method, which *testing.B lacks.
type harnessT struct{ testing.TB }

func (harnessT) Parallel() {}

func write(t testing.TB, c *api.Client, path string, data map[string]any) *api.Secret {
	t.Helper()
	s, err := c.Logical().Write(path, data)
	if err != nil {
		t.Fatalf("vault write %s: %v", path, err)
	}
	return s
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
