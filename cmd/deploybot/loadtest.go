package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// Bounds of one load run, so a typo cannot flood a machine for an hour.
const (
	loadMaxDuration = 10 * time.Minute
	loadMaxRequests = 5_000_000
	loadMaxConns    = 1024
)

// loadOpts are `deploybot loadtest`'s flags.
type loadOpts struct {
	target, listen, label, jsonOut, plot, from string
	cpuProfile                                 string
	rates                                      []float64
	conns, requests, workers, pid              int
	duration, drain                            time.Duration
	clicks                                     float64
	serve                                      bool
}

// loadResult is one run: the JSON the tool writes and plots.
type loadResult struct {
	Label    string       `json:"label"`
	Target   string       `json:"target"`
	Conns    int          `json:"conns"`
	Duration string       `json:"duration"`
	Clicks   float64      `json:"clicks"`
	Steps    []stepResult `json:"steps"`
}

const loadUsage = `usage: deploybot loadtest [flags]

Sends signed slash commands and Retry clicks to a responder on this machine
and reports ack latency (p50/p90/p99/max), throughput and errors; with a
deploybot target, also enqueue->pickup and enqueue->done from its metrics.
Without -target it starts deploybot (responder, workers, simulated backends)
in this process, on REDIS_URL (empty: embedded Redis).

`

func parseLoadFlags(args []string, stderr io.Writer) (loadOpts, error) {
	var o loadOpts
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, loadUsage); fs.PrintDefaults() }
	fs.StringVar(&o.target, "target", "", "base URL of a running responder, e.g. http://127.0.0.1:8080 (loopback only); needs SLACK_SIGNING_SECRET")
	rates := fs.String("rate", "0", "requests per second, or a comma-separated list to sweep (one step each); 0 is flat out")
	fs.IntVar(&o.conns, "conns", 16, "connections (and senders)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of each step (at most 10m)")
	fs.IntVar(&o.requests, "requests", 1_000_000, "most requests per step (at most 5000000)")
	fs.Float64Var(&o.clicks, "clicks", 0.1, "share of requests that are Retry clicks, 0 to 1")
	fs.IntVar(&o.workers, "workers", 8, "workers of the in-process target; 0 runs its responder alone (jobs stay queued)")
	fs.DurationVar(&o.drain, "drain", 60*time.Second, "after each step, how long to wait for the target's jobs to end (0: do not wait, e.g. for a responder without workers)")
	fs.IntVar(&o.pid, "pid", 0, "process ID of the target, to report its resident memory")
	fs.StringVar(&o.label, "label", "", "name of this run in results and plots (default: the target)")
	fs.StringVar(&o.jsonOut, "json", "", "write the results as JSON to this file")
	fs.StringVar(&o.plot, "plot", "", "write an SVG plot of ack latency against offered load to this file")
	fs.StringVar(&o.from, "from", "", "comma-separated result files to plot instead of running (with -plot)")
	fs.BoolVar(&o.serve, "serve", false, "only start the in-process target on -listen and wait (to measure it from another process)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "with -serve: write the target's CPU profile (pprof) to this file when it stops")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:0", "address of the in-process target")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("loadtest: unexpected arguments %q", fs.Args())
	}
	for _, f := range strings.Split(*rates, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || r < 0 {
			return o, fmt.Errorf("loadtest: -rate %q: want numbers of requests per second, 0 for flat out", f)
		}
		o.rates = append(o.rates, r)
	}
	switch {
	case o.conns < 1 || o.conns > loadMaxConns:
		return o, fmt.Errorf("loadtest: -conns %d: want 1 to %d", o.conns, loadMaxConns)
	case o.duration <= 0 || o.duration > loadMaxDuration:
		return o, fmt.Errorf("loadtest: -duration %s: want more than 0 and at most %s", o.duration, loadMaxDuration)
	case o.requests < 1 || o.requests > loadMaxRequests:
		return o, fmt.Errorf("loadtest: -requests %d: want 1 to %d", o.requests, loadMaxRequests)
	case o.clicks < 0 || o.clicks > 1:
		return o, fmt.Errorf("loadtest: -clicks %g: want 0 to 1", o.clicks)
	case o.workers < 0:
		return o, fmt.Errorf("loadtest: -workers %d: want 0 or more", o.workers)
	case o.from != "" && o.plot == "":
		return o, errors.New("loadtest: -from plots saved results; give -plot FILE.svg")
	}
	return o, loopbackOnly(o.target, o.listen)
}

