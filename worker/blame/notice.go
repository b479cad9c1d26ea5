package blame

import (
	"context"
	"fmt"

	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// failure opens a notice for subject, or adds r to the open one.
func (e *Engine) failure(ctx context.Context, subject, service, channel string, r Result) error {
	n, err := e.load(ctx, subject)
	if err != nil {
		return err
	}
	what := label(r)
	now := e.now()
	if n.Open() {
		if contains(n.Failures, what) {
			return nil // a re-delivery, or the same failure reported by Jenkins and Gerrit
		}
		n.Failures = append(n.Failures, what)
		if r.Job != "" && !contains(n.Failing, r.Job) {
			n.Failing = append(n.Failing, r.Job)
		}
		n.Links = mergeLinks(n.Links, links(r))
		if r.Change != nil && n.Change != nil && r.Change.PatchSet > n.Change.PatchSet {
			n.Change.PatchSet = r.Change.PatchSet
		}
		n.Updated = now
		return e.show(ctx, n, false)
	}
	mute, mutedBy := n.MutedUntil, n.MutedBy
	n = queue.Notice{
		Subject:    subject,
		Service:    service,
		Channel:    channel,
		State:      "failing",
		Title:      title(r),
		Job:        r.Job,
		Gating:     r.Gating && r.Change != nil,
		Links:      links(r),
		Breakers:   e.attribute(ctx, r),
		Failures:   []string{what},
		Retry:      retryTarget(r),
		MutedUntil: mute,
		MutedBy:    mutedBy,
		Created:    now,
		Updated:    now,
	}
	if r.Job != "" {
		n.Failing = []string{r.Job}
	}
	if c := r.Change; c != nil {
		n.Change = &queue.NoticeChange{Project: c.Project, Number: c.Number, PatchSet: c.PatchSet, Subject: c.Subject, URL: c.URL}
	}
	e.log.Info("breakage noticed", "subject", subject, "failure", what, "breakers", len(n.Breakers))
	return e.show(ctx, n, true)
}

// success closes subject's open notice, if r is what fixes it.
func (e *Engine) success(ctx context.Context, subject string, r Result) error {
	n, err := e.load(ctx, subject)
	if err != nil || !n.Open() {
		return err
	}
	if r.Job != "" && r.Gating {
		// One job of a change's gating passing is not the change passing
		// while its other jobs fail; a CI vote settles it.
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
	e.log.Info("breakage fixed", "subject", subject, "fixed_in", n.FixedIn)
	return e.show(ctx, n, false)
}

// show posts a new notice (unless its subject is muted) or updates the
// message of an existing one (muted or not: a mute quiets new notices, it
// does not hide a fix), sends the DMs of a new one, and saves it.
func (e *Engine) show(ctx context.Context, n queue.Notice, fresh bool) error {
	n.ID = queue.NoticeID(n.Subject) // the buttons carry it
	if (fresh && !n.Muted(e.now())) || (!fresh && n.MessageTS != "") {
		ts, err := e.notify.Show(ctx, n)
		if err != nil {
			return fmt.Errorf("blame: show notice: %w", err)
		}
		n.MessageTS = ts
		if fresh && e.cfg.DM {
			for _, p := range n.Breakers {
				if p.SlackID == "" {
					continue
				}
				if err := e.notify.DM(ctx, p.SlackID, n); err != nil {
					e.log.Warn("could not send the notice as a DM", "user", p.SlackID, "err", err)
				}
			}
		}
	}
	return e.store.SaveNotice(ctx, n)
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
