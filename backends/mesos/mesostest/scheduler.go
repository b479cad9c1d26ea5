package mesostest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"time"
)

type idJSON struct {
	Value string `json:"value"`
}

func (i *idJSON) get() string {
	if i == nil {
		return ""
	}
	return i.Value
}

type filtersJSON struct {
	RefuseSeconds *float64 `json:"refuse_seconds"`
}

// refuse is Filters.refuse_seconds with mesos.proto's default of 5 s.
func (f *filtersJSON) refuse() float64 {
	if f == nil || f.RefuseSeconds == nil {
		return 5
	}
	return *f.RefuseSeconds
}

// schedCall is the part of scheduler.proto's Call the simulation reads.
type schedCall struct {
	FrameworkID *idJSON `json:"framework_id"`
	Type        string  `json:"type"`
	Subscribe   *struct {
		FrameworkInfo struct {
			User            string   `json:"user"`
			Name            string   `json:"name"`
			ID              *idJSON  `json:"id"`
			FailoverTimeout float64  `json:"failover_timeout"`
			Checkpoint      bool     `json:"checkpoint"`
			Roles           []string `json:"roles"`
			Principal       string   `json:"principal"`
			Capabilities    []struct {
				Type string `json:"type"`
			} `json:"capabilities"`
		} `json:"framework_info"`
		SuppressedRoles []string `json:"suppressed_roles"`
	} `json:"subscribe"`
	Accept *struct {
		OfferIDs   []idJSON          `json:"offer_ids"`
		Operations []json.RawMessage `json:"operations"`
		Filters    *filtersJSON      `json:"filters"`
	} `json:"accept"`
	Decline *struct {
		OfferIDs []idJSON     `json:"offer_ids"`
		Filters  *filtersJSON `json:"filters"`
	} `json:"decline"`
	Acknowledge *struct {
		AgentID idJSON `json:"agent_id"`
		TaskID  idJSON `json:"task_id"`
		UUID    string `json:"uuid"`
	} `json:"acknowledge"`
	Reconcile *struct {
		Tasks []struct {
			TaskID  idJSON  `json:"task_id"`
			AgentID *idJSON `json:"agent_id"`
		} `json:"tasks"`
	} `json:"reconcile"`
	Kill *struct {
		TaskID idJSON `json:"task_id"`
	} `json:"kill"`
}

// validate does the checks of validation::scheduler::call::validate
// (src/master/validation.cpp) that a client can get wrong.
func (c *schedCall) validate() string {
	switch {
	case c.Type == "":
		return "Expecting 'type' to be present"
	case c.Type == "SUBSCRIBE" && c.Subscribe == nil:
		return "Expecting 'subscribe' to be present"
	case c.Type == "SUBSCRIBE" && c.Subscribe.FrameworkInfo.ID.get() != c.FrameworkID.get():
		return "'framework_id' differs from 'subscribe.framework_info.id'"
	case c.Type == "SUBSCRIBE":
		return ""
	case c.FrameworkID == nil:
		return "Expecting 'framework_id' to be present"
	case c.Type == "ACCEPT" && c.Accept == nil:
		return "Expecting 'accept' to be present"
	case c.Type == "DECLINE" && c.Decline == nil:
		return "Expecting 'decline' to be present"
	case c.Type == "KILL" && c.Kill == nil:
		return "Expecting 'kill' to be present"
	case c.Type == "ACKNOWLEDGE" && c.Acknowledge == nil:
		return "Expecting 'acknowledge' to be present"
	case c.Type == "RECONCILE" && c.Reconcile == nil:
		return "Expecting 'reconcile' to be present"
	case c.Type == "ACKNOWLEDGE":
		if b, err := base64.StdEncoding.DecodeString(c.Acknowledge.UUID); err != nil || len(b) != 16 {
			return "Not a valid UUID"
		}
	}
	return ""
}

