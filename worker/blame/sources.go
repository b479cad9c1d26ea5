package blame

import (
	"fmt"
	"regexp"
	"strconv"

	"github.com/seed-5eb4e92e/deploybot/backends/gerrit"
	"github.com/seed-5eb4e92e/deploybot/backends/jenkins"
)

// FromNotification reads a Jenkins Notification plugin message. Only the
// final message of a build (FINALIZED, with a status) is a result; ok is
// false for the others. Builds started by the Gerrit Trigger plugin carry
// their change in GERRIT_* parameters.
func FromNotification(n jenkins.Notification) (r Result, ok bool) {
	if !n.Final() {
		return Result{}, false
	}
	job, err := n.JobPath()
	if err != nil {
		return Result{}, false
	}
	p := n.Build.Parameters
	r = Result{
		Job:       job,
		Number:    n.Build.Number,
		Status:    n.Build.Status,
		URL:       n.Build.FullURL,
		Params:    p,
		Culprits:  n.Build.SCM.Culprits,
		Key:       n.Key(),
		QueueID:   n.Build.QueueID,
		EventType: p["GERRIT_EVENT_TYPE"],
		EventAccount: Account{
			Name: p["GERRIT_EVENT_ACCOUNT_NAME"], Email: p["GERRIT_EVENT_ACCOUNT_EMAIL"], Username: p["GERRIT_EVENT_ACCOUNT_USERNAME"],
		},
	}
	if number, err := strconv.Atoi(p["GERRIT_CHANGE_NUMBER"]); err == nil && number > 0 {
		ps, _ := strconv.Atoi(p["GERRIT_PATCHSET_NUMBER"])
		r.Change = &Change{
			Project:  p["GERRIT_PROJECT"],
			Number:   number,
			PatchSet: ps,
			Subject:  p["GERRIT_CHANGE_SUBJECT"],
			URL:      p["GERRIT_CHANGE_URL"],
			Owner: Account{
				Name: p["GERRIT_CHANGE_OWNER_NAME"], Email: p["GERRIT_CHANGE_OWNER_EMAIL"], Username: p["GERRIT_CHANGE_OWNER_USERNAME"],
			},
			Uploader: Account{
				Name: p["GERRIT_PATCHSET_UPLOADER_NAME"], Email: p["GERRIT_PATCHSET_UPLOADER_EMAIL"], Username: p["GERRIT_PATCHSET_UPLOADER_USERNAME"],
			},
		}
		// Builds of merged changes judge the branch; the rest judge a
		// change under review.
		r.Gating = r.EventType != "change-merged" && r.EventType != "ref-updated"
	}
	return r, true
}

// urlRE finds a URL in a CI comment, usually the failing build's.
var urlRE = regexp.MustCompile(`https?://[^\s<>"]+`)

// FromGerritEvent reads a Gerrit event. A CI account's vote on the verify
// label (comment-added) is a verdict on the change: negative is a failure,
// positive a success. A merged change is a success too (its gating is
// over); a new patch set makes verdicts on older ones stale; an abandoned
// change closes its notice. Other events
// (ref-updated among them: its builds report through Jenkins, naming the
// pusher) are not results; ok is false for them.
func (e *Engine) FromGerritEvent(ev gerrit.Event) (r Result, ok bool) {
	if ev.Change == nil || ev.Change.Number <= 0 {
		return Result{}, false
	}
	change := &Change{
		Project: ev.Change.Project,
		Number:  ev.Change.Number,
		Subject: ev.Change.Subject,
		URL:     ev.Change.URL,
		Owner:   account(ev.Change.Owner),
	}
	if ps := ev.PatchSet; ps != nil {
		change.PatchSet, change.Uploader = ps.Number, account(ps.Uploader)
	}
	switch ev.Type {
	case gerrit.EventCommentAdded:
		label := e.cfg.VerifyLabel
		a, found := ev.Approval(label)
		author := account(ev.Author)
		if !found || !a.Changed() || a.Value == 0 || (len(e.cfg.CIAccounts) > 0 && !e.isCI(author)) {
			return Result{}, false
		}
		r = Result{Status: "SUCCESS", Gating: true, Change: change, EventType: ev.Type, EventAccount: author,
			Vote: fmt.Sprintf("%s%+d by %s", label, a.Value, author.Name), Key: ev.Key()}
		if a.Value < 0 {
			r.Status = "FAILURE"
		}
		r.URL = urlRE.FindString(ev.Comment)
		return r, true
	case gerrit.EventPatchSetCreated:
		// Not a verdict, but it makes verdicts on older patch sets stale.
		return Result{Status: StatusUploaded, Gating: true, Change: change, EventType: ev.Type, EventAccount: account(ev.Uploader), Key: ev.Key()}, true
	case gerrit.EventChangeAbandoned:
		return Result{Status: StatusAbandoned, Gating: true, Change: change, EventType: ev.Type, EventAccount: account(ev.Abandoner), Key: ev.Key()}, true
	case gerrit.EventChangeMerged:
		return Result{Status: "SUCCESS", Gating: true, Change: change, EventType: ev.Type, Vote: "merged", Key: ev.Key()}, true
	}
	return Result{}, false
}

func account(a *gerrit.EventAccount) Account {
	if a == nil {
		return Account{}
	}
	return Account{Name: a.Name, Email: a.Email, Username: a.Username}
}
