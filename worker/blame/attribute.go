package blame

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/seed-5eb4e92e/deploybot/backends/jenkins"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// attribute finds who broke r, in this order: the Gerrit account behind
// the build (the uploader whose patch set started it, else the change's
// owner; for a build of a direct push, the pusher), the change's uploader,
// the authors of the first failing build after a success, and last
// Jenkins' culprits. CI accounts are never blamed.
func (e *Engine) attribute(ctx context.Context, r Result) []queue.Person {
	if c := r.Change; c != nil {
		if r.EventType == "patchset-created" && e.named(r.EventAccount) && !e.isCI(r.EventAccount) {
			return []queue.Person{e.person(ctx, r.EventAccount, fmt.Sprintf("uploaded patch set %d of change %d", c.PatchSet, c.Number))}
		}
		if e.named(c.Owner) && !e.isCI(c.Owner) {
			return []queue.Person{e.person(ctx, c.Owner, fmt.Sprintf("owner of change %d", c.Number))}
		}
		if e.named(c.Uploader) && !e.isCI(c.Uploader) {
			return []queue.Person{e.person(ctx, c.Uploader, fmt.Sprintf("uploader of change %d, patch set %d", c.Number, c.PatchSet))}
		}
	}
	if r.Change == nil && r.EventType == "ref-updated" && e.named(r.EventAccount) && !e.isCI(r.EventAccount) {
		// A push straight to the branch, not through review: the pusher.
		return []queue.Person{e.person(ctx, r.EventAccount, fmt.Sprintf("pushed %s, which %s built", refName(r.Params["GERRIT_REFNAME"]), title(r)))}
	}
	if r.Job == "" || e.builds == nil {
		return e.culprits(ctx, r.Culprits, r)
	}
	first, err := e.firstFailing(ctx, r.Job, r.Number)
	if err != nil {
		e.log.Warn("could not read the job's builds to find who broke it", "job", r.Job, "err", err)
		return e.culprits(ctx, r.Culprits, r)
	}
	if people := e.authors(ctx, first, fmt.Sprintf("committed to %s #%d, the first failing build", r.Job, first.Number)); len(people) > 0 {
		return people
	}
	names := r.Culprits
	for _, c := range first.Culprits {
		names = append(names, c.FullName)
	}
	return e.culprits(ctx, names, r)
}

// refName is how a pushed ref is named: its branch, or "a commit".
func refName(ref string) string {
	if b, ok := strings.CutPrefix(ref, "refs/heads/"); ok && b != "" {
		return "to " + b
	} else if ref != "" {
		return ref
	}
	return "a commit"
}

// fixers are who fixed r: the uploader of the passing patch set, or the
// authors of the passing build.
func (e *Engine) fixers(ctx context.Context, r Result) []queue.Person {
	if c := r.Change; c != nil && r.Gating {
		if e.named(c.Uploader) && !e.isCI(c.Uploader) {
			return []queue.Person{e.person(ctx, c.Uploader, fmt.Sprintf("uploaded patch set %d", c.PatchSet))}
		}
		return nil
	}
	if r.Job == "" || e.builds == nil {
		return nil
	}
	b, err := e.builds.Build(ctx, r.Job, r.Number)
	if err != nil {
		return nil
	}
	return e.authors(ctx, b, fmt.Sprintf("committed to %s #%d", r.Job, r.Number))
}

// firstFailing walks back from build n of job to the first failing build
// after the last success (ten builds at most), so the people named are the
// ones whose change broke it, not everyone since.
func (e *Engine) firstFailing(ctx context.Context, job string, n int) (jenkins.Build, error) {
	first, err := e.builds.Build(ctx, job, n)
	if err != nil {
		return jenkins.Build{}, err
	}
	for i := n - 1; i > 0 && i >= n-10; i-- {
		prev, err := e.builds.Build(ctx, job, i)
		var he *jenkins.HTTPError
		if errors.As(err, &he) && he.Status == http.StatusNotFound {
			break // deleted or never kept
		}
		if err != nil {
			return first, nil
		}
		if prev.Result == "SUCCESS" {
			break
		}
		if failed(prev.Result) {
			first = prev
		}
	}
	return first, nil
}

// authors are the distinct commit authors of b, at most three.
func (e *Engine) authors(ctx context.Context, b jenkins.Build, why string) []queue.Person {
	var out []queue.Person
	seen := map[string]bool{}
	for _, c := range b.Changes() {
		key := strings.ToLower(c.AuthorEmail)
		if key == "" {
			key = c.Author.FullName
		}
		if key == "" || seen[key] || len(out) == 3 {
			continue
		}
		seen[key] = true
		a := Account{Name: c.Author.FullName, Email: c.AuthorEmail}
		if e.isCI(a) {
			continue
		}
		out = append(out, e.person(ctx, a, why))
	}
	return out
}

// culprits names Jenkins' culprits, the last resort.
func (e *Engine) culprits(ctx context.Context, names []string, r Result) []queue.Person {
	var out []queue.Person
	seen := map[string]bool{}
	for _, name := range names {
		if name == "" || seen[name] || len(out) == 3 {
			continue
		}
		seen[name] = true
		out = append(out, e.person(ctx, Account{Name: name, Username: name}, fmt.Sprintf("named by Jenkins as a culprit of %s", label(r))))
	}
	return out
}

func (e *Engine) named(a Account) bool { return a.Email != "" || a.Username != "" || a.Name != "" }

// person finds a on Slack: an alias (by address, username or name) wins,
// else the address is looked up. Someone not found is named in plain text.
func (e *Engine) person(ctx context.Context, a Account, why string) queue.Person {
	p := queue.Person{Name: a.Name, Email: a.Email, Reason: why}
	if p.Name == "" {
		p.Name = a.Username
	}
	email := a.Email
	for _, k := range []string{a.Email, a.Username, a.Name} {
		if v, ok := e.cfg.Aliases[strings.ToLower(k)]; ok && k != "" {
			if isSlackID(v) {
				p.SlackID = v
				return p
			}
			email = v
			break
		}
	}
	if email == "" || e.dir == nil {
		return p
	}
	id, found, err := e.dir.LookupEmail(ctx, email)
	switch {
	case err != nil:
		e.log.Warn("slack user lookup failed", "err", err)
	case found:
		p.SlackID = id
	}
	return p
}

func isSlackID(s string) bool {
	if len(s) < 3 || (s[0] != 'U' && s[0] != 'W') {
		return false
	}
	for _, c := range s[1:] {
		if !('A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}