// scheduler serves /api/v1/scheduler after the checks of serve, in the
// order of Master::Http::scheduler.
func (s *Server) scheduler(w http.ResponseWriter, r *http.Request, body []byte) {
	var c schedCall
	if err := json.Unmarshal(body, &c); err != nil {
		plainError(w, http.StatusBadRequest, "Failed to convert JSON into Call protobuf: "+err.Error())
		return
	}
	s.mu.Lock()
	s.calls = append(s.calls, c.Type)
	s.mu.Unlock()
	if msg := c.validate(); msg != "" {
		plainError(w, http.StatusBadRequest, recordedText("error-400-validate.txt")+msg)
		return
	}
	if c.Type == "SUBSCRIBE" {
		if r.Header.Get("Mesos-Stream-Id") != "" {
			plainError(w, http.StatusBadRequest, recordedText("error-400-subscribe-stream-id.txt"))
			return
		}
		s.subscribe(w, r, &c)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fw := s.frameworks[c.FrameworkID.Value]
	switch streamID := r.Header.Get("Mesos-Stream-Id"); {
	case fw == nil:
		plainError(w, http.StatusBadRequest, recordedText("error-400-framework-not-found.txt"))
	case fw.stream == nil:
		plainError(w, http.StatusForbidden, recordedText("error-403-not-subscribed.txt"))
	case streamID == "":
		plainError(w, http.StatusBadRequest, recordedText("error-400-no-stream-id.txt"))
	case streamID != fw.stream.id:
		plainError(w, http.StatusBadRequest, fmt.Sprintf("The stream ID '%s' included in this request "+
			"didn't match the stream ID currently associated with framework ID %s", streamID, fw.id))
	default:
		s.dispatch(fw, &c)
		w.WriteHeader(http.StatusAccepted)
	}
}

// dispatch carries out a call of a subscribed framework; s.mu is held.
func (s *Server) dispatch(fw *framework, c *schedCall) {
	switch c.Type {
	case "TEARDOWN":
		s.teardowns = append(s.teardowns, fw.id)
		s.removeFramework(fw)
	case "ACCEPT":
		s.accept(fw, c.Accept.OfferIDs, c.Accept.Operations, c.Accept.Filters.refuse())
	case "DECLINE":
		d := Decline{RefuseSeconds: c.Decline.Filters.refuse()}
		for _, o := range c.Decline.OfferIDs {
			d.OfferIDs = append(d.OfferIDs, o.Value)
			if off := fw.offers[o.Value]; off != nil {
				delete(fw.offers, o.Value)
				s.filter(fw, off.agent, d.RefuseSeconds)
			}
		}
		s.declines = append(s.declines, d)
	case "ACKNOWLEDGE":
		s.acknowledge(fw, c.Acknowledge.TaskID.Value, c.Acknowledge.UUID)
	case "RECONCILE":
		var ids []string
		for _, t := range c.Reconcile.Tasks {
			ids = append(ids, t.TaskID.Value)
		}
		s.reconcile(fw, ids)
	case "REVIVE":
		fw.suppressed = false
		fw.filters = map[string]time.Time{}
		s.offer(fw)
	case "SUPPRESS":
		fw.suppressed = true
	case "KILL":
		if t := fw.tasks[c.Kill.TaskID.Value]; t != nil && !terminal(t.state) {
			t.held = false
			t.outcome = &outcome{state: "TASK_KILLED", message: "Command terminated with signal Terminated"}
			s.advance(fw, t)
		}
	}
}

// subscribe answers SUBSCRIBE with the event stream and keeps writing it
// until the scheduler or the server closes it.
func (s *Server) subscribe(w http.ResponseWriter, r *http.Request, c *schedCall) {
	st := &stream{id: newUUID(), wake: make(chan struct{}, 1), closed: make(chan struct{})}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Mesos-Stream-Id", st.id)
	w.WriteHeader(http.StatusOK)
	s.mu.Lock()
	fw := s.attach(st, c)
	s.mu.Unlock()
	s.writeStream(w, r, st)
	s.mu.Lock()
	if fw != nil && fw.stream == st {
		fw.stream = nil // disconnected: the failover timeout starts
	}
	s.mu.Unlock()
}

// attach makes st the stream of the framework the call names (or of a new
// one) and queues SUBSCRIBED, pending updates and offers; or queues the
// ERROR that refuses the subscription.
func (s *Server) attach(st *stream, c *schedCall) *framework {
	info := c.Subscribe.FrameworkInfo
	requested := info.ID.get()
	fw := s.frameworks[requested]
	switch {
	case s.opts.SubscribeError != "":
		s.endStream(st, s.opts.SubscribeError)
		return nil
	case fw != nil && fw.removed:
		// Master::validateFramework: "Framework has been removed".
		s.endStream(st, "Framework has been removed")
		return nil
	case fw == nil:
		id := requested
		if id == "" {
			id = fmt.Sprintf("%s-%04d", s.masterID, s.nextFramework)
			s.nextFramework++
		}
		fw = &framework{id: id, tasks: map[string]*task{}, offers: map[string]*offerState{}, filters: map[string]time.Time{}}
		s.frameworks[id] = fw
	case fw.stream != nil:
		s.endStream(fw.stream, "Framework failed over")
	}
	sub := Subscription{
		RequestedID: requested, FrameworkID: fw.id, User: info.User, Name: info.Name, Principal: info.Principal,
		Roles: info.Roles, SuppressedRoles: c.Subscribe.SuppressedRoles, FailoverTimeout: info.FailoverTimeout, Checkpoint: info.Checkpoint,
	}
	for _, cp := range info.Capabilities {
		sub.Capabilities = append(sub.Capabilities, cp.Type)
		if cp.Type == "PARTITION_AWARE" {
			fw.partitionAware = true
		}
	}
	s.subs = append(s.subs, sub)
	fw.user, fw.name, fw.stream, fw.suppressed = info.User, info.Name, st, len(c.Subscribe.SuppressedRoles) > 0
	fw.offers = map[string]*offerState{} // offers of an old connection are gone
	ev := template("subscribed.json")
	sub0 := ev["subscribed"].(map[string]any)
	sub0["framework_id"] = map[string]any{"value": fw.id}
	sub0["heartbeat_interval_seconds"] = s.opts.HeartbeatInterval.Seconds()
	s.push(st, ev)
	s.retryUpdates(fw, st)
	s.offer(fw)
	return fw
}

// retryUpdates sends the framework's unacknowledged updates again, as the
// agent does, after Options.UpdateRetryDelay if the framework is still on
// stream st by then.
func (s *Server) retryUpdates(fw *framework, st *stream) {
	resend := func() {
		if fw.stream != st {
			return
		}
		for _, t := range fw.order {
			s.sendHead(fw, t)
		}
	}
	if s.opts.UpdateRetryDelay <= 0 {
		resend()
		return
	}
	s.timers = append(s.timers, time.AfterFunc(s.opts.UpdateRetryDelay, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		resend()
	}))
}

