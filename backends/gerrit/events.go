package gerrit

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Event types deploybot acts on; Gerrit sends many more, which ParseEvent
// accepts too.
const (
	EventPatchSetCreated = "patchset-created"
	EventCommentAdded    = "comment-added"
	EventChangeMerged    = "change-merged"
	// EventChangeAbandoned ends a change without a merge; it carries the
	// Abandoner and, if one was given, the Reason.
	EventChangeAbandoned = "change-abandoned"
	EventRefUpdated      = "ref-updated"
	// EventDroppedOutput tells a stream-events reader that Gerrit dropped
	// events because the reader was too slow.
	EventDroppedOutput = "dropped-output"
)

// MaxEventSize caps one event: a stream-events line or a webhook body.
const MaxEventSize = 4 << 20

// Event is a Gerrit event, from `gerrit stream-events` or from the webhooks
// plugin. Any field may be missing. Encoded with encoding/json it is again
// an event ParseEvent reads back the same.
type Event struct {
	Type      string         `json:"type"`
	Change    *EventChange   `json:"change,omitempty"`
	PatchSet  *EventPatchSet `json:"patchSet,omitempty"`
	Author    *EventAccount  `json:"author,omitempty"`
	Uploader  *EventAccount  `json:"uploader,omitempty"`
	Submitter *EventAccount  `json:"submitter,omitempty"`
	Abandoner *EventAccount  `json:"abandoner,omitempty"`
	// Reason is, on change-abandoned, the message the abandoner gave; it is
	// empty when they gave none.
	Reason    string     `json:"reason,omitempty"`
	Approvals []Approval `json:"approvals,omitempty"`
	Comment   string     `json:"comment,omitempty"`
	RefUpdate *RefUpdate `json:"refUpdate,omitempty"`
	// NewRev is, on change-merged, the branch tip after the merge.
	NewRev string `json:"newRev,omitempty"`
	// Project is the change's project, else the updated ref's, else the
	// event's top-level project (a string on stream-events, an object on
	// webhooks).
	Project string `json:"project,omitempty"`
	// RefName is the full ref, "refs/heads/main", of the change's branch or
	// of the updated ref. Gerrit before 2.13 sent short names.
	RefName string `json:"refName,omitempty"`
	// EventCreatedOn is in seconds since the epoch.
	EventCreatedOn int64 `json:"eventCreatedOn,omitempty"`
}

// EventChange is the change an event is about.
type EventChange struct {
	Project string `json:"project,omitempty"`
	Branch  string `json:"branch,omitempty"`
	// ID is the Change-Id, "I8473b959…".
	ID      string        `json:"id,omitempty"`
	Number  int           `json:"number,omitempty"`
	Subject string        `json:"subject,omitempty"`
	Owner   *EventAccount `json:"owner,omitempty"`
	// URL is for people; it is absent when Gerrit has no canonicalWebUrl.
	URL    string `json:"url,omitempty"`
	Status string `json:"status,omitempty"`
}

// EventPatchSet is the patch set an event is about.
type EventPatchSet struct {
	Number    int           `json:"number,omitempty"`
	Revision  string        `json:"revision,omitempty"`
	Ref       string        `json:"ref,omitempty"`
	Uploader  *EventAccount `json:"uploader,omitempty"`
	Author    *EventAccount `json:"author,omitempty"`
	Kind      string        `json:"kind,omitempty"`
	CreatedOn int64         `json:"createdOn,omitempty"`
}

// EventAccount is a person in an event; events carry no account id.
type EventAccount struct {
	Name     string `json:"name,omitempty"`
	Email    string `json:"email,omitempty"`
	Username string `json:"username,omitempty"`
}

// Approval is one label in a comment-added event. Gerrit lists every label
// of the project, in no fixed order; the ones this review changed have an
// OldValue.
type Approval struct {
	Type string `json:"type"`
	// Description is the label name again.
	Description string `json:"description,omitempty"`
	Value       int    `json:"value"`
	OldValue    *int   `json:"oldValue,omitempty"`
}

// Changed reports whether the review that caused the event changed this
// label.
func (a Approval) Changed() bool { return a.OldValue != nil }

