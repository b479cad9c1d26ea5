package marathon_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/seed-5eb4e92e/deploybot/backends/marathon"
	"github.com/seed-5eb4e92e/deploybot/backends/marathon/marathontest"
	"github.com/seed-5eb4e92e/deploybot/backends/vault"
)

func TestMutualTLS(t *testing.T) {
	t.Parallel()
	ca, err := vault.NewDevCA("deploybot-worker", time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	serverTLS, err := ca.ServerTLS("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	srv := marathontest.Start(marathontest.Options{TLS: serverTLS})
	t.Cleanup(srv.Close)
	srv.AddApp(marathontest.AppSpec{ID: blue})
	client := func(withCert bool) *http.Client {
		cfg := &tls.Config{RootCAs: ca.Roots(nil), MinVersion: tls.VersionTLS12}
		if withCert {
			cfg.GetClientCertificate = ca.GetClientCertificate
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
	}
	tests := []struct {
		name     string
		hc       *http.Client
		wantCode int // 0: success
	}{
		{name: "client certificate", hc: client(true)},
		{name: "no client certificate", hc: client(false), wantCode: -1},
		{name: "untrusted server", hc: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{GetClientCertificate: ca.GetClientCertificate}}}, wantCode: -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := marathon.New(marathon.Config{URL: srv.URL}, tc.hc, nil)
			if err != nil {
				t.Fatal(err)
			}
			app, err := c.App(context.Background(), blue)
			var he *marathon.HTTPError
			switch {
			case tc.wantCode == 0 && (err != nil || app.ID != blue):
				t.Errorf("App = %+v, %v", app, err)
			case tc.wantCode != 0 && (err == nil || errors.As(err, &he)):
				t.Errorf("App over TLS without trust both ways = %v, want a TLS failure", err)
			}
		})
	}
	if srv.URL[:8] != "https://" {
		t.Errorf("URL = %s", srv.URL)
	}
}
