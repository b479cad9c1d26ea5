package gerrit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// StreamConfig says where to read `gerrit stream-events` and as whom. The
// account needs Gerrit's "Stream Events" global capability.
type StreamConfig struct {
	// Addr is Gerrit's SSH daemon, "gerrit.example.com:29418"; without a
	// port, 29418.
	Addr string
	// User is the Gerrit username and Signer its SSH private key.
	User   string
	Signer ssh.Signer
	// HostKeyCallback checks Gerrit's host key, e.g. from
	// golang.org/x/crypto/ssh/knownhosts. It is required: an unchecked host
	// could read every event and impersonate Gerrit.
	HostKeyCallback ssh.HostKeyCallback
	// MinBackoff and MaxBackoff bound the wait before reconnecting, which
	// doubles after each failed attempt (with jitter). Defaults 1s and 1m.
	MinBackoff, MaxBackoff time.Duration
	// DialTimeout bounds connecting and the SSH handshake. Default 30s.
	DialTimeout time.Duration
	// KeepAlive is how often an idle connection is probed; a connection
	// whose probe gets no answer within the same time is dropped and
	// re-dialled. Default 30s.
	KeepAlive time.Duration
}

// Named errors of NewStream.
var (
	ErrStreamNoAddr    = errors.New("gerrit: stream: no address")
	ErrStreamNoUser    = errors.New("gerrit: stream: no user")
	ErrStreamNoSigner  = errors.New("gerrit: stream: no SSH key")
	ErrStreamNoHostKey = errors.New("gerrit: stream: no host key callback")
	ErrStreamNoHandler = errors.New("gerrit: stream: no event handler")
)

var (
	errStreamEnded      = errors.New("gerrit: stream: session ended")
	errStreamNoProgress = errors.New("no event before the connection ended")
)

// streamCommand is what the reader runs on Gerrit's SSH daemon.
const streamCommand = "gerrit stream-events"

// Stream reads Gerrit's event stream over SSH and hands each event to a
// handler, reconnecting until stopped. Events that happen while it is
// disconnected are lost: Gerrit does not replay them, so a consumer that
// must not miss anything also takes webhooks or polls the REST API.
type Stream struct {
	cfg    StreamConfig
	handle func(Event)
	log    *slog.Logger

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once

	mu    sync.Mutex
	state streamState
}

type streamState int

const (
	streamIdle streamState = iota
	streamRunning
	streamStopped
)

// NewStream checks cfg and returns a stream that calls handle for each
// event, one at a time, in the order Gerrit sent them. A slow handler slows
// the stream; Gerrit then drops events and sends a "dropped-output" event.
func NewStream(cfg StreamConfig, handle func(Event), log *slog.Logger) (*Stream, error) {
	switch {
	case cfg.Addr == "":
		return nil, ErrStreamNoAddr
	case cfg.User == "":
		return nil, ErrStreamNoUser
	case cfg.Signer == nil:
		return nil, ErrStreamNoSigner
	case cfg.HostKeyCallback == nil:
		return nil, ErrStreamNoHostKey
	case handle == nil:
		return nil, ErrStreamNoHandler
	}
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		cfg.Addr = net.JoinHostPort(cfg.Addr, "29418")
	}
	cfg.MinBackoff = orDefault(cfg.MinBackoff, time.Second)
	cfg.MaxBackoff = max(orDefault(cfg.MaxBackoff, time.Minute), cfg.MinBackoff)
	cfg.DialTimeout = orDefault(cfg.DialTimeout, 30*time.Second)
	cfg.KeepAlive = orDefault(cfg.KeepAlive, 30*time.Second)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Stream{
		cfg: cfg, handle: handle, log: log.With("backend", "gerrit", "addr", cfg.Addr),
		stop: make(chan struct{}), done: make(chan struct{}),
	}, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Start reads events until Stop; run it in its own goroutine. Calling it
// again, or after Stop, returns at once.
func (s *Stream) Start() {
	s.mu.Lock()
	if s.state != streamIdle {
		s.mu.Unlock()
		return
	}
	s.state = streamRunning
	s.mu.Unlock()
	defer close(s.done)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	backoff := s.cfg.MinBackoff
	for ctx.Err() == nil {
		err := s.session(ctx)
		if ctx.Err() != nil {
			return
		}
		if !errors.Is(err, errStreamNoProgress) {
			backoff = s.cfg.MinBackoff // it worked for a while: start again gently
		}
		wait := backoff/2 + rand.N(backoff/2+1) // jitter spreads many readers out
		s.log.Warn("gerrit stream-events disconnected", "err", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, s.cfg.MaxBackoff)
	}
}

