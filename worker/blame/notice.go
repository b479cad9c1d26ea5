package blame

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// failure opens a notice for n's subject, or adds r to the open one.
func (e *Engine) failure(ctx context.Context, n queue.Notice, service, channel string, r Result) error {
	what := label(r)
	now := e.now()
	if n.Open() {
		heard(&n, r)
		if r.Job != "" && slices.Contains(n.Failures, what) {
			// The same build, reported again (by the Notification plugin
			// and by deploybot's own follow-up, say).
			return e.store.SaveNotice(ctx, n)
		}
		n.Failures = append(n.Failures, what)
		countRun(&n, r)
		if f := e.failingName(r); !slices.Contains(n.Failing, f) {
			n.Failing = append(n.Failing, f)
		}
		n.Links = mergeLinks(n.Links, links(r))
		if r.Change != nil && n.Change != nil && r.Change.PatchSet > n.Change.PatchSet {
			n.Change.PatchSet = r.Change.PatchSet
		}
		n.Updated = now
		return e.show(ctx, n)
	}
	fresh := queue.Notice{
		Subject:  n.Subject,
		Service:  service,
		Channel:  channel,
		State:    "failing",
		Title:    title(r),
		Job:      r.Job,
		Gating:   r.Gating && r.Change != nil,
		Links:    links(r),
		Breakers: e.attribute(ctx, r),
		Failures: []string{what},
		Retry:    retryTarget(r),
		Failing:  []string{e.failingName(r)},
		// What outlives one breakage: the mute, and what was heard.
		MutedUntil:  n.MutedUntil,
		MutedBy:     n.MutedBy,
		Newest:      n.Newest,
		NewestQueue: n.NewestQueue,
		Seen:        n.Seen,
		Created:     now,
		Updated:     now,
	}
	heard(&fresh, r)
	countRun(&fresh, r)
	if c := r.Change; c != nil {
		fresh.Change = &queue.NoticeChange{Project: c.Project, Number: c.Number, PatchSet: c.PatchSet, Subject: c.Subject, URL: c.URL}
	}
	e.log.Info("breakage noticed", "subject", fresh.Subject, "failure", what, "breakers", len(fresh.Breakers))
	return e.show(ctx, fresh)
}

// success closes n if r is what fixes it. A notice that is not open (or a
// subject that never broke) only learns that r was heard, so an older
// failure arriving late stays quiet.
func (e *Engine) success(ctx context.Context, n queue.Notice, r Result) error {
	heard(&n, r)
	if !n.Open() {
		return e.store.SaveNotice(ctx, n)
	}
	if r.Job != "" && r.Gating {
		// One job of a change's gating passing is not the change passing
		// while its other jobs fail, or while CI's -1 stands; a CI vote
		// settles it.
		n.Failing = remove(n.Failing, r.Job)
		if len(n.Failing) > 0 {
			n.Updated = e.now()
			return e.store.SaveNotice(ctx, n)
		}
	}
	n.State = "fixed"
	n.FixedBy = e.fixers(ctx, r)
	switch {
	case r.Job != "" && !r.Gating:
		n.FixedIn = fmt.Sprintf("#%d", r.Number)
	case r.Change != nil && r.Change.PatchSet > 0:
		n.FixedIn = fmt.Sprintf("patch set %d", r.Change.PatchSet)
	}
	n.Updated = e.now()
	e.log.Info("breakage fixed", "subject", n.Subject, "fixed_in", n.FixedIn)
	return e.show(ctx, n)
}

// failingName is what r puts in a notice's Failing list: its job, or for
// CI's vote the verify label, which only a vote takes off again.
func (e *Engine) failingName(r Result) string {
	if r.Job != "" {
		return r.Job
	}
	return e.cfg.VerifyLabel
}

