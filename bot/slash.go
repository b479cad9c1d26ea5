package bot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/slack-go/slack"

	"github.com/seed-5eb4e92e/deploybot/authz"
	"github.com/seed-5eb4e92e/deploybot/commands"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// readSigned reads a capped body of media type want and checks Slack's
// signature over it. It writes the error response itself and returns a
// non-empty outcome when the request must go no further.
func (r *Responder) readSigned(w http.ResponseWriter, req *http.Request, want string) ([]byte, outcome) {
	if mt, _, err := mime.ParseMediaType(req.Header.Get("Content-Type")); err != nil || mt != want {
		// Slack sends forms to commands and interactions, JSON to events;
		// anything else is not Slack, signed or not.
		http.Error(w, "expected Content-Type "+want, http.StatusUnsupportedMediaType)
		return nil, "bad_content_type"
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, r.cfg.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return nil, "too_large"
		}
		http.Error(w, "cannot read request body", http.StatusBadRequest)
		return nil, "bad_request"
	}
	if trusted(req.Context()) {
		return body, ""
	}
	if r.cfg.SigningSecret == "" {
		// Socket Mode only: nothing over HTTP can be verified.
		http.Error(w, "Slack is served over Socket Mode here", http.StatusNotFound)
		return nil, "not_found"
	}
	sv, err := slack.NewSecretsVerifier(req.Header, r.cfg.SigningSecret)
	if err == nil {
		_, _ = sv.Write(body)
		err = sv.Ensure()
	}
	if err != nil {
		r.log.Warn("refused a request with a bad or missing Slack signature", "path", req.URL.Path, "reason", err.Error())
		http.Error(w, "invalid request signature", http.StatusUnauthorized)
		return nil, "unauthorized"
	}
	return body, ""
}

// formType is the media type of what Slack posts to commands and
// interactions.
const formType = "application/x-www-form-urlencoded"

// repeated reports whether any of keys appears more than once in form.
// Slack never sends a field twice; a body that does is not one to guess
// about (which user_id counts?).
func repeated(form url.Values, keys ...string) bool {
	for _, k := range keys {
		if len(form[k]) > 1 {
			return true
		}
	}
	return false
}

func (r *Responder) handleCommand(w http.ResponseWriter, req *http.Request) outcome {
	body, out := r.readSigned(w, req, formType)
	if out != "" {
		return out
	}
	form, err := url.ParseQuery(string(body))
	if err != nil || form.Get("user_id") == "" || repeated(form, "user_id", "team_id", "channel_id", "command", "text", "response_url", "trigger_id") {
		http.Error(w, "not a slash command payload", http.StatusBadRequest)
		return "bad_request"
	}
	cmd := slack.SlashCommand{
		TeamID: form.Get("team_id"), ChannelID: form.Get("channel_id"), UserID: form.Get("user_id"),
		Command: form.Get("command"), Text: form.Get("text"), ResponseURL: form.Get("response_url"),
		TriggerID: form.Get("trigger_id"),
	}
	words := strings.Fields(cmd.Text)
	verb := "help"
	if len(words) > 0 {
		verb = strings.ToLower(words[0])
	}
	log := r.log.With("user", cmd.UserID, "command", verb)
	ctx, cancel := context.WithTimeout(req.Context(), r.cfg.AckTimeout)
	defer cancel()
	ent := &authz.Entry{User: cmd.UserID, Kind: "command", What: r.typed(cmd)}
	out = r.command(withEntry(ctx, ent), w, cmd, log)
	r.record(ent, out, log)
	return out
}

// typed is the command as the user typed it: "/deploy api main to prod".
func (r *Responder) typed(cmd slack.SlashCommand) string {
	slash := cmd.Command
	if slash == "" {
		slash = r.cmds().table.Slash
	}
	return strings.TrimSpace(slash + " " + cmd.Text)
}