// RefUpdate is the ref a ref-updated event is about.
type RefUpdate struct {
	OldRev  string `json:"oldRev,omitempty"`
	NewRev  string `json:"newRev,omitempty"`
	RefName string `json:"refName,omitempty"`
	Project string `json:"project,omitempty"`
}

// Approval returns the approval for label, if the event has one.
func (e Event) Approval(label string) (Approval, bool) {
	for _, a := range e.Approvals {
		if a.Type == label {
			return a, true
		}
	}
	return Approval{}, false
}

// The wire forms differ from Event where Gerrit's history does: numbers
// that were strings before 2.14, approval values that are always strings,
// and a project that the webhooks plugin sends as {"name": …}.
type wireEvent struct {
	Type           string         `json:"type"`
	Change         *wireChange    `json:"change"`
	PatchSet       *wirePatchSet  `json:"patchSet"`
	Author         *EventAccount  `json:"author"`
	Uploader       *EventAccount  `json:"uploader"`
	Submitter      *EventAccount  `json:"submitter"`
	Abandoner      *EventAccount  `json:"abandoner"`
	Reason         string         `json:"reason"`
	Approvals      []wireApproval `json:"approvals"`
	Comment        string         `json:"comment"`
	RefUpdate      *RefUpdate     `json:"refUpdate"`
	NewRev         string         `json:"newRev"`
	Project        wireProject    `json:"project"`
	RefName        string         `json:"refName"`
	EventCreatedOn flexInt        `json:"eventCreatedOn"`
}

type wireChange struct {
	Project string        `json:"project"`
	Branch  string        `json:"branch"`
	ID      string        `json:"id"`
	Number  flexInt       `json:"number"`
	Subject string        `json:"subject"`
	Owner   *EventAccount `json:"owner"`
	URL     string        `json:"url"`
	Status  string        `json:"status"`
}

type wirePatchSet struct {
	Number    flexInt       `json:"number"`
	Revision  string        `json:"revision"`
	Ref       string        `json:"ref"`
	Uploader  *EventAccount `json:"uploader"`
	Author    *EventAccount `json:"author"`
	Kind      string        `json:"kind"`
	CreatedOn flexInt       `json:"createdOn"`
}

type wireApproval struct {
	Type        string   `json:"type"`
	Description string   `json:"description"`
	Value       flexInt  `json:"value"`
	OldValue    *flexInt `json:"oldValue"`
}

// flexInt reads an integer sent as a JSON number or as a string ("1503",
// "-1", "+2"); null and "" read as 0.
type flexInt int64

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		*f = 0
		return nil
	}
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if s = strings.TrimSpace(s); s == "" {
			*f = 0
			return nil
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("not an integer: %.40q", s)
	}
	*f = flexInt(n)
	return nil
}

// wireProject reads a project sent as "name" or as {"name": "name"}.
type wireProject string

func (p *wireProject) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		*p = ""
		return nil
	case bytes.HasPrefix(b, []byte(`"`)):
		return json.Unmarshal(b, (*string)(p))
	}
	var obj struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(b, &obj); err != nil {
		return errors.New("project is neither a string nor {\"name\": …}")
	}
	*p = wireProject(obj.Name)
	return nil
}

// ParseEvent reads one event: a stream-events line or a webhooks-plugin
// body. It is tolerant of the shapes Gerrit has used (numbers as strings,
// the project as a string or an object) and ignores fields it does not
// know, but refuses anything that is not a JSON object with a type.
func ParseEvent(data []byte) (Event, error) {
	if len(data) > MaxEventSize {
		return Event{}, fmt.Errorf("gerrit: event larger than %d bytes", MaxEventSize)
	}
	if t := bytes.TrimSpace(data); len(t) == 0 || t[0] != '{' {
		return Event{}, errors.New("gerrit: event is not a JSON object")
	}
	var w wireEvent
	if err := json.Unmarshal(data, &w); err != nil {
		return Event{}, fmt.Errorf("gerrit: event: %w", err)
	}
	if strings.TrimSpace(w.Type) == "" {
		return Event{}, errors.New("gerrit: event has no type")
	}
	return w.event(), nil
}

