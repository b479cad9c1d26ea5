package slacktest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"unicode/utf8"
)

// Limits Slack documents for a modal view
// (https://docs.slack.dev/reference/views/modal-views) and for views.open
// (https://docs.slack.dev/reference/methods/views.open). Text lengths are
// counted in characters, not bytes.
const (
	maxModalText       = 24 // title, submit and close
	maxPrivateMetadata = 3000
	maxCallbackID      = 255
	maxExternalID      = 255
	maxModalBlocks     = 100
	// maxViewBytes: view_too_large, "if the provided view is greater than 250kb".
	maxViewBytes = 250 * 1024
)

// triggerFormat is the shape of a trigger_id: digits, a dot, digits, a dot
// and lower-case hex, as in the documented "12345.98765.abcd2358fdea".
var triggerFormat = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9a-f]+$`)

// OpenedView is a modal the bot opened with views.open, as the fake keeps
// it.
type OpenedView struct {
	// ID is the view ID the fake gave the modal: "V" and digits.
	ID string
	// TriggerID is the trigger_id the modal was opened with.
	TriggerID       string
	CallbackID      string
	PrivateMetadata string
	ExternalID      string
	// Title is the text of the modal's title.
	Title string
	// Hash is the view's hash in the fake's answer.
	Hash string
	// Blocks is the view's blocks array as the bot sent it.
	Blocks json.RawMessage
	// View is the whole view object as the bot sent it.
	View json.RawMessage
}

func (v OpenedView) clone() OpenedView {
	v.Blocks, v.View = bytes.Clone(v.Blocks), bytes.Clone(v.View)
	return v
}

// Views returns copies of the modals opened so far, oldest first.
func (s *Server) Views() []OpenedView {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]OpenedView, len(s.views))
	for i, v := range s.views {
		out[i] = v.clone()
	}
	return out
}

// ExpireTriggers makes views.open answer expired_trigger_id for every
// trigger_id it has not used yet, from now on: what Slack answers three
// seconds after the interaction that gave the trigger.
func (s *Server) ExpireTriggers() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expired = true
}

// plainText is a text object of a view: title, submit or close.
type plainText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// modal is what the fake reads of a view object.
type modal struct {
	Type            string          `json:"type"`
	Title           *plainText      `json:"title"`
	Submit          *plainText      `json:"submit"`
	Close           *plainText      `json:"close"`
	Blocks          json.RawMessage `json:"blocks"`
	PrivateMetadata string          `json:"private_metadata"`
	CallbackID      string          `json:"callback_id"`
	ExternalID      string          `json:"external_id"`
}

// openView serves views.open. Trigger problems are answered before view
// problems (Slack's documented typical error comes "before getting to any
// possible validation errors"); only a call that opens a modal uses up its
// trigger_id.
func (s *Server) openView(w http.ResponseWriter, r *http.Request) {
	trigger, raw, err := viewsOpenArgs(r)
	if err != nil {
		invalidArguments(w, []string{"invalid JSON body"})
		return
	}
	if trigger == "" {
		// The documented "typical error response", verbatim.
		writeFile(w, http.StatusOK, "error-views.open-invalid_arguments.json", nil)
		return
	}
	v, problems := readModal(raw)
	var opened OpenedView
	s.mu.Lock()
	code := s.triggerError(trigger)
	switch {
	case code != "":
	case len(raw) > maxViewBytes:
		code = "view_too_large"
	case len(problems) > 0:
	case s.externalIDTaken(v.ExternalID):
		code = "duplicate_external_id"
	default:
		opened = s.keepView(trigger, raw, v)
	}
	s.mu.Unlock()
	switch {
	case code != "":
		writeFile(w, http.StatusOK, "error-"+code+".json", nil)
	case len(problems) > 0:
		invalidArguments(w, problems)
	default:
		writeFile(w, http.StatusOK, "views.open.json", func(m map[string]any) { echoView(m, opened) })
		s.emit(Event{Kind: "view", View: opened.clone()})
	}
}

// viewsOpenArgs reads trigger_id and view from a form, where the view is a
// JSON-encoded string as the docs describe, or from a JSON body, where
// slack-go sends the view as an object (a string is accepted too).
func viewsOpenArgs(r *http.Request) (trigger string, view json.RawMessage, err error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/json" {
		return r.PostForm.Get("trigger_id"), json.RawMessage(r.PostForm.Get("view")), nil
	}
	var body struct {
		TriggerID string          `json:"trigger_id"`
		View      json.RawMessage `json:"view"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4*maxViewBytes)).Decode(&body); err != nil {
		return "", nil, err
	}
	var encoded string
	if json.Unmarshal(body.View, &encoded) == nil {
		return body.TriggerID, json.RawMessage(encoded), nil
	}
	return body.TriggerID, body.View, nil
}

