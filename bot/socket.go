package bot

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

// SocketConfig connects the responder to Slack over Socket Mode.
type SocketConfig struct {
	// AppToken is the app-level token (xapp-…) with connections:write.
	// Required.
	AppToken string
	// APIURL is the Web API base apps.connections.open is called on.
	// Default Slack's.
	APIURL string
	// PingTimeout is how long the connection may go without a WebSocket
	// ping from Slack before it is reopened. Default 30s.
	PingTimeout time.Duration
	// MaxInFlight bounds the envelopes handled at once; more wait to be
	// read. Default 64.
	MaxInFlight int
}

func (c SocketConfig) withDefaults() SocketConfig {
	if c.APIURL == "" {
		c.APIURL = slack.APIURL
	}
	if c.PingTimeout <= 0 {
		c.PingTimeout = 30 * time.Second
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 64
	}
	return c
}

// socketResponseLimit is the size at which Slack silently drops a Socket
// Mode response (slack-go refuses to send it).
const socketResponseLimit = 20 * 1024

// ServeSocketMode answers Slack over Socket Mode until ctx is done: it opens
// a WebSocket with the app token, reopens it when Slack asks or it goes
// quiet, and answers every envelope through the same handlers as HTTP
// (ServeTrusted), acking it with what the HTTP answer's body would have
// been. Any number of processes may hold connections for one app: Slack
// gives each envelope to one of them, and the dedupe that catches Slack's
// HTTP retries catches redeliveries here too.
//
// When ctx is done it stops reading envelopes, waits for those being
// answered (each is bounded by the ack timeout), and closes the
// connection; Slack sends what it had not handed over yet to another
// connection. It returns an error only when Slack refuses the app token.
func (r *Responder) ServeSocketMode(ctx context.Context, cfg SocketConfig, hc *http.Client) error {
	cfg = cfg.withDefaults()
	if !strings.HasPrefix(cfg.AppToken, "xapp-") {
		// slack-go would retry a bot token for ever: Slack answers it with
		// not_allowed_token_type, which it takes for a passing failure.
		return errors.New("bot: Socket Mode needs an app-level token (xapp-…)")
	}
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	api := slack.New("", slack.OptionAppLevelToken(cfg.AppToken), slack.OptionAPIURL(cfg.APIURL), slack.OptionHTTPClient(hc))
	client := socketmode.New(api,
		socketmode.OptionPingInterval(cfg.PingTimeout),
		socketmode.OptionLog(slog.NewLogLogger(r.log.Handler(), slog.LevelDebug)))
	// The connection outlives ctx by the drain, so that the envelopes in
	// hand are still acked.
	runCtx, closeConn := context.WithCancel(context.WithoutCancel(ctx))
	defer closeConn()
	ran := make(chan error, 1)
	go func() { ran <- client.RunContext(runCtx) }()
	sem := make(chan struct{}, cfg.MaxInFlight)
	var inflight sync.WaitGroup
	defer r.metrics.socketUp.Set(0)
	for {
		if ctx.Err() != nil {
			inflight.Wait()
			closeConn()
			<-ran
			return nil
		}
		select {
		case <-ctx.Done():
		case err := <-ran:
			inflight.Wait()
			if err == nil || errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		case ev := <-client.Events:
			req, ep, ok := r.socketEvent(ev)
			if !ok {
				continue
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				continue // not acked: Slack sends it again
			}
			inflight.Go(func() {
				defer func() { <-sem }()
				r.answerEnvelope(runCtx, client, req, ep)
			})
		}
	}
}

// socketEvent logs and counts what the client reports about the
// connection, and returns the envelope to answer, if ev carries one.
func (r *Responder) socketEvent(ev socketmode.Event) (*socketmode.Request, Endpoint, bool) {
	switch ev.Type {
	case socketmode.EventTypeConnecting:
		r.metrics.socketUp.Set(0)
	case socketmode.EventTypeConnected:
		r.metrics.socketUp.Set(1)
		r.metrics.socketConnects.Inc()
		r.log.Info("connected to Slack over Socket Mode")
	case socketmode.EventTypeHello:
		if ev.Request != nil {
			r.log.Debug("Slack said hello", "connections", ev.Request.NumConnections)
		}
	case socketmode.EventTypeConnectionError:
		r.metrics.socketUp.Set(0)
		if e, ok := ev.Data.(*slack.ConnectionErrorEvent); ok {
			r.log.Warn("cannot connect to Slack over Socket Mode; retrying", "err", e.ErrorObj, "backoff", e.Backoff)
		}
	case socketmode.EventTypeInvalidAuth:
		r.log.Error("Slack refused the app-level token")
	case socketmode.EventTypeSlashCommand:
		return ev.Request, EndpointCommands, ev.Request != nil
	case socketmode.EventTypeInteractive:
		return ev.Request, EndpointInteractions, ev.Request != nil
	case socketmode.EventTypeEventsAPI:
		return ev.Request, EndpointEvents, ev.Request != nil
	case socketmode.EventTypeErrorBadMessage:
		// slack-go could not read the payload into its own types; the
		// handlers read the raw payload and may well understand it.
		if e, ok := ev.Data.(*socketmode.ErrorBadMessage); ok {
			return r.rescue(e)
		}
	case socketmode.EventTypeIncomingError, socketmode.EventTypeErrorWriteFailed:
		r.log.Warn("Socket Mode connection trouble", "event", string(ev.Type))
	}
	return nil, "", false
}

