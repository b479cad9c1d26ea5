package gerrit

import (
	"encoding/json"
	"fmt"
	"time"
)

// Change statuses as ChangeInfo.Status and EventChange.Status carry them.
const (
	StatusNew       = "NEW"
	StatusMerged    = "MERGED"
	StatusAbandoned = "ABANDONED"
)

// Account is Gerrit's AccountInfo. Without the DETAILED_ACCOUNTS option only
// AccountID is set; the client always asks for details.
type Account struct {
	AccountID int64  `json:"_account_id"`
	Name      string `json:"name,omitempty"`
	Email     string `json:"email,omitempty"`
	Username  string `json:"username,omitempty"`
	// Tags holds "SERVICE_USER" for bot accounts such as CI.
	Tags []string `json:"tags,omitempty"`
}

// ChangeInfo is one change as the REST API describes it (a trimmed
// ChangeInfo: the fields deploybot reads). Labels need the LABELS option and
// Revisions the CURRENT_REVISION option; the client always asks for both.
type ChangeInfo struct {
	// ID is "<project>~<number>" since Gerrit 3.9 and a triplet before;
	// Gerrit asks callers not to rely on its format. Build URLs from Project
	// and Number instead.
	ID        string   `json:"id"`
	TripletID string   `json:"triplet_id,omitempty"`
	Project   string   `json:"project"`
	Branch    string   `json:"branch"`
	Topic     string   `json:"topic,omitempty"`
	Hashtags  []string `json:"hashtags,omitempty"`
	// ChangeID is the Change-Id footer, "I8473b959…".
	ChangeID string `json:"change_id"`
	Subject  string `json:"subject"`
	// Status is StatusNew, StatusMerged or StatusAbandoned.
	Status         string    `json:"status"`
	Created        Timestamp `json:"created,omitzero"`
	Updated        Timestamp `json:"updated,omitzero"`
	Submitted      Timestamp `json:"submitted,omitzero"`
	Submitter      *Account  `json:"submitter,omitempty"`
	SubmissionID   string    `json:"submission_id,omitempty"`
	SubmitType     string    `json:"submit_type,omitempty"`
	WorkInProgress bool      `json:"work_in_progress,omitempty"`
	Insertions     int       `json:"insertions"`
	Deletions      int       `json:"deletions"`
	Number         int       `json:"_number"`
	Owner          Account   `json:"owner"`
	// Labels maps a label name ("Code-Review", "Verified") to its votes.
	Labels map[string]LabelInfo `json:"labels,omitempty"`
	// CurrentRevision is the current patch set's commit sha.
	CurrentRevision       string `json:"current_revision,omitempty"`
	CurrentRevisionNumber int    `json:"current_revision_number,omitempty"`
	// Revisions maps a commit sha to its patch set; with CURRENT_REVISION
	// only the current one is listed.
	Revisions map[string]RevisionInfo `json:"revisions,omitempty"`
	// MoreChanges is set on the last change of a query answer that was cut
	// at the limit.
	MoreChanges bool `json:"_more_changes,omitempty"`
}

// Current returns the current patch set, when the answer includes it.
func (c ChangeInfo) Current() (RevisionInfo, bool) {
	r, ok := c.Revisions[c.CurrentRevision]
	return r, ok
}

// RevisionInfo is one patch set.
type RevisionInfo struct {
	// Kind says how it differs from the previous one: REWORK,
	// TRIVIAL_REBASE, NO_CODE_CHANGE, …
	Kind     string    `json:"kind,omitempty"`
	Number   int       `json:"_number"`
	Created  Timestamp `json:"created,omitzero"`
	Uploader Account   `json:"uploader"`
	// Ref is where the patch set can be fetched: "refs/changes/03/1503/2".
	Ref    string      `json:"ref"`
	Commit *CommitInfo `json:"commit,omitempty"`
}

