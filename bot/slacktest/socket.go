package slacktest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Socket Mode, as Slack runs it: apps.connections.open, called with the
// app-level token, hands out a single-use WebSocket URL; on it Slack says
// hello, pings, sends envelopes and waits for each to be acked with its
// envelope_id, and now and then asks the app to reconnect.

// Ack is what the app answered to one envelope.
type Ack struct {
	EnvelopeID string
	// Payload is the response payload, if the ack carried one.
	Payload json.RawMessage
	// Conn is the connection that acked it (numbered from 1 as opened).
	Conn int
}

type socketConn struct {
	n    int
	ws   *websocket.Conn
	wmu  sync.Mutex // one writer at a time
	done chan struct{}
}

func (c *socketConn) write(v any) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.ws.WriteJSON(v)
}

type socketState struct {
	appToken   string
	ping       time.Duration
	tickets    map[string]bool // issued and not yet used
	conns      []*socketConn   // open, in the order they were opened
	opened     int
	nextEnv    int
	nextConn   int // round robin over conns
	nextTicket int
	acks       []Ack
	changed    chan struct{} // closed and replaced on every ack and connection change
}

// EnableSocketMode lets apps.connections.open, called with appToken, open
// Socket Mode connections to the fake. Slack pings each connection every
// ping (default 1s here; slack-go reconnects after 30s without one).
func (s *Server) EnableSocketMode(appToken string, ping time.Duration) {
	if ping <= 0 {
		ping = time.Second
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.socket = &socketState{appToken: appToken, ping: ping, tickets: map[string]bool{}, changed: make(chan struct{})}
}

// openConnection answers apps.connections.open.
func (s *Server) openConnection(w http.ResponseWriter, r *http.Request) {
	// The app-level token must come in the Authorization header; Slack
	// refuses it as a POST parameter.
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		writeFile(w, http.StatusOK, "error-not_authed.json", nil)
		return
	}
	s.mu.Lock()
	st := s.socket
	if st == nil || token != st.appToken {
		s.mu.Unlock()
		if strings.HasPrefix(token, "xapp-") {
			writeFile(w, http.StatusOK, "error-invalid_auth.json", nil)
			return
		}
		// A bot or user token, or none: Slack wants an app-level token.
		writeFile(w, http.StatusOK, "error-not_allowed_token_type.json", nil)
		return
	}
	st.nextTicket++
	ticket := strconv.Itoa(st.nextTicket)
	st.tickets[ticket] = true
	s.mu.Unlock()
	writeFile(w, http.StatusOK, "apps.connections.open.json", func(m map[string]any) {
		m["url"] = "ws" + s.srv.URL[len("http"):] + "/link/?ticket=" + ticket + "&app_id=" + AppID
	})
}

// AppID is the app the fake's Socket Mode connections belong to.
const AppID = "A0DEPLOYBOT"

// upgrader takes any Origin: clients send Slack's own
// (https://api.slack.com), not the fake's.
var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

// serveLink is the WebSocket end of a connection.
func (s *Server) serveLink(w http.ResponseWriter, r *http.Request) {
	ticket := r.URL.Query().Get("ticket")
	s.mu.Lock()
	st := s.socket
	ok := st != nil && st.tickets[ticket]
	if ok {
		delete(st.tickets, ticket)
	}
	s.mu.Unlock()
	if !ok {
		http.Error(w, "invalid or used ticket", http.StatusUnauthorized)
		return
	}
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	s.mu.Lock()
	st.opened++
	c := &socketConn{n: st.opened, ws: ws, done: make(chan struct{})}
	st.conns = append(st.conns, c)
	hello := map[string]any{"type": "hello", "num_connections": len(st.conns),
		"debug_info":      map[string]any{"host": "applink-slacktest", "build_number": 1, "approximate_connection_time": 18060},
		"connection_info": map[string]any{"app_id": AppID}}
	st.notify()
	s.mu.Unlock()
	go s.pingLoop(c, st.ping)
	if c.write(hello) == nil {
		s.readAcks(c)
	}
	close(c.done)
	_ = ws.Close()
	s.mu.Lock()
	for i, o := range st.conns {
		if o == c {
			st.conns = append(st.conns[:i], st.conns[i+1:]...)
			break
		}
	}
	st.notify()
	s.mu.Unlock()
}

func (s *Server) pingLoop(c *socketConn, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			if c.ws.WriteControl(websocket.PingMessage, []byte("ping"), time.Now().Add(time.Second)) != nil {
				return
			}
		}
	}
}

