package bot

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/slack-go/slack"

	"github.com/seed-5eb4e92e/deploybot/commands"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// Envs is what the responder needs for environment locks and deploy
// history. *queue.Queue satisfies it.
type Envs interface {
	EnvLock(ctx context.Context, env string) (queue.EnvLock, bool, error)
	LockEnv(ctx context.Context, l queue.EnvLock) (queue.EnvLock, bool, error)
	UnlockEnv(ctx context.Context, env string) (queue.EnvLock, bool, error)
	History(ctx context.Context, service, env string, n int64) ([]queue.Record, error)
}

// ActionWaitForLock is the button that queues a refused deploy behind the
// lock that refused it; its value is the command's text.
const ActionWaitForLock = "deploy_wait"

// changesEnv reports whether a request changes what runs in an
// environment, and so must respect its lock.
func changesEnv(kind string) bool {
	return kind == "deploy" || kind == "promote" || kind == "rollback"
}

// lockedOut answers a deploy to an environment someone else has locked:
// who, why, until when, and a button to queue it behind the lock. It
// returns "" when the request may go ahead.
func (r *Responder) lockedOut(ctx context.Context, w http.ResponseWriter, cmd slack.SlashCommand, req commands.Request, log *slog.Logger) outcome {
	if r.envs == nil || !changesEnv(req.Kind) {
		return ""
	}
	l, found, err := r.envs.EnvLock(ctx, req.Env)
	if err != nil {
		text, out := r.unavailable(err, log)
		reply(w, text)
		return out
	}
	if !found || !l.Holds(cmd.UserID, r.now()) {
		return ""
	}
	text := fmt.Sprintf("🔒 Not started: %s.", lockLine(l))
	btn := slack.NewButtonBlockElement(ActionWaitForLock, cmd.Text, slack.NewTextBlockObject(slack.PlainTextType, "Queue it behind the lock", false, false))
	writeJSON(w, ephemeral{ResponseType: "ephemeral", Text: text, Blocks: []slack.Block{
		section(text + " Nothing was queued; *Queue it behind the lock* to have it start when the lock is lifted or expires."),
		slack.NewActionBlock("lock-actions", btn),
	}})
	log.Info("deploy refused: environment locked", "env", req.Env, "holder", l.User)
	return "locked"
}

// lockLine says who holds a lock, until when and why, in mrkdwn.
func lockLine(l queue.EnvLock) string {
	s := fmt.Sprintf("*%s* is locked by <@%s> until %s UTC", escape(l.Env), escape(l.User), l.Until.UTC().Format("Jan 2 15:04"))
	if l.Reason != "" {
		s += ": " + escape(l.Reason)
	}
	return s
}

// lock takes or extends the caller's lock on an environment, and says so
// in the channel, where the people it stops can see it.
func (r *Responder) lock(ctx context.Context, w http.ResponseWriter, cmd slack.SlashCommand, req commands.Request, log *slog.Logger) outcome {
	now := r.now()
	l := queue.EnvLock{Env: req.Env, User: cmd.UserID, Reason: req.Reason, Since: now, Until: now.Add(req.For)}
	got, ok, err := r.envs.LockEnv(ctx, l)
	if err != nil {
		text, out := r.unavailable(err, log)
		reply(w, text)
		return out
	}
	if !ok {
		reply(w, fmt.Sprintf("🔒 Not yours to lock: %s.", lockLine(got)))
		return "locked"
	}
	log.Info("environment locked", "env", req.Env, "until", l.Until.UTC().Format("2006-01-02T15:04:05Z"))
	text := fmt.Sprintf("🔒 %s. Deploys by anyone else are refused, or wait, until `%s unlock %s`.", lockLine(got), r.cmds().table.Slash, escape(req.Env))
	writeJSON(w, ephemeral{ResponseType: "in_channel", Text: text, Blocks: []slack.Block{section(text)}})
	return "queued"
}

// unlock lifts an environment's lock, whoever holds it (the permission to
// lock it is the permission to unlock it), and says so in the channel.
func (r *Responder) unlock(ctx context.Context, w http.ResponseWriter, cmd slack.SlashCommand, req commands.Request, log *slog.Logger) outcome {
	l, found, err := r.envs.UnlockEnv(ctx, req.Env)
	if err != nil {
		text, out := r.unavailable(err, log)
		reply(w, text)
		return out
	}
	if !found || !r.now().Before(l.Until) {
		reply(w, fmt.Sprintf("*%s* is not locked.", escape(req.Env)))
		return "usage"
	}
	log.Info("environment unlocked", "env", req.Env, "holder", l.User)
	text := fmt.Sprintf("🔓 <@%s> unlocked *%s*", escape(cmd.UserID), escape(req.Env))
	if l.User != cmd.UserID {
		text += fmt.Sprintf(" (it was locked by <@%s>", escape(l.User))
		if l.Reason != "" {
			text += ": " + escape(l.Reason)
		}
		text += ")"
	}
	text += ". Deploys queued behind it start when they next look, within 15 seconds."
	writeJSON(w, ephemeral{ResponseType: "in_channel", Text: text, Blocks: []slack.Block{section(text)}})
	return "queued"
}

// history lists a service's recent deploys, from deploybot's records.
func (r *Responder) history(ctx context.Context, w http.ResponseWriter, req commands.Request, log *slog.Logger) outcome {
	if r.envs == nil {
		reply(w, "deploybot deploys nothing here, so there is no history.")
		return "usage"
	}
	recs, err := r.envs.History(ctx, req.Service, req.Env, r.cfg.Recent)
	if err != nil {
		r.health.Fail(err)
		log.Error("read deploy history", "err", err)
		reply(w, "⚠️ I can't read the deploy history right now: the job queue (Redis) is not answering. Try again in a minute.")
		return "unavailable"
	}
	writeJSON(w, ephemeral{ResponseType: "ephemeral", Text: "Deploy history", Blocks: HistoryMessage(req.Service, req.Env, recs, r.now())})
	return "status"
}

// envCommand runs the commands the responder answers from Redis alone:
// lock and unlock (after the permission check) and history.
func (r *Responder) envCommand(ctx context.Context, w http.ResponseWriter, cmd slack.SlashCommand, req commands.Request, log *slog.Logger) (outcome, bool) {
	if r.envs == nil && (req.Kind == "lock" || req.Kind == "unlock") {
		reply(w, "deploybot deploys nothing here, so there is nothing to lock.")
		return "usage", true
	}
	switch req.Kind {
	case "lock":
		return r.lock(ctx, w, cmd, req, log), true
	case "unlock":
		return r.unlock(ctx, w, cmd, req, log), true
	}
	return "", false
}
