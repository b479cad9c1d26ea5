package mesostest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// subscribed is a raw subscription to the double, read record by record.
type subscribed struct {
	streamID, frameworkID string
	br                    *bufio.Reader
}

func post(t *testing.T, url, contentType, streamID string, body []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if streamID != "" {
		req.Header.Set("Mesos-Stream-Id", streamID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func openStream(t *testing.T, s *Server, body []byte) *subscribed {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"api/v1/scheduler", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("SUBSCRIBE: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	sub := &subscribed{streamID: resp.Header.Get("Mesos-Stream-Id"), br: bufio.NewReader(resp.Body)}
	ev := sub.next(t)
	if ev["type"] != "SUBSCRIBED" {
		t.Fatalf("first event %v", ev)
	}
	sub.frameworkID = ev["subscribed"].(map[string]any)["framework_id"].(map[string]any)["value"].(string)
	return sub
}

// next reads one RecordIO record and decodes it.
func (s *subscribed) next(t *testing.T) map[string]any {
	t.Helper()
	line, err := s.br.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSuffix(line, "\n"))
	if err != nil {
		t.Fatalf("record size %q: %v", line, err)
	}
	raw := make([]byte, n)
	if _, err := io.ReadFull(s.br, raw); err != nil {
		t.Fatal(err)
	}
	var ev map[string]any
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// nextOf skips heartbeats.
func (s *subscribed) nextOf(t *testing.T, typ string) map[string]any {
	t.Helper()
	for i := 0; i < 100; i++ {
		if ev := s.next(t); ev["type"] == typ {
			return ev
		} else if ev["type"] != "HEARTBEAT" {
			t.Fatalf("got %v while waiting for %s", ev, typ)
		}
	}
	t.Fatalf("no %s", typ)
	return nil
}

func testdata(t *testing.T, name, frameworkID string) []byte {
	t.Helper()
	raw, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(strings.ReplaceAll(string(raw), "628984d0-4213-4140-bcb0-99d7ef46b1df-0000", frameworkID))
}

// TestRecordedCallsAccepted drives the double with the recorded calls
// alone, as a scheduler written from the Mesos docs would.
func TestRecordedCallsAccepted(t *testing.T) {
	t.Parallel()
	s := Start(Options{HeartbeatInterval: 10 * time.Millisecond})
	defer s.Close()
	sub := openStream(t, s, testdata(t, "call-subscribe.json", ""))
	offers := sub.nextOf(t, "OFFERS")["offers"].(map[string]any)["offers"].([]any)
	offer := offers[0].(map[string]any)
	offerID := offer["id"].(map[string]any)["value"].(string)
	agentID := offer["agent_id"].(map[string]any)["value"].(string)
	accept := strings.NewReplacer("628984d0-4213-4140-bcb0-99d7ef46b1df-O1", offerID,
		"628984d0-4213-4140-bcb0-99d7ef46b1df-S0", agentID).Replace(string(testdata(t, "call-accept.json", sub.frameworkID)))
	call := func(body []byte) {
		t.Helper()
		resp := post(t, s.URL+"api/v1/scheduler", "application/json", sub.streamID, body)
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			msg, _ := io.ReadAll(resp.Body)
			t.Fatalf("%d %s for %s", resp.StatusCode, msg, body)
		}
	}
	call([]byte(accept))
	for _, want := range []string{"TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"} {
		st := sub.nextOf(t, "UPDATE")["update"].(map[string]any)["status"].(map[string]any)
		if st["state"] != want || st["uuid"] == "" {
			t.Fatalf("update %v, want %s", st, want)
		}
		ack := fmt.Sprintf(`{"framework_id":{"value":%q},"type":"ACKNOWLEDGE","acknowledge":{"agent_id":{"value":%q},`+
			`"task_id":{"value":"deploybot-42-migrate"},"uuid":%q}}`, sub.frameworkID, agentID, st["uuid"])
		call([]byte(ack))
	}
	for _, name := range []string{"call-decline.json", "call-reconcile.json", "call-revive.json", "call-teardown.json"} {
		call(testdata(t, name, sub.frameworkID))
	}
	lt := s.Launched()
	if len(lt) != 1 || lt[0].Image != "registry.example.com/api:1.4.2" || lt[0].Env["DATABASE_URL"] == "" || len(s.Acks()) != 3 {
		t.Fatalf("launched %+v, acks %v", lt, s.Acks())
	}
}

// TestErrorAnswers checks the master's answers to bad requests.
func TestErrorAnswers(t *testing.T) {
	t.Parallel()
	s := Start(Options{})
	defer s.Close()
	sub := openStream(t, s, testdata(t, "call-subscribe.json", ""))
	teardown := testdata(t, "call-teardown.json", sub.frameworkID)
	for _, tc := range []struct {
		name, contentType, streamID string
		body                        []byte
		status                      int
		text                        string
	}{
		{"wrong content type", "application/json; charset=utf-8", sub.streamID, teardown, 415, "Expecting 'Content-Type' of application/json or application/x-protobuf"},
		{"no stream id", "application/json", "", teardown, 400, "All non-subscribe calls should include the 'Mesos-Stream-Id' header"},
		{"stale stream id", "application/json", "0000", teardown, 400, "The stream ID '0000' included in this request didn't match"},
		{"unknown framework", "application/json", sub.streamID, testdata(t, "call-teardown.json", "nope"), 400, "Framework cannot be found"},
		{"subscribe with stream id", "application/json", sub.streamID, testdata(t, "call-subscribe.json", ""), 400, "Subscribe calls should not include the 'Mesos-Stream-Id' header"},
		{"no framework id", "application/json", sub.streamID, []byte(`{"type":"TEARDOWN"}`), 400, "Failed to validate scheduler::Call: Expecting 'framework_id' to be present"},
		{"ids differ", "application/json", "", []byte(`{"framework_id":{"value":"a"},"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"u","name":"n"}}}`), 400, "Failed to validate scheduler::Call: 'framework_id' differs from 'subscribe.framework_info.id'"},
		{"not json", "application/json", sub.streamID, []byte(`{`), 400, "Failed to parse body into JSON"},
	} {
		resp := post(t, s.URL+"api/v1/scheduler", tc.contentType, tc.streamID, tc.body)
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.HasPrefix(string(msg), tc.text) {
			t.Errorf("%s: %d %q, want %d %q", tc.name, resp.StatusCode, msg, tc.status, tc.text)
		}
	}
	resp, err := http.Get(s.URL + "api/v1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

func TestRedirectAndAuth(t *testing.T) {
	t.Parallel()
	leader := Start(Options{Principal: "deploybot", Secret: "s3cret"})
	defer leader.Close()
	standby := Start(Options{Leader: leader, Principal: "deploybot", Secret: "s3cret"})
	defer standby.Close()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		path, user string
		status     int
		header     string
	}{
		{"api/v1/scheduler", "", 401, `Basic realm="mesos-master-scheduler"`},
		{"api/v1", "", 401, `Basic realm="mesos-master-readwrite"`},
		{"api/v1", "deploybot", 307, "//" + strings.TrimPrefix(strings.TrimSuffix(leader.URL, "/"), "http://") + "/api/v1"},
	} {
		req, _ := http.NewRequest(http.MethodPost, standby.URL+tc.path, strings.NewReader(`{"type":"GET_TASKS"}`))
		req.Header.Set("Content-Type", "application/json")
		if tc.user != "" {
			req.SetBasicAuth(tc.user, "s3cret")
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got := resp.Header.Get("WWW-Authenticate") + resp.Header.Get("Location")
		if resp.StatusCode != tc.status || got != tc.header {
			t.Errorf("%s as %q: %d %q, want %d %q", tc.path, tc.user, resp.StatusCode, got, tc.status, tc.header)
		}
	}
}

// TestGetStateIdle: before any framework subscribed, GET_STATE lists the
// agents and, like the master, every list even when it is empty; the
// recorded other framework and its completed task stay as history.
func TestGetStateIdle(t *testing.T) {
	t.Parallel()
	s := Start(Options{Agents: []Agent{{CPUs: 8, MemMB: 16384, DiskMB: 1000}}})
	defer s.Close()
	resp := post(t, s.URL+"api/v1", "application/json", "", []byte(`{"type":"GET_STATE"}`))
	defer resp.Body.Close()
	var out struct {
		Type     string `json:"type"`
		GetState struct {
			GetTasks      map[string][]json.RawMessage `json:"get_tasks"`
			GetExecutors  map[string][]json.RawMessage `json:"get_executors"`
			GetFrameworks map[string][]json.RawMessage `json:"get_frameworks"`
			GetAgents     struct {
				Agents []struct {
					AgentInfo struct {
						ID       idJSON         `json:"id"`
						Hostname string         `json:"hostname"`
						Res      []resourceJSON `json:"resources"`
					} `json:"agent_info"`
				} `json:"agents"`
				Recovered []json.RawMessage `json:"recovered_agents"`
			} `json:"get_agents"`
		} `json:"get_state"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || out.Type != "GET_STATE" {
		t.Fatalf("GET_STATE: %d %v %+v", resp.StatusCode, err, out)
	}
	g := out.GetState
	for _, k := range []string{"tasks", "unreachable_tasks", "completed_tasks"} {
		if _, ok := g.GetTasks[k]; !ok {
			t.Errorf("get_tasks has no %q", k)
		}
	}
	if len(g.GetTasks["tasks"]) != 0 || len(g.GetTasks["completed_tasks"]) != 1 || len(g.GetExecutors["executors"]) != 0 ||
		len(g.GetFrameworks["frameworks"]) != 1 || g.GetFrameworks["completed_frameworks"] == nil {
		t.Errorf("idle state: %+v", g)
	}
	agents := g.GetAgents.Agents
	if len(agents) != 1 || agents[0].AgentInfo.ID.Value != s.AgentIDs()[0] || agents[0].AgentInfo.Hostname != "agent-1.example.com" {
		t.Fatalf("agents %+v", agents)
	}
	if cpus, mem, disk := scalars(agents[0].AgentInfo.Res); cpus != 8 || mem != 16384 || disk != 1000 {
		t.Errorf("agent resources %v %v %v", cpus, mem, disk)
	}
}
