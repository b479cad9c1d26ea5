package slacktest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

const (
	testToken = "xoxb-test"
	// testTrigger is the trigger_id of the recorded slash command
	// (testdata/slack/slash-command.txt).
	testTrigger = "13345224609.738474920.8088930838d88f008e0"
)

var viewID = regexp.MustCompile(`^V[0-9]+$`)

func newClient(t *testing.T) (*Server, *slack.Client) {
	t.Helper()
	s := Start(testToken)
	t.Cleanup(s.Close)
	return s, slack.New(testToken, slack.OptionAPIURL(s.URL))
}

func ptext(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
}

func section(text string) slack.Block {
	return slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil)
}

// confirmModal is a modal like deploybot's confirmation dialog.
func confirmModal() slack.ModalViewRequest {
	return slack.ModalViewRequest{
		Type: slack.VTModal, CallbackID: "deploybot_confirm", PrivateMetadata: "01JDEMO0000000000000000000",
		Title: ptext("Deploy to prod"), Submit: ptext("Start"), Close: ptext("Cancel"),
		Blocks: slack.Blocks{BlockSet: []slack.Block{section("Deploy *api* to *prod*?")}},
	}
}

// slackError is the error code and messages of a Slack error answer.
func slackError(t *testing.T, err error) (string, []string) {
	t.Helper()
	var e slack.SlackErrorResponse
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T), want a Slack error answer", err, err)
	}
	return e.Err, e.ResponseMetadata.Messages
}

func TestOpenViewEchoesTheModal(t *testing.T) {
	t.Parallel()
	s, c := newClient(t)
	resp, err := c.OpenViewContext(context.Background(), testTrigger, confirmModal())
	if err != nil {
		t.Fatal(err)
	}
	v := resp.View
	if !viewID.MatchString(v.ID) || v.ID == "VMHU10V25" || v.RootViewID != v.ID {
		t.Errorf("view id %q, root_view_id %q: want a new V+digits id for both", v.ID, v.RootViewID)
	}
	if v.Type != slack.VTModal || v.Title.Text != "Deploy to prod" || v.Submit.Text != "Start" || v.Close.Text != "Cancel" {
		t.Errorf("echoed type %q, title %+v, submit %+v, close %+v", v.Type, v.Title, v.Submit, v.Close)
	}
	if v.CallbackID != "deploybot_confirm" || v.PrivateMetadata != "01JDEMO0000000000000000000" {
		t.Errorf("echoed callback_id %q, private_metadata %q", v.CallbackID, v.PrivateMetadata)
	}
	if len(v.Blocks.BlockSet) != 1 || v.Blocks.BlockSet[0].(*slack.SectionBlock).Text.Text != "Deploy *api* to *prod*?" {
		t.Errorf("echoed blocks %+v", v.Blocks.BlockSet)
	}
	if v.TeamID != "T8N4K1JN" || v.Hash == "" || v.Hash == "156772938.1827394" {
		t.Errorf("team_id %q (want the recorded one), hash %q (want a new one)", v.TeamID, v.Hash)
	}
	views := s.Views()
	if len(views) != 1 {
		t.Fatalf("Views() = %+v, want the one modal", views)
	}
	got := views[0]
	if got.ID != v.ID || got.TriggerID != testTrigger || got.CallbackID != v.CallbackID ||
		got.PrivateMetadata != v.PrivateMetadata || got.Title != "Deploy to prod" || got.Hash != v.Hash {
		t.Errorf("kept %+v, answered %+v", got, v)
	}
	if !strings.Contains(string(got.Blocks), "Deploy *api* to *prod*?") || !strings.Contains(string(got.View), `"callback_id":"deploybot_confirm"`) {
		t.Errorf("kept blocks %s, view %s", got.Blocks, got.View)
	}
	if n := s.Calls("views.open"); n != 1 {
		t.Errorf("Calls(views.open) = %d, want 1", n)
	}
}