// Stop ends the stream and, if it was started, waits for Start to return.
// The handler is not called after Stop returns, and must not call Stop
// itself.
func (s *Stream) Stop() {
	s.stopOnce.Do(func() { close(s.stop) })
	s.mu.Lock()
	if s.state == streamIdle {
		s.state = streamStopped // a later Start returns at once
		close(s.done)
	}
	s.mu.Unlock()
	<-s.done
}

// session runs one connection: dial, run stream-events, read until the
// connection ends. Its error wraps errStreamNoProgress when no event line
// arrived, so the caller keeps backing off.
func (s *Stream) session(ctx context.Context) error {
	client, err := s.dial(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", errStreamNoProgress, err)
	}
	defer client.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	context.AfterFunc(ctx, func() { client.Close() })
	go keepAlive(ctx, client, s.cfg.KeepAlive)

	sess, err := client.NewSession()
	if err != nil {
		return fmt.Errorf("%w: gerrit: stream: new session: %w", errStreamNoProgress, err)
	}
	defer sess.Close()
	stdout, err := sess.StdoutPipe()
	if err != nil {
		return fmt.Errorf("%w: gerrit: stream: %w", errStreamNoProgress, err)
	}
	stderr := &capped{max: 4 << 10}
	sess.Stderr = stderr
	if err := sess.Start(streamCommand); err != nil {
		return fmt.Errorf("%w: gerrit: stream: %s: %w", errStreamNoProgress, streamCommand, err)
	}
	s.log.Info("gerrit stream-events connected")
	lines, readErr := s.read(ctx, stdout)
	waitErr := sess.Wait()
	err = fmt.Errorf("%w after %d lines: read: %v, exit: %v, stderr: %q", errStreamEnded, lines, readErr, waitErr, stderr.String())
	if lines == 0 {
		err = fmt.Errorf("%w: %w", errStreamNoProgress, err)
	}
	return err
}

func (s *Stream) dial(ctx context.Context) (*ssh.Client, error) {
	d := net.Dialer{Timeout: s.cfg.DialTimeout}
	conn, err := d.DialContext(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("gerrit: stream: dial: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	_ = conn.SetDeadline(time.Now().Add(s.cfg.DialTimeout))
	cc, chans, reqs, err := ssh.NewClientConn(conn, s.cfg.Addr, &ssh.ClientConfig{
		User:            s.cfg.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(s.cfg.Signer)},
		HostKeyCallback: s.cfg.HostKeyCallback,
		Timeout:         s.cfg.DialTimeout,
	})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("gerrit: stream: ssh handshake: %w", err)
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(cc, chans, reqs), nil
}

// read hands each line of r to the handler until r ends, and returns how
// many lines it read. Lines that are not events, or too long, are logged
// and skipped; a line cut off by a dropped connection is not an event.
func (s *Stream) read(ctx context.Context, r io.Reader) (int, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	n := 0
	for {
		line, err := readLine(br, MaxEventSize)
		if err != nil {
			return n, err
		}
		n++
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		if line == nil {
			s.log.Warn("gerrit stream-events: skipping over-long line", "max", MaxEventSize)
			continue
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		ev, err := ParseEvent(line)
		if err != nil {
			s.log.Warn("gerrit stream-events: skipping line", "err", err, "bytes", len(line))
			continue
		}
		if ev.Type == EventDroppedOutput {
			s.log.Warn("gerrit dropped events: the reader was too slow")
		}
		s.handle(ev)
	}
}

// readLine returns the next '\n'-terminated line without its newline, or
// nil for a line longer than limit (which it skips). A last line without a
// newline is reported as io.ErrUnexpectedEOF.
func readLine(br *bufio.Reader, limit int) ([]byte, error) {
	var line []byte
	tooLong := false
	for {
		chunk, err := br.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(chunk) > limit+1 {
				tooLong, line = true, nil
			} else {
				line = append(line, chunk...)
			}
		}
		switch {
		case err == nil:
			if tooLong {
				return nil, nil
			}
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && (len(line) > 0 || tooLong):
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}

// keepAlive probes the connection every interval and closes it when a
// probe fails or goes unanswered, so a silently dead TCP connection is
// noticed and re-dialled.
func keepAlive(ctx context.Context, client *ssh.Client, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		reply := make(chan error, 1)
		go func() {
			_, _, err := client.SendRequest("keepalive@openssh.com", true, nil)
			reply <- err
		}()
		timeout := time.NewTimer(every)
		select {
		case err := <-reply:
			timeout.Stop()
			if err != nil {
				client.Close()
				return
			}
		case <-timeout.C:
			client.Close()
			return
		case <-ctx.Done():
			timeout.Stop()
			return
		}
	}
}

// capped keeps the first max bytes written to it: Gerrit's stderr, for the
// log line that says why a session ended.
type capped struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - len(c.buf); room > 0 {
		c.buf = append(c.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(bytes.TrimSpace(c.buf))
}
