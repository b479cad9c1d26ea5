package vault

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"sync"
	"time"
)

// DevCA is an in-process certificate authority with the same methods as
// Certs, for `deploybot shell` and for tests that do not need Vault. Its
// keys live in memory and die with the process. It is not for production,
// and says so when it starts.
type DevCA struct {
	ca   *x509.Certificate
	key  *ecdsa.PrivateKey
	ttl  time.Duration
	name string

	mu     sync.Mutex
	client *tls.Certificate
	serial int64
}

// NewDevCA makes a CA whose client certificates are named cn and last ttl
// (default 1h), and logs loudly that it is in use.
func NewDevCA(cn string, ttl time.Duration, log *slog.Logger) (*DevCA, error) {
	if ttl <= 0 {
		ttl = time.Hour
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("vault: dev ca key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "deploybot development CA (not for production)"},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("vault: dev ca: %w", err)
	}
	ca, _ := x509.ParseCertificate(der)
	if log != nil {
		log.Warn("DEVELOPMENT CA IN USE: client certificates are made in memory by this process, not by Vault; not for production")
	}
	return &DevCA{ca: ca, key: key, ttl: ttl, name: cn, serial: 1}, nil
}

// Issue makes a certificate for cn signed by the CA: a client certificate,
// or a server one valid for hosts (names or IP addresses).
func (d *DevCA) Issue(cn string, ttl time.Duration, hosts ...string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	d.mu.Lock()
	d.serial++
	serial := d.serial
	d.mu.Unlock()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(ttl),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if len(hosts) > 0 {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		for _, h := range hosts {
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, d.ca, &key.PublicKey, d.key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// GetClientCertificate returns the CA's client certificate, making a new
// one when two thirds of the current one's life have passed.
func (d *DevCA) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	d.mu.Lock()
	c := d.client
	d.mu.Unlock()
	if c != nil && time.Until(c.Leaf.NotAfter) > d.ttl/3 {
		return c, nil
	}
	fresh, err := d.Issue(d.name, d.ttl)
	if err != nil {
		return nil, fmt.Errorf("vault: dev ca: %w", err)
	}
	d.mu.Lock()
	d.client = &fresh
	d.mu.Unlock()
	return &fresh, nil
}

// Ready is always nil: the development CA cannot fail.
func (d *DevCA) Ready() error { return nil }

// Roots returns base (nil: an empty pool) with the CA added.
func (d *DevCA) Roots(base *x509.CertPool) *x509.CertPool {
	pool := x509.NewCertPool()
	if base != nil {
		pool = base.Clone()
	}
	pool.AddCert(d.ca)
	return pool
}

// CertPEM is the CA's certificate in PEM, for a peer that must trust it.
func (d *DevCA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d.ca.Raw})
}

// ServerTLS is a TLS config for a server on hosts that requires client
// certificates from this CA: what a backend double behind mTLS uses.
func (d *DevCA) ServerTLS(hosts ...string) (*tls.Config, error) {
	if len(hosts) == 0 {
		return nil, errors.New("vault: dev ca: a server certificate needs a host")
	}
	cert, err := d.Issue(hosts[0], 24*time.Hour, hosts...)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    d.Roots(nil),
		MinVersion:   tls.VersionTLS12,
	}, nil
}
