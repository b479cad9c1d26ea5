package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seed-5eb4e92e/deploybot/backends/vault"
)

// writeKeyPair writes cert's certificate and key as PEM files in dir.
func writeKeyPair(t *testing.T, dir, name string, cert tls.Certificate) (certFile, keyFile string) {
	t.Helper()
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key})
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// hooksTLSFiles makes a CA, a server certificate for 127.0.0.1 and the
// files hooks.tls names.
func hooksTLSFiles(t *testing.T) (*vault.DevCA, hooksTLS) {
	t.Helper()
	ca, err := vault.NewDevCA("hooks-ca", time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	server, err := ca.Issue("deploybot", time.Hour, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := writeKeyPair(t, dir, "server", server)
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, ca.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return ca, hooksTLS{Listen: "127.0.0.1:0", CertFile: certFile, KeyFile: keyFile, ClientCAFile: caFile}
}

// TestEndToEndHooksOverMutualTLS: Gerrit's webhooks reach the mTLS
// listener with a client certificate instead of a secret, and the
// breakage notice follows; other certificates, no certificate, and the
// plain listener without the secret are refused.
func TestEndToEndHooksOverMutualTLS(t *testing.T) {
	t.Parallel()
	ca, files := hooksTLSFiles(t)
	e := startNoticeE2EWith(t, func(c *fileConfig) {
		c.Hooks = hooksConfig{JenkinsSecret: hookSecret, GerritClients: []string{"gerrit.example.com"}, TLS: files}
	})
	comment := recordedBody(t, "backends", "gerrit", "gerrittest", "testdata", "webhook-comment-added.json")
	post := func(cn, path string) (int, error) {
		cfg := &tls.Config{RootCAs: ca.Roots(nil)}
		if cn != "" {
			cert, err := ca.Issue(cn, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
		defer hc.CloseIdleConnections()
		resp, err := hc.Post(e.hooksURL+path, "application/json", bytes.NewReader(comment))
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := post("gerrit.example.com", "/hooks/gerrit"); err != nil || code != http.StatusAccepted {
		t.Fatalf("gerrit's certificate: %d %v", code, err)
	}
	waitFor(t, "the notice", func() bool { return len(e.slack.Messages(noticeChannel)) == 1 })
	for _, tc := range []struct {
		cn, path string
		want     int
	}{
		{"laptop", "/hooks/gerrit", http.StatusUnauthorized},
		{"gerrit.example.com", "/hooks/jenkins", http.StatusUnauthorized},
		{"gerrit.example.com", "/slack/commands", http.StatusNotFound},
	} {
		if code, err := post(tc.cn, tc.path); err != nil || code != tc.want {
			t.Errorf("%s on %s: %d %v, want %d", tc.cn, tc.path, code, err, tc.want)
		}
	}
	if _, err := post("", "/hooks/gerrit"); err == nil {
		t.Error("the mTLS listener took a connection without a client certificate")
	}
	if code := e.hook(t, "/hooks/gerrit", comment, nil); code != http.StatusUnauthorized {
		t.Errorf("plain listener without the secret: %d", code)
	}
}

// TestHooksCertificateIsReloaded: a renewed server certificate on disk is
// served without a restart; one that cannot be loaded keeps the old one.
func TestHooksCertificateIsReloaded(t *testing.T) {
	t.Parallel()
	ca, files := hooksTLSFiles(t)
	cfg, err := hooksTLSConfig(files, nil)
	if err != nil {
		t.Fatal(err)
	}
	serial := func() string {
		t.Helper()
		c, err := cfg.GetCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return leaf.SerialNumber.String()
	}
	first := serial()
	renewed, err := ca.Issue("deploybot", time.Hour, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	writeKeyPair(t, filepath.Dir(files.CertFile), "server", renewed)
	later := time.Now().Add(time.Minute) // a distinct mtime on coarse filesystems
	if err := os.Chtimes(files.CertFile, later, later); err != nil {
		t.Fatal(err)
	}
	second := serial()
	if second == first {
		t.Fatal("the renewed certificate was not loaded")
	}
	if err := os.WriteFile(files.CertFile, []byte("half-written"), 0o600); err != nil {
		t.Fatal(err)
	}
	later = later.Add(time.Minute)
	if err := os.Chtimes(files.CertFile, later, later); err != nil {
		t.Fatal(err)
	}
	if got := serial(); got != second {
		t.Fatalf("a broken renewal replaced the certificate: %s, want %s", got, second)
	}
}

func TestCheckConfigHooksTLS(t *testing.T) {
	t.Parallel()
	_, files := hooksTLSFiles(t)
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		hooks hooksConfig
		want  string // in a problem; "" for none
	}{
		{"complete", hooksConfig{GerritClients: []string{"gerrit.example.com"}, TLS: files}, ""},
		{"clients without listener", hooksConfig{GerritClients: []string{"gerrit"}}, "hooks.gerrit_clients: client certificates need the mTLS listener"},
		{"bad client name", hooksConfig{JenkinsClients: []string{"a b"}, TLS: files}, `hooks.jenkins_clients[0]: "a b" is not a certificate name`},
		{"no key", hooksConfig{GerritClients: []string{"g"}, TLS: hooksTLS{Listen: ":8443", CertFile: files.CertFile, ClientCAFile: files.ClientCAFile}}, "hooks.tls.key_file: required"},
		{"CA not PEM", hooksConfig{GerritClients: []string{"g"}, TLS: hooksTLS{Listen: ":8443", CertFile: files.CertFile, KeyFile: files.KeyFile, ClientCAFile: notPEM}}, "holds no PEM certificate"},
		{"key does not match", hooksConfig{GerritClients: []string{"g"}, TLS: hooksTLS{Listen: ":8443", CertFile: files.CertFile, KeyFile: files.ClientCAFile, ClientCAFile: files.ClientCAFile}}, "hooks.tls:"},
		{"bad address", hooksConfig{GerritClients: []string{"g"}, TLS: hooksTLS{Listen: "8443", CertFile: files.CertFile, KeyFile: files.KeyFile, ClientCAFile: files.ClientCAFile}}, "not host:port"},
	}
	for _, tc := range tests {
		l := &loaded{name: "t", fromEnv: map[string]string{}, cfg: fileConfig{Hooks: tc.hooks}}
		l.checkHooks()
		var got []string
		for _, p := range l.problems {
			got = append(got, p.path+": "+p.msg)
		}
		joined := strings.Join(got, "\n")
		switch {
		case tc.want == "" && len(got) > 0:
			t.Errorf("%s: unexpected problems:\n%s", tc.name, joined)
		case tc.want != "" && !strings.Contains(joined, tc.want):
			t.Errorf("%s: problems\n%s\nwant one containing %q", tc.name, joined, tc.want)
		}
	}
	// A file that exists only where deploybot runs is a warning, not an error.
	l := &loaded{name: "t", fromEnv: map[string]string{}, cfg: fileConfig{Hooks: hooksConfig{GerritClients: []string{"g"},
		TLS: hooksTLS{Listen: ":8443", CertFile: "/nonexistent/c", KeyFile: "/nonexistent/k", ClientCAFile: "/nonexistent/ca"}}}}
	l.checkHooks()
	if len(l.problems) != 0 || len(l.warnings) == 0 {
		t.Fatalf("problems %v warnings %v; want only a warning", l.problems, l.warnings)
	}
	var pathErr *os.PathError
	if _, err := hooksTLSConfig(l.cfg.Hooks.TLS, nil); !errors.As(err, &pathErr) {
		t.Fatalf("missing files: %v", err)
	}
}