func TestViewsReturnsCopiesAndNewIDs(t *testing.T) {
	t.Parallel()
	s, c := newClient(t)
	for _, trigger := range []string{"1.2.a", "1.2.b"} {
		if _, err := c.OpenViewContext(context.Background(), trigger, confirmModal()); err != nil {
			t.Fatal(err)
		}
	}
	views := s.Views()
	if len(views) != 2 || views[0].ID == views[1].ID || views[1].TriggerID != "1.2.b" {
		t.Fatalf("Views() = %+v, want two modals with different ids", views)
	}
	views[0].Blocks[0], views[0].CallbackID = 'X', "changed"
	if again := s.Views()[0]; again.Blocks[0] != '[' || again.CallbackID != "deploybot_confirm" {
		t.Errorf("changing Views()'s result changed the fake: %+v", again)
	}
}

// openCase is one views.open call that the fake must refuse or accept.
type openCase struct {
	name    string
	token   string // default testToken
	trigger string // default testTrigger
	// before runs on the fresh server first, opening prior modals.
	before func(t *testing.T, s *Server, c *slack.Client)
	edit   func(v *slack.ModalViewRequest)
	want   string // error code; "" = the modal opens
	// message must be one of response_metadata.messages.
	message string
}

func openFirst(t *testing.T, _ *Server, c *slack.Client) {
	t.Helper()
	v := confirmModal()
	v.ExternalID = "deploy-01"
	if _, err := c.OpenViewContext(context.Background(), testTrigger, v); err != nil {
		t.Fatal(err)
	}
}

func openCases() []openCase {
	long, fits := strings.Repeat("ä", 25), strings.Repeat("ä", 24)
	return []openCase{
		{name: "trigger without dots", trigger: "abcd2358fdea", want: "invalid_trigger_id"},
		{name: "trigger with a non-hex tail", trigger: "12345.98765.xyz", want: "invalid_trigger_id"},
		{name: "trigger with letters first", trigger: "a12345.98765.abcd", want: "invalid_trigger_id"},
		{name: "trigger used before", before: openFirst, want: "exchanged_trigger_id"},
		{name: "triggers expired", before: func(_ *testing.T, s *Server, _ *slack.Client) { s.ExpireTriggers() }, want: "expired_trigger_id"},
		{name: "bad token", token: "xoxb-wrong", want: "invalid_auth"},
		{name: "title of 24 characters", edit: func(v *slack.ModalViewRequest) { v.Title = ptext(fits) }},
		{name: "title of 25 characters", edit: func(v *slack.ModalViewRequest) { v.Title = ptext(long) },
			want: "invalid_arguments", message: "[ERROR] must be less than 25 characters [json-pointer:/view/title/text]"},
		{name: "no title", edit: func(v *slack.ModalViewRequest) { v.Title = nil },
			want: "invalid_arguments", message: "missing required field: title"},
		{name: "mrkdwn title", edit: func(v *slack.ModalViewRequest) { v.Title.Type = slack.MarkdownType },
			want: "invalid_arguments", message: "[ERROR] failed to match all allowed schemas [json-pointer:/view/title]"},
		{name: "submit of 25 characters", edit: func(v *slack.ModalViewRequest) { v.Submit = ptext(long) },
			want: "invalid_arguments", message: "[ERROR] must be less than 25 characters [json-pointer:/view/submit/text]"},
		{name: "close of 25 characters", edit: func(v *slack.ModalViewRequest) { v.Close = ptext(long) },
			want: "invalid_arguments", message: "[ERROR] must be less than 25 characters [json-pointer:/view/close/text]"},
		{name: "private_metadata of 3000 characters", edit: func(v *slack.ModalViewRequest) { v.PrivateMetadata = strings.Repeat("x", 3000) }},
		{name: "private_metadata of 3001 characters", edit: func(v *slack.ModalViewRequest) { v.PrivateMetadata = strings.Repeat("x", 3001) },
			want: "invalid_arguments", message: "[ERROR] must be less than 3001 characters [json-pointer:/view/private_metadata]"},
		{name: "callback_id of 255 characters", edit: func(v *slack.ModalViewRequest) { v.CallbackID = strings.Repeat("c", 255) }},
		{name: "callback_id of 256 characters", edit: func(v *slack.ModalViewRequest) { v.CallbackID = strings.Repeat("c", 256) },
			want: "invalid_arguments", message: "[ERROR] must be less than 256 characters [json-pointer:/view/callback_id]"},
		{name: "home tab view", edit: func(v *slack.ModalViewRequest) { v.Type = slack.VTHomeTab },
			want: "invalid_arguments", message: "[ERROR] failed to match all allowed schemas [json-pointer:/view/type]"},
		{name: "no blocks", edit: func(v *slack.ModalViewRequest) { v.Blocks = slack.Blocks{} },
			want: "invalid_arguments", message: "missing required field: blocks"},
		{name: "101 blocks", edit: func(v *slack.ModalViewRequest) { v.Blocks.BlockSet = manyBlocks(101) },
			want: "invalid_arguments", message: "[ERROR] no more than 100 items allowed [json-pointer:/view/blocks]"},
		{name: "100 blocks", edit: func(v *slack.ModalViewRequest) { v.Blocks.BlockSet = manyBlocks(100) }},
		{name: "view over 250 KB", edit: func(v *slack.ModalViewRequest) { v.Blocks.BlockSet = bigBlocks(100, 2600) },
			want: "view_too_large"},
		{name: "view under 250 KB", edit: func(v *slack.ModalViewRequest) { v.Blocks.BlockSet = bigBlocks(100, 2400) }},
		{name: "input block without submit", edit: withInputNoSubmit,
			want: "invalid_arguments", message: "missing required field: submit"},
		{name: "external_id used before", trigger: "1.2.3", before: openFirst,
			edit: func(v *slack.ModalViewRequest) { v.ExternalID = "deploy-01" }, want: "duplicate_external_id"},
	}
}

