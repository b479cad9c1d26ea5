package gerrit_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/seed-5eb4e92e/deploybot/backends/gerrit"
	"github.com/seed-5eb4e92e/deploybot/backends/gerrit/gerrittest"
)

// oldStyle is a comment-added line as Gerrit up to 2.13 printed it: change
// and patch set numbers as strings, and a short refName.
const oldStyle = `{"type":"comment-added","change":{"project":"platform/api","branch":"main","id":"I8473b959","number":"1503",` +
	`"subject":"Add rate limiting","owner":{"name":"Ann Owner","email":"ann@example.com"},"url":"https://gerrit.example.com/1503"},` +
	`"patchSet":{"number":"2","revision":"674ac754f91e64a0efb8087e59a176484bd534d1","ref":"refs/changes/03/1503/2",` +
	`"uploader":{"name":"Upe Loader","email":"upe@example.com"},"createdOn":"1741615361","isDraft":false,"sizeDeletions":-7},` +
	`"author":{"name":"CI Bot","email":"ci@example.com","username":"ci"},` +
	`"approvals":[{"type":"VRIF","description":"Verified","value":"-1"},{"type":"CRVW","description":"Code Review","value":2,"oldValue":"+1"}],` +
	`"comment":"Patch Set 2: Fails","eventCreatedOn":"1741615550","extra":{"ignored":[1,2]}}`

func TestParseRecordedEvents(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file  string
		check func(gerrit.Event) bool
	}{
		{"patchset-created.json", func(e gerrit.Event) bool {
			return e.Type == gerrit.EventPatchSetCreated && e.Uploader.Username == "upe" && e.PatchSet.Number == 2 &&
				e.PatchSet.CreatedOn == 1741615361 && e.PatchSet.Kind == "REWORK" && e.Change.Owner.Username == "ann"
		}},
		{"comment-added.json", commentAddedOK},
		{"webhook-comment-added.json", commentAddedOK},
		{"change-merged.json", func(e gerrit.Event) bool {
			return e.Type == gerrit.EventChangeMerged && e.Submitter.Username == "ann" && e.NewRev == sha &&
				e.Change.Status == gerrit.StatusMerged && e.EventCreatedOn == 1741621327
		}},
		{"change-abandoned.json", changeAbandonedOK},
		{"ref-updated.json", refUpdatedOK},
		{"webhook-ref-updated.json", refUpdatedOK},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			raw, err := os.ReadFile(filepath.Join("gerrittest", "testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			e, err := gerrit.ParseEvent(raw)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(e) {
				js, _ := json.Marshal(e)
				t.Fatalf("parsed as %s", js)
			}
			if e.Change != nil && (e.Project != "platform/api" || e.RefName != "refs/heads/main" || e.Change.Number != 1503 ||
				e.Change.URL != "https://gerrit.example.com/c/platform/api/+/1503" || e.PatchSet.Revision != sha) {
				t.Fatalf("change event: project %q ref %q change %+v", e.Project, e.RefName, e.Change)
			}
		})
	}
}

func commentAddedOK(e gerrit.Event) bool {
	v, okV := e.Approval("Verified")
	cr, okCR := e.Approval("Code-Review")
	return e.Type == gerrit.EventCommentAdded && e.Author.Username == "ci" && len(e.Approvals) == 2 &&
		okV && v.Value == -1 && v.Changed() && *v.OldValue == 0 && v.Description == "Verified" &&
		okCR && cr.Value == 0 && !cr.Changed() && strings.HasPrefix(e.Comment, "Patch Set 2: Verified-1\n\n") &&
		e.EventCreatedOn == 1741615550
}

func changeAbandonedOK(e gerrit.Event) bool {
	return e.Type == gerrit.EventChangeAbandoned && e.Abandoner != nil && e.Abandoner.Email == "ann@example.com" &&
		e.Abandoner.Username == "ann" && e.Reason == "Superseded by 1511" && e.Submitter == nil &&
		e.Change.Status == gerrit.StatusAbandoned && e.PatchSet.Number == 2 && e.EventCreatedOn == 1741622609
}

func refUpdatedOK(e gerrit.Event) bool {
	r := e.RefUpdate
	return e.Type == gerrit.EventRefUpdated && r != nil && r.OldRev == "1eee2c9d8f352483781e772f35dc586a69ff5646" &&
		r.NewRev == sha && e.Project == "platform/api" && e.RefName == "refs/heads/main" && e.Submitter.Username == "ann"
}

