package bot

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Check is one more thing readiness depends on, such as the worker's client
// certificate. An error whose Degraded method returns true is reported
// without failing readiness: the process still does its work.
type Check struct {
	Name string
	Func func() error
}

// HealthInput configures a Health.
type HealthInput struct {
	// Ping checks the queue's store (Redis). nil means always ready.
	Ping func(context.Context) error
	// Checks are further readiness checks.
	Checks []Check
	// Interval between pings. Default 1s.
	Interval time.Duration
	// Timeout of one ping. Default 1s.
	Timeout time.Duration
	// Log gets a line when Redis stops or starts answering pings; the
	// readiness page itself gives no internal details.
	Log *slog.Logger
}

// Health backs /healthz (the process is up) and /readyz (Redis answers and
// the process is not shutting down). The ack path reports Redis failures
// too, so readiness turns red as soon as a user is affected.
type Health struct {
	in       HealthInput
	mu       sync.Mutex
	err      error
	draining bool
	stop     chan struct{}
	done     chan struct{}
}

// NewHealth returns a Health that is ready until a check fails.
func NewHealth(in HealthInput) *Health {
	if in.Interval <= 0 {
		in.Interval = time.Second
	}
	if in.Timeout <= 0 {
		in.Timeout = time.Second
	}
	return &Health{in: in}
}

// Start pings in the background until Stop.
func (h *Health) Start() {
	if h.in.Ping == nil {
		return
	}
	h.stop, h.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(h.done)
		t := time.NewTicker(h.in.Interval)
		defer t.Stop()
		for {
			h.check()
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
		}
	}()
}

// Stop ends the pings.
func (h *Health) Stop() {
	if h.stop != nil {
		close(h.stop)
		<-h.done
		h.stop = nil
	}
}

func (h *Health) check() {
	ctx, cancel := context.WithTimeout(context.Background(), h.in.Timeout)
	defer cancel()
	err := h.in.Ping(ctx)
	h.mu.Lock()
	was := h.err
	h.err = err
	h.mu.Unlock()
	if h.in.Log != nil {
		switch {
		case err != nil && was == nil:
			h.in.Log.Error("redis is not answering; not ready", "err", err)
		case err == nil && was != nil:
			h.in.Log.Info("redis answers again; ready")
		}
	}
}

// Fail marks the process unready until the next successful ping.
func (h *Health) Fail(err error) {
	h.mu.Lock()
	h.err = err
	h.mu.Unlock()
}

// Drain marks the process unready for good: it is shutting down, and load
// balancers should stop sending requests.
func (h *Health) Drain() {
	h.mu.Lock()
	h.draining = true
	h.mu.Unlock()
}

// Ready returns nil when the process can take requests; the error says
// what is wrong in terms safe to show (details are in the logs).
func (h *Health) Ready() error {
	failing, _ := h.status()
	if len(failing) > 0 {
		return errors.New(strings.Join(failing, "; "))
	}
	return nil
}

// status lists what makes the process unready, and what is degraded but
// not failing.
func (h *Health) status() (failing, degraded []string) {
	h.mu.Lock()
	draining, redisErr := h.draining, h.err
	h.mu.Unlock()
	if draining {
		failing = append(failing, "shutting down")
	}
	if redisErr != nil {
		failing = append(failing, "redis: not answering")
	}
	for _, c := range h.in.Checks {
		err := c.Func()
		if err == nil {
			continue
		}
		var d interface{ Degraded() bool }
		if errors.As(err, &d) && d.Degraded() {
			degraded = append(degraded, c.Name+": "+summary(err))
		} else {
			failing = append(failing, c.Name+": "+summary(err))
		}
	}
	return failing, degraded
}

// summary is what a public readiness page may say about err: its Summary
// when it has one (without internal addresses), else its text.
func summary(err error) string {
	var s interface{ Summary() string }
	if errors.As(err, &s) {
		return s.Summary()
	}
	return err.Error()
}

// ServeHealthz answers 200 while the process runs.
func (h *Health) ServeHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// ServeReadyz answers 200 when ready, 503 with the reasons otherwise; either
// way degraded checks are listed, one per line.
func (h *Health) ServeReadyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	failing, degraded := h.status()
	var b strings.Builder
	if len(failing) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		b.WriteString("not ready: " + strings.Join(failing, "; ") + "\n")
	} else {
		b.WriteString("ok\n")
	}
	for _, d := range degraded {
		b.WriteString("degraded: " + d + "\n")
	}
	_, _ = w.Write([]byte(b.String()))
}
