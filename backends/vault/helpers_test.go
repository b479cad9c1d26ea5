package vault

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
)

func marshalECKey(cert tls.Certificate) ([]byte, error) {
	k, ok := cert.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("not an EC key")
	}
	return x509.MarshalECPrivateKey(k)
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
