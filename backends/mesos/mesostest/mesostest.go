// Package mesostest is a simulated Mesos master for tests and for
// `deploybot shell`. It speaks the v1 scheduler API (/api/v1/scheduler: a
// SUBSCRIBE answered with a RecordIO stream of JSON events, calls answered
// 202) and the v1 operator API's GET_TASKS and GET_STATE (/api/v1), with
// events and answers built from payloads recorded from Mesos's
// documentation and source (testdata/, sources in testdata/SOURCES.md).
//
// It simulates what a one-task framework meets: offers from agents, offers
// rescinded, LAUNCH_GROUP validated like the master does (duplicate task
// IDs, executor minimums, resources beyond the offer, offers no longer
// valid), status updates that move TASK_STARTING → TASK_RUNNING → a
// terminal state one acknowledgement at a time and are sent again until
// acknowledged, heartbeats, re-subscription as the same framework with the
// previous connection told "Framework failed over", explicit
// reconciliation, TEARDOWN, the failover of a disconnected framework, a
// non-leading master's 307, and the master's own error texts for bad calls.
//
// Time is real but short: heartbeats come every Options.HeartbeatInterval,
// and a task moves on as soon as its previous update is acknowledged, so
// tests wait on events, not on clocks.
package mesostest

import (
	"crypto/rand"
	"crypto/tls"
	"embed"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"
)

//go:embed testdata/*.json testdata/*.txt
var payloads embed.FS

// Options shape the simulated master. The zero value is a leading master
// without authentication, with one agent, whose tasks succeed.
type Options struct {
	// TLS, when set, serves HTTPS with this config (e.g. one that requires
	// client certificates).
	TLS *tls.Config
	// Leader, when set, makes this master a non-leading one that answers
	// every API request with 307 to the leader, as Mesos does.
	Leader *Server
	// Principal and Secret, when Principal is set, are required as HTTP
	// basic auth.
	Principal, Secret string
	// Agents are offered to frameworks; nil means one agent with 4 cpus,
	// 4096 MB of memory and 10240 MB of disk.
	Agents []Agent
	// TaskOutcome decides how a launched task ends: its terminal state, the
	// exit status and the executor's message. An empty message becomes the
	// default executor's "Command exited with status N". nil means
	// TASK_FINISHED with status 0.
	TaskOutcome func(LaunchedTask) (state string, exitCode int, message string)
	// HoldRunning keeps tasks in TASK_RUNNING until Finish is called.
	HoldRunning bool
	// HeartbeatInterval is sent in SUBSCRIBED and paces HEARTBEAT events.
	// Default 100ms (Mesos's is 15s).
	HeartbeatInterval time.Duration
	// RescindFirstOffer rescinds the first offer right after sending it and
	// offers the agent again.
	RescindFirstOffer bool
	// SubscribeError makes every SUBSCRIBE get this ERROR event instead of
	// SUBSCRIBED, e.g. "Framework is not authorized".
	SubscribeError string
	// UpdateRetryDelay is how long unacknowledged updates wait before they
	// are sent again to a framework that subscribed again. Zero sends them
	// at once; Mesos's agent retries after 10s and backs off, so a
	// scheduler learns the state sooner from reconciliation.
	UpdateRetryDelay time.Duration
}

// Agent is an agent whose resources are offered.
type Agent struct {
	ID, Hostname        string
	CPUs, MemMB, DiskMB float64
}

// LaunchedTask is a task the master accepted and sent to an agent.
type LaunchedTask struct {
	TaskID, Name, AgentID, FrameworkID string
	ExecutorID, ExecutorType           string
	// ContainerType and Image come from the task's ContainerInfo.
	ContainerType, Image string
	// Shell and Command come from the task's CommandInfo; Shell is true
	// when the field was left out, as in mesos.proto.
	Shell   bool
	Command string
	Env     map[string]string
	Labels  map[string]string
	// CPUs and MemMB are the task's; Executor* the executor's.
	CPUs, MemMB                                 float64
	ExecutorCPUs, ExecutorMemMB, ExecutorDiskMB float64
}

// Ack is one ACKNOWLEDGE the master matched to an update it had sent.
type Ack struct {
	TaskID, State, UUID string
}

// Decline is one DECLINE call.
type Decline struct {
	OfferIDs      []string
	RefuseSeconds float64
}

// Subscription is one SUBSCRIBE call as the master read it.
type Subscription struct {
	// RequestedID is the framework ID the scheduler asked for ("" for a new
	// framework); FrameworkID the one it got.
	RequestedID, FrameworkID string
	User, Name, Principal    string
	Roles, SuppressedRoles   []string
	Capabilities             []string
	FailoverTimeout          float64
	Checkpoint               bool
}

