package vaultit

import (
	"crypto/x509"
	"net/http"
	"testing"
	"time"

	"github.com/seed-5eb4e92e/deploybot/backends/vault"
)

// BenchmarkWarmCertificateCall: with a certificate held, a backend call —
// a new TLS connection every time, so the certificate is presented every
// time — costs no Vault round trip. It fails if Vault saw any request
// during the loop, and reports the count per call.
func BenchmarkWarmCertificateCall(b *testing.B) {
	v := startVault(b, "1h", "4h")
	c := v.certs(b, time.Hour, nil)
	srv := newSerialServer(b, v)
	hc := vault.HTTPClient(c, func() *x509.CertPool { return c.Roots(nil) }, 5*time.Second)
	hc.Transport.(*http.Transport).DisableKeepAlives = true
	before := v.requests.Load()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := hc.Get(srv.URL)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
	}
	b.StopTimer()
	n := v.requests.Load() - before
	b.ReportMetric(float64(n)/float64(b.N), "vault-requests/op")
	if n != 0 {
		b.Fatalf("%d Vault requests during %d warm calls", n, b.N)
	}
}