// loopbackOnly refuses a target or listen address off this machine: the
// tool floods what it points at.
func loopbackOnly(target, listen string) error {
	if target != "" {
		u, err := url.Parse(target)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("loadtest: -target %q is not an http(s) URL", target)
		}
		if !isLoopback(u.Hostname()) {
			return fmt.Errorf("loadtest: -target %q is not on this machine; the load tool only sends to loopback (127.0.0.0/8, ::1, localhost)", target)
		}
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil || !isLoopback(host) {
		return fmt.Errorf("loadtest: -listen %q: want a loopback address with a port, e.g. 127.0.0.1:8089", listen)
	}
	return nil
}

// runLoadtest is `deploybot loadtest`.
func runLoadtest(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	o, err := parseLoadFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if o.from != "" {
		return reportErr(stderr, plotFiles(strings.Split(o.from, ","), o.plot))
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	secret := getenv("SLACK_SIGNING_SECRET")
	if o.target != "" || o.serve {
		if secret == "" {
			fmt.Fprintln(stderr, "loadtest: set SLACK_SIGNING_SECRET to the target's signing secret")
			return 2
		}
	} else {
		secret = randomHex()
	}
	if o.target != "" {
		return reportErr(stderr, loadRun(ctx, o, o.target, secret, nil, stdout))
	}
	if getenv("REDIS_URL") == "" {
		fmt.Fprintln(stdout, "loadtest: REDIS_URL is not set, so the target uses an embedded in-process Redis; measure against a real one for numbers that mean something")
	}
	t, err := startLoadTarget(o.listen, getenv("REDIS_URL"), secret, o.workers, log)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if o.serve {
		return serveLoadTarget(ctx, o, t, stdout, stderr)
	}
	err = loadRun(ctx, o, t.url, secret, t, stdout)
	return reportErr(stderr, errors.Join(err, t.close()))
}

// serveLoadTarget keeps the in-process target up until ctx ends, with a
// CPU profile of it when asked.
func serveLoadTarget(ctx context.Context, o loadOpts, t *loadTarget, stdout, stderr io.Writer) int {
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(stderr, "loadtest:", err)
			return 1
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	fmt.Fprintf(stdout, "loadtest: deploybot with %d workers and simulated backends at %s; stop with Ctrl-C\n", o.workers, t.url)
	<-ctx.Done()
	return reportErr(stderr, t.close())
}

func reportErr(w io.Writer, err error) int {
	if err != nil {
		fmt.Fprintln(w, err)
		return 1
	}
	return 0
}

// loadRun runs every step against base and reports. t is the in-process
// target, nil for another process.
func loadRun(ctx context.Context, o loadOpts, base, secret string, t *loadTarget, stdout io.Writer) error {
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		Proxy: nil, MaxIdleConns: o.conns, MaxIdleConnsPerHost: o.conns, MaxConnsPerHost: o.conns,
		DisableCompression: true, IdleConnTimeout: time.Minute,
	}}
	defer hc.CloseIdleConnections()
	g := &loadGen{run: randomHex()[:8], slash: "/deploy", user: shellUser, channel: shellChannel, team: shellTeam,
		service: "api", clickShare: o.clicks}
	if t != nil {
		g.responseURL = t.responseURL
		o.pid = -1 // this process holds the load generator too: no memory figure
	}
	if err := clickSetup(ctx, hc, base, secret, g, o, t, stdout); err != nil {
		return err
	}
	res := loadResult{Label: o.label, Target: base, Conns: o.conns, Duration: o.duration.String(), Clicks: o.clicks}
	if res.Label == "" {
		res.Label = base
	}
	idle := targetRSS(ctx, hc, base, o.pid)
	first := 1000
	for _, rate := range o.rates {
		before := scrape(ctx, hc, base)
		peak, stopRSS := watchRSS(ctx, hc, base, o.pid)
		st := drive(ctx, hc, base, secret, g, first, rate, o.conns, o.requests, o.duration)
		stopRSS()
		first += st.Sent
		dctx, cancel := context.WithTimeout(ctx, o.drain)
		if err := settleTarget(dctx, hc, base, t); err != nil {
			st.Undrained = err.Error()
		}
		cancel()
		after := scrape(ctx, hc, base)
		st.Pickup = bucketQuantiles(histogramDelta(before, after, "deploybot_queue_wait_seconds"))
		st.Done = bucketQuantiles(histogramDelta(before, after, "deploybot_job_seconds"))
		st.RSSIdleMB, st.RSSPeakMB = idle, *peak
		res.Steps = append(res.Steps, st)
		printStep(stdout, res.Label, st)
		if ctx.Err() != nil {
			break
		}
	}
	return writeResults(res, o)
}

