package blame

import (
	"strings"

	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// Results can arrive late and out of order: two builds of a job run at
// once, the webhook and the stream deliver at their own pace. What is
// older than the newest result heard of changes nothing.

// stale reports whether r is older than what n has heard of: a verdict on
// a superseded patch set (or on no patch set, once one is known), or an
// older build. Builds are ordered by queue ID when both sides have one,
// since build numbers start again when a job is recreated.
func stale(n queue.Notice, r Result) bool {
	if r.Gating && r.Change != nil {
		return n.Newest > 0 && r.Change.PatchSet < n.Newest
	}
	if r.QueueID > 0 && n.NewestQueue > 0 {
		return r.QueueID < n.NewestQueue
	}
	return r.Number > 0 && r.Number < n.Newest
}

// heard records that r was acted on.
func heard(n *queue.Notice, r Result) {
	n.RememberEvent(r.Key)
	switch {
	case r.Gating && r.Change != nil:
		n.Newest = max(n.Newest, r.Change.PatchSet)
		n.NewestQueue = max(n.NewestQueue, r.QueueID)
	case r.QueueID > 0 && r.QueueID >= n.NewestQueue:
		n.NewestQueue, n.Newest = r.QueueID, r.Number // a renumbered job starts low
	case r.QueueID == 0:
		n.Newest = max(n.Newest, r.Number)
	}
}

// countRun counts failure r among n's runs, which is what Retry is
// allowed once per. Each failing build of a job is a run. A change's run
// is its gating jobs and then CI's vote: a job failure starts a run unless
// one is under way, the vote ends it; a job queued after a retry is the
// retry's run.
func countRun(n *queue.Notice, r Result) {
	kind := "vote"
	if r.Job != "" {
		kind = "job"
	}
	switch {
	case !n.Gating:
		n.Runs++
	case n.LastKind != "job":
		n.Runs++ // the first failure, or one after a vote
	case kind == "job" && n.RetriedAt == n.Runs && r.QueueID > n.RetryQueue:
		n.Runs++
	}
	n.LastKind = kind
}

// mainline reports whether a build of the service's build job with params
// built its default ref. A build without the parameter (started some
// other way) counts.
func mainline(s Service, params map[string]string) bool {
	ref, ok := params[s.RefParam]
	if s.RefParam == "" || !ok || s.DefaultRef == "" {
		return true
	}
	return shortRef(ref) == shortRef(s.DefaultRef)
}

// shortRef is a branch's name however Jenkins spells it: "main",
// "origin/main" or "refs/heads/main".
func shortRef(ref string) string {
	ref = strings.TrimPrefix(ref, "refs/heads/")
	return strings.TrimPrefix(ref, "origin/")
}
