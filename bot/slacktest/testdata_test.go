package slacktest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slack-go/slack"
)

// TestRecordedAnswersParse checks every embedded answer: it parses, has
// "ok", and an error-<code>.json (or error-<method>-<code>.json) carries
// ok:false with that code.
func TestRecordedAnswersParse(t *testing.T) {
	t.Parallel()
	entries, err := payloads.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		t.Run(e.Name(), func(t *testing.T) {
			t.Parallel()
			raw, err := payloads.ReadFile("testdata/" + e.Name())
			if err != nil {
				t.Fatal(err)
			}
			var m struct {
				OK    *bool  `json:"ok"`
				Error string `json:"error"`
			}
			if err := json.Unmarshal(raw, &m); err != nil || m.OK == nil {
				t.Fatalf("parse: %v, ok present: %v", err, m.OK != nil)
			}
			name := strings.TrimSuffix(e.Name(), ".json")
			if !strings.HasPrefix(name, "error-") {
				return
			}
			code := name[strings.LastIndex(name, "-")+1:]
			if *m.OK || m.Error != code {
				t.Errorf("ok=%v error=%q, want ok=false error=%q", *m.OK, m.Error, code)
			}
		})
	}
}

// readViewSubmission reads the recorded view_submission payload of
// testdata/slack, the JSON of the form field "payload".
func readViewSubmission(t *testing.T) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "slack", "view-submission.json"))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestRecordedViewSubmissionParses(t *testing.T) {
	t.Parallel()
	var cb slack.InteractionCallback
	if err := json.Unmarshal(readViewSubmission(t), &cb); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name string
		ok   bool
	}{
		{"type is view_submission", cb.Type == slack.InteractionTypeViewSubmission},
		{"callback_id is deploybot_confirm", cb.View.CallbackID == "deploybot_confirm"},
		{"private_metadata is PENDING_ID", cb.View.PrivateMetadata == "PENDING_ID"},
		{"view is a modal with an id", cb.View.Type == slack.VTModal && cb.View.ID != "" && cb.View.RootViewID == cb.View.ID},
		{"user, team and app are set", cb.User.ID != "" && cb.Team.ID != "" && cb.APIAppID != "" && cb.View.TeamID == cb.Team.ID},
		{"trigger_id opens a view in the fake", triggerFormat.MatchString(cb.TriggerID)},
		{"workspace install", !cb.IsEnterpriseInstall && cb.Enterprise.ID == ""},
		{"input value in state", cb.View.State != nil && cb.View.State.Values["request-block"]["request-action"].Value == "test test test"},
		{"title, submit and close", cb.View.Title != nil && cb.View.Submit != nil && cb.View.Close != nil},
		{"no response_urls", cb.ResponseURLs != nil && len(cb.ResponseURLs) == 0},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if !c.ok {
				t.Errorf("not so in %+v", cb)
			}
		})
	}
}

// TestRecordedViewSubmissionFields checks the payload keeps the fields
// Slack sends, which slack-go would also accept if they were missing.
func TestRecordedViewSubmissionFields(t *testing.T) {
	t.Parallel()
	var p map[string]json.RawMessage
	if err := json.Unmarshal(readViewSubmission(t), &p); err != nil {
		t.Fatal(err)
	}
	var view map[string]json.RawMessage
	if err := json.Unmarshal(p["view"], &view); err != nil {
		t.Fatal(err)
	}
	fields := []struct {
		in   map[string]json.RawMessage
		keys string
	}{
		{p, "type team user api_app_id token trigger_id view response_urls is_enterprise_install enterprise"},
		{view, "id team_id type blocks private_metadata callback_id state hash title close submit root_view_id app_id bot_id"},
	}
	for _, f := range fields {
		for _, k := range strings.Fields(f.keys) {
			if _, ok := f.in[k]; !ok {
				t.Errorf("field %q missing", k)
			}
		}
	}
	if string(p["enterprise"]) != "null" {
		t.Errorf("enterprise = %s, want null for a workspace install", p["enterprise"])
	}
}
