package vaultit

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/seed-5eb4e92e/deploybot/authz"
	"github.com/seed-5eb4e92e/deploybot/backends/jenkins"
	"github.com/seed-5eb4e92e/deploybot/backends/jenkins/jenkinstest"
	"github.com/seed-5eb4e92e/deploybot/backends/vault"
	"github.com/seed-5eb4e92e/deploybot/bot"
	"github.com/seed-5eb4e92e/deploybot/commands"
	"github.com/seed-5eb4e92e/deploybot/deploy"
	"github.com/seed-5eb4e92e/deploybot/worker"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
	"github.com/seed-5eb4e92e/deploybot/worker/queue/queuetest"
)

func TestAppRoleLoginAndIssue(t *testing.T) {
	v := startVault(t, "1h", "4h")
	c := v.certs(t, 30*time.Minute, nil)
	if err := c.Ready(); err != nil {
		t.Fatalf("Ready after Start = %v", err)
	}
	cert, err := c.GetClientCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	leaf := cert.Leaf
	if !strings.HasSuffix(leaf.Subject.CommonName, ".workers.deploybot.test") || strings.Contains(leaf.Subject.CommonName, "{host}") {
		t.Fatalf("common name %q", leaf.Subject.CommonName)
	}
	var clientAuth bool
	for _, u := range leaf.ExtKeyUsage {
		clientAuth = clientAuth || u == x509.ExtKeyUsageClientAuth
	}
	if !clientAuth {
		t.Fatal("the certificate cannot be used for client authentication")
	}
	if life := time.Until(leaf.NotAfter); life > 31*time.Minute || life < 29*time.Minute {
		t.Fatalf("certificate lives %v, want the 30m asked for", life)
	}
	if len(cert.Certificate) != 2 {
		t.Fatalf("presented %d certificates; want the leaf and the intermediate", len(cert.Certificate))
	}
	inter, _ := x509.ParseCertificate(cert.Certificate[1])
	pool := x509.NewCertPool()
	pool.AddCert(inter)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: c.Roots(nil), Intermediates: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("the certificate does not chain to the PKI's CA: %v", err)
	}
}

