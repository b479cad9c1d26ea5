package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// runServer runs the roles serve, responder and worker until ctx is done,
// then shuts down without losing work: readiness turns red, the HTTP server
// stops taking requests, workers finish or hand back what they hold, and
// queued Slack calls are delivered.
func runServer(ctx context.Context, l *loaded, r role, log *slog.Logger) error {
	a, err := newApp(l, r, log, wiring{})
	if err != nil {
		return err
	}
	addr := l.cfg.Listen
	if addr == "" {
		addr = ":8080"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		a.close()
		return err
	}
	return a.serve(ctx, ln)
}

func (a *app) serve(ctx context.Context, ln net.Listener) error {
	a.health.Start()
	srv := &http.Server{Handler: a.handler, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second}
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.log.Info("listening", "addr", ln.Addr().String())
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	workCtx, stopWork := context.WithCancel(context.Background())
	defer stopWork()
	if a.pool != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.startCerts(workCtx) // after Serve: Slack is answered while Vault is slow
			if a.stream != nil {
				go a.stream.Start()
				defer a.stream.Stop()
			}
			if err := a.pool.Run(workCtx); err != nil {
				errc <- err
			}
		}()
	}
	var runErr error
	select {
	case <-ctx.Done():
		a.log.Info("shutting down")
	case runErr = <-errc:
		a.log.Error("stopping after an error", "err", runErr)
	}
	a.health.Drain()
	httpCtx, cancelHTTP := context.WithTimeout(context.Background(), 10*time.Second)
	_ = srv.Shutdown(httpCtx)
	cancelHTTP()
	stopWork()
	wg.Wait() // workers finish or hand back their jobs within the grace period
	// Only now, with every job's last report queued, does the clock for
	// delivering Slack updates start.
	flushCtx, cancelFlush := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelFlush()
	a.shutdown(flushCtx)
	return runErr
}