// clickSetup starts a few builds that fail, whose Retry buttons the run's
// clicks press: the first click on each retries it, later ones are
// answered as duplicates, as on a busy channel.
func clickSetup(ctx context.Context, hc *http.Client, base, secret string, g *loadGen, o loadOpts, t *loadTarget, stdout io.Writer) error {
	if o.clicks == 0 {
		return nil
	}
	for i := range 20 {
		req := loadReq{path: "/slack/commands", body: g.command(i, fmt.Sprintf("build %s load-%s-fail-%d", g.service, g.run, i))}
		hr, err := signed(ctx, base, req, secret, time.Now())
		if err != nil {
			return err
		}
		resp, err := hc.Do(hr)
		if err != nil {
			return fmt.Errorf("loadtest: %s does not answer: %w", base, err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("loadtest: %s answered a signed command with %d; is SLACK_SIGNING_SECRET its secret?", base, resp.StatusCode)
		}
		if id := answerJob(body); id != "" {
			g.clickJobs = append(g.clickJobs, id)
		}
	}
	if len(g.clickJobs) == 0 {
		g.clickJobs = []string{queue.NewID(time.Now())} // not deploybot: any job ID will do
	}
	dctx, cancel := context.WithTimeout(ctx, o.drain)
	defer cancel()
	if err := settleTarget(dctx, hc, base, t); err != nil {
		fmt.Fprintf(stdout, "loadtest: the setup's failing builds did not end within -drain %s (%s); clicks on them are answered \"nothing to retry\"\n", o.drain, err)
	}
	return nil
}

// settleTarget waits until the target's queue is empty: in this process
// from the queue, in another from its deploybot_queue_depth metric (not at
// all for a target without one).
func settleTarget(ctx context.Context, hc *http.Client, base string, t *loadTarget) error {
	if _, ok := ctx.Deadline(); ok && ctx.Err() != nil {
		return nil // -drain 0: not waited for
	}
	if t != nil {
		return t.settle(ctx)
	}
	for {
		mfs := scrape(ctx, hc, base)
		mf := mfs["deploybot_queue_depth"]
		if mf == nil || len(mf.GetMetric()) == 0 || mf.GetMetric()[0].GetGauge().GetValue() == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%g jobs still queued or running", mf.GetMetric()[0].GetGauge().GetValue())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// targetRSS is the target's resident memory in MiB: of process pid, or as
// its metrics report it; 0 when neither tells.
func targetRSS(ctx context.Context, hc *http.Client, base string, pid int) float64 {
	if pid < 0 {
		return 0
	}
	if pid > 0 {
		return rssMB(pid)
	}
	if mf := scrape(ctx, hc, base)["process_resident_memory_bytes"]; mf != nil && len(mf.GetMetric()) > 0 {
		return mf.GetMetric()[0].GetGauge().GetValue() / (1 << 20)
	}
	return 0
}

// watchRSS samples the target's memory until stopped; *peak is the most.
func watchRSS(ctx context.Context, hc *http.Client, base string, pid int) (*float64, func()) {
	peak := new(float64)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			*peak = max(*peak, targetRSS(ctx, hc, base, pid))
			select {
			case <-done:
				return
			case <-time.After(250 * time.Millisecond):
			}
		}
	})
	return peak, func() { close(done); wg.Wait() }
}

func printStep(w io.Writer, label string, st stepResult) {
	rate := "flat out"
	if st.Rate > 0 {
		rate = fmt.Sprintf("%g/s", st.Rate)
	}
	fmt.Fprintf(w, "%s @ %s: sent %d (%d commands, %d clicks) in %.1fs, %d ok (%d naming a job), %d errors %v, %.0f acks/s\n",
		label, rate, st.Sent, st.Commands, st.Clicks, st.Seconds, st.OK, st.Named, st.Errors, st.ErrorKinds, st.Throughput)
	fmt.Fprintf(w, "  ack ms:    p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f\n", st.Ack.P50, st.Ack.P90, st.Ack.P99, st.Ack.P999, st.Ack.Max)
	for _, q := range []struct {
		name string
		q    *quantiles
	}{{"pickup ms", st.Pickup}, {"done ms", st.Done}} {
		if q.q != nil {
			fmt.Fprintf(w, "  %-10s p50 %.2f  p90 %.2f  p99 %.2f  (%d jobs; from the target's histograms)\n", q.name+":", q.q.P50, q.q.P90, q.q.P99, q.q.N)
		}
	}
	if st.Undrained != "" {
		fmt.Fprintf(w, "  not drained within -drain: %s; pickup and done cover the jobs that ended\n", st.Undrained)
	}
	if st.RSSIdleMB > 0 {
		fmt.Fprintf(w, "  rss MiB:   idle %.1f  peak %.1f\n", st.RSSIdleMB, st.RSSPeakMB)
	}
}

func writeResults(res loadResult, o loadOpts) error {
	if o.jsonOut != "" {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.jsonOut, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if o.plot != "" {
		return writePlot(o.plot, []loadResult{res})
	}
	return nil
}
