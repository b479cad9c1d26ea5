package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/seed-5eb4e92e/deploybot/bot"
	"github.com/seed-5eb4e92e/deploybot/bot/slacktest"
)

// shell turns typed lines into the requests Slack would send, and what the
// bot sends to the fake Slack into lines on the terminal.
type shell struct {
	a           *app
	sims        *sims
	changes     map[string]shellChange
	out         io.Writer
	secret      string
	hookSecret  string
	slash       string
	interactive bool
	// breaks counts the patch sets simulate has reported, per service.
	breaks map[string]int

	mu      sync.Mutex
	clicks  int
	prompts bool
	// ephemeral are the messages only one person saw, newest last, for
	// their buttons.
	ephemeral []ephemeral
	// shown is the text last printed of each message, by ts.
	shown map[string]string
}

// changed records text as message ts's and reports whether it differs
// from what was printed of it before.
func (sh *shell) changed(ts, text string) bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.shown == nil {
		sh.shown = map[string]string{}
	}
	if sh.shown[ts] == text {
		return false
	}
	sh.shown[ts] = text
	return true
}

// person is someone in #shell: you, or a teammate for `as`.
type person struct{ name, id string }

// shellPeople are who can type in the shell; the first is you.
var shellPeople = []person{{"you", shellUser}, {"ann", shellAnn}}

func (sh *shell) printf(format string, args ...any) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	text := fmt.Sprintf(format, args...)
	for _, p := range shellPeople {
		text = strings.ReplaceAll(text, "@"+p.id, "@"+p.name)
	}
	if sh.interactive && sh.prompts {
		text = "\r" + text
	}
	fmt.Fprint(sh.out, text)
	if sh.interactive && sh.prompts {
		fmt.Fprint(sh.out, "deploybot> ")
	}
}

func (sh *shell) prompt() {
	if !sh.interactive {
		return
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.prompts = true
	fmt.Fprint(sh.out, "deploybot> ")
}

// show prints what the bot did in the fake Slack.
func (sh *shell) show(e slacktest.Event) {
	switch e.Kind {
	case "post", "update":
		blocks, err := e.Message.DecodeBlocks()
		text := bot.BlocksText(blocks)
		if err != nil || text == "" {
			text = e.Message.Text
		}
		if !sh.changed(e.Message.TS, text) {
			return // a job waiting for a lock says the same again; Slack shows no change
		}
		tag := "#shell"
		if e.Kind == "update" {
			tag += " (edited)"
		}
		sh.printf("%s  %s\n", tag, indent(text))
	case "reply":
		sh.printf("#shell    ↳ %s\n", bot.PlainText(e.Message.Text))
	case "response":
		who := responder(e.Response.Name)
		text := bot.PlainText(e.Response.Message.Text)
		if e.Response.Message.Blocks != nil {
			text = bot.BlocksText(e.Response.Message.Blocks.BlockSet)
			sh.remember(who, e.Response.Message.Blocks.BlockSet)
		}
		sh.printf("(only %s) %s\n", who.name, indent(text))
	}
}

func indent(s string) string { return strings.ReplaceAll(s, "\n", "\n        ") }

// do runs one line as you; it returns false to leave.
func (sh *shell) do(line string) bool {
	fields := strings.Fields(line)
	if len(fields) > 0 && fields[0] == "as" {
		if len(fields) < 3 {
			sh.printf("(shell) usage: as <person> <line>, e.g. as ann %s api main to staging\n", sh.slash)
			return true
		}
		who, ok := lookupPerson(fields[1])
		if !ok {
			sh.printf("(shell) %q is not in #shell; try %s\n", fields[1], peopleNames())
			return true
		}
		return sh.doAs(who, afterFields(line, 2))
	}
	return sh.doAs(shellPeople[0], line)
}

// doAs runs one line typed by who.
func (sh *shell) doAs(who person, line string) bool {
	fields := strings.Fields(line)
	switch {
	case len(fields) == 0:
	case fields[0] == "exit" || fields[0] == "quit":
		return false
	case fields[0] == "help" || fields[0] == "?":
		sh.printf("%s", shellHelp)
	case fields[0] == "click":
		sh.click(who, fields[1:])
	case fields[0] == "simulate":
		sh.simulate(fields[1:])
	case fields[0] == sh.slash && len(fields) > 1 && fields[1] == "simulate":
		// The shell's own command, also taken in the form the real
		// commands have; Slack never sees it.
		sh.simulate(fields[2:])
	case strings.HasPrefix(fields[0], "/"):
		if fields[0] != sh.slash {
			sh.printf("(shell) this bot answers %s; try %s help\n", sh.slash, sh.slash)
			return true
		}
		sh.command(who, afterFields(line, 1))
	default:
		sh.printf("(shell) type %s help, click retry, or exit\n", sh.slash)
	}
	return true
}

// command sends a slash command the way Slack does: a signed form POST.
func (sh *shell) command(who person, args string) {
	form := url.Values{
		"token": {"shell"}, "team_id": {shellTeam}, "team_domain": {"shell"},
		"channel_id": {shellChannel}, "channel_name": {"shell"}, "user_id": {who.id}, "user_name": {who.name},
		"command": {sh.slash}, "text": {args}, "api_app_id": {"ASHELL"}, "is_enterprise_install": {"false"},
		"response_url": {sh.sims.slack.ResponseURL("command-" + who.name)}, "trigger_id": {"shell.trigger"},
	}
	rec := sh.post("/slack/commands", []byte(form.Encode()))
	var answer struct {
		ResponseType string       `json:"response_type"`
		Text         string       `json:"text"`
		Blocks       slack.Blocks `json:"blocks"`
	}
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &answer) != nil {
		sh.printf("(shell) the responder answered %d: %s\n", rec.Code, rec.Body.String())
		return
	}
	text := bot.BlocksText(answer.Blocks.BlockSet)
	if text == "" {
		text = bot.PlainText(answer.Text)
	}
	if answer.ResponseType == slack.ResponseTypeInChannel {
		sh.printf("#shell  %s\n", indent(text))
		return
	}
	sh.remember(who, answer.Blocks.BlockSet)
	sh.printf("(only %s) %s\n", who.name, indent(text))
}

// postHook sends a webhook the way Gerrit would.
func (sh *shell) postHook(path string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	rec := httptest.NewRecorder()
	sh.a.handler.ServeHTTP(rec, req)
	return rec
}

func (sh *shell) post(path string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	bot.Sign(req.Header, sh.secret, body, time.Now())
	rec := httptest.NewRecorder()
	sh.a.handler.ServeHTTP(rec, req)
	return rec
}