// readAcks records the app's acks until the connection ends.
func (s *Server) readAcks(c *socketConn) {
	for {
		var a struct {
			EnvelopeID string          `json:"envelope_id"`
			Payload    json.RawMessage `json:"payload"`
		}
		if err := c.ws.ReadJSON(&a); err != nil {
			var syntax *json.SyntaxError
			if errors.As(err, &syntax) {
				continue
			}
			return
		}
		if a.EnvelopeID == "" {
			continue
		}
		s.mu.Lock()
		s.socket.acks = append(s.socket.acks, Ack{EnvelopeID: a.EnvelopeID, Payload: a.Payload, Conn: c.n})
		s.socket.notify()
		s.mu.Unlock()
	}
}

// notify wakes whoever waits for a change. The caller holds s.mu.
func (st *socketState) notify() {
	close(st.changed)
	st.changed = make(chan struct{})
}

// Envelope is what Slack wraps a request in on a Socket Mode connection.
type Envelope struct {
	EnvelopeID             string          `json:"envelope_id"`
	Type                   string          `json:"type"`
	Payload                json.RawMessage `json:"payload"`
	AcceptsResponsePayload bool            `json:"accepts_response_payload"`
	RetryAttempt           int             `json:"retry_attempt,omitempty"`
	RetryReason            string          `json:"retry_reason,omitempty"`
}

// Deliver sends an envelope of kind ("slash_commands", "interactive" or
// "events_api") carrying payload to the next open connection in turn, as
// Slack spreads envelopes over an app's connections, and returns its
// envelope_id. Only events_api envelopes say they accept no response
// payload.
func (s *Server) Deliver(kind string, payload json.RawMessage) (string, error) {
	return s.DeliverTo(0, Envelope{Type: kind, Payload: payload, AcceptsResponsePayload: kind != "events_api"})
}

// DeliverTo sends env on connection conn (numbered as Ack.Conn; 0 is the
// next in turn), giving it an envelope_id when it has none.
func (s *Server) DeliverTo(conn int, env Envelope) (string, error) {
	s.mu.Lock()
	st := s.socket
	var c *socketConn
	if st != nil && len(st.conns) > 0 {
		for _, o := range st.conns {
			if o.n == conn {
				c = o
			}
		}
		if conn == 0 {
			c = st.conns[st.nextConn%len(st.conns)]
			st.nextConn++
		}
	}
	if c == nil {
		s.mu.Unlock()
		return "", fmt.Errorf("slacktest: no open Socket Mode connection %d", conn)
	}
	if env.EnvelopeID == "" {
		st.nextEnv++
		env.EnvelopeID = fmt.Sprintf("%08x-5b2d-4f15-9a81-a0e8a9b10c45", st.nextEnv)
	}
	s.mu.Unlock()
	return env.EnvelopeID, c.write(env)
}

// Disconnect asks every open connection to reconnect, as Slack does before
// it refreshes a connection (reason "refresh_requested").
func (s *Server) Disconnect(reason string) {
	s.mu.Lock()
	var conns []*socketConn
	if s.socket != nil {
		conns = append(conns, s.socket.conns...)
	}
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.write(map[string]any{"type": "disconnect", "reason": reason, "debug_info": map[string]any{"host": "applink-slacktest"}})
	}
}

// SocketConnections returns how many connections are open and how many
// were ever opened.
func (s *Server) SocketConnections() (open, opened int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.socket == nil {
		return 0, 0
	}
	return len(s.socket.conns), s.socket.opened
}

// Acks returns the acks received so far, in order.
func (s *Server) Acks() []Ack {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.socket == nil {
		return nil
	}
	return append([]Ack(nil), s.socket.acks...)
}

// SocketState is what the fake's Socket Mode side looks like at a moment.
type SocketState struct {
	// Open is how many connections are open, Opened how many were ever
	// opened.
	Open, Opened int
	// Acks are the acks received so far, in order.
	Acks []Ack
}

// WaitSocket blocks until cond holds of the fake's Socket Mode state, or
// ctx is done. cond runs under the fake's lock and must not call it.
func (s *Server) WaitSocket(ctx context.Context, cond func(SocketState) bool) error {
	for {
		s.mu.Lock()
		st := s.socket
		if st == nil {
			s.mu.Unlock()
			return errors.New("slacktest: Socket Mode is not enabled")
		}
		ok := cond(SocketState{Open: len(st.conns), Opened: st.opened, Acks: st.acks})
		changed := st.changed
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// WaitAck blocks until the envelope id is acked, or ctx is done.
func (s *Server) WaitAck(ctx context.Context, id string) (Ack, error) {
	var got Ack
	err := s.WaitSocket(ctx, func(st SocketState) bool {
		for _, a := range st.Acks {
			if a.EnvelopeID == id {
				got = a
				return true
			}
		}
		return false
	})
	return got, err
}
