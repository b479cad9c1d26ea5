package vault

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"time"
)

// CertSource is what gives a client certificate: *Certs (Vault) or *DevCA.
type CertSource interface {
	GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error)
}

// HTTPClient is an HTTP client for a backend. It presents src's current
// certificate on every new connection (nil src: none), so a renewed
// certificate is used without a restart. roots, when not nil, is asked on
// every handshake which CAs to trust for the server — so a PKI's issuing CA
// learnt after the client was made is trusted too; nil means the system's
// roots.
func HTTPClient(src CertSource, roots func() *x509.CertPool, timeout time.Duration) *http.Client {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if src != nil {
		cfg.GetClientCertificate = src.GetClientCertificate
	}
	if roots != nil {
		// The standard verification, with roots read at handshake time
		// (the pattern crypto/tls documents for VerifyConnection).
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("vault: server sent no certificate")
			}
			opts := x509.VerifyOptions{
				DNSName:       cs.ServerName,
				Roots:         roots(),
				Intermediates: x509.NewCertPool(),
			}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	return &http.Client{Transport: tr, Timeout: timeout}
}