// rescue returns the envelope in a message slack-go could not parse, when
// it is one the responder answers.
func (r *Responder) rescue(e *socketmode.ErrorBadMessage) (*socketmode.Request, Endpoint, bool) {
	var req socketmode.Request
	if json.Unmarshal(e.Message, &req) == nil && req.EnvelopeID != "" {
		switch req.Type {
		case socketmode.RequestTypeSlashCommands:
			return &req, EndpointCommands, true
		case socketmode.RequestTypeInteractive:
			return &req, EndpointInteractions, true
		case socketmode.RequestTypeEventsAPI:
			return &req, EndpointEvents, true
		}
		// An envelope of a kind deploybot does not know: acked, so that
		// Slack does not send it again, and otherwise ignored.
		r.log.Warn("acked a Socket Mode envelope of an unknown type", "type", req.Type)
		return &req, "", true
	}
	r.log.Warn("ignored a Socket Mode message deploybot cannot read", "err", e.Cause)
	return nil, "", false
}

// answerEnvelope answers one envelope as the HTTP endpoint ep would and
// acks it with that answer.
func (r *Responder) answerEnvelope(ctx context.Context, c *socketmode.Client, req *socketmode.Request, ep Endpoint) {
	if ep == "" {
		r.ack(ctx, c, req.EnvelopeID, nil)
		return
	}
	body, responseURL, err := httpBody(ep, req.Payload)
	if err != nil {
		r.log.Warn("acked a Socket Mode envelope without answering it", "type", req.Type, "err", err)
		r.ack(ctx, c, req.EnvelopeID, nil)
		return
	}
	var hdr http.Header
	if req.RetryAttempt > 0 {
		hdr = http.Header{"X-Slack-Retry-Num": {strconv.Itoa(req.RetryAttempt)}, "X-Slack-Retry-Reason": {req.RetryReason}}
	}
	status, answer := r.ServeTrusted(ctx, ep, body, hdr)
	if status != http.StatusOK || len(answer) == 0 || !json.Valid(answer) {
		if status != http.StatusOK {
			r.log.Warn("acked a Socket Mode envelope the handlers refused", "type", req.Type, "status", status)
		}
		r.ack(ctx, c, req.EnvelopeID, nil)
		return
	}
	if len(answer) < socketResponseLimit-256 {
		r.ack(ctx, c, req.EnvelopeID, json.RawMessage(answer))
		return
	}
	// Slack drops a response this big; the answer goes to the
	// response_url instead.
	r.ack(ctx, c, req.EnvelopeID, nil)
	var msg slack.WebhookMessage
	if responseURL == "" || json.Unmarshal(answer, &msg) != nil {
		r.log.Warn("an answer too big for Socket Mode was dropped", "type", req.Type, "bytes", len(answer))
		return
	}
	r.respond(responseURL, &msg, r.log)
}

func (r *Responder) ack(ctx context.Context, c *socketmode.Client, envelope string, payload any) {
	if err := c.AckCtx(ctx, envelope, payload); err != nil {
		r.log.Warn("could not ack a Socket Mode envelope; Slack will send it again", "err", err)
	}
}

// httpBody turns an envelope's payload into the body Slack would have
// POSTed to ep, and returns the response_url in it, if any.
func httpBody(ep Endpoint, payload json.RawMessage) ([]byte, string, error) {
	switch ep {
	case EndpointCommands:
		form, err := commandForm(payload)
		if err != nil {
			return nil, "", err
		}
		return []byte(form.Encode()), form.Get("response_url"), nil
	case EndpointInteractions:
		if !json.Valid(payload) {
			return nil, "", errors.New("the interaction payload is not JSON")
		}
		var cb struct {
			ResponseURL string `json:"response_url"`
		}
		_ = json.Unmarshal(payload, &cb)
		return []byte(url.Values{"payload": {string(payload)}}.Encode()), cb.ResponseURL, nil
	default:
		return payload, "", nil
	}
}

// commandForm turns a slash command payload, which Socket Mode sends as a
// JSON object, into the form Slack POSTs over HTTP. Strings stay as they
// are; other values (is_enterprise_install is a boolean) are written as
// their JSON text, which is how the form spells them.
func commandForm(payload json.RawMessage) (url.Values, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(payload, &fields); err != nil {
		return nil, errors.New("the slash command payload is not a JSON object")
	}
	form := url.Values{}
	for k, raw := range fields {
		var s string
		switch {
		case string(raw) == "null":
		case json.Unmarshal(raw, &s) == nil:
			form.Set(k, s)
		default:
			form.Set(k, string(raw))
		}
	}
	return form, nil
}
