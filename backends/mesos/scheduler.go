package mesos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// subscription is one SUBSCRIBE connection to the leading master.
type subscription struct {
	master      *url.URL // where every call of this subscription goes
	streamID    string   // Mesos-Stream-Id, sent with every call
	frameworkID string
	heartbeat   time.Duration
	suppressed  bool
	events      <-chan streamItem
	cancel      context.CancelFunc
	done        chan struct{}
}

type streamItem struct {
	ev  event
	err error
}

// defaultHeartbeat is the master's (DEFAULT_HEARTBEAT_INTERVAL), for a
// SUBSCRIBED event that does not say.
const defaultHeartbeat = 15 * time.Second

// errResubscribe marks a call the master refused because it no longer
// knows this subscription (master failover, a dropped connection): a new
// SUBSCRIBE fixes it.
var errResubscribe = errors.New("mesos: subscription lost")

// subscribe opens the event stream as a new framework (frameworkID empty)
// or as an existing one, and waits for SUBSCRIBED. suppress subscribes with
// the role suppressed, for a run that needs no offers.
func (c *Client) subscribe(ctx context.Context, frameworkID string, suppress bool) (*subscription, error) {
	var cl call
	cl.Type, cl.FrameworkID = "SUBSCRIBE", idOf(frameworkID)
	cl.Subscribe = &struct {
		FrameworkInfo   frameworkInfo `json:"framework_info"`
		SuppressedRoles []string      `json:"suppressed_roles,omitempty"`
	}{FrameworkInfo: c.frameworkInfo(frameworkID)}
	if suppress {
		cl.Subscribe.SuppressedRoles = []string{c.cfg.Role}
	}
	body, err := json.Marshal(cl)
	if err != nil {
		return nil, fmt.Errorf("mesos: subscribe: %w", err)
	}
	sctx, cancel := context.WithCancel(ctx)
	resp, master, err := c.post(sctx, c.stream, c.base, schedulerPath, body, "")
	if err != nil {
		cancel()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		err := c.httpError(resp)
		drain(resp)
		cancel()
		return nil, err
	}
	events := make(chan streamItem)
	sub := &subscription{
		master: master, streamID: resp.Header.Get("Mesos-Stream-Id"), suppressed: suppress,
		events: events, cancel: cancel, done: make(chan struct{}),
	}
	go readEvents(sctx, resp.Body, events, sub.done, c.log)
	if err := sub.waitSubscribed(ctx, c.callTimeout()); err != nil {
		sub.close()
		return nil, err
	}
	return sub, nil
}

func (c *Client) frameworkInfo(frameworkID string) frameworkInfo {
	return frameworkInfo{
		User: c.cfg.User, Name: c.cfg.FrameworkName, ID: idOf(frameworkID),
		FailoverTimeout: c.cfg.FailoverTimeout.Seconds(),
		// Checkpointing lets a task survive an agent restart.
		Checkpoint: true,
		Roles:      []string{c.cfg.Role},
		Principal:  c.cfg.Principal,
		// PARTITION_AWARE: a partitioned agent's task is TASK_UNREACHABLE
		// (it may still run) rather than TASK_LOST.
		Capabilities: []capability{{Type: "MULTI_ROLE"}, {Type: "PARTITION_AWARE"}},
	}
}

func (c *Client) callTimeout() time.Duration {
	if c.hc.Timeout > 0 {
		return c.hc.Timeout
	}
	return 75 * time.Second
}

// waitSubscribed reads the first event, which is SUBSCRIBED or ERROR.
func (s *subscription) waitSubscribed(ctx context.Context, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("mesos: subscribe: no SUBSCRIBED event within %s", timeout)
	case it := <-s.events:
		switch {
		case it.err != nil:
			return fmt.Errorf("mesos: subscribe: %w", it.err)
		case it.ev.Type == "ERROR":
			return errorEvent(it.ev.errorMessage())
		case it.ev.Type != "SUBSCRIBED" || it.ev.Subscribed == nil || it.ev.Subscribed.FrameworkID.Value == "":
			return fmt.Errorf("mesos: subscribe: first event is %s, not SUBSCRIBED", it.ev.Type)
		}
		s.frameworkID = it.ev.Subscribed.FrameworkID.Value
		s.heartbeat = defaultHeartbeat
		if secs := it.ev.Subscribed.HeartbeatIntervalSeconds; secs > 0 {
			s.heartbeat = time.Duration(secs * float64(time.Second))
		}
		return nil
	}
}

// close drops the connection; the master then counts the framework as
// disconnected and starts its failover timeout.
func (s *subscription) close() {
	s.cancel()
	<-s.done
}

// readEvents feeds the stream's events to out until the stream ends, with
// the error that ended it as the last item. An event that is framed
// correctly but cannot be decoded is logged and skipped.
func readEvents(ctx context.Context, body io.ReadCloser, out chan<- streamItem, done chan<- struct{}, log *slog.Logger) {
	defer close(done)
	defer body.Close()
	rr := newRecordReader(body, maxRecord)
	for {
		raw, err := rr.next()
		var it streamItem
		if err != nil {
			it.err = err
		} else if it.ev, err = decodeEvent(raw); err != nil {
			log.Warn("mesos: skipping an event", "err", err, "bytes", len(raw))
			continue
		}
		select {
		case out <- it:
		case <-ctx.Done():
			return
		}
		if it.err != nil {
			return
		}
	}
}

// call sends a non-SUBSCRIBE call on the subscription's master.
func (c *Client) call(ctx context.Context, s *subscription, cl call) error {
	cl.FrameworkID = idOf(s.frameworkID)
	body, err := json.Marshal(cl)
	if err != nil {
		return fmt.Errorf("mesos: %s: %w", cl.Type, err)
	}
	resp, _, err := c.post(ctx, c.hc, s.master, schedulerPath, body, s.streamID)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", errResubscribe, cl.Type, err)
	}
	defer drain(resp)
	if resp.StatusCode == http.StatusAccepted || resp.StatusCode == http.StatusOK {
		return nil
	}
	err = c.httpError(resp)
	var he *HTTPError
	if errors.As(err, &he) && lostSubscription(he) {
		return fmt.Errorf("%w: %s: %w", errResubscribe, cl.Type, err)
	}
	return fmt.Errorf("mesos: %s: %w", cl.Type, err)
}

// lostSubscription recognises the master's answers to a call from a
// subscription it no longer has (src/master/http.cpp): 403 "Framework is
// not subscribed", 400 "Framework cannot be found" after a master
// failover, 400 for a stream ID that is no longer current — and server
// errors.
func lostSubscription(he *HTTPError) bool {
	return he.Temporary() || he.Status == http.StatusForbidden ||
		he.Status == http.StatusBadRequest && (strings.Contains(he.Body, "Framework cannot be found") ||
			strings.Contains(he.Body, "didn't match the stream ID"))
}