func manyBlocks(n int) []slack.Block {
	out := make([]slack.Block, n)
	for i := range out {
		out[i] = section("line")
	}
	return out
}

// bigBlocks is n section blocks of size characters each.
func bigBlocks(n, size int) []slack.Block {
	out := make([]slack.Block, n)
	for i := range out {
		out[i] = section(strings.Repeat("x", size))
	}
	return out
}

func withInputNoSubmit(v *slack.ModalViewRequest) {
	v.Submit = nil
	in := slack.NewPlainTextInputBlockElement(nil, "reason")
	v.Blocks.BlockSet = append(v.Blocks.BlockSet, slack.NewInputBlock("why", ptext("Reason"), nil, in))
}

func TestOpenViewChecksTriggerAndView(t *testing.T) {
	t.Parallel()
	for _, tc := range openCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, c := newClient(t)
			if tc.before != nil {
				tc.before(t, s, c)
			}
			before := len(s.Views())
			token, trigger, view := testToken, testTrigger, confirmModal()
			if tc.token != "" {
				token = tc.token
			}
			if tc.trigger != "" {
				trigger = tc.trigger
			}
			if tc.edit != nil {
				tc.edit(&view)
			}
			_, err := slack.New(token, slack.OptionAPIURL(s.URL)).OpenViewContext(context.Background(), trigger, view)
			checkOpened(t, s, tc, err, before)
		})
	}
}

func checkOpened(t *testing.T, s *Server, tc openCase, err error, before int) {
	t.Helper()
	kept := len(s.Views()) - before
	if tc.want == "" {
		if err != nil || kept != 1 {
			t.Fatalf("err %v, %d modals kept; want it opened", err, kept)
		}
		return
	}
	code, messages := slackError(t, err)
	if code != tc.want {
		t.Errorf("error %q (messages %q), want %q", code, messages, tc.want)
	}
	if tc.message != "" && !strings.Contains(strings.Join(messages, "\n"), tc.message) {
		t.Errorf("messages %q, want %q among them", messages, tc.message)
	}
	if kept != 0 {
		t.Errorf("a refused views.open kept %d modals", kept)
	}
}