func (w wireEvent) event() Event {
	e := Event{
		Type: w.Type, Author: w.Author, Uploader: w.Uploader, Submitter: w.Submitter,
		Abandoner: w.Abandoner, Reason: w.Reason, Comment: w.Comment, RefUpdate: w.RefUpdate, NewRev: w.NewRev,
		Project: string(w.Project), RefName: w.RefName, EventCreatedOn: int64(w.EventCreatedOn),
	}
	if c := w.Change; c != nil {
		e.Change = &EventChange{
			Project: c.Project, Branch: c.Branch, ID: c.ID, Number: int(c.Number),
			Subject: c.Subject, Owner: c.Owner, URL: c.URL, Status: c.Status,
		}
	}
	if p := w.PatchSet; p != nil {
		e.PatchSet = &EventPatchSet{
			Number: int(p.Number), Revision: p.Revision, Ref: p.Ref, Uploader: p.Uploader,
			Author: p.Author, Kind: p.Kind, CreatedOn: int64(p.CreatedOn),
		}
	}
	for _, a := range w.Approvals {
		ap := Approval{Type: a.Type, Description: a.Description, Value: int(a.Value)}
		if a.OldValue != nil {
			old := int(*a.OldValue)
			ap.OldValue = &old
		}
		e.Approvals = append(e.Approvals, ap)
	}
	switch {
	case e.Change != nil && e.Change.Project != "":
		e.Project = e.Change.Project
	case e.RefUpdate != nil && e.RefUpdate.Project != "":
		e.Project = e.RefUpdate.Project
	}
	if e.RefName == "" && e.RefUpdate != nil {
		e.RefName = e.RefUpdate.RefName
	}
	return e
}

// Key identifies an event across re-deliveries: the webhooks plugin retries,
// a stream reconnects, and the same event may arrive both ways. Two
// deliveries of one event have the same key whatever their form; events
// that differ in what happened, to what, by whom or when have different
// keys.
func (e Event) Key() string {
	type account struct{ N, E, U string }
	acct := func(a *EventAccount) *account {
		if a == nil {
			return nil
		}
		return &account{a.Name, a.Email, a.Username}
	}
	k := struct {
		V, Type, Project, RefName, NewRev, Comment string
		Change                                     int
		ChangeID                                   string
		PatchSet                                   int
		Revision                                   string
		RefUpdate                                  *RefUpdate
		Author, Uploader, Submitter                *account
		Approvals                                  []Approval
		Created                                    int64
		// Fields added later are left out when empty, so that the events
		// that lack them keep the keys they had.
		Abandoner *account `json:",omitempty"`
		Reason    string   `json:",omitempty"`
	}{
		V: "1", Type: e.Type, Project: e.Project, RefName: e.RefName, NewRev: e.NewRev,
		Comment: e.Comment, RefUpdate: e.RefUpdate, Created: e.EventCreatedOn,
		Author: acct(e.Author), Uploader: acct(e.Uploader), Submitter: acct(e.Submitter),
		Abandoner: acct(e.Abandoner), Reason: e.Reason,
	}
	if e.Change != nil {
		k.Change, k.ChangeID = e.Change.Number, e.Change.ID
	}
	if e.PatchSet != nil {
		k.PatchSet, k.Revision = e.PatchSet.Number, e.PatchSet.Revision
	}
	// Gerrit lists approvals in hash-map order.
	k.Approvals = slices.Clone(e.Approvals)
	slices.SortFunc(k.Approvals, func(a, b Approval) int {
		return cmp.Or(strings.Compare(a.Type, b.Type), cmp.Compare(a.Value, b.Value),
			cmp.Compare(oldValue(a), oldValue(b)), strings.Compare(a.Description, b.Description))
	})
	raw, _ := json.Marshal(k) // plain values: cannot fail
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

// oldValue orders an unchanged label before any changed one.
func oldValue(a Approval) int64 {
	if a.OldValue == nil {
		return math.MinInt64
	}
	return int64(*a.OldValue)
}
