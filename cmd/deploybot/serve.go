package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// runServer runs the roles serve, responder and worker until ctx is done,
// then shuts down without losing work: readiness turns red, the HTTP server
// stops taking requests, workers finish or hand back what they hold, and
// queued Slack calls are delivered.
//
// SIGHUP reloads the config's services and environments (see reload).
func runServer(ctx context.Context, l *loaded, r role, getenv func(string) string, log *slog.Logger) error {
	a, err := newApp(l, r, log, wiring{})
	if err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go a.reloadOnSignal(ctx, hup, l.name, getenv)
	ln, err := net.Listen("tcp", l.cfg.listenAddr())
	if err != nil {
		a.close()
		return err
	}
	if err := a.listenHooksTLS(l, r); err != nil {
		ln.Close()
		a.close()
		return err
	}
	return a.serve(ctx, ln)
}

// listenHooksTLS opens the mTLS listener for /hooks/ when the config has
// one and this process answers requests.
func (a *app) listenHooksTLS(l *loaded, r role) error {
	t := l.cfg.Hooks.TLS
	if t.Listen == "" || !r.responds() {
		return nil
	}
	cfg, err := hooksTLSConfig(t, a.log)
	if err != nil {
		return fmt.Errorf("hooks tls: %w", err)
	}
	a.hooksLn, err = tls.Listen("tcp", t.Listen, cfg)
	return err
}

func (a *app) serve(ctx context.Context, ln net.Listener) error {
	a.health.Start()
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	servers := a.startHTTP(ln, &wg, errc)
	stopSocket := a.startSocket(&wg, errc)
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
	var stopping sync.WaitGroup
	for _, srv := range servers {
		stopping.Go(func() { _ = srv.Shutdown(httpCtx) })
	}
	stopping.Go(stopSocket)
	stopping.Wait()
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

// startHTTP serves a.handler on ln and, when there is an mTLS listener,
// /hooks/ alone on it. A server that fails reports to errc.
func (a *app) startHTTP(ln net.Listener, wg *sync.WaitGroup, errc chan<- error) []*http.Server {
	serve := func(h http.Handler, ln net.Listener) *http.Server {
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
			// The server's own complaints (TLS handshakes from scanners)
			// are JSON lines like every other log line.
			ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)}
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.log.Info("listening", "addr", ln.Addr().String())
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
		return srv
	}
	servers := []*http.Server{serve(a.handler, ln)}
	if a.hooksLn != nil {
		hooks := http.NewServeMux()
		hooks.Handle("/hooks/", a.handler)
		servers = append(servers, serve(hooks, a.hooksLn))
	}
	return servers
}

// startSocket connects the responder to Slack over Socket Mode, when the
// config says so. The function it returns stops it: envelopes in hand are
// answered and acked first.
func (a *app) startSocket(wg *sync.WaitGroup, errc chan<- error) func() {
	if a.socket == nil || a.responder == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		if err := a.responder.ServeSocketMode(ctx, *a.socket, a.wiring.slackHTTP); err != nil {
			errc <- fmt.Errorf("socket mode: %w", err)
		}
	}()
	return func() {
		cancel()
		<-done
	}
}
