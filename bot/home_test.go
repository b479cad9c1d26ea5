package bot

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/seed-5eb4e92e/deploybot/bot/slacktest"
)

// homeOpenedBody is the recorded app_home_opened event, opened by user on
// tab.
func homeOpenedBody(t *testing.T, user, tab string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "slack", "event-callback-app-home-opened.json"))
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]any
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	ev := p["event"].(map[string]any)
	ev["user"], ev["tab"] = user, tab
	out, _ := json.Marshal(p)
	return out
}

// openHome opens user's Home tab and returns what was published for them,
// as Slack shows the text.
func (f *fixture) openHome(t *testing.T, user string) string {
	t.Helper()
	before := len(f.slack.Homes())
	if rec := f.do(t, "/slack/events", homeOpenedBody(t, user, "home"), nil); rec.Code != http.StatusOK {
		t.Fatalf("app_home_opened answered %d", rec.Code)
	}
	f.r.Wait()
	homes := f.slack.Homes()
	if len(homes) != before+1 || homes[len(homes)-1].User != user {
		t.Fatalf("published %d Home tabs (%+v), want one more for %s", len(homes)-before, homes, user)
	}
	return homeText(t, homes[len(homes)-1])
}

func homeText(t *testing.T, h slacktest.Home) string {
	t.Helper()
	var b slack.Blocks
	if err := json.Unmarshal(h.Blocks, &b); err != nil {
		t.Fatal(err)
	}
	return BlocksText(b.BlockSet)
}

// homeButtons are the action IDs and values of the buttons on the last
// Home tab published.
func homeButtons(t *testing.T, f *fixture) []string {
	t.Helper()
	homes := f.slack.Homes()
	var b slack.Blocks
	if err := json.Unmarshal(homes[len(homes)-1].Blocks, &b); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, bl := range b.BlockSet {
		if ab, ok := bl.(*slack.ActionBlock); ok {
			for _, e := range ab.Elements.ElementSet {
				if btn, ok := e.(*slack.ButtonBlockElement); ok {
					out = append(out, btn.ActionID+" "+btn.Value)
				}
			}
		}
	}
	return out
}

// TestHomeShowsTheUsersJobsAndDeploys: the Home tab lists the user's own
// jobs, the last deploy of each environment they may deploy to with its
// lock, and only the buttons they may use.
func TestHomeShowsTheUsersJobsAndDeploys(t *testing.T) {
	t.Parallel()
	f, _ := newDeployFixture(t, deployPolicy(t))
	staging := finished(t, f.q, deployJob("staging", "U_ANN", time.Now()), live("prod"))
	f.command(t, "api feature/mine to dev", "U_DEV", "ephemeral")
	f.command(t, "build web feature/theirs", "U_ANN", "ephemeral")
	f.command(t, "lock staging demo day", "U_ANN", "in_channel")
	home := f.openHome(t, "U_DEV")
	for _, want := range []string{"Deploy `api` @ `feature/mine` to `dev`", "*api* in `staging`: `" + testArtifact + "`", "🔒 locked by @U_ANN: demo day", "*api* in `dev`: @ `feature/mine` — ⏳ queued", "*web* in `staging`: _never deployed by deploybot_"} {
		if !strings.Contains(home, want) {
			t.Errorf("the Home tab lacks %q:\n%s", want, home)
		}
	}
	for _, unwanted := range []string{"feature/theirs", "in `prod`"} {
		if strings.Contains(home, unwanted) {
			t.Errorf("the Home tab of U_DEV shows %q:\n%s", unwanted, home)
		}
	}
	// U_DEV may roll back staging but not promote to prod.
	if got := homeButtons(t, f); len(got) != 1 || got[0] != ActionRollback+" "+staging {
		t.Fatalf("U_DEV's buttons: %v", got)
	}
	f.openHome(t, "U_BOB")
	if got := homeButtons(t, f); len(got) != 2 {
		t.Fatalf("an SRE's buttons: %v, want Promote and Roll back", got)
	}
	if home := f.openHome(t, "U_NOBODY"); !strings.Contains(home, "You may not deploy any service") || !strings.Contains(home, "_None lately._") {
		t.Fatalf("the Home tab of someone without rights:\n%s", home)
	}
}

// TestHomeClickAnswersOnTheTab: a button on the Home tab has no
// response_url; what became of the click is a note on the redrawn tab.
func TestHomeClickAnswersOnTheTab(t *testing.T) {
	t.Parallel()
	f, _ := newDeployFixture(t, deployPolicy(t))
	src := finished(t, f.q, deployJob("staging", "U_ANN", time.Now()), live("prod"))
	for _, want := range []string{"⏳ Queued rollback of api in staging", "Already queued: rollback of api in staging"} {
		if rec := f.do(t, "/slack/interactions", homeClickBody(t, ActionRollback, src, "U_DEV"), nil); rec.Code != http.StatusOK {
			t.Fatalf("status %d", rec.Code)
		}
		f.r.Wait()
		homes := f.slack.Homes()
		if len(homes) == 0 || !strings.Contains(homeText(t, homes[len(homes)-1]), want) {
			t.Fatalf("after the click the Home tab does not say %q", want)
		}
	}
	if n := depth(t, f.q); n != 1 {
		t.Fatalf("%d jobs queued by two clicks on one button, want 1", n)
	}
	if n := len(f.slack.Responses()); n != 0 {
		t.Fatalf("%d response_url posts for a Home tab click", n)
	}
	rec, err := f.q.Record(context.Background(), queuedJob(t, f, homeText(t, f.slack.Homes()[0])).ID)
	if err != nil || rec.Job.Channel != "C111" {
		t.Fatalf("the rollback reports to %q (%v), want the deploy's channel", rec.Job.Channel, err)
	}
}

// homeClickBody is the recorded click payload as Slack sends it for a
// button on the Home tab: no response_url, no channel, a view of type home.
func homeClickBody(t *testing.T, action, value, user string) []byte {
	t.Helper()
	form := buttonClickBody(t, action, value, user, "")
	q, err := url.ParseQuery(string(form))
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]any
	payload := q.Get("payload")
	if err := json.Unmarshal([]byte(payload), &p); err != nil {
		t.Fatal(err)
	}
	delete(p, "response_url")
	delete(p, "channel")
	delete(p, "message")
	p["container"] = map[string]any{"type": "view", "view_id": "VH0000001"}
	p["view"] = map[string]any{"id": "VH0000001", "type": "home", "blocks": []any{}}
	out, _ := json.Marshal(p)
	return []byte(url.Values{"payload": {string(out)}}.Encode())
}

// TestHomeMessagesTabIgnored: opening the Messages tab publishes nothing.
func TestHomeMessagesTabIgnored(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, Config{})
	if rec := f.do(t, "/slack/events", homeOpenedBody(t, "U1", "messages"), nil); rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	f.r.Wait()
	if n := len(f.slack.Homes()); n != 0 {
		t.Fatalf("%d Home tabs published for the Messages tab", n)
	}
}