// triggerError is the error code for trigger, or "" if it may be used.
// The caller holds s.mu.
func (s *Server) triggerError(trigger string) string {
	switch {
	case !triggerFormat.MatchString(trigger):
		return "invalid_trigger_id"
	case s.exchanged[trigger]:
		return "exchanged_trigger_id"
	case s.expired:
		return "expired_trigger_id"
	}
	return ""
}

// externalIDTaken reports whether an opened view has external_id id. The
// caller holds s.mu.
func (s *Server) externalIDTaken(id string) bool {
	for _, v := range s.views {
		if id != "" && v.ExternalID == id {
			return true
		}
	}
	return false
}

// keepView records a modal opened with trigger and uses the trigger up.
// The caller holds s.mu.
func (s *Server) keepView(trigger string, raw json.RawMessage, v modal) OpenedView {
	s.exchanged[trigger] = true
	n := len(s.views) + 1
	o := OpenedView{
		ID: fmt.Sprintf("V%08d", n), TriggerID: trigger, CallbackID: v.CallbackID,
		PrivateMetadata: v.PrivateMetadata, ExternalID: v.ExternalID, Title: v.Title.Text,
		Hash: fmt.Sprintf("1700000000.%08d", n), Blocks: bytes.Clone(v.Blocks), View: bytes.Clone(raw),
	}
	s.views = append(s.views, o)
	return o
}

// echoed are the view fields Slack's answer repeats from the request, with
// what it shows when the request left them out.
var echoed = map[string]any{
	"type": "modal", "title": nil, "submit": nil, "close": nil, "blocks": []any{},
	"private_metadata": "", "callback_id": "", "external_id": "",
	"clear_on_close": false, "notify_on_close": false,
}

// echoView puts the opened view into the recorded views.open answer m.
func echoView(m map[string]any, o OpenedView) {
	view, ok := m["view"].(map[string]any)
	if !ok {
		return
	}
	var sent map[string]any
	_ = json.Unmarshal(o.View, &sent) // checked by readModal
	for k, def := range echoed {
		if v, ok := sent[k]; ok {
			view[k] = v
		} else {
			view[k] = def
		}
	}
	view["id"], view["root_view_id"], view["hash"] = o.ID, o.ID, o.Hash
}

func invalidArguments(w http.ResponseWriter, messages []string) {
	writeFile(w, http.StatusOK, "error-views.open-invalid_arguments.json", func(m map[string]any) {
		m["response_metadata"] = map[string]any{"messages": messages}
	})
}

// readModal parses a view and lists what Slack would refuse in it, in the
// words Slack uses in response_metadata.messages.
func readModal(raw json.RawMessage) (modal, []string) {
	var v modal
	if t := bytes.TrimSpace(raw); len(t) == 0 || string(t) == "null" {
		return v, []string{"missing required field: view"}
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, []string{schemaError("/view")}
	}
	var out []string
	if v.Type != "modal" {
		out = append(out, schemaError("/view/type"))
	}
	if v.Title == nil || v.Title.Text == "" {
		out = append(out, "missing required field: title")
	}
	out = append(out, textProblems("title", v.Title)...)
	out = append(out, textProblems("submit", v.Submit)...)
	out = append(out, textProblems("close", v.Close)...)
	out = append(out, tooLong("/view/private_metadata", v.PrivateMetadata, maxPrivateMetadata)...)
	out = append(out, tooLong("/view/callback_id", v.CallbackID, maxCallbackID)...)
	out = append(out, tooLong("/view/external_id", v.ExternalID, maxExternalID)...)
	return v, append(out, blockProblems(v)...)
}

func schemaError(pointer string) string {
	return "[ERROR] failed to match all allowed schemas [json-pointer:" + pointer + "]"
}

func tooLong(pointer, s string, limit int) []string {
	if utf8.RuneCountInString(s) <= limit {
		return nil
	}
	return []string{fmt.Sprintf("[ERROR] must be less than %d characters [json-pointer:%s]", limit+1, pointer)}
}

// textProblems checks the title, submit or close text object t, if given.
func textProblems(field string, t *plainText) []string {
	if t == nil {
		return nil
	}
	var out []string
	if t.Type != "plain_text" {
		out = append(out, schemaError("/view/"+field))
	}
	return append(out, tooLong("/view/"+field+"/text", t.Text, maxModalText)...)
}

// blockProblems checks the view's blocks: required, at most 100, and an
// input block needs a submit button.
func blockProblems(v modal) []string {
	if t := bytes.TrimSpace(v.Blocks); len(t) == 0 || string(t) == "null" {
		return []string{"missing required field: blocks"}
	}
	var blocks []struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(v.Blocks, &blocks) != nil {
		return []string{schemaError("/view/blocks")}
	}
	var out []string
	if len(blocks) > maxModalBlocks {
		out = append(out, fmt.Sprintf("[ERROR] no more than %d items allowed [json-pointer:/view/blocks]", maxModalBlocks))
	}
	for _, b := range blocks {
		if b.Type == "input" && v.Submit == nil {
			return append(out, "missing required field: submit")
		}
	}
	return out
}
