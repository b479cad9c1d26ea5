package vault

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
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
// every connection which CAs to trust for the server, so a PKI's issuing CA
// learnt after the client was made is trusted too; nil means the system's
// roots. The server is verified by crypto/tls as usual, host name or IP
// address included.
func HTTPClient(src CertSource, roots func() *x509.CertPool, timeout time.Duration) *http.Client {
	base := &tls.Config{MinVersion: tls.VersionTLS12}
	if src != nil {
		base.GetClientCertificate = src.GetClientCertificate
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = base
	if roots != nil {
		dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
		tr.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			cfg := base.Clone()
			cfg.ServerName = host // an IP address is checked against the certificate's IP SANs
			cfg.RootCAs = roots()
			return (&tls.Dialer{NetDialer: dialer, Config: cfg}).DialContext(ctx, network, addr)
		}
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}
