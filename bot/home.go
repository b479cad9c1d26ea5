package bot

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"github.com/seed-5eb4e92e/deploybot/commands"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// HomePublisher shows a user their App Home tab (views.publish).
type HomePublisher interface {
	PublishHome(ctx context.Context, user string, blocks []slack.Block) error
}

// PublishHome publishes the user's Home tab.
func (s *Slack) PublishHome(ctx context.Context, user string, blocks []slack.Block) error {
	view := slack.HomeTabViewRequest{Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: blocks}}
	if _, err := s.api.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: user, View: view}); err != nil {
		return fmt.Errorf("slack: views.publish: %w", err)
	}
	return nil
}

// Slack takes at most 100 blocks in a Home tab. homeJobs and homeBlocks
// keep well inside that.
const (
	homeJobs      = 5
	homeMaxBlocks = 90
	homeBudget    = 5 * time.Second
)

// homeOpened answers app_home_opened: the Home tab is drawn after the ack,
// in the background, from Redis alone.
func (r *Responder) homeOpened(ev *slackevents.AppHomeOpenedEvent) outcome {
	if r.home == nil || ev.Tab != "home" || ev.User == "" {
		return "ignored"
	}
	r.refreshHome(ev.User, "")
	return "home"
}

// refreshHome publishes user's Home tab after the ack, with note (what
// became of their last click there) on top when it is not empty.
func (r *Responder) refreshHome(user, note string) {
	log := r.log.With("user", user, "command", "home")
	r.bg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), homeBudget)
		defer cancel()
		if err := r.home.PublishHome(ctx, user, r.homeBlocks(ctx, user, note, log)); err != nil {
			log.Warn("could not publish the Home tab", "err", err)
		}
	})
}

// homeBlocks draws a user's Home tab: what they asked for lately, what was
// last deployed where for the services they may deploy, the locks, and the
// buttons they may use.
func (r *Responder) homeBlocks(ctx context.Context, user, note string, log *slog.Logger) []slack.Block {
	blocks := []slack.Block{section(fmt.Sprintf("*deploybot* for <@%s>. Type `%s help` anywhere for every command.", user, r.cmds().table.Slash))}
	if note != "" {
		blocks = append(blocks, section("> "+note))
	}
	blocks = append(blocks, slack.NewDividerBlock(), section("*Your recent jobs*"))
	blocks = append(blocks, r.homeJobs(ctx, user, log)...)
	if r.envs != nil {
		blocks = append(blocks, slack.NewDividerBlock(), section("*Last deploys*"))
		blocks = append(blocks, r.homeDeploys(ctx, user, log)...)
	}
	if len(blocks) > homeMaxBlocks {
		blocks = append(blocks[:homeMaxBlocks-1], section("_More than fits here: see `"+r.cmds().table.Slash+" history <service>`._"))
	}
	return append(blocks, slack.NewContextBlock("updated", slack.NewTextBlockObject(slack.MarkdownType,
		fmt.Sprintf("Updated <!date^%d^{date_short_pretty} at {time}|%s>", r.now().Unix(), r.now().UTC().Format(time.RFC1123)), false, false)))
}

// homeJobs lists the user's latest jobs among the most recent ones.
func (r *Responder) homeJobs(ctx context.Context, user string, log *slog.Logger) []slack.Block {
	recs, err := r.q.Recent(ctx, "", 10*homeJobs)
	if err != nil {
		log.Warn("read recent jobs for the Home tab", "err", err)
		return []slack.Block{section("⚠️ I can't read the job history right now.")}
	}
	var out []slack.Block
	for _, rec := range recs {
		if rec.Job.User != user {
			continue
		}
		out = append(out, section(fmt.Sprintf("• %s — %s · %s ago · job `%s`", title(rec), statusLine(rec), shortDuration(r.now().Sub(rec.Job.CreatedAt)), rec.Job.ID)))
		if len(out) == homeJobs {
			break
		}
	}
	if len(out) == 0 {
		out = append(out, section("_None lately._"))
	}
	return out
}