// abandoned closes n's notice: the change will not be fixed, and its
// Recheck button should go.
func (e *Engine) abandoned(ctx context.Context, n queue.Notice, r Result) error {
	heard(&n, r)
	if !n.Open() {
		return e.store.SaveNotice(ctx, n)
	}
	n.State = queue.StateAbandoned
	n.FixedBy = nil
	if e.named(r.EventAccount) {
		n.FixedBy = []queue.Person{e.person(ctx, r.EventAccount, "abandoned the change")}
	}
	n.Updated = e.now()
	e.log.Info("breakage closed: change abandoned", "subject", n.Subject)
	return e.show(ctx, n)
}

// show updates the notice's message when it has one (muted or not: a mute
// quiets new notices, it does not hide a fix), or posts it when it is open
// and not muted — also when a breakage that began during a mute outlasts
// it — with DMs to the people it names; then saves it. A failed update is
// logged: the notice's state is still worth keeping.
func (e *Engine) show(ctx context.Context, n queue.Notice) error {
	n.ID = queue.NoticeID(n.Subject) // the buttons carry it
	switch {
	case n.MessageTS != "":
		if _, _, err := e.notify.Show(ctx, n); err != nil {
			e.log.Warn("could not update the notice", "subject", n.Subject, "err", err)
		}
	case n.Open() && !n.Muted(e.now()):
		channel, ts, err := e.notify.Show(ctx, n)
		if err != nil {
			return fmt.Errorf("blame: show notice: %w", err)
		}
		n.MessageTS, n.Channel = ts, cmp.Or(channel, n.Channel)
		e.sendDMs(ctx, n)
	}
	return e.store.SaveNotice(ctx, n)
}

func (e *Engine) sendDMs(ctx context.Context, n queue.Notice) {
	if !e.cfg.DM {
		return
	}
	for _, p := range n.Breakers {
		if p.SlackID == "" {
			continue
		}
		if err := e.notify.DM(ctx, p.SlackID, n); err != nil {
			e.log.Warn("could not send the notice as a DM", "user", p.SlackID, "err", err)
		}
	}
}

// title is what broke: the job and build, or the change's gating.
func title(r Result) string {
	switch {
	case r.Job != "":
		return fmt.Sprintf("%s #%d", r.Job, r.Number)
	case r.Change != nil:
		return fmt.Sprintf("change %d", r.Change.Number)
	}
	return "a build"
}

func links(r Result) []queue.Link {
	var out []queue.Link
	switch {
	case r.URL != "" && r.Job != "":
		out = append(out, queue.Link{Kind: "build", Text: fmt.Sprintf("%s #%d", r.Job, r.Number), URL: r.URL})
		out = append(out, queue.Link{Kind: "console", Text: "console", URL: r.URL + "console"})
	case r.URL != "":
		out = append(out, queue.Link{Kind: "build", Text: "build", URL: r.URL})
	}
	if r.Change != nil && r.Change.URL != "" {
		out = append(out, queue.Link{Kind: "change", Text: fmt.Sprintf("change %d", r.Change.Number), URL: r.Change.URL})
	}
	return out
}

// mergeLinks adds the links of b to a, a newer link replacing an older one
// of its kind: the notice points at the newest failing build. A console
// link goes when a build link without one replaces its build.
func mergeLinks(a, b []queue.Link) []queue.Link {
	kinds := map[string]bool{}
	for _, l := range b {
		kinds[l.Kind] = true
	}
	var out []queue.Link
	for _, l := range a {
		if kinds[l.Kind] || (l.Kind == "console" && kinds["build"]) {
			continue
		}
		out = append(out, l)
	}
	return append(out, b...)
}

// retryTarget is what Retry does: recheck a change under review, or run the
// job again with the same parameters.
func retryTarget(r Result) queue.RetryTarget {
	if r.Gating && r.Change != nil {
		return queue.RetryTarget{Kind: "recheck", Project: r.Change.Project, Change: r.Change.Number}
	}
	if r.Job != "" {
		return queue.RetryTarget{Kind: "rebuild", Job: r.Job, Params: r.Params}
	}
	return queue.RetryTarget{}
}
