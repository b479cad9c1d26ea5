package bot

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the Slack front's Prometheus metrics.
type Metrics struct {
	requests         *prometheus.CounterVec
	ack              *prometheus.HistogramVec
	slackCalls       *prometheus.CounterVec
	slackRateLimited *prometheus.CounterVec
	slackCoalesced   prometheus.Counter
	socketUp         prometheus.Gauge
	socketConnects   prometheus.Counter
}

// NewMetrics creates the metrics and registers them on reg when it is not
// nil. It panics if they are registered twice, which is a wiring bug.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deploybot_http_requests_total",
			Help: "Requests by endpoint and outcome.",
		}, []string{"endpoint", "outcome"}),
		ack: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "deploybot_ack_seconds",
			Help:    "Time from receiving a Slack request to answering it.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"endpoint"}),
		slackCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deploybot_slack_api_calls_total",
			Help: "Slack Web API calls by method and outcome (ok, error, ratelimited).",
		}, []string{"method", "outcome"}),
		slackRateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deploybot_slack_ratelimited_total",
			Help: "Slack answers with HTTP 429, by method.",
		}, []string{"method"}),
		slackCoalesced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deploybot_slack_updates_coalesced_total",
			Help: "Message updates replaced by a newer one before they were sent.",
		}),
		socketUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "deploybot_slack_socket_connected",
			Help: "1 while this process holds a Socket Mode connection to Slack.",
		}),
		socketConnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deploybot_slack_socket_connects_total",
			Help: "Socket Mode connections opened, including reconnects Slack asked for.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.ack, m.slackCalls, m.slackRateLimited, m.slackCoalesced, m.socketUp, m.socketConnects)
	}
	return m
}
