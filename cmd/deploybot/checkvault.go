package main

import (
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"github.com/seed-5eb4e92e/deploybot/backends/vault"
)

// vaultSettings turns the vault section into the package's Config. The auth
// setting picks the method; empty picks AppRole when a role ID is given.
func vaultSettings(v vaultConfig) vault.Config {
	cfg := vault.Config{
		Address: v.Address, CAFile: v.CAFile, RoleID: v.RoleID, SecretID: v.SecretID, SecretIDFile: v.SecretIDFile,
		AppRoleMount: v.AppRoleMount, PKIMount: v.PKIMount, PKIRole: v.PKIRole, CommonName: v.CommonName, TTL: v.TTL.D(),
	}
	if v.Auth == "token" || (v.Auth == "" && v.RoleID == "") {
		cfg.Token, cfg.RoleID, cfg.SecretID, cfg.SecretIDFile = v.Token, "", "", ""
	}
	return cfg
}

// checkTLS validates a backend's tls block.
func (l *loaded) checkTLS(path string, t backendTLS) {
	switch t.ClientCert {
	case "", "none", "vault":
	default:
		l.bad(path+".client_cert", "", "%q: want vault or none", t.ClientCert)
	}
	if t.CAFile != "" {
		if _, err := readPool(t.CAFile); err != nil {
			l.bad(path+".ca_file", "", "%v", err)
		}
	}
}

// checkTLSScheme refuses a client certificate for a backend reached over
// plain HTTP, where it would never be presented.
func (l *loaded) checkTLSScheme(path, url string, t backendTLS) {
	if t.ClientCert == "vault" && strings.HasPrefix(url, "http://") {
		l.bad(path+".client_cert", "", "vault certificates are only presented over https, and %s is http", strings.TrimSuffix(path, ".tls")+".url")
	}
}

// checkVault validates the vault section when a backend needs it. Missing
// credentials are warnings, like other secrets: they come from the
// environment at run time.
func (l *loaded) checkVault() {
	v := l.cfg.Vault
	if !needsVault(&l.cfg) {
		if v.Address != "" && !l.envSet("VAULT_ADDR") {
			l.warn("vault", "configured, but no backend has tls.client_cert: vault")
		}
		return
	}
	if v.Auth != "" && v.Auth != "approle" && v.Auth != "token" {
		l.bad("vault.auth", "", "%q: want approle or token", v.Auth)
	}
	if v.Auth == "approle" && v.RoleID == "" {
		l.bad("vault.role_id", "VAULT_ROLE_ID", "required with auth: approle (or VAULT_ROLE_ID)")
	}
	if v.SecretIDFile != "" && v.SecretID == "" {
		if _, err := os.Stat(v.SecretIDFile); err != nil {
			l.secretFileWarning("vault.secret_id_file", err)
		}
	}
	if v.CAFile != "" {
		if _, err := readPool(v.CAFile); err != nil {
			l.bad("vault.ca_file", "VAULT_CACERT", "%v", err)
		}
	}
	for _, p := range vaultSettings(v).Check() {
		key, msg, _ := strings.Cut(p, ": ")
		switch key {
		case "auth":
			l.warn("vault", "%s; the worker cannot get a client certificate without them", msg)
		case "address":
			l.bad("vault.address", "VAULT_ADDR", "%s", msg)
		default:
			l.bad("vault."+key, "", "%s", msg)
		}
	}
	if strings.HasPrefix(v.Address, "http://") {
		l.warn("vault.address", "plain http: the secret ID and tokens would cross the network in clear text")
	}
	if v.Token != "" && !l.envSet("VAULT_TOKEN") {
		l.warn("vault.token", "a secret in the config file; prefer VAULT_TOKEN")
	}
	if v.SecretID != "" && !l.envSet("VAULT_SECRET_ID") {
		l.warn("vault.secret_id", "a secret in the config file; prefer VAULT_SECRET_ID or secret_id_file")
	}
}

// readPool reads a PEM bundle of CA certificates.
func readPool(path string) (*x509.CertPool, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read it: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(raw) {
		return nil, fmt.Errorf("%s holds no PEM certificates", path)
	}
	return pool, nil
}
