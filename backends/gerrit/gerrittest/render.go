package gerrittest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// labelDef is a label as the recorded payloads define it.
type labelDef struct {
	values   map[string]any // "-1" → "Fails", as recorded
	min, max int
}

// recorded holds the scenario's people and subject, for defaults.
type recorded struct {
	ann, upe, ci Account
	subject      string
}

// readJSON reads a recorded payload, without Gerrit's ")]}'" line, keeping
// numbers exact.
func readJSON(name string) (any, error) {
	raw, err := payloads.ReadFile("testdata/" + name)
	if err != nil {
		return nil, err
	}
	if rest, ok := bytes.CutPrefix(raw, []byte(")]}'")); ok {
		raw = rest
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return v, nil
}

func readObject(name string) (map[string]any, error) {
	v, err := readJSON(name)
	if err != nil {
		return nil, err
	}
	if list, ok := v.([]any); ok && len(list) > 0 {
		v = list[0]
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: not an object", name)
	}
	return m, nil
}

func recordedText(name string) string {
	raw, err := payloads.ReadFile("testdata/" + name)
	if err != nil {
		panic("gerrittest: " + err.Error())
	}
	return string(raw)
}

func mustLoadScenario() (map[string]labelDef, recorded) {
	m, err := readObject("change-query.json")
	if err != nil {
		panic("gerrittest: " + err.Error())
	}
	labels := map[string]labelDef{}
	lm, _ := m["labels"].(map[string]any)
	for name, l := range lm {
		values, _ := l.(map[string]any)["values"].(map[string]any)
		def := labelDef{values: values}
		for k := range values {
			n, _ := strconv.Atoi(strings.TrimSpace(k))
			def.min, def.max = min(def.min, n), max(def.max, n)
		}
		labels[name] = def
	}
	var rec recorded
	rec.ann = accountFrom(m["owner"])
	for _, r := range m["revisions"].(map[string]any) {
		rec.upe = accountFrom(r.(map[string]any)["uploader"])
	}
	rec.ci = accountFrom(lm["Verified"].(map[string]any)["rejected"])
	rec.subject, _ = m["subject"].(string)
	return labels, rec
}

func accountFrom(v any) Account {
	m, _ := v.(map[string]any)
	id, _ := m["_account_id"].(json.Number).Int64()
	a := Account{ID: id}
	a.Name, _ = m["name"].(string)
	a.Email, _ = m["email"].(string)
	a.Username, _ = m["username"].(string)
	tags, _ := m["tags"].([]any)
	a.ServiceUser = slices.Contains(tags, any("SERVICE_USER"))
	return a
}

// accountJSON is an AccountInfo: only the id without DETAILED_ACCOUNTS.
func accountJSON(a Account, detailed bool) map[string]any {
	m := map[string]any{"_account_id": a.ID}
	if !detailed {
		return m
	}
	m["name"], m["email"], m["username"] = a.Name, a.Email, a.Username
	if a.ServiceUser {
		m["tags"] = []any{"SERVICE_USER"}
	}
	return m
}

func ts(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000000000") }

func changeRef(number, patchSet int) string {
	return fmt.Sprintf("refs/changes/%02d/%d/%d", number%100, number, patchSet)
}

// javaURLEncoder differs from url.QueryEscape in two bytes: it keeps "*"
// and escapes "~".
var javaURLEncoder = strings.NewReplacer("%2A", "*", "~", "%7E")

// encodeKey is Gerrit's Url.encode (java.net.URLEncoder), which
// ChangeJson.finish applies to the parts of id and triplet_id: a space
// becomes "+", and "+" becomes "%2B".
func encodeKey(s string) string { return javaURLEncoder.Replace(url.QueryEscape(s)) }

// editCommon sets the ChangeInfo fields every answer has.
func editCommon(m map[string]any, c *change, detailed bool) {
	m["id"] = encodeKey(c.Project) + "~" + strconv.Itoa(c.Number)
	m["triplet_id"] = encodeKey(c.Project) + "~" + encodeKey(c.Branch) + "~" + encodeKey(c.ChangeID)
	m["project"], m["branch"], m["change_id"] = c.Project, c.Branch, c.ChangeID
	m["subject"], m["status"] = c.Subject, c.Status
	m["created"], m["updated"] = ts(c.created), ts(c.updated)
	m["_number"], m["virtual_id_number"] = c.Number, c.Number
	m["owner"] = accountJSON(c.Owner, detailed)
	m["current_revision_number"] = c.PatchSet
	if c.Status != "NEW" {
		delete(m, "submit_type") // only set for open changes
	}
	if c.Status == "MERGED" && c.submitter != nil {
		m["submitted"], m["submitter"] = ts(c.submitted), accountJSON(*c.submitter, detailed)
	} else {
		delete(m, "submitted")
		delete(m, "submitter")
		delete(m, "submission_id")
	}
}

// renderChange builds a ChangeInfo from the recorded query answer, with the
// parts the requested options ask for.
func (s *Server) renderChange(c *change, opts map[string]bool) (map[string]any, error) {
	m, err := readObject("change-query.json")
	if err != nil {
		return nil, err
	}
	detailed := opts["DETAILED_ACCOUNTS"]
	editCommon(m, c, detailed)
	if opts["LABELS"] || opts["DETAILED_LABELS"] {
		m["labels"] = s.renderLabels(c, opts)
		var reviewers []any
		for _, r := range c.reviewers {
			reviewers = append(reviewers, accountJSON(r, detailed))
		}
		m["reviewers"] = map[string]any{"REVIEWER": reviewers}
		if len(reviewers) == 0 {
			m["reviewers"] = map[string]any{}
		}
	} else {
		delete(m, "labels")
		delete(m, "reviewers")
	}
	revs, _ := m["revisions"].(map[string]any)
	if !opts["CURRENT_REVISION"] && !opts["ALL_REVISIONS"] {
		delete(m, "revisions")
		delete(m, "current_revision")
		return m, nil
	}
	var rev map[string]any
	for _, r := range revs {
		rev, _ = r.(map[string]any)
	}
	rev["_number"], rev["created"] = c.PatchSet, ts(c.created)
	rev["uploader"], rev["ref"] = accountJSON(c.Uploader, detailed), changeRef(c.Number, c.PatchSet)
	m["current_revision"] = c.Revision
	m["revisions"] = map[string]any{c.Revision: rev}
	return m, nil
}

// renderLabels builds LABELS and DETAILED_LABELS the way
// LabelsJson.labelsFor does, for labels that work like MaxWithBlock (a
// minimum vote blocks submit, a maximum one is needed), as the recorded
// "blocking" says ours do: a summary of the votes (summarizeVotes) and
// all[], which differs between open and merged changes (allApprovals).
func (s *Server) renderLabels(c *change, opts map[string]bool) map[string]any {
	detailed := opts["DETAILED_ACCOUNTS"]
	merged := c.Status == "MERGED"
	out := map[string]any{}
	for name, def := range s.labels {
		li := map[string]any{"values": def.values, "default_value": 0}
		// labelsForSubmittedChange summarizes only for LABELS, not for
		// DETAILED_LABELS alone.
		if !merged || opts["LABELS"] {
			summarizeVotes(li, def, c.approvals(name), detailed)
		}
		if all := c.allApprovals(name, merged, detailed); len(all) > 0 {
			li["all"] = all
		}
		out[name] = li
	}
	return out
}

// approval is one account's vote on a label.
type approval struct {
	by Account
	*vote
}

// approvals lists a label's votes in the order the double lists
// reviewers; Gerrit's order is that of the change's approvals.
func (c *change) approvals(label string) []approval {
	var out []approval
	for _, r := range c.reviewers {
		if v := c.votes[label][r.ID]; v != nil {
			out = append(out, approval{by: r, vote: v})
		}
	}
	return out
}

// summarizeVotes sets a LabelInfo's summary as LabelsJson does.
// initLabels asks LabelFunction.checkNoRule, which for a blocking label
// answers REJECT at the first minimum vote (rejected, blocking) and
// otherwise OK for the last maximum vote (approved); with either set,
// setLabelScores returns at once, so approved and rejected never come
// together. Otherwise setLabelScores makes each negative vote disliked and
// each positive one recommended unless a dislike came first, and sets value
// to that vote's score, ±1 included (the docs say ±1 is left out; the code
// does not).
func summarizeVotes(li map[string]any, def labelDef, votes []approval, detailed bool) {
	var approved *Account
	for _, a := range votes {
		switch a.value {
		case def.min:
			li["rejected"], li["blocking"] = accountJSON(a.by, detailed), true
			return
		case def.max:
			approved = &a.by
		}
	}
	if approved != nil {
		li["approved"] = accountJSON(*approved, detailed)
		return
	}
	for _, a := range votes {
		switch {
		case a.value < 0:
			li["disliked"], li["value"] = accountJSON(a.by, detailed), a.value
		case a.value > 0 && li["disliked"] == nil:
			li["recommended"], li["value"] = accountJSON(a.by, detailed), a.value
		}
	}
}

// allApprovals is a label's all[]. On an open change (setAllApprovals) it
// lists every reviewer, with value, date and tag for those who voted on the
// label. On a merged change (labelsForSubmittedChange) it lists only those
// who voted on some label, with value 0 on the labels they left alone.
func (c *change) allApprovals(label string, merged, detailed bool) []any {
	var all []any
	for _, r := range c.reviewers {
		if merged && !c.hasVoted(r.ID) {
			continue
		}
		entry := accountJSON(r, detailed)
		if merged {
			entry["value"] = 0
		}
		if v := c.votes[label][r.ID]; v != nil {
			entry["value"], entry["date"] = v.value, ts(v.date)
			if v.tag != "" {
				entry["tag"] = v.tag
			}
		}
		all = append(all, entry)
	}
	return all
}

func (c *change) hasVoted(id int64) bool {
	for _, byAccount := range c.votes {
		if byAccount[id] != nil {
			return true
		}
	}
	return false
}

// unsatisfied returns the first label (by name) that lacks a maximum vote
// or has a minimum one; "" when the change may be submitted.
func (s *Server) unsatisfied(c *change) string {
	names := make([]string, 0, len(s.labels))
	for name := range s.labels {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		def := s.labels[name]
		approved, blocked := false, false
		for _, v := range c.votes[name] {
			approved = approved || v.value == def.max
			blocked = blocked || v.value == def.min
		}
		if !approved || blocked {
			return name
		}
	}
	return ""
}

// writeJSON answers the way RestApiServlet does: ")]}'", a newline, compact
// JSON, a newline.
func writeJSON(w http.ResponseWriter, v any) {
	raw, err := json.Marshal(v)
	if err != nil {
		writeText(w, http.StatusInternalServerError, "Internal server error\n")
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write([]byte(")]}'\n"))
	_, _ = w.Write(raw)
	_, _ = w.Write([]byte("\n"))
}

// writeText answers with a plain-text error, as Gerrit's replyText does.
func writeText(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}