func TestParseEventTolerance(t *testing.T) {
	t.Parallel()
	e, err := gerrit.ParseEvent([]byte(oldStyle))
	if err != nil {
		t.Fatal(err)
	}
	vrif, _ := e.Approval("VRIF")
	crvw, _ := e.Approval("CRVW")
	if e.Change.Number != 1503 || e.PatchSet.Number != 2 || e.PatchSet.CreatedOn != 1741615361 || e.EventCreatedOn != 1741615550 ||
		vrif.Value != -1 || vrif.Changed() || crvw.Value != 2 || !crvw.Changed() || *crvw.OldValue != 1 || e.Project != "platform/api" {
		js, _ := json.Marshal(e)
		t.Fatalf("old-style event parsed as %s", js)
	}
	// A project only at the top level, as an object (webhooks) or a string.
	for _, in := range []string{`{"type":"project-created","project":{"name":"infra/new"}}`, `{"type":"project-created","project":"infra/new"}`} {
		if e, err := gerrit.ParseEvent([]byte(in)); err != nil || e.Project != "infra/new" {
			t.Errorf("ParseEvent(%s) = %+v, %v", in, e, err)
		}
	}
	if e, err := gerrit.ParseEvent([]byte(`{"type":"dropped-output"}` + "\n")); err != nil || e.Type != gerrit.EventDroppedOutput {
		t.Errorf("dropped-output = %+v, %v", e, err)
	}
}

func TestParseEventRejects(t *testing.T) {
	t.Parallel()
	bad := map[string]string{
		"empty":           "",
		"null":            "null",
		"array":           `[{"type":"comment-added"}]`,
		"string":          `"comment-added"`,
		"number":          "42",
		"no type":         `{"change":{"number":1503}}`,
		"blank type":      `{"type":"  "}`,
		"type not string": `{"type":7}`,
		"bad number":      `{"type":"x","change":{"number":"fifteen"}}`,
		"float number":    `{"type":"x","change":{"number":1.5}}`,
		"bad project":     `{"type":"x","project":["a"]}`,
		"bad approval":    `{"type":"x","approvals":[{"type":"Verified","value":"-1x"}]}`,
		"truncated":       `{"type":"comment-added","change":{`,
		"trailing":        `{"type":"x"} {"type":"y"}`,
		"too large":       `{"type":"x","comment":"` + strings.Repeat("a", gerrit.MaxEventSize) + `"}`,
	}
	for name, in := range bad {
		if e, err := gerrit.ParseEvent([]byte(in)); err == nil {
			t.Errorf("%s: ParseEvent accepted it as %+v", name, e)
		} else if !strings.HasPrefix(err.Error(), "gerrit: ") {
			t.Errorf("%s: error %q lacks the package prefix", name, err)
		}
	}
}

// parser returns a function that parses what StreamEvent or WebhookEvent
// built, failing t on any error.
func parser(t *testing.T) func([]byte, error) gerrit.Event {
	return func(raw []byte, err error) gerrit.Event {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		e, err := gerrit.ParseEvent(raw)
		if err != nil {
			t.Fatalf("ParseEvent(%s): %v", raw, err)
		}
		return e
	}
}

func TestEventKey(t *testing.T) {
	t.Parallel()
	mustEvent := parser(t)
	stream := mustEvent(gerrittest.StreamEvent(gerrittest.CommentAdded, gerrittest.EventValues{}))
	webhook := mustEvent(gerrittest.WebhookEvent(gerrittest.CommentAdded, gerrittest.EventValues{}))
	again := mustEvent([]byte(recorded(t, "comment-added.json")), nil)
	if stream.Key() != webhook.Key() || stream.Key() != again.Key() || len(stream.Key()) != 64 {
		t.Fatalf("one event, several keys: %s %s %s", stream.Key(), webhook.Key(), again.Key())
	}
	swapped := again
	swapped.Approvals = []gerrit.Approval{again.Approvals[1], again.Approvals[0]}
	if swapped.Key() != again.Key() {
		t.Fatal("approval order changed the key; Gerrit sends them in hash-map order")
	}
	one := 1
	variants := map[string]gerrittest.EventValues{
		"later":         {CreatedOn: timeAt(1741615551)},
		"other change":  {Number: 1504},
		"other ps":      {PatchSet: 3},
		"other author":  {Actor: gerrittest.Account{Name: "Rae Viewer", Email: "rae@example.com", Username: "rae"}},
		"other comment": {Comment: "Patch Set 2: Verified-1\n\nflaky"},
		"other vote":    {Approvals: []gerrittest.Approval{{Label: "Verified", Value: 1, OldValue: &one}}},
		"other project": {Project: "platform/web"},
	}
	keys := map[string]string{again.Key(): "recorded"}
	for name, v := range variants {
		k := mustEvent(gerrittest.StreamEvent(gerrittest.CommentAdded, v)).Key()
		if prev, dup := keys[k]; dup {
			t.Errorf("%s and %s have the same key", name, prev)
		}
		keys[k] = name
	}
	for _, kind := range []string{gerrittest.PatchSetCreated, gerrittest.ChangeMerged, gerrittest.ChangeAbandoned, gerrittest.RefUpdated} {
		k := mustEvent(gerrittest.StreamEvent(kind, gerrittest.EventValues{})).Key()
		if prev, dup := keys[k]; dup {
			t.Errorf("%s and %s have the same key", kind, prev)
		}
		keys[k] = kind
	}
}