func TestRefusedViewLeavesTheTrigger(t *testing.T) {
	t.Parallel()
	s, c := newClient(t)
	bad := confirmModal()
	bad.Title = ptext(strings.Repeat("x", 30))
	if _, err := c.OpenViewContext(context.Background(), testTrigger, bad); err == nil {
		t.Fatal("a 30-character title opened")
	}
	s.RateLimit("views.open", 1, 2)
	_, err := c.OpenViewContext(context.Background(), testTrigger, confirmModal())
	var limited *slack.RateLimitedError
	if !errors.As(err, &limited) || limited.RetryAfter != 2*time.Second {
		t.Fatalf("rate-limited call: %v, want RateLimitedError after 2s", err)
	}
	if _, err := c.OpenViewContext(context.Background(), testTrigger, confirmModal()); err != nil {
		t.Fatalf("the trigger after a refused view and a 429: %v", err)
	}
	if n := s.Calls("views.open"); n != 3 || len(s.Views()) != 1 {
		t.Errorf("%d calls, %d modals; want 3 and 1", n, len(s.Views()))
	}
}

// rawOpen posts views.open as a client other than slack-go would.
type rawOpen struct {
	name        string
	contentType string
	bearer      bool // token in the Authorization header
	body        func(view string) string
	want        string // error code; "" = opens
}

func rawOpens() []rawOpen {
	form := func(withToken bool) func(string) string {
		return func(view string) string {
			v := url.Values{"trigger_id": {testTrigger}, "view": {view}}
			if withToken {
				v.Set("token", testToken)
			}
			return v.Encode()
		}
	}
	jsonString := func(view string) string {
		b, _ := json.Marshal(map[string]string{"trigger_id": testTrigger, "view": view})
		return string(b)
	}
	return []rawOpen{
		{name: "form with token field", contentType: "application/x-www-form-urlencoded", body: form(true)},
		{name: "form with bearer token", contentType: "application/x-www-form-urlencoded", bearer: true, body: form(false)},
		{name: "JSON with the view as a string", contentType: "application/json; charset=utf-8", bearer: true, body: jsonString},
		{name: "JSON with the view as an object", contentType: "application/json", bearer: true,
			body: func(view string) string { return `{"trigger_id":"` + testTrigger + `","view":` + view + `}` }},
		{name: "form with a view that is not JSON", contentType: "application/x-www-form-urlencoded",
			body: func(string) string { return form(true)("{not json") }, want: "invalid_arguments"},
		{name: "form without trigger_id", contentType: "application/x-www-form-urlencoded",
			body: func(view string) string { return url.Values{"token": {testToken}, "view": {view}}.Encode() }, want: "invalid_arguments"},
		{name: "JSON without token", contentType: "application/json", body: jsonString, want: "invalid_auth"},
	}
}

func TestOpenViewAcceptsFormAndJSON(t *testing.T) {
	t.Parallel()
	view, err := json.Marshal(confirmModal())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range rawOpens() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := Start(testToken)
			t.Cleanup(s.Close)
			req, err := http.NewRequest(http.MethodPost, s.URL+"views.open", strings.NewReader(tc.body(string(view))))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", tc.contentType)
			if tc.bearer {
				req.Header.Set("Authorization", "Bearer "+testToken)
			}
			checkRawOpen(t, s, req, tc.want)
		})
	}
}

func checkRawOpen(t *testing.T, s *Server, req *http.Request, want string) {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var got slack.ViewResponse
	if err := json.NewDecoder(res.Body).Decode(&got); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("status %d, decode: %v", res.StatusCode, err)
	}
	if want != "" {
		if got.Ok || got.Error != want || len(s.Views()) != 0 {
			t.Errorf("answer ok=%v error=%q with %d modals, want error %q", got.Ok, got.Error, len(s.Views()), want)
		}
		return
	}
	views := s.Views()
	if !got.Ok || got.View.CallbackID != "deploybot_confirm" || len(views) != 1 || views[0].TriggerID != testTrigger {
		t.Errorf("answer ok=%v error=%q callback_id=%q, kept %+v", got.Ok, got.Error, got.View.CallbackID, views)
	}
}

func TestOpenViewTellsObservers(t *testing.T) {
	t.Parallel()
	s, c := newClient(t)
	got := make(chan Event, 1)
	s.OnEvent(func(e Event) { got <- e })
	resp, err := c.OpenViewContext(context.Background(), testTrigger, confirmModal())
	if err != nil {
		t.Fatal(err)
	}
	if e := <-got; e.Kind != "view" || e.View.ID != resp.View.ID || e.View.CallbackID != "deploybot_confirm" {
		t.Errorf("event %+v, want a view event for %s", e, resp.View.ID)
	}
}
