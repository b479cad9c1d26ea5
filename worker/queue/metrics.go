package queue

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	jobs  *prometheus.CounterVec
	wait  prometheus.Histogram
	took  *prometheus.HistogramVec
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
		wait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "deploybot_queue_wait_seconds",
			Help:    "From a job's creation by the responder to the first time a worker picks it up (enqueue to pickup).",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
		took: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "deploybot_job_seconds",
			Help:    "From a job's creation to its end (enqueue to done), retries included, by outcome: succeeded, failed, dead.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600},
		}, []string{"outcome"}),
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
		for _, c := range []prometheus.Collector{m.jobs, m.wait, m.took, m} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// picked observes how long a job waited for its first worker. Reclaimed
// jobs and retries are not counted: their wait is not the queue's.
func (m *metrics) picked(job Job, reclaimed bool, now time.Time) {
	if reclaimed || job.Attempt > 1 || job.Requeued || job.CreatedAt.IsZero() {
		return
	}
	m.wait.Observe(max(now.Sub(job.CreatedAt), 0).Seconds())
}

// ended observes a job's whole life, from creation to outcome.
func (m *metrics) ended(job Job, outcome string, now time.Time) {
	if job.CreatedAt.IsZero() {
		return
	}
	m.took.WithLabelValues(outcome).Observe(max(now.Sub(job.CreatedAt), 0).Seconds())
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