func TestAbandonedEventKey(t *testing.T) {
	t.Parallel()
	mustEvent := parser(t)
	abandoned := mustEvent([]byte(recorded(t, "change-abandoned.json")), nil)
	webhook := mustEvent(gerrittest.WebhookEvent(gerrittest.ChangeAbandoned, gerrittest.EventValues{}))
	if webhook.Key() != abandoned.Key() || !reflect.DeepEqual(webhook, abandoned) {
		t.Fatalf("the webhook form differs from the stream line:\n%+v\n%+v", webhook, abandoned)
	}
	created := mustEvent([]byte(recorded(t, "patchset-created.json")), nil)
	if created.Change.Number != abandoned.Change.Number || created.PatchSet.Number != abandoned.PatchSet.Number {
		t.Fatalf("not the same change and patch set: %+v %+v", created.Change, abandoned.Change)
	}
	keys := map[string]string{abandoned.Key(): "recorded", created.Key(): "patchset-created"}
	if len(keys) != 2 {
		t.Fatal("change-abandoned has the key of patchset-created of the same change")
	}
	rae := gerrittest.Account{Name: "Rae Viewer", Email: "rae@example.com", Username: "rae"}
	variants := map[string]gerrittest.EventValues{
		"other reason":    {Reason: "Superseded by 1512"},
		"other abandoner": {Actor: rae},
	}
	for name, v := range variants {
		k := mustEvent(gerrittest.StreamEvent(gerrittest.ChangeAbandoned, v)).Key()
		if prev, dup := keys[k]; dup {
			t.Errorf("%s and %s have the same key", name, prev)
		}
		keys[k] = name
	}
	noReason := abandoned
	noReason.Reason = ""
	if noReason.Key() == abandoned.Key() {
		t.Error("an abandon without a reason has the key of one with a reason")
	}
}

// TestEventKeyIsStable pins the keys of recorded events: queued dedupe
// entries outlive a deploy, so a new Event field must not change the keys
// of events that lack it.
func TestEventKeyIsStable(t *testing.T) {
	t.Parallel()
	mustEvent := parser(t)
	want := map[string]string{
		"patchset-created.json": "4693f31cecf1c44d56b4f2edcf896aa544042af358173cd996f17743d7051fa5",
		"comment-added.json":    "7d10f1ccfa13fc12c4e468dd1a82a9e411cc0e75512a9699d3dcd388d54d3f76",
		"change-merged.json":    "40fff3f0380d404514eb19d0f739b1fc4b9c53dee553e97b2b2bd08576f4c729",
		"ref-updated.json":      "e9bd6e6971f9f3081b50ed3056b30846ae57085cd15d25791505f1dfab499ddc",
	}
	for file, key := range want {
		if got := mustEvent([]byte(recorded(t, file)), nil).Key(); got != key {
			t.Errorf("%s: key %s, was %s", file, got, key)
		}
	}
}

// TestEventRoundTrip checks that an Event, encoded with encoding/json (as a
// queued job would carry it), parses back the same.
func TestEventRoundTrip(t *testing.T) {
	t.Parallel()
	mustEvent := parser(t)
	for _, in := range []string{
		recorded(t, "comment-added.json"), recorded(t, "change-abandoned.json"), recorded(t, "webhook-ref-updated.json"), oldStyle,
	} {
		e := mustEvent([]byte(in), nil)
		raw, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		back := mustEvent(raw, nil)
		if !reflect.DeepEqual(e, back) || e.Key() != back.Key() {
			t.Errorf("round trip changed the event:\n%+v\n%+v", e, back)
		}
	}
}

func FuzzParseEvent(f *testing.F) {
	for _, name := range []string{
		"patchset-created.json", "comment-added.json", "change-merged.json", "change-abandoned.json", "ref-updated.json",
		"webhook-comment-added.json",
	} {
		raw, err := os.ReadFile(filepath.Join("gerrittest", "testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte(oldStyle))
	f.Add([]byte(`{"type":"x","project":{"name":1}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		e, err := gerrit.ParseEvent(raw)
		if err != nil {
			return
		}
		if strings.TrimSpace(e.Type) == "" {
			t.Fatalf("accepted an event without a type: %q", raw)
		}
		enc, err := json.Marshal(e)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		back, err := gerrit.ParseEvent(enc)
		if err != nil || !reflect.DeepEqual(e, back) || e.Key() != back.Key() {
			t.Fatalf("round trip of %q: %v\n%+v\n%+v", raw, err, e, back)
		}
	})
}

func timeAt(sec int64) time.Time { return time.Unix(sec, 0) }
