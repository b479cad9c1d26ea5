package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
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
}

func (sh *shell) printf(format string, args ...any) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	text := strings.ReplaceAll(fmt.Sprintf(format, args...), "@"+shellUser, "@you")
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
		tag := "#shell"
		if e.Kind == "update" {
			tag += " (edited)"
		}
		sh.printf("%s  %s\n", tag, indent(text))
	case "reply":
		sh.printf("#shell    ↳ %s\n", bot.PlainText(e.Message.Text))
	case "response":
		text := bot.PlainText(e.Response.Message.Text)
		if e.Response.Message.Blocks != nil {
			text = bot.BlocksText(e.Response.Message.Blocks.BlockSet)
		}
		sh.printf("(only you) %s\n", indent(text))
	}
}

func indent(s string) string { return strings.ReplaceAll(s, "\n", "\n        ") }

// do runs one line; it returns false to leave.
func (sh *shell) do(line string) bool {
	fields := strings.Fields(line)
	switch {
	case len(fields) == 0:
	case fields[0] == "exit" || fields[0] == "quit":
		return false
	case fields[0] == "help" || fields[0] == "?":
		sh.printf("%s", shellHelp)
	case fields[0] == "click":
		sh.click(fields[1:])
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
		sh.command(strings.TrimSpace(strings.TrimPrefix(line, fields[0])))
	default:
		sh.printf("(shell) type %s help, click retry, or exit\n", sh.slash)
	}
	return true
}

// command sends a slash command the way Slack does: a signed form POST.
func (sh *shell) command(args string) {
	form := url.Values{
		"token": {"shell"}, "team_id": {shellTeam}, "team_domain": {"shell"},
		"channel_id": {shellChannel}, "channel_name": {"shell"}, "user_id": {shellUser}, "user_name": {"you"},
		"command": {sh.slash}, "text": {args}, "api_app_id": {"ASHELL"}, "is_enterprise_install": {"false"},
		"response_url": {sh.sims.slack.ResponseURL("command")}, "trigger_id": {"shell.trigger"},
	}
	rec := sh.post("/slack/commands", []byte(form.Encode()))
	var answer struct {
		Text   string       `json:"text"`
		Blocks slack.Blocks `json:"blocks"`
	}
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &answer) != nil {
		sh.printf("(shell) the responder answered %d: %s\n", rec.Code, rec.Body.String())
		return
	}
	text := bot.BlocksText(answer.Blocks.BlockSet)
	if text == "" {
		text = bot.PlainText(answer.Text)
	}
	sh.printf("(only you) %s\n", indent(text))
}

// click finds the newest button with action_id (and value, if given) in
// #shell and sends the block_actions payload Slack would.
func (sh *shell) click(args []string) {
	if len(args) == 0 || len(args) > 2 {
		sh.printf("(shell) usage: click <action> [job], e.g. click retry\n")
		return
	}
	action, want := args[0], ""
	if len(args) == 2 {
		want = args[1]
	}
	msgs := sh.sims.slack.Messages(shellChannel)
	for i := len(msgs) - 1; i >= 0; i-- {
		blocks, _ := msgs[i].DecodeBlocks()
		for _, b := range blocks {
			ab, ok := b.(*slack.ActionBlock)
			if !ok {
				continue
			}
			for _, el := range ab.Elements.ElementSet {
				btn, ok := el.(*slack.ButtonBlockElement)
				if ok && btn.ActionID == action && (want == "" || btn.Value == want) {
					sh.sendClick(msgs[i], ab.BlockID, btn)
					return
				}
			}
		}
	}
	if want != "" {
		sh.printf("(shell) no message in #shell has a %q button for %s\n", action, want)
		return
	}
	sh.printf("(shell) no message in #shell has a %q button\n", action)
}

func (sh *shell) sendClick(m slacktest.Message, blockID string, btn *slack.ButtonBlockElement) {
	sh.mu.Lock()
	sh.clicks++
	n := sh.clicks
	sh.mu.Unlock()
	now := strconv.FormatFloat(float64(time.Now().UnixMicro())/1e6, 'f', 6, 64)
	payload := map[string]any{
		"type":       "block_actions",
		"user":       map[string]any{"id": shellUser, "username": "you", "name": "you", "team_id": shellTeam},
		"api_app_id": "ASHELL", "token": "shell", "trigger_id": "shell.trigger." + strconv.Itoa(n),
		"container":  map[string]any{"type": "message", "message_ts": m.TS, "channel_id": m.Channel, "is_ephemeral": false},
		"team":       map[string]any{"id": shellTeam, "domain": "shell"},
		"enterprise": nil, "is_enterprise_install": false,
		"channel":      map[string]any{"id": m.Channel, "name": "shell"},
		"message":      map[string]any{"type": "message", "ts": m.TS, "text": m.Text, "blocks": json.RawMessage(m.Blocks)},
		"response_url": sh.sims.slack.ResponseURL("click-" + strconv.Itoa(n)),
		"actions": []any{map[string]any{
			"action_id": btn.ActionID, "block_id": blockID, "text": btn.Text, "value": btn.Value,
			"type": "button", "action_ts": now,
		}},
	}
	raw, _ := json.Marshal(payload)
	rec := sh.post("/slack/interactions", []byte(url.Values{"payload": {string(raw)}}.Encode()))
	if rec.Code != http.StatusOK {
		sh.printf("(shell) the responder answered %d: %s\n", rec.Code, rec.Body.String())
	}
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
