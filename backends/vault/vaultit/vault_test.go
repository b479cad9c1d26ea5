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

	// A root CA, and an intermediate that issues: the layout Vault's PKI
	// guide recommends, so the chain handling is exercised.
	must(t, root.Sys().Mount("pki", &api.MountInput{Type: "pki", Config: api.MountConfigInput{MaxLeaseTTL: "87600h"}}))
	write(t, root, "pki/root/generate/internal", map[string]any{"common_name": "deploybot test root", "ttl": "87600h"})
	must(t, root.Sys().Mount("pki_int", &api.MountInput{Type: "pki", Config: api.MountConfigInput{MaxLeaseTTL: "43800h"}}))
	csr := write(t, root, "pki_int/intermediate/generate/internal", map[string]any{"common_name": "deploybot test intermediate"})
	signed := write(t, root, "pki/root/sign-intermediate", map[string]any{"csr": csr.Data["csr"], "format": "pem_bundle", "ttl": "43800h"})
	write(t, root, "pki_int/intermediate/set-signed", map[string]any{"certificate": signed.Data["certificate"]})
	write(t, root, "pki_int/roles/worker", map[string]any{
		"allowed_domains": "workers.deploybot.test", "allow_subdomains": true,
		"client_flag": true, "server_flag": false, "max_ttl": "2h",
	})
	write(t, root, "pki_int/roles/backend", map[string]any{
		"allowed_domains": "deploybot.test", "allow_subdomains": true, "allow_ip_sans": true,
		"server_flag": true, "client_flag": false, "max_ttl": "24h",
	})
	must(t, root.Sys().EnableAuthWithOptions("approle", &api.EnableAuthOptions{Type: "approle"}))
	// The worker's policy can do one thing: issue certificates under its role.
	must(t, root.Sys().PutPolicy("deploybot-worker", `path "pki_int/issue/worker" { capabilities = ["update"] }`))
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
	return v.start(t, v.newCerts(t, ttl, nil), onRenew)
}

// certsWith is certs with the metrics going to m.
func (v *testVault) certsWith(t testing.TB, ttl time.Duration, m *vault.Metrics) *vault.Certs {
	t.Helper()
	return v.start(t, v.newCerts(t, ttl, m), nil)
}

func (v *testVault) newCerts(t testing.TB, ttl time.Duration, m *vault.Metrics) *vault.Certs {
	t.Helper()
	secretFile := t.TempDir() + "/secret-id"
	must(t, os.WriteFile(secretFile, []byte(v.secretID(t)+"\n"), 0o600))
	c, err := vault.New(vault.Config{
		Address: v.addr, RoleID: v.roleID, SecretIDFile: secretFile,
		PKIMount: "pki_int", PKIRole: "worker", CommonName: "{host}.workers.deploybot.test", TTL: ttl,
	}, v.client(), nil, m)
	must(t, err)
	return c
}

func (v *testVault) start(t testing.TB, c *vault.Certs, onRenew func(*x509.Certificate)) *vault.Certs {
	t.Helper()
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
	s := write(t, v.root, "pki_int/issue/backend", map[string]any{"common_name": "jenkins.deploybot.test", "ip_sans": "127.0.0.1", "ttl": "1h"})
	chain := s.Data["certificate"].(string) + "\n" + s.Data["issuing_ca"].(string)
	cert, err := tls.X509KeyPair([]byte(chain), []byte(s.Data["private_key"].(string)))
	must(t, err)
	// Client certificates chain to the intermediate, which the worker sends
	// along; the server trusts the root.
	rootCA, err := v.root.Logical().Read("pki/cert/ca")
	must(t, err)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(rootCA.Data["certificate"].(string)))
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
