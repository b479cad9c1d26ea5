package queue

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	jobs  *prometheus.CounterVec
	depth *prometheus.Desc
	dead  *prometheus.Desc
	age   *prometheus.Desc
	q     *Queue
}

func newMetrics(q *Queue, reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		q: q,
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deploybot_jobs_total",
			Help: "Jobs by event: enqueued, started, succeeded, failed, retried, dead.",
		}, []string{"event"}),
		depth: prometheus.NewDesc("deploybot_queue_depth",
			"Jobs waiting or running, including retries not yet due.", nil, nil),
		dead: prometheus.NewDesc("deploybot_dead_letters",
			"Entries in the dead-letter stream.", nil, nil),
		age: prometheus.NewDesc("deploybot_queue_oldest_seconds",
			"How long the oldest job no worker has picked up has waited; 0 when none waits.", nil, nil),
	}
	for _, e := range []string{"enqueued", "started", "succeeded", "failed", "retried", "dead"} {
		m.jobs.WithLabelValues(e)
	}
	if reg != nil {
		if err := reg.Register(m.jobs); err != nil {
			return nil, err
		}
		if err := reg.Register(m); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Describe implements prometheus.Collector for the gauges read from Redis.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.depth
	ch <- m.dead
	ch <- m.age
}

// Collect reads the queue's depth from Redis at scrape time; a scrape while
// Redis is down reports nothing rather than a stale number.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if n, err := m.q.Depth(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(m.depth, prometheus.GaugeValue, float64(n))
	}
	if n, err := m.q.rdb.XLen(ctx, m.q.deadKey()).Result(); err == nil {
		ch <- prometheus.MustNewConstMetric(m.dead, prometheus.GaugeValue, float64(n))
	}
	if age, err := m.q.OldestWaiting(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(m.age, prometheus.GaugeValue, age.Seconds())
	}
}