// command parses a slash command, checks that the user may run it, and
// answers or queues it.
func (r *Responder) command(ctx context.Context, w http.ResponseWriter, cmd slack.SlashCommand, log *slog.Logger) outcome {
	parsed, err := r.cmds().table.Parse(cmd.Text, r.cmds().catalog)
	if err != nil {
		var ue *commands.UsageError
		if errors.As(err, &ue) {
			reply(w, ue.Error())
			return "usage"
		}
		reply(w, "I could not read that command.")
		return "usage"
	}
	ent := entryOf(ctx)
	ent.Service, ent.Env = parsed.Service, parsed.Env
	switch parsed.Kind {
	case "help":
		reply(w, r.cmds().table.HelpFor(parsed.Topic, r.cmds().catalog, r.mayRun(ctx, cmd.UserID)))
		return "help"
	case "status":
		return r.status(ctx, w, cmd, parsed, log)
	case "history":
		return r.history(ctx, w, parsed, log)
	}
	if err := r.auth.Check(ctx, cmd.UserID, parsed.Permission()); err != nil {
		return r.denied(ctx, w, err, log)
	}
	switch parsed.Kind {
	case "whoami", "login", "perms", "audit":
		return r.access(ctx, w, cmd, parsed, log)
	}
	if out, done := r.envCommand(ctx, w, cmd, parsed, log); done {
		return out
	}
	if out := r.lockedOut(ctx, w, cmd, parsed, log); out != "" {
		return out
	}
	return r.queueCommand(ctx, w, cmd, parsed, log)
}

// mayRun tells help which commands user may run: those that need no
// permission, and those whose action they hold on some service. When
// permissions can't be read, help lists everything.
func (r *Responder) mayRun(ctx context.Context, user string) func(commands.Command) bool {
	return func(c commands.Command) bool {
		if c.Action == "" {
			return true
		}
		err := r.auth.Check(ctx, user, commands.Permission{Action: c.Action})
		var d *authz.Denied
		return !errors.As(err, &d)
	}
}

// queueCommand writes the job a command asked for and answers with its ID,
// or with the job an identical recent command started.
func (r *Responder) queueCommand(ctx context.Context, w http.ResponseWriter, cmd slack.SlashCommand, parsed commands.Request, log *slog.Logger) outcome {
	job := queue.Job{
		Request: parsed, Text: r.typed(cmd), User: cmd.UserID,
		Channel: cmd.ChannelID, ResponseURL: cmd.ResponseURL, CreatedAt: r.now(),
	}
	if out, done := r.protect(ctx, cmd.TriggerID, job, func(text string) { reply(w, text) }, log); done {
		return out
	}
	dd := queue.Dedupe{
		Key: dedupeKey("cmd", cmd.TeamID, cmd.UserID, cmd.ChannelID, parsed.Kind, parsed.Service, parsed.Ref, parsed.Env, strconv.Itoa(parsed.Change)),
		TTL: r.cfg.DedupeWindow,
	}
	res, err := r.enqueue(ctx, job, dd)
	if err != nil {
		text, out := r.unavailable(err, log)
		reply(w, text)
		return out
	}
	what := describe(parsed)
	entryOf(ctx).Job = res.ID
	if res.Duplicate {
		log.Info("duplicate command answered with the existing job", "job_id", res.ID)
		reply(w, fmt.Sprintf("Already queued: %s — job `%s`. The same command arrived twice within %s, so I started it once.",
			what, res.ID, r.cfg.DedupeWindow))
		return "duplicate"
	}
	log.Info("job queued", "job_id", res.ID)
	reply(w, fmt.Sprintf("⏳ Queued %s — job `%s`. I'll follow it in this channel.", what, res.ID))
	return "queued"
}

// describe is "build of api@feature/login" or "recheck of change 1503".
func describe(req commands.Request) string {
	if req.Change > 0 {
		return fmt.Sprintf("%s of change %d", req.Kind, req.Change)
	}
	s := req.Kind + " of " + escape(req.Service)
	if req.Ref != "" {
		s += "@" + escape(req.Ref)
	}
	switch {
	case req.Env != "" && req.Kind == "rollback":
		s += " in " + escape(req.Env)
	case req.Env != "":
		s += " to " + escape(req.Env)
	}
	return s
}

