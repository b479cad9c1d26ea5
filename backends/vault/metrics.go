package vault

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Vault certificate metrics. One set serves one process.
type Metrics struct {
	logins   *prometheus.CounterVec
	renewals *prometheus.CounterVec
	expiry   *prometheus.Desc

	mu      sync.Mutex
	sources []interface{ Expiry() time.Time }
}

// NewMetrics creates the metrics and registers them on reg when it is not
// nil. It panics on a second registration, which is a wiring bug.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deploybot_vault_logins_total",
			Help: "Vault logins by outcome (ok, error).",
		}, []string{"outcome"}),
		renewals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deploybot_cert_renewals_total",
			Help: "Client certificate issues and renewals by outcome (ok, error).",
		}, []string{"outcome"}),
		expiry: prometheus.NewDesc("deploybot_cert_expiry_seconds",
			"Seconds until the client certificate expires (negative once expired).", nil, nil),
	}
	for _, o := range []string{"ok", "error"} {
		m.logins.WithLabelValues(o)
		m.renewals.WithLabelValues(o)
	}
	if reg != nil {
		reg.MustRegister(m.logins, m.renewals, m)
	}
	return m
}

func (m *Metrics) watch(s interface{ Expiry() time.Time }) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sources = append(m.sources, s)
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) { ch <- m.expiry }

// Collect reports the expiry of the held certificate, if any.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	sources := append([]interface{ Expiry() time.Time }(nil), m.sources...)
	m.mu.Unlock()
	for _, s := range sources {
		if exp := s.Expiry(); !exp.IsZero() {
			ch <- prometheus.MustNewConstMetric(m.expiry, prometheus.GaugeValue, time.Until(exp).Seconds())
		}
	}
}