// endStream queues an ERROR event and closes the stream after it.
func (s *Server) endStream(st *stream, message string) {
	ev := template("error.json")
	ev["error"].(map[string]any)["message"] = message
	s.push(st, ev)
	st.close()
}

// writeStream writes queued events as RecordIO records, and a HEARTBEAT
// every interval, until the connection or the stream ends.
func (s *Server) writeStream(w http.ResponseWriter, r *http.Request, st *stream) {
	flusher, _ := w.(http.Flusher)
	heartbeat := time.NewTicker(s.opts.HeartbeatInterval)
	defer heartbeat.Stop()
	write := func() bool {
		s.mu.Lock()
		var batch [][]byte
		if !st.stalled {
			batch, st.queue = st.queue, nil
		}
		s.mu.Unlock()
		for _, raw := range batch {
			if _, err := fmt.Fprintf(w, "%d\n%s", len(raw), raw); err != nil {
				return false
			}
		}
		if flusher != nil {
			flusher.Flush()
		}
		return true
	}
	for write() {
		select {
		case <-st.wake:
		case <-heartbeat.C:
			s.mu.Lock()
			if !st.stalled {
				s.push(st, template("heartbeat.json"))
			}
			s.mu.Unlock()
		case <-st.closed:
			write()
			return
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		}
	}
}

// push queues an event on st; s.mu is held.
func (s *Server) push(st *stream, ev map[string]any) {
	raw, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	st.queue = append(st.queue, raw)
	select {
	case st.wake <- struct{}{}:
	default:
	}
}

func (s *Server) sortedFrameworks() []*framework {
	fws := make([]*framework, 0, len(s.frameworks))
	for _, fw := range s.frameworks {
		fws = append(fws, fw)
	}
	sort.Slice(fws, func(i, j int) bool { return fws[i].id < fws[j].id })
	return fws
}
