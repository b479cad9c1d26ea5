package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// loadTarget is deploybot as `serve` runs it (responder and workers on
// Redis) with the shell's simulated Jenkins, Gerrit, Marathon, Mesos and
// Slack, on a loopback port: what the load tool measures when it is not
// pointed at a running responder.
type loadTarget struct {
	url      string
	redisURL string
	workers  int
	secret   string
	sims     *sims
	a        *app
	stop     context.CancelFunc
	done     chan error
}

// startLoadTarget starts the target on listen with workers workers (0:
// the responder alone, as `deploybot responder` runs), on redisURL (empty:
// embedded) under a key prefix of its own.
func startLoadTarget(listen, redisURL, secret string, workers int, log *slog.Logger) (*loadTarget, error) {
	l := &loaded{name: "loadtest", cfg: demoConfig(), fromEnv: map[string]string{}}
	s, err := startSims(&l.cfg, log)
	if err != nil {
		return nil, err
	}
	s.configure(&l.cfg, redisURL)
	l.cfg.Redis.Prefix = "deploybot-load-" + randomHex()[:8]
	l.cfg.Slack.SigningSecret = secret
	// The fake Slack has no rate limit; Slack's one message per second per
	// channel would otherwise decide how fast jobs end.
	l.cfg.Slack.Interval = duration(time.Millisecond)
	l.cfg.Worker.Concurrency = workers
	// Jobs pile up when no worker takes them; the backlog limit would
	// answer "too busy" long before a load run ends.
	l.cfg.Queue.MaxBacklog = 100 * loadMaxRequests
	r := roleServe
	if workers == 0 {
		r = roleResponder
		if redisURL == "" {
			s.Close()
			return nil, errors.New("loadtest: -workers 0 runs the responder alone, which needs REDIS_URL")
		}
	}
	l.cfg.Vault = vaultConfig{Address: "https://vault.invalid:8200", PKIRole: "deploybot-worker", Token: "unused"}
	l.check()
	if len(l.problems) > 0 {
		s.Close()
		return nil, fmt.Errorf("loadtest: target config: %v", l.problems)
	}
	a, err := newApp(l, r, log, wiring{certs: s.ca, pollInterval: 5 * time.Millisecond, workerBlock: time.Second})
	if err != nil {
		s.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		a.close()
		s.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &loadTarget{url: "http://" + ln.Addr().String(), redisURL: redisURL, workers: workers, secret: secret, sims: s, a: a, stop: cancel, done: make(chan error, 1)}
	go func() { t.done <- a.serve(ctx, ln) }()
	return t, nil
}

// responseURL is where the target's answers to request i go: the fake
// Slack, which takes them like hooks.slack.com.
func (t *loadTarget) responseURL(i int) string {
	return t.sims.slack.ResponseURL("load-" + strconv.Itoa(i))
}

// settle waits until no job waits or runs, or until ctx ends; without
// workers, at once.
func (t *loadTarget) settle(ctx context.Context) error {
	for t.workers > 0 {
		n, err := t.a.q.Depth(ctx)
		if err == nil && n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d jobs still queued or running", n)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// close stops the target and deletes what the run left in a real Redis
// (an embedded one goes with the process).
func (t *loadTarget) close() error {
	t.stop()
	err := <-t.done
	t.sims.Close()
	if t.redisURL == "" {
		return err
	}
	rdb, cerr := redisClient(t.redisURL)
	if cerr != nil {
		return errors.Join(err, cerr)
	}
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var keys []string
	iter := rdb.Scan(ctx, 0, "{"+t.a.q.Config().Prefix+"}:*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	err = errors.Join(err, iter.Err())
	for len(keys) > 0 {
		n := min(len(keys), 500)
		err = errors.Join(err, rdb.Del(ctx, keys[:n]...).Err())
		keys = keys[n:]
	}
	return err
}

// scrape reads a target's Prometheus metrics; a target without /metrics
// (the floor, Bolt) gives nil.
func scrape(ctx context.Context, hc *http.Client, base string) map[string]*dto.MetricFamily {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return nil
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil
	}
	return mfs
}

// histogramDelta sums the buckets of histogram name (all label sets) in
// after minus before: upper bound → cumulative count.
func histogramDelta(before, after map[string]*dto.MetricFamily, name string) map[float64]uint64 {
	sum := func(mfs map[string]*dto.MetricFamily) map[float64]uint64 {
		out := map[float64]uint64{}
		mf := mfs[name]
		if mf == nil {
			return out
		}
		for _, m := range mf.GetMetric() {
			h := m.GetHistogram()
			for _, b := range h.GetBucket() {
				if !math.IsInf(b.GetUpperBound(), 1) {
					out[b.GetUpperBound()] += b.GetCumulativeCount()
				}
			}
			out[math.Inf(1)] += h.GetSampleCount()
		}
		return out
	}
	a, b := sum(after), sum(before)
	for k := range a {
		a[k] -= b[k]
	}
	return a
}

// bucketQuantiles estimates quantiles from cumulative buckets the way
// Prometheus' histogram_quantile does: linear within a bucket. Past the
// last finite bound it answers that bound. nil when nothing was observed.
func bucketQuantiles(buckets map[float64]uint64) *quantiles {
	total := buckets[math.Inf(1)]
	if total == 0 {
		return nil
	}
	bounds := make([]float64, 0, len(buckets))
	for b := range buckets {
		bounds = append(bounds, b)
	}
	sort.Float64s(bounds)
	at := func(q float64) float64 {
		rank := q * float64(total)
		lower, below := 0.0, uint64(0)
		for _, ub := range bounds {
			c := buckets[ub]
			if float64(c) >= rank {
				if math.IsInf(ub, 1) {
					return lower * 1000
				}
				if c == below {
					return ub * 1000
				}
				return (lower + (ub-lower)*(rank-float64(below))/float64(c-below)) * 1000
			}
			lower, below = ub, c
		}
		return lower * 1000
	}
	return &quantiles{N: int(total), P50: at(.5), P90: at(.9), P99: at(.99), P999: at(.999), Max: at(1)}
}

// rssMB is the resident memory of process pid (0: this one) in MiB, from
// /proc; 0 where /proc is not there.
func rssMB(pid int) float64 {
	path := "/proc/self/status"
	if pid > 0 {
		path = fmt.Sprintf("/proc/%d/status", pid)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}
