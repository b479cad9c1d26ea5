package vault

import (
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// FuzzParseIssued feeds PKI issue responses with any certificate, key and
// chain text. Parsing never panics, and what it accepts is a usable key
// pair whose leaf and expiry agree.
func FuzzParseIssued(f *testing.F) {
	ca, err := NewDevCA("fuzz", time.Hour, nil)
	if err != nil {
		f.Fatal(err)
	}
	good := issuedSecret(f, ca, time.Hour).Data
	f.Add(good["certificate"].(string), good["private_key"].(string), good["issuing_ca"].(string), good["issuing_ca"].(string))
	f.Add(good["certificate"].(string), good["private_key"].(string), "", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
	f.Add("x", "y", "", "")
	f.Fuzz(func(t *testing.T, cert, key, issuing, chain string) {
		s := &api.Secret{Data: map[string]any{"certificate": cert, "private_key": key, "issuing_ca": issuing, "ca_chain": []any{chain, 7}}}
		h, _, err := parseIssued(s, time.Now())
		if err != nil {
			return
		}
		if h.cert.Leaf == nil || len(h.cert.Certificate) == 0 || h.cert.PrivateKey == nil {
			t.Fatalf("accepted a response without a usable key pair: %+v", h.cert)
		}
		if !h.notAfter.Equal(h.cert.Leaf.NotAfter) {
			t.Fatalf("expiry %v, the leaf says %v", h.notAfter, h.cert.Leaf.NotAfter)
		}
	})
}
