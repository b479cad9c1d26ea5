package mesos

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
)

// The JSON forms of the v1 protobuf messages this package sends and reads
// (include/mesos/v1/mesos.proto, scheduler/scheduler.proto,
// master/master.proto). Field names are the protobuf names, enums their
// names, bytes base64. Only the fields used here are declared.

type id struct {
	Value string `json:"value"`
}

func idOf(s string) *id {
	if s == "" {
		return nil
	}
	return &id{Value: s}
}

func (i *id) String() string {
	if i == nil {
		return ""
	}
	return i.Value
}

// double is a protobuf double. Mesos writes it as a JSON number; proto3's
// JSON mapping also allows a string ("1717430402.07", "NaN", "Infinity"),
// which Mesos's own parser accepts too (stout's protobuf.hpp), so both are
// read.
type double float64

func (d *double) UnmarshalJSON(raw []byte) error {
	s := string(raw)
	if s == "null" {
		return nil
	}
	if len(s) > 0 && s[0] == '"' {
		var err error
		if s, err = strconv.Unquote(s); err != nil {
			return fmt.Errorf("double %s: %w", raw, err)
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("double %s: not a number", raw)
	}
	*d = double(f)
	return nil
}

type scalar struct {
	Value float64 `json:"value"`
}

type allocationInfo struct {
	Role string `json:"role,omitempty"`
}

// resource keeps an offered resource's identity (role, reservations,
// allocation) as Mesos sent it, so a task's share of it can be sent back:
// the master only launches with resources the offer contains.
type resource struct {
	Name           string          `json:"name"`
	Type           string          `json:"type"`
	Scalar         *scalar         `json:"scalar,omitempty"`
	Role           string          `json:"role,omitempty"`
	AllocationInfo *allocationInfo `json:"allocation_info,omitempty"`
	Reservations   json.RawMessage `json:"reservations,omitempty"`
	Reservation    json.RawMessage `json:"reservation,omitempty"`
	ProviderID     json.RawMessage `json:"provider_id,omitempty"`
	Disk           json.RawMessage `json:"disk,omitempty"`
	Revocable      json.RawMessage `json:"revocable,omitempty"`
	Shared         json.RawMessage `json:"shared,omitempty"`
}

type offer struct {
	ID             id              `json:"id"`
	FrameworkID    id              `json:"framework_id"`
	AgentID        id              `json:"agent_id"`
	Hostname       string          `json:"hostname"`
	Resources      []resource      `json:"resources"`
	AllocationInfo *allocationInfo `json:"allocation_info,omitempty"`
}

type wireStatus struct {
	TaskID     id     `json:"task_id"`
	State      string `json:"state"`
	Message    string `json:"message"`
	Source     string `json:"source"`
	Reason     string `json:"reason"`
	AgentID    *id    `json:"agent_id"`
	ExecutorID *id    `json:"executor_id"`
	Timestamp  double `json:"timestamp"`
	UUID       string `json:"uuid"`
}

func (w wireStatus) status(frameworkID string) TaskStatus {
	return TaskStatus{
		TaskID: w.TaskID.Value, State: w.State, Message: w.Message, Reason: w.Reason, Source: w.Source,
		AgentID: w.AgentID.String(), ExecutorID: w.ExecutorID.String(), FrameworkID: frameworkID,
		ExitCode: exitCode(w.Message), Timestamp: float64(w.Timestamp), UUID: w.UUID,
	}
}

// event is a scheduler Event. ERROR carries its text in error.message per
// scheduler.proto; the HTTP API doc shows a top-level "message", which is
// read too.
type event struct {
	Type       string `json:"type"`
	Subscribed *struct {
		FrameworkID              id      `json:"framework_id"`
		HeartbeatIntervalSeconds float64 `json:"heartbeat_interval_seconds"`
	} `json:"subscribed"`
	Offers  offersField `json:"offers"`
	Rescind *struct {
		OfferID id `json:"offer_id"`
	} `json:"rescind"`
	Update *struct {
		Status wireStatus `json:"status"`
	} `json:"update"`
	Failure *struct {
		AgentID    *id    `json:"agent_id"`
		ExecutorID *id    `json:"executor_id"`
		Status     *int32 `json:"status"`
	} `json:"failure"`
	Error *struct {
		Message string `json:"message"`
	} `json:"error"`
	Message json.RawMessage `json:"message"`
}

// offersField is the OFFERS event's list. scheduler.proto nests it
// ({"offers":{"offers":[…]}}), which is what the master sends; the HTTP
// API doc shows a bare array, which is accepted too.
type offersField []offer

func (f *offersField) UnmarshalJSON(raw []byte) error {
	var list []offer
	if err := json.Unmarshal(raw, &list); err == nil {
		*f = list
		return nil
	}
	var nested struct {
		Offers []offer `json:"offers"`
	}
	if err := json.Unmarshal(raw, &nested); err != nil {
		return err
	}
	*f = nested.Offers
	return nil
}

// decodeEvent parses one RecordIO record of the subscription stream.
func decodeEvent(raw []byte) (event, error) {
	var ev event
	if err := json.Unmarshal(raw, &ev); err != nil {
		return event{}, fmt.Errorf("decode event: %w", err)
	}
	if ev.Type == "" {
		return event{}, fmt.Errorf("decode event: no type")
	}
	return ev, nil
}

func (ev event) errorMessage() string {
	if ev.Error != nil && ev.Error.Message != "" {
		return ev.Error.Message
	}
	var s string
	if json.Unmarshal(ev.Message, &s) == nil && s != "" {
		return s
	}
	return "(no message)"
}

type frameworkInfo struct {
	User            string       `json:"user"`
	Name            string       `json:"name"`
	ID              *id          `json:"id,omitempty"`
	FailoverTimeout float64      `json:"failover_timeout"`
	Checkpoint      bool         `json:"checkpoint"`
	Roles           []string     `json:"roles"`
	Principal       string       `json:"principal,omitempty"`
	Capabilities    []capability `json:"capabilities"`
}

type capability struct {
	Type string `json:"type"`
}

type filters struct {
	RefuseSeconds float64 `json:"refuse_seconds"`
}

type call struct {
	FrameworkID *id    `json:"framework_id,omitempty"`
	Type        string `json:"type"`
	Subscribe   *struct {
		FrameworkInfo   frameworkInfo `json:"framework_info"`
		SuppressedRoles []string      `json:"suppressed_roles,omitempty"`
	} `json:"subscribe,omitempty"`
	Accept *struct {
		OfferIDs   []id        `json:"offer_ids"`
		Operations []operation `json:"operations"`
		Filters    *filters    `json:"filters,omitempty"`
	} `json:"accept,omitempty"`
	Decline *struct {
		OfferIDs []id     `json:"offer_ids"`
		Filters  *filters `json:"filters,omitempty"`
	} `json:"decline,omitempty"`
	Acknowledge *struct {
		AgentID id     `json:"agent_id"`
		TaskID  id     `json:"task_id"`
		UUID    string `json:"uuid"`
	} `json:"acknowledge,omitempty"`
	Reconcile *struct {
		Tasks []reconcileTask `json:"tasks"`
	} `json:"reconcile,omitempty"`
	Revive *struct {
		Roles []string `json:"roles,omitempty"`
	} `json:"revive,omitempty"`
}

type reconcileTask struct {
	TaskID  id  `json:"task_id"`
	AgentID *id `json:"agent_id,omitempty"`
}

type operation struct {
	Type        string `json:"type"`
	LaunchGroup struct {
		Executor  executorInfo `json:"executor"`
		TaskGroup struct {
			Tasks []taskInfo `json:"tasks"`
		} `json:"task_group"`
	} `json:"launch_group"`
}

type executorInfo struct {
	Type        string     `json:"type"`
	ExecutorID  id         `json:"executor_id"`
	FrameworkID id         `json:"framework_id"`
	Name        string     `json:"name,omitempty"`
	Resources   []resource `json:"resources"`
}

type taskInfo struct {
	Name      string        `json:"name"`
	TaskID    id            `json:"task_id"`
	AgentID   id            `json:"agent_id"`
	Resources []resource    `json:"resources"`
	Command   commandInfo   `json:"command"`
	Container containerInfo `json:"container"`
	Labels    *labels       `json:"labels,omitempty"`
}

// commandInfo's shell defaults to true in mesos.proto; with no command it
// must be false so the image's entrypoint runs (docs/isolators/docker-runtime.md:
// shell=1 without a value is an error).
type commandInfo struct {
	Shell       bool         `json:"shell"`
	Value       string       `json:"value,omitempty"`
	Environment *environment `json:"environment,omitempty"`
}

type environment struct {
	Variables []variable `json:"variables"`
}

type variable struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Value string `json:"value"`
}

type containerInfo struct {
	Type  string `json:"type"`
	Mesos struct {
		Image struct {
			Type   string `json:"type"`
			Docker struct {
				Name string `json:"name"`
			} `json:"docker"`
		} `json:"image"`
	} `json:"mesos"`
}

type labels struct {
	Labels []label `json:"labels"`
}

type label struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
