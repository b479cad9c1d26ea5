package vault

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/vault/api"
)

// parseIssued reads a PKI issue response: the certificate, its key, the
// issuing CA and chain.
func parseIssued(secret *api.Secret, issuedAt time.Time) (*held, []*x509.Certificate, error) {
	if secret == nil || secret.Data == nil {
		return nil, nil, errors.New("vault: issue: empty response")
	}
	certPEM, _ := secret.Data["certificate"].(string)
	keyPEM, _ := secret.Data["private_key"].(string)
	issuing, _ := secret.Data["issuing_ca"].(string)
	if certPEM == "" || keyPEM == "" {
		return nil, nil, errors.New("vault: issue: response has no certificate or key")
	}
	chainPEM := []string{issuing}
	if list, ok := secret.Data["ca_chain"].([]any); ok {
		for _, v := range list {
			if s, ok := v.(string); ok {
				chainPEM = append(chainPEM, s)
			}
		}
	}
	var cas []*x509.Certificate
	seen := map[string]bool{}
	for _, p := range chainPEM {
		for _, ca := range parsePEMCerts(p) {
			if !seen[string(ca.Raw)] {
				seen[string(ca.Raw)] = true
				cas = append(cas, ca)
			}
		}
	}
	// Present the leaf with any intermediates, not self-signed roots.
	full := certPEM
	for _, ca := range cas {
		if ca.CheckSignatureFrom(ca) != nil {
			full += "\n" + string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}))
		}
	}
	cert, err := tls.X509KeyPair([]byte(full), []byte(keyPEM))
	if err != nil {
		return nil, nil, fmt.Errorf("vault: issue: key pair: %w", err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, nil, fmt.Errorf("vault: issue: certificate: %w", err)
	}
	cert.Leaf = leaf
	serial, _ := secret.Data["serial_number"].(string)
	return &held{cert: cert, issuedAt: issuedAt, notAfter: leaf.NotAfter, serial: serial}, cas, nil
}

func parsePEMCerts(s string) []*x509.Certificate {
	var out []*x509.Certificate
	rest := []byte(s)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return out
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if c, err := x509.ParseCertificate(b.Bytes); err == nil {
			out = append(out, c)
		}
	}
}