// CommitInfo is a commit, present with the CURRENT_COMMIT option. Parents
// carry only Commit and Subject.
type CommitInfo struct {
	Commit    string       `json:"commit,omitempty"`
	Parents   []CommitInfo `json:"parents,omitempty"`
	Author    *GitPerson   `json:"author,omitempty"`
	Committer *GitPerson   `json:"committer,omitempty"`
	Subject   string       `json:"subject"`
	Message   string       `json:"message,omitempty"`
}

// GitPerson is a commit's author or committer; TZ is the offset in minutes.
type GitPerson struct {
	Name  string    `json:"name"`
	Email string    `json:"email"`
	Date  Timestamp `json:"date,omitzero"`
	TZ    int       `json:"tz"`
}

// LabelInfo is the state of one label on a change. Approved is someone who
// voted the label's maximum and Rejected someone who voted its minimum
// (which also sets Blocking); Gerrit sets at most one of the two, Rejected
// first. Without either, Recommended and Disliked are intermediate votes
// and Value is one of their scores, ±1 included (Gerrit's docs say ±1 is
// left out; LabelsJson.setLabelScores sets it).
type LabelInfo struct {
	Approved     *Account `json:"approved,omitempty"`
	Rejected     *Account `json:"rejected,omitempty"`
	Recommended  *Account `json:"recommended,omitempty"`
	Disliked     *Account `json:"disliked,omitempty"`
	Blocking     bool     `json:"blocking,omitempty"`
	Optional     bool     `json:"optional,omitempty"`
	Value        int      `json:"value,omitempty"`
	DefaultValue int      `json:"default_value"`
	// All lists every reviewer (on a merged change, every voter); those
	// who did not vote on this label have a nil Value, or 0 on a merged
	// change and with DETAILED_LABELS.
	All []ApprovalInfo `json:"all,omitempty"`
	// Values maps "-1", " 0", "+1" (note the space) to their meaning.
	Values map[string]string `json:"values,omitempty"`
}

// ApprovalInfo is one reviewer's vote on a label.
type ApprovalInfo struct {
	Account
	// Value is nil or 0 for a reviewer who has not voted on the label.
	Value *int      `json:"value,omitempty"`
	Date  Timestamp `json:"date,omitzero"`
	// Tag is the tag of the review that set the vote, e.g.
	// "autogenerated:ci".
	Tag string `json:"tag,omitempty"`
}

// Vote returns accountID's vote on the label, if it has one. A value of 0
// ("No score") is no vote: Gerrit writes it for reviewers who did not vote,
// on merged changes and with DETAILED_LABELS.
func (l LabelInfo) Vote(accountID int64) (int, bool) {
	for _, a := range l.All {
		if a.AccountID == accountID && a.Value != nil && *a.Value != 0 {
			return *a.Value, true
		}
	}
	return 0, false
}

// Timestamp is a REST timestamp: UTC, "2025-03-10 14:05:50.000000000".
type Timestamp time.Time

const (
	timestampOut = "2006-01-02 15:04:05.000000000"
	timestampIn  = "2006-01-02 15:04:05.999999999"
)

// Time returns the instant, in UTC.
func (t Timestamp) Time() time.Time { return time.Time(t) }

// IsZero reports whether the timestamp is unset.
func (t Timestamp) IsZero() bool { return time.Time(t).IsZero() }

// String formats the timestamp the way Gerrit does.
func (t Timestamp) String() string { return time.Time(t).UTC().Format(timestampOut) }

// MarshalJSON writes Gerrit's format.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(t.String())
}

// UnmarshalJSON reads Gerrit's format, with any number of fractional
// digits; null and "" leave the timestamp zero.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*t = Timestamp{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("timestamp: %w", err)
	}
	if s == "" {
		*t = Timestamp{}
		return nil
	}
	v, err := time.ParseInLocation(timestampIn, s, time.UTC)
	if err != nil {
		return fmt.Errorf("timestamp %q: not Gerrit's format", s)
	}
	*t = Timestamp(v)
	return nil
}