// homeDeploys shows, for each service the user may deploy somewhere, the
// last deploy in each of its environments, the environment's lock, and the
// Promote and Roll back buttons the user may use.
func (r *Responder) homeDeploys(ctx context.Context, user string, log *slog.Logger) []slack.Block {
	var out []slack.Block
	locks := map[string]string{}
	for _, svc := range r.cmds().catalog.Services {
		for _, env := range svc.Envs {
			if r.auth.Check(ctx, user, commands.Permission{Action: "deploy", Service: svc.Name, Env: env}) != nil {
				continue
			}
			recs, err := r.envs.History(ctx, svc.Name, env, 1)
			if err != nil {
				log.Warn("read deploy history for the Home tab", "err", err)
				return append(out, section("⚠️ I can't read the deploy history right now."))
			}
			line := fmt.Sprintf("*%s* in `%s`: ", escape(svc.Name), escape(env))
			if len(recs) == 0 {
				line += "_never deployed by deploybot_"
			} else {
				rec := recs[0]
				line += fmt.Sprintf("%s — %s · <@%s> · %s ago", homeWhat(rec), statusLine(rec), escape(rec.Job.User), shortDuration(r.now().Sub(rec.Job.CreatedAt)))
			}
			line += r.homeLock(ctx, env, locks)
			out = append(out, section(line))
			if len(recs) > 0 {
				if btns := r.allowedButtons(ctx, user, recs[0]); len(btns) > 0 {
					out = append(out, slack.NewActionBlock("home-"+recs[0].Job.ID, btns...))
				}
			}
		}
	}
	if len(out) == 0 {
		out = append(out, section("_You may not deploy any service._ `"+r.cmds().table.Slash+" whoami` says why."))
	}
	return out
}

// homeWhat is what a deploy put in place, or was asked to.
func homeWhat(rec queue.Record) string {
	switch {
	case rec.Artifact != "":
		return "`" + escape(rec.Artifact) + "`"
	case rec.Job.Request.Ref != "":
		return "@ `" + escape(rec.Job.Request.Ref) + "`"
	}
	return escape(rec.Job.Request.Kind)
}

// homeLock is " · 🔒 locked by …" when env is locked; seen caches the
// answer per environment.
func (r *Responder) homeLock(ctx context.Context, env string, seen map[string]string) string {
	if s, ok := seen[env]; ok {
		return s
	}
	s := ""
	if l, ok, err := r.envs.EnvLock(ctx, env); err == nil && ok {
		s = fmt.Sprintf(" · 🔒 locked by <@%s>", escape(l.User))
		if l.Reason != "" {
			s += ": " + escape(l.Reason)
		}
	}
	seen[env] = s
	return s
}

// allowedButtons are rec's Promote and Roll back buttons that user may
// use.
func (r *Responder) allowedButtons(ctx context.Context, user string, rec queue.Record) []slack.BlockElement {
	var out []slack.BlockElement
	for _, el := range deployButtons(rec) {
		b, ok := el.(*slack.ButtonBlockElement)
		if !ok {
			continue
		}
		req, problem := clickRequest(b.ActionID, rec)
		if problem == "" && r.auth.Check(ctx, user, req.Permission()) == nil {
			out = append(out, b)
		}
	}
	return out
}

// teller is how a click's answer reaches the user: on a message, through
// its response_url; on the Home tab, which has none, as a note on top of
// the redrawn tab.
func (r *Responder) teller(cb slack.InteractionCallback, log *slog.Logger) func(string) {
	if cb.ResponseURL == "" && cb.View.Type == slack.VTHomeTab && r.home != nil {
		return func(text string) { r.refreshHome(cb.User.ID, text) }
	}
	return func(text string) { r.followUp(cb.ResponseURL, text, log) }
}
