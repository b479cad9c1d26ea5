package gerrittest

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Event types StreamEvent and WebhookEvent can write, one per recorded
// event.
const (
	PatchSetCreated = "patchset-created"
	CommentAdded    = "comment-added"
	ChangeMerged    = "change-merged"
	// ChangeAbandoned is the other ending of the recorded change: it cannot
	// also be merged.
	ChangeAbandoned = "change-abandoned"
	RefUpdated      = "ref-updated"
)

// EventValues are what an event says. Zero fields keep the recorded
// scenario's values, so EventValues{} gives the recorded event itself.
type EventValues struct {
	Project, Branch string
	Number          int
	ChangeID        string
	Subject         string
	Status          string
	Owner           Account
	PatchSet        int
	Revision        string
	// Uploader uploaded (and authored) the patch set.
	Uploader Account
	// Actor caused the event: comment-added's author, patchset-created's
	// uploader, change-merged's and ref-updated's submitter,
	// change-abandoned's abandoner.
	Actor Account
	// Approvals are comment-added's; Gerrit lists every label of the
	// project, with OldValue on the ones the review changed.
	Approvals []Approval
	Comment   string
	// Reason is change-abandoned's: the message given when abandoning.
	Reason string
	// OldRev and NewRev are ref-updated's; NewRev is also change-merged's.
	// NewRev defaults to Revision when that is set.
	OldRev, NewRev string
	// RefName is ref-updated's ref; default refs/heads/<Branch>.
	RefName string
	// WebURL is Gerrit's canonicalWebUrl, for change.url.
	WebURL string
	// CreatedOn is eventCreatedOn.
	CreatedOn time.Time
}

// Approval is one label in a comment-added event.
type Approval struct {
	Label    string
	Value    int
	OldValue *int
}

// EventValues returns the values of a served change, for events about it.
func (s *Server) EventValues(project string, number int) (EventValues, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.changes[key(project, number)]
	if c == nil {
		return EventValues{}, false
	}
	return EventValues{
		Project: c.Project, Branch: c.Branch, Number: c.Number, ChangeID: c.ChangeID,
		Subject: c.Subject, Status: c.Status, Owner: c.Owner, PatchSet: c.PatchSet,
		Revision: c.Revision, Uploader: c.Uploader, CreatedOn: s.now(),
	}, true
}

// StreamEvent is one line of `gerrit stream-events` (with its newline) for
// an event of type kind.
func StreamEvent(kind string, v EventValues) ([]byte, error) {
	m, err := buildEvent(kind, v)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return append(raw, '\n'), nil
}

// WebhookEvent is the body the webhooks plugin POSTs for an event of type
// kind: the stream-events JSON with the top-level project as {"name": …}
// and changeKey as {"key": …}, without a newline.
func WebhookEvent(kind string, v EventValues) ([]byte, error) {
	m, err := buildEvent(kind, v)
	if err != nil {
		return nil, err
	}
	if p, ok := m["project"].(string); ok {
		m["project"] = map[string]any{"name": p}
	}
	if ck, ok := m["changeKey"].(map[string]any); ok {
		m["changeKey"] = map[string]any{"key": ck["id"]}
	}
	return json.Marshal(m)
}

func buildEvent(kind string, v EventValues) (map[string]any, error) {
	switch kind {
	case PatchSetCreated, CommentAdded, ChangeMerged, ChangeAbandoned, RefUpdated:
	default:
		return nil, fmt.Errorf("gerrittest: no recorded %q event", kind)
	}
	m, err := readObject(kind + ".json")
	if err != nil {
		return nil, err
	}
	if c, ok := m["change"].(map[string]any); ok {
		editEventChange(m, c, v)
		if ps, ok := m["patchSet"].(map[string]any); ok {
			editEventPatchSet(ps, c, v)
		}
	}
	editActor(m, kind, v)
	if v.Approvals != nil {
		m["approvals"] = approvals(v.Approvals)
	}
	setIf(m, "comment", v.Comment)
	if kind == ChangeAbandoned {
		setIf(m, "reason", v.Reason)
	}
	newRev := orDefault(v.NewRev, v.Revision)
	if kind == ChangeMerged {
		setIf(m, "newRev", newRev)
	}
	if ru, ok := m["refUpdate"].(map[string]any); ok {
		setIf(ru, "oldRev", v.OldRev)
		setIf(ru, "newRev", newRev)
		setIf(ru, "project", v.Project)
		if v.Branch != "" {
			ru["refName"] = "refs/heads/" + v.Branch
		}
		setIf(ru, "refName", v.RefName)
	}
	if !v.CreatedOn.IsZero() {
		m["eventCreatedOn"] = v.CreatedOn.Unix()
	}
	return m, nil
}