func TestWrongCredentialsAreReported(t *testing.T) {
	v := startVault(t, "1h", "4h")
	c, err := vault.New(vault.Config{Address: v.addr, RoleID: v.roleID, SecretID: "not-the-secret", PKIMount: "pki_int", PKIRole: "worker"}, v.client(), nil, nil)
	must(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Start(ctx); err == nil || !strings.Contains(err.Error(), "approle login") {
		t.Fatalf("Start with a wrong secret id = %v", err)
	}
	defer c.Stop()
	if err := c.Ready(); !errors.Is(err, vault.ErrNoCertificate) {
		t.Fatalf("Ready = %v, want ErrNoCertificate", err)
	}
	if _, err := c.GetClientCertificate(nil); !errors.Is(err, vault.ErrNoCertificate) {
		t.Fatalf("GetClientCertificate = %v", err)
	}
}

// TestJobOverMutualTLS runs a real build job through the worker: the
// simulated Jenkins requires client certificates from the Vault PKI, and
// refuses anything else.
func TestJobOverMutualTLS(t *testing.T) {
	v := startVault(t, "1h", "4h")
	c := v.certs(t, 30*time.Minute, nil)
	sim := jenkinstest.Start(jenkinstest.Options{TLS: v.backendTLS(t, nil)})
	t.Cleanup(sim.Close)
	sim.AddJob("api-build", "BRANCH")

	hc := vault.HTTPClient(c, func() *x509.CertPool { return c.Roots(nil) }, 10*time.Second)
	rec := runBuildJob(t, sim, hc)
	if rec.State != queue.StateSucceeded {
		t.Fatalf("job over mTLS = %+v", rec)
	}

	refused := func(hc *http.Client) bool {
		_, err := hc.Get(sim.URL + "api/json")
		return err != nil
	}
	if !refused(vault.HTTPClient(nil, func() *x509.CertPool { return c.Roots(nil) }, 5*time.Second)) {
		t.Fatal("a call without a client certificate was accepted")
	}
	other, err := vault.NewDevCA("intruder", time.Hour, nil)
	must(t, err)
	if !refused(vault.HTTPClient(other, func() *x509.CertPool { return c.Roots(nil) }, 5*time.Second)) {
		t.Fatal("a call with a certificate from another CA was accepted")
	}
}

// runBuildJob queues a build and runs it with a worker pool whose Jenkins
// client is hc, and returns the job's final record.
func runBuildJob(t *testing.T, sim *jenkinstest.Server, hc *http.Client) queue.Record {
	t.Helper()
	q, _, _ := queuetest.New(t, queue.Config{})
	jc, err := jenkins.New(jenkins.Config{URL: sim.URL}, hc, nil)
	must(t, err)
	builds := &deploy.Builds{Builder: jc, Jobs: map[string]deploy.BuildJob{"api": {Job: "api-build"}}, Poll: time.Millisecond}
	pool := worker.New(worker.Config{Concurrency: 1, Block: 20 * time.Millisecond, MaxAttempts: 1},
		q, map[string]worker.Runner{"build": worker.BuildRunner{Builds: builds}}, authz.AllowAll{}, nopReporter{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = pool.Run(ctx) }()
	defer func() { cancel(); <-done }()
	res, err := q.Enqueue(context.Background(), queue.Job{
		Request: commands.Request{Kind: "build", Action: "build", Service: "api", Ref: "main"}, User: "U1", Channel: "C1",
	}, queue.Dedupe{})
	must(t, err)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		rec, err := q.Record(context.Background(), res.ID)
		if err == nil && rec.State.Final() {
			return rec
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("the job never finished")
	return queue.Record{}
}

type nopReporter struct{}

func (nopReporter) Report(context.Context, queue.Record) (string, error) { return "", nil }
func (nopReporter) Note(context.Context, queue.Record, string) error     { return nil }

// serialServer is a backend that records the client certificate of each
// new connection.
type serialServer struct {
	*httptest.Server
	mu      sync.Mutex
	serials []*big.Int
}

func newSerialServer(t testing.TB, v *testVault) *serialServer {
	s := &serialServer{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	s.TLS = v.backendTLS(t, func(c *x509.Certificate) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.serials = append(s.serials, c.SerialNumber)
	})
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func (s *serialServer) last() *big.Int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.serials[len(s.serials)-1]
}

func call(t *testing.T, hc *http.Client, url string) error {
	t.Helper()
	resp, err := hc.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("backend answered %d", resp.StatusCode)
	}
	return nil
}

// TestRenewalBeforeExpiry: a 9 s certificate is renewed at about two thirds
// of its life, and the next connection presents the new one — no restart.
func TestRenewalBeforeExpiry(t *testing.T) {
	v := startVault(t, "1h", "4h")
	renewed := make(chan *big.Int, 4)
	issued := time.Now()
	c := v.certs(t, 9*time.Second, func(leaf *x509.Certificate) { renewed <- leaf.SerialNumber })
	first, _ := c.GetClientCertificate(nil)
	select {
	case got := <-renewed:
		if got.Cmp(first.Leaf.SerialNumber) != 0 {
			t.Fatal("the first certificate announced is not the one held")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the first certificate was not announced")
	}
	srv := newSerialServer(t, v)
	hc := vault.HTTPClient(c, func() *x509.CertPool { return c.Roots(nil) }, 5*time.Second)
	must(t, call(t, hc, srv.URL))
	if srv.last().Cmp(first.Leaf.SerialNumber) != 0 {
		t.Fatal("the backend saw another certificate than the one held")
	}
	var next *big.Int
	select {
	case next = <-renewed:
	case <-time.After(30 * time.Second):
		t.Fatal("the certificate was not renewed")
	}
	if next.Cmp(first.Leaf.SerialNumber) == 0 {
		t.Fatal("renewal returned the same certificate")
	}
	if time.Now().After(first.Leaf.NotAfter) {
		t.Fatal("renewed only after the old certificate expired")
	}
	// Two thirds into its life, not early: the renewal happened no sooner
	// than half of the 9 s after the first certificate was issued.
	if time.Since(issued) < 4500*time.Millisecond {
		t.Fatalf("renewed %v after issue; too early for a 9 s certificate", time.Since(issued))
	}
	hc.CloseIdleConnections() // the next call opens a new connection
	must(t, call(t, hc, srv.URL))
	if srv.last().Cmp(next) != 0 {
		t.Fatalf("the next connection presented serial %v, want the renewed %v", srv.last(), next)
	}
}

// TestTokenRenewalEndsAndLogsInAgain: the AppRole token may be renewed only
// up to its max TTL (4 s here); then deploybot logs in again. The
// certificate lasts an hour, so no certificate request can be what set off
// the new logins: the token's own lifecycle did, with no failure on the way.
func TestTokenRenewalEndsAndLogsInAgain(t *testing.T) {
	v := startVault(t, "2s", "4s")
	reg := prometheus.NewRegistry()
	c := v.certsWith(t, time.Hour, vault.NewMetrics(reg))
	logins := func() float64 { return counter(t, reg, "deploybot_vault_logins_total", "ok") }
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && logins() < 3 {
		time.Sleep(50 * time.Millisecond)
	}
	if logins() < 3 {
		t.Fatalf("%v logins; want new ones as each token reaches its max TTL", logins())
	}
	for _, m := range []string{"deploybot_vault_logins_total", "deploybot_cert_renewals_total"} {
		if got := counter(t, reg, m, "error"); got != 0 {
			t.Fatalf("%s{outcome=error} = %v; the token's lifecycle is not a failure", m, got)
		}
	}
	if err := c.Ready(); err != nil {
		t.Fatalf("Ready = %v", err)
	}
	if n, err := testutil.GatherAndCount(reg, "deploybot_cert_expiry_seconds"); err != nil || n != 1 {
		t.Fatalf("cert_expiry_seconds: %d series, %v", n, err)
	}
}

// TestRevokedTokenIsReplaced: an operator revokes the worker's tokens. At
// the next renewal Vault refuses the old token; deploybot logs in again and
// gets its certificate, without reporting a failure.
func TestRevokedTokenIsReplaced(t *testing.T) {
	v := startVault(t, "1h", "4h")
	reg := prometheus.NewRegistry()
	renewed := make(chan struct{}, 4)
	v.start(t, v.newCerts(t, 6*time.Second, vault.NewMetrics(reg)), func(*x509.Certificate) { renewed <- struct{}{} })
	<-renewed // the first certificate
	must(t, v.root.Sys().RevokePrefix("auth/approle/login"))
	select {
	case <-renewed:
	case <-time.After(30 * time.Second):
		t.Fatal("no certificate after the token was revoked")
	}
	if got := counter(t, reg, "deploybot_vault_logins_total", "ok"); got != 2 {
		t.Fatalf("%v logins; want exactly one more after the revocation", got)
	}
	if got := counter(t, reg, "deploybot_cert_renewals_total", "error"); got != 0 {
		t.Fatalf("%v renewal errors for a routine re-login", got)
	}
}

// TestPolicyDeniedIsReportedWithoutALoginStorm: a role whose policy does not
// allow issuing. deploybot says so, backs off, and does not log in again
// and again (each login would leave a token behind and use up a secret ID).
func TestPolicyDeniedIsReportedWithoutALoginStorm(t *testing.T) {
	v := startVault(t, "1h", "4h")
	must(t, v.root.Sys().PutPolicy("deploybot-worker", `path "pki_int/issue/other" { capabilities = ["update"] }`))
	reg := prometheus.NewRegistry()
	c, err := vault.New(vault.Config{Address: v.addr, RoleID: v.roleID, SecretID: v.secretID(t), PKIMount: "pki_int", PKIRole: "worker"},
		v.client(), nil, vault.NewMetrics(reg))
	must(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	err = c.Start(ctx)
	defer c.Stop()
	if err == nil || !strings.Contains(err.Error(), "policy must allow update on pki_int/issue/worker") {
		t.Fatalf("Start = %v, want the policy named", err)
	}
	if got := counter(t, reg, "deploybot_vault_logins_total", "ok"); got != 1 {
		t.Fatalf("%v logins in 8 s of refusals; want 1", got)
	}
}

// TestVaultGoesAway: Vault stops after the first certificate. Jobs go on
// with the held certificate, /readyz reports the failing renewal, and once
// the certificate expires readiness fails.
func TestVaultGoesAway(t *testing.T) {
	v := startVault(t, "1h", "4h")
	c := v.certs(t, 15*time.Second, nil)
	cert, _ := c.GetClientCertificate(nil)
	srv := newSerialServer(t, v)
	hc := vault.HTTPClient(c, func() *x509.CertPool { return c.Roots(nil) }, 5*time.Second)
	health := bot.NewHealth(bot.HealthInput{Checks: []bot.Check{{Name: "vault", Func: c.Ready}}})
	readyz := func() (int, string) {
		rec := httptest.NewRecorder()
		health.ServeReadyz(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code, rec.Body.String()
	}

	v.stop()
	var re *vault.RenewalError
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && !errors.As(c.Ready(), &re) {
		time.Sleep(50 * time.Millisecond)
	}
	if re == nil {
		t.Fatalf("no renewal failure reported; Ready = %v", c.Ready())
	}
	if code, body := readyz(); code != 200 || !strings.Contains(body, "degraded: vault: certificate renewal failing") {
		t.Fatalf("/readyz while Vault is down = %d %q; want 200 with the failure", code, body)
	}
	hc.CloseIdleConnections()
	must(t, call(t, hc, srv.URL))
	if srv.last().Cmp(cert.Leaf.SerialNumber) != 0 {
		t.Fatal("the call did not use the held certificate")
	}

	for time.Now().Before(cert.Leaf.NotAfter.Add(time.Second)) {
		time.Sleep(100 * time.Millisecond)
	}
	if code, body := readyz(); code != 503 || !strings.Contains(body, "no valid client certificate") {
		t.Fatalf("/readyz after expiry = %d %q; want 503", code, body)
	}
	hc.CloseIdleConnections()
	if err := call(t, hc, srv.URL); err == nil {
		t.Fatal("a call went out with an expired certificate")
	}
}

func counter(t *testing.T, reg *prometheus.Registry, name, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	must(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
