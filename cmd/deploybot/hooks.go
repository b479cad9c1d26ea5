package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/seed-5eb4e92e/deploybot/bot"
)

// hookAuth is what bot.Config.Hooks needs: each hook's secret, read from
// its file if need be, and the clients allowed on the mTLS listener.
func hookAuth(c hooksConfig) (map[string]bot.HookAuth, error) {
	out := map[string]bot.HookAuth{}
	for _, h := range []struct {
		name, value, file string
		clients           []string
	}{
		{"jenkins", c.JenkinsSecret, c.JenkinsSecretFile, c.JenkinsClients},
		{"gerrit", c.GerritSecret, c.GerritSecretFile, c.GerritClients},
	} {
		s, err := secret(h.value, h.file)
		if err != nil {
			return nil, fmt.Errorf("%s hook secret: %w", h.name, err)
		}
		out[h.name] = bot.HookAuth{Secret: s, Clients: h.clients}
	}
	return out, nil
}

func (l *loaded) hookEnabled(name string) bool {
	h := l.cfg.Hooks
	if name == "jenkins" {
		return h.JenkinsSecret != "" || h.JenkinsSecretFile != "" || len(h.JenkinsClients) > 0
	}
	return h.GerritSecret != "" || h.GerritSecretFile != "" || len(h.GerritClients) > 0
}

func (l *loaded) checkHooks() {
	h := l.cfg.Hooks
	for _, hk := range []struct {
		name, value, file, env string
		clients                []string
	}{
		{"jenkins", h.JenkinsSecret, h.JenkinsSecretFile, "DEPLOYBOT_JENKINS_HOOK_SECRET", h.JenkinsClients},
		{"gerrit", h.GerritSecret, h.GerritSecretFile, "DEPLOYBOT_GERRIT_HOOK_SECRET", h.GerritClients},
	} {
		v, err := secret(hk.value, hk.file)
		switch {
		case err != nil:
			l.secretFileWarning("hooks."+hk.name+"_secret_file", err)
		case v != "" && len(v) < 16:
			l.bad("hooks."+hk.name+"_secret", hk.env, "too short to be a secret (16 characters at least)")
		case hk.value != "" && !l.envSet(hk.env):
			l.warn("hooks."+hk.name+"_secret", "a secret in the config file; prefer %s or %s_secret_file", hk.env, hk.name)
		}
		for i, c := range hk.clients {
			if c == "" || strings.ContainsAny(c, " \t,") {
				l.bad(fmt.Sprintf("hooks.%s_clients[%d]", hk.name, i), "", "%q is not a certificate name", c)
			}
		}
		if len(hk.clients) > 0 && h.TLS.Listen == "" {
			l.bad("hooks."+hk.name+"_clients", "", "client certificates need the mTLS listener: set hooks.tls.listen")
		}
	}
	l.checkHooksTLS()
}

func (l *loaded) checkHooksTLS() {
	t := l.cfg.Hooks.TLS
	if t.Listen == "" {
		return
	}
	if _, _, err := net.SplitHostPort(t.Listen); err != nil {
		l.bad("hooks.tls.listen", "", "%q is not host:port", t.Listen)
	} else if t.Listen == l.cfg.listenAddr() {
		l.bad("hooks.tls.listen", "", "%q is already the plain listener's address", t.Listen)
	}
	for key, v := range map[string]string{"cert_file": t.CertFile, "key_file": t.KeyFile, "client_ca_file": t.ClientCAFile} {
		if v == "" {
			l.bad("hooks.tls."+key, "", "required for the mTLS listener")
		}
	}
	if len(l.cfg.Hooks.JenkinsClients)+len(l.cfg.Hooks.GerritClients) == 0 {
		l.warn("hooks.tls", "no hook accepts client certificates: set hooks.jenkins_clients or hooks.gerrit_clients")
	}
	if t.CertFile == "" || t.KeyFile == "" || t.ClientCAFile == "" {
		return
	}
	if _, err := hooksTLSConfig(t, nil); err != nil {
		var unreadable *os.PathError
		if errors.As(err, &unreadable) {
			l.secretFileWarning("hooks.tls", err)
			return
		}
		l.bad("hooks.tls", "", "%v", err)
	}
}

// hooksTLSConfig is the mTLS listener's TLS: a client certificate signed
// by the client CA is required, and the server certificate is read again
// when its file changes, so a renewed certificate needs no restart.
func hooksTLSConfig(t hooksTLS, log *slog.Logger) (*tls.Config, error) {
	raw, err := os.ReadFile(t.ClientCAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(raw) {
		return nil, fmt.Errorf("%s holds no PEM certificate", t.ClientCAFile)
	}
	kp := &keyPair{certFile: t.CertFile, keyFile: t.KeyFile, log: log}
	if _, err := kp.get(nil); err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		ClientAuth:     tls.RequireAndVerifyClientCert,
		ClientCAs:      pool,
		GetCertificate: kp.get,
	}, nil
}

// keyPair is a certificate and key on disk, loaded again when the
// certificate file's modification time changes. A renewal that cannot be
// read keeps the last good pair.
type keyPair struct {
	certFile, keyFile string
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	modTime time.Time
	failed  time.Time // modTime of the last file that failed to load
}

func (k *keyPair) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	st, err := os.Stat(k.certFile)
	if err == nil && k.cert != nil && st.ModTime().Equal(k.modTime) {
		return k.cert, nil
	}
	if err == nil {
		var c tls.Certificate
		if c, err = tls.LoadX509KeyPair(k.certFile, k.keyFile); err == nil {
			k.cert, k.modTime = &c, st.ModTime()
			return k.cert, nil
		}
	}
	if k.cert == nil {
		return nil, err
	}
	if st != nil && !st.ModTime().Equal(k.failed) && k.log != nil {
		k.failed = st.ModTime()
		k.log.Warn("cannot load the renewed hooks certificate; keeping the previous one", "cert_file", k.certFile, "err", err)
	}
	return k.cert, nil
}