// Server is a running simulated master.
type Server struct {
	// URL is the master's root, with a trailing slash.
	URL string

	srv      *httptest.Server
	opts     Options
	masterID string
	done     chan struct{}

	mu            sync.Mutex
	agents        []*agent
	frameworks    map[string]*framework
	nextFramework int
	nextOffer     int
	rescinded     bool
	timers        []*time.Timer
	launched      []LaunchedTask
	accepts       int
	acks          []Ack
	declines      []Decline
	teardowns     []string
	subs          []Subscription
	calls         []string
}

// Start runs a simulated master; Close stops it.
func Start(opts Options) *Server {
	if opts.HeartbeatInterval <= 0 {
		opts.HeartbeatInterval = 100 * time.Millisecond
	}
	s := &Server{opts: opts, masterID: newUUID(), done: make(chan struct{}), frameworks: map[string]*framework{}}
	agents := opts.Agents
	if agents == nil {
		agents = []Agent{{CPUs: 4, MemMB: 4096, DiskMB: 10240}}
	}
	for i, a := range agents {
		if a.ID == "" {
			a.ID = fmt.Sprintf("%s-S%d", s.masterID, i)
		}
		if a.Hostname == "" {
			a.Hostname = fmt.Sprintf("agent-%d.example.com", i+1)
		}
		s.agents = append(s.agents, &agent{Agent: a})
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	if opts.TLS != nil {
		s.srv.TLS = opts.TLS
		s.srv.StartTLS()
	} else {
		s.srv.Start()
	}
	s.URL = s.srv.URL + "/"
	return s
}

// Close stops the server, ending every subscription.
func (s *Server) Close() {
	s.mu.Lock()
	select {
	case <-s.done:
	default:
		close(s.done)
	}
	for _, t := range s.timers {
		t.Stop()
	}
	s.mu.Unlock()
	s.srv.Close()
}

// Client returns an HTTP client that trusts the server (for TLS servers).
func (s *Server) Client() *http.Client { return s.srv.Client() }

// AgentIDs lists the agents' IDs, in the order of Options.Agents.
func (s *Server) AgentIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, len(s.agents))
	for i, a := range s.agents {
		ids[i] = a.ID
	}
	return ids
}

// Launched lists the tasks the master launched, in order. A launch the
// master refused (TASK_ERROR, TASK_DROPPED) is not one.
func (s *Server) Launched() []LaunchedTask {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]LaunchedTask(nil), s.launched...)
}

// Accepts counts ACCEPT calls, valid or not.
func (s *Server) Accepts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepts
}

// Acks lists the acknowledged updates, in order.
func (s *Server) Acks() []Ack {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Ack(nil), s.acks...)
}

// Declines lists the DECLINE calls, in order.
func (s *Server) Declines() []Decline {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Decline(nil), s.declines...)
}

// Teardowns lists the frameworks torn down with TEARDOWN.
func (s *Server) Teardowns() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.teardowns...)
}

// Subscriptions lists the SUBSCRIBE calls that were accepted, in order.
func (s *Server) Subscriptions() []Subscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Subscription(nil), s.subs...)
}

// Calls lists the type of every scheduler call received, in order.
func (s *Server) Calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

// Connected reports whether the framework has a subscription stream open.
func (s *Server) Connected(frameworkID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	fw := s.frameworks[frameworkID]
	return fw != nil && fw.stream != nil
}

// Finish lets a task held by Options.HoldRunning reach its terminal state.
func (s *Server) Finish(taskID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, fw := range s.frameworks {
		if t := fw.tasks[taskID]; t != nil {
			t.held = false
			s.advance(fw, t)
		}
	}
}

// StallStreams makes every open subscription stream go silent — no events,
// no heartbeats — while the connection stays open: a network partition the
// scheduler has to notice by itself.
func (s *Server) StallStreams() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, fw := range s.frameworks {
		if fw.stream != nil {
			fw.stream.stalled = true
		}
	}
}

// SendError sends an ERROR event to the framework and closes its stream,
// as the master does when it ends a subscription.
func (s *Server) SendError(frameworkID, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if fw := s.frameworks[frameworkID]; fw != nil && fw.stream != nil {
		s.endStream(fw.stream, message)
		fw.stream = nil
	}
}

func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// newStatusUUID is a status update's uuid: 16 random bytes, base64 as the
// JSON form of a protobuf bytes field.
func newStatusUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func now() float64 { return float64(time.Now().UnixNano()) / 1e9 }