// status answers at once with the recent jobs from Redis and, where
// deploybot deploys, queues a job that asks Marathon what runs where and
// answers the same person a moment later.
func (r *Responder) status(ctx context.Context, w http.ResponseWriter, cmd slack.SlashCommand, req commands.Request, log *slog.Logger) outcome {
	recs, err := r.q.Recent(ctx, req.Service, r.cfg.Recent)
	if err != nil {
		r.health.Fail(err)
		log.Error("read recent jobs", "err", err)
		reply(w, "⚠️ I can't read the job history right now: the job queue (Redis) is not answering. Try again in a minute.")
		return "unavailable"
	}
	blocks := StatusMessage(req.Service, recs, r.now())
	if r.deploysAnything(req.Service) && cmd.ResponseURL != "" {
		job := queue.Job{Request: commands.Request{Kind: "live", Service: req.Service}, User: cmd.UserID, ResponseURL: cmd.ResponseURL, CreatedAt: r.now()}
		dd := queue.Dedupe{Key: dedupeKey("live", cmd.TeamID, cmd.UserID, req.Service), TTL: r.cfg.DedupeWindow}
		if _, err := r.enqueue(ctx, job, dd); err == nil {
			blocks = append(blocks, section("_Asking Marathon and Mesos what runs where; the answer follows here._"))
		} else {
			log.Warn("could not queue the live status", "err", err)
		}
	}
	writeJSON(w, ephemeral{ResponseType: "ephemeral", Text: "Recent jobs", Blocks: blocks})
	return "status"
}

// deploysAnything reports whether service (or, when "", any service) has
// environments to deploy to.
func (r *Responder) deploysAnything(service string) bool {
	for _, s := range r.cmds().catalog.Services {
		if (service == "" || s.Name == service) && len(s.Envs) > 0 {
			return true
		}
	}
	return false
}

func (r *Responder) denied(ctx context.Context, w http.ResponseWriter, err error, log *slog.Logger) outcome {
	var d *authz.Denied
	if errors.As(err, &d) {
		log.Info("request denied", "permission", d.Permission.String())
		entryOf(ctx).Detail = deniedDetail(d)
		reply(w, "⛔ Not allowed: "+d.Error()+".")
		return "denied"
	}
	log.Error("permission check failed", "err", err)
	reply(w, "⚠️ I could not check your permissions just now, so nothing was started. Try again in a minute.")
	return "unavailable"
}

// deniedDetail is what the audit trail keeps of a denial: the permission
// and, when a deny rule decided, the rule.
func deniedDetail(d *authz.Denied) string {
	if d.DeniedBy != "" {
		return d.Permission.String() + " (denied by " + d.DeniedBy + ")"
	}
	return d.Permission.String()
}

// unavailable explains a failed enqueue. Nothing was started in every case:
// Redis refuses a write that arrives after the ack deadline.
func (r *Responder) unavailable(err error, log *slog.Logger) (string, outcome) {
	if errors.Is(err, queue.ErrFull) {
		log.Warn("queue full; request refused")
		return "⚠️ Nothing was started: too many jobs are already waiting. Try again in a few minutes.", "full"
	}
	r.health.Fail(err)
	log.Error("enqueue failed; nothing was started", "err", err)
	return "⚠️ Nothing was started: the job queue (Redis) did not answer in time. Try again in a minute.", "unavailable"
}

// enqueue writes the job, giving up when ctx ends. Giving up is safe: the
// queue refuses writes that reach Redis after the deadline.
func (r *Responder) enqueue(ctx context.Context, job queue.Job, dd queue.Dedupe) (queue.Enqueued, error) {
	type result struct {
		res queue.Enqueued
		err error
	}
	ch := make(chan result, 1)
	go func() {
		res, err := r.q.Enqueue(ctx, job, dd)
		ch <- result{res, err}
	}()
	select {
	case x := <-ch:
		return x.res, x.err
	case <-ctx.Done():
		return queue.Enqueued{}, ctx.Err()
	}
}

func dedupeKey(kind string, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return kind + ":" + hex.EncodeToString(h.Sum(nil))[:32]
}
