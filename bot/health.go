package bot

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// HealthInput configures a Health.
type HealthInput struct {
	// Ping checks the queue's store (Redis). nil means always ready.
	Ping func(context.Context) error
	// Interval between pings. Default 1s.
	Interval time.Duration
	// Timeout of one ping. Default 1s.
	Timeout time.Duration
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
	h.err = err
	h.mu.Unlock()
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

// Ready returns nil when the process can take requests.
func (h *Health) Ready() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.draining {
		return fmt.Errorf("shutting down")
	}
	if h.err != nil {
		return fmt.Errorf("redis: %w", h.err)
	}
	return nil
}

// ServeHealthz answers 200 while the process runs.
func (h *Health) ServeHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// ServeReadyz answers 200 when ready, 503 with the reason otherwise.
func (h *Health) ServeReadyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := h.Ready(); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not ready: " + err.Error() + "\n"))
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}
