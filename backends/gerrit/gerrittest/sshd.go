package gerrittest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// SSHOptions shape the simulated SSH daemon.
type SSHOptions struct {
	// User and Key are the one account allowed in, with its public key.
	User string
	Key  ssh.PublicKey
	// Sessions are, per `gerrit stream-events` session in order, the bytes
	// to write (usually StreamEvent lines) before the server ends that
	// session and drops the connection, as a restarting Gerrit would.
	// Sessions beyond the list stay open and get what Publish sends.
	Sessions [][][]byte
}

// SSHServer is a simulated Gerrit SSH daemon on 127.0.0.1 that serves
// `gerrit stream-events`.
type SSHServer struct {
	// Addr is host:port.
	Addr    string
	opts    SSHOptions
	hostKey ssh.Signer
	ln      net.Listener
	wg      sync.WaitGroup
	closed  chan struct{}

	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	live     map[ssh.Channel]struct{}
	sessions int
	rejected int
}

// StartSSH runs a simulated SSH daemon with a fresh host key; Close stops
// it.
func StartSSH(opts SSHOptions) (*SSHServer, error) {
	if opts.User == "" || opts.Key == nil {
		return nil, errors.New("gerrittest: ssh: a user and key are required")
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	hostKey, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &SSHServer{
		Addr: ln.Addr().String(), opts: opts, hostKey: hostKey, ln: ln,
		closed: make(chan struct{}), conns: map[net.Conn]struct{}{}, live: map[ssh.Channel]struct{}{},
	}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// HostKey is the server's public host key, e.g. for a known_hosts file.
func (s *SSHServer) HostKey() ssh.PublicKey { return s.hostKey.PublicKey() }

// HostKeyCallback accepts this server's host key only.
func (s *SSHServer) HostKeyCallback() ssh.HostKeyCallback {
	return ssh.FixedHostKey(s.hostKey.PublicKey())
}

// Sessions counts the stream-events sessions started so far.
func (s *SSHServer) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions
}

// Rejected counts connections whose handshake failed: a wrong user or key,
// or a client that refused the host key.
func (s *SSHServer) Rejected() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rejected
}

// Publish writes line to every open session past the Sessions list and
// reports how many got it.
func (s *SSHServer) Publish(line []byte) int {
	s.mu.Lock()
	live := make([]ssh.Channel, 0, len(s.live))
	for ch := range s.live {
		live = append(live, ch)
	}
	s.mu.Unlock()
	n := 0
	for _, ch := range live {
		if _, err := ch.Write(line); err == nil {
			n++
		}
	}
	return n
}

// Close stops the server and drops every connection.
func (s *SSHServer) Close() {
	close(s.closed)
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *SSHServer) accept() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[nc] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(nc)
			s.mu.Lock()
			delete(s.conns, nc)
			s.mu.Unlock()
			nc.Close()
		}()
	}
}

func (s *SSHServer) serveConn(nc net.Conn) {
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if meta.User() == s.opts.User && bytes.Equal(key.Marshal(), s.opts.Key.Marshal()) {
				return &ssh.Permissions{}, nil
			}
			return nil, fmt.Errorf("unknown key for %q", meta.User())
		},
	}
	cfg.AddHostKey(s.hostKey)
	sc, chans, reqs, err := ssh.NewServerConn(nc, cfg)
	if err != nil {
		s.mu.Lock()
		s.rejected++
		s.mu.Unlock()
		return
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs) // answers keepalive@openssh.com with a failure, which is an answer
	for nch := range chans {
		if nch.ChannelType() != "session" {
			_ = nch.Reject(ssh.UnknownChannelType, "unknown channel type")
			continue
		}
		ch, creqs, err := nch.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveSession(sc, ch, creqs)
		}()
	}
}

// serveSession answers an "exec" of `gerrit stream-events`; other commands
// fail the way Gerrit's DispatchCommand fails them.
func (s *SSHServer) serveSession(sc *ssh.ServerConn, ch ssh.Channel, reqs <-chan *ssh.Request) {
	for req := range reqs {
		if req.Type != "exec" {
			_ = req.Reply(false, nil)
			continue
		}
		var exec struct{ Command string }
		if err := ssh.Unmarshal(req.Payload, &exec); err != nil {
			_ = req.Reply(false, nil)
			continue
		}
		_ = req.Reply(true, nil)
		if exec.Command != "gerrit stream-events" {
			name := strings.TrimPrefix(exec.Command, "gerrit ")
			_, _ = io.WriteString(ch.Stderr(), strings.Replace(recordedText("ssh-unknown-command.txt"), "stream", name, 1))
			_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{1}))
			ch.Close()
			continue
		}
		s.stream(sc, ch)
	}
}

func (s *SSHServer) stream(sc *ssh.ServerConn, ch ssh.Channel) {
	s.mu.Lock()
	i := s.sessions
	s.sessions++
	if i >= len(s.opts.Sessions) {
		s.live[ch] = struct{}{}
		s.mu.Unlock()
		go func() {
			_ = sc.Wait()
			s.mu.Lock()
			delete(s.live, ch)
			s.mu.Unlock()
		}()
		return
	}
	s.mu.Unlock()
	for _, line := range s.opts.Sessions[i] {
		if _, err := ch.Write(line); err != nil {
			return
		}
	}
	// End the session without an exit status, then drop the connection
	// once the client has read to the end (or after a while).
	ch.Close()
	done := make(chan struct{})
	go func() { _ = sc.Wait(); close(done) }()
	select {
	case <-done:
	case <-s.closed:
	case <-time.After(5 * time.Second):
	}
	sc.Close()
}