// editActor sets who caused the event, under the field its type uses.
func editActor(m map[string]any, kind string, v EventValues) {
	actor := map[string]string{
		CommentAdded: "author", PatchSetCreated: "uploader", ChangeMerged: "submitter",
		ChangeAbandoned: "abandoner", RefUpdated: "submitter",
	}[kind]
	switch {
	case v.Actor != (Account{}):
		m[actor] = eventAccount(v.Actor)
	case kind == PatchSetCreated && v.Uploader != (Account{}):
		m[actor] = eventAccount(v.Uploader)
	}
}

// approvals encodes votes as ApprovalAttributes: the label name is both
// type and description, and values are strings (Short.toString).
func approvals(list []Approval) []any {
	out := []any{}
	for _, a := range list {
		e := map[string]any{"type": a.Label, "description": a.Label, "value": strconv.Itoa(a.Value)}
		if a.OldValue != nil {
			e["oldValue"] = strconv.Itoa(*a.OldValue)
		}
		out = append(out, e)
	}
	return out
}

func editEventChange(m, c map[string]any, v EventValues) {
	setIf(c, "project", v.Project)
	setIf(m, "project", v.Project)
	setIf(c, "branch", v.Branch)
	if v.Branch != "" {
		m["refName"] = "refs/heads/" + v.Branch
	}
	setIf(c, "id", v.ChangeID)
	if ck, ok := m["changeKey"].(map[string]any); ok {
		setIf(ck, "id", v.ChangeID)
	}
	if v.Number > 0 {
		c["number"] = v.Number
	}
	setIf(c, "subject", v.Subject)
	setIf(c, "status", v.Status)
	if v.Owner != (Account{}) {
		c["owner"] = eventAccount(v.Owner)
	}
	if v.Subject != "" || v.ChangeID != "" {
		c["commitMessage"] = fmt.Sprintf("%s\n\nChange-Id: %s\n", c["subject"], c["id"])
	}
	if v.Project != "" || v.Number > 0 || v.WebURL != "" {
		// UrlFormatter: <canonicalWebUrl>c/<project>/+/<number>, unescaped.
		c["url"] = fmt.Sprintf("%sc/%s/+/%v", orDefault(v.WebURL, "https://gerrit.example.com/"), c["project"], c["number"])
	}
}

func editEventPatchSet(ps, c map[string]any, v EventValues) {
	if v.PatchSet > 0 {
		ps["number"] = v.PatchSet
	}
	setIf(ps, "revision", v.Revision)
	if v.Number > 0 || v.PatchSet > 0 {
		n, _ := strconv.Atoi(fmt.Sprint(c["number"]))
		p, _ := strconv.Atoi(fmt.Sprint(ps["number"]))
		ps["ref"] = changeRef(n, p)
	}
	if v.Uploader != (Account{}) {
		ps["uploader"], ps["author"] = eventAccount(v.Uploader), eventAccount(v.Uploader)
	}
}

// eventAccount is an AccountAttribute: name, email and username, no id.
func eventAccount(a Account) map[string]any {
	m := map[string]any{}
	setIf(m, "name", a.Name)
	setIf(m, "email", a.Email)
	setIf(m, "username", a.Username)
	return m
}

func setIf(m map[string]any, k, v string) {
	if v != "" {
		m[k] = v
	}
}
