package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/slack-go/slack"
)

// shellAnn is the teammate `as ann …` speaks for.
const shellAnn = "UDEVANN"

// ephemeral is a message only one person saw: a command's answer or a
// follow-up through its response_url. Its buttons can be clicked too.
type ephemeral struct {
	who    person
	blocks []slack.Block
}

// maxEphemeral is how many of them the shell keeps.
const maxEphemeral = 50

func (sh *shell) remember(who person, blocks []slack.Block) {
	if len(blocks) == 0 {
		return
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.ephemeral = append(sh.ephemeral, ephemeral{who: who, blocks: blocks})
	if len(sh.ephemeral) > maxEphemeral {
		sh.ephemeral = sh.ephemeral[1:]
	}
}

// clickTarget is the message a button is on.
type clickTarget struct {
	channel, ts, text, blocks string
	ephemeral                 bool
}

// click finds the newest button with action_id (and value, if given) in
// #shell, or else in what only who saw, and sends the block_actions
// payload Slack would.
func (sh *shell) click(who person, args []string) {
	if len(args) == 0 {
		sh.printf("(shell) usage: click <action> [value], e.g. click retry\n")
		return
	}
	action, want := args[0], strings.Join(args[1:], " ")
	matches := func(btn *slack.ButtonBlockElement) bool {
		return btn.ActionID == action && (want == "" || btn.Value == want)
	}
	msgs := sh.sims.slack.Messages(shellChannel)
	for i := len(msgs) - 1; i >= 0; i-- {
		blocks, _ := msgs[i].DecodeBlocks()
		if blockID, btn := findButton(blocks, matches); btn != nil {
			sh.sendClick(who, clickTarget{channel: msgs[i].Channel, ts: msgs[i].TS, text: msgs[i].Text, blocks: msgs[i].Blocks}, blockID, btn)
			return
		}
	}
	sh.mu.Lock()
	mine := append([]ephemeral(nil), sh.ephemeral...)
	sh.mu.Unlock()
	for i := len(mine) - 1; i >= 0; i-- {
		if mine[i].who != who {
			continue
		}
		if blockID, btn := findButton(mine[i].blocks, matches); btn != nil {
			raw, _ := json.Marshal(mine[i].blocks)
			sh.sendClick(who, clickTarget{channel: shellChannel, blocks: string(raw), ephemeral: true}, blockID, btn)
			return
		}
	}
	if want != "" {
		sh.printf("(shell) no message %s can see has a %q button for %s\n", who.name, action, want)
		return
	}
	sh.printf("(shell) no message %s can see has a %q button\n", who.name, action)
}

// findButton is the first button in blocks that matches, and its block.
func findButton(blocks []slack.Block, matches func(*slack.ButtonBlockElement) bool) (string, *slack.ButtonBlockElement) {
	for _, b := range blocks {
		ab, ok := b.(*slack.ActionBlock)
		if !ok {
			continue
		}
		for _, el := range ab.Elements.ElementSet {
			if btn, ok := el.(*slack.ButtonBlockElement); ok && matches(btn) {
				return ab.BlockID, btn
			}
		}
	}
	return "", nil
}

func (sh *shell) sendClick(who person, m clickTarget, blockID string, btn *slack.ButtonBlockElement) {
	sh.mu.Lock()
	sh.clicks++
	n := sh.clicks
	sh.mu.Unlock()
	now := strconv.FormatFloat(float64(time.Now().UnixMicro())/1e6, 'f', 6, 64)
	payload := map[string]any{
		"type":       "block_actions",
		"user":       map[string]any{"id": who.id, "username": who.name, "name": who.name, "team_id": shellTeam},
		"api_app_id": "ASHELL", "token": "shell", "trigger_id": "shell.trigger." + strconv.Itoa(n),
		"container":  map[string]any{"type": "message", "message_ts": m.ts, "channel_id": m.channel, "is_ephemeral": m.ephemeral},
		"team":       map[string]any{"id": shellTeam, "domain": "shell"},
		"enterprise": nil, "is_enterprise_install": false,
		"channel":      map[string]any{"id": m.channel, "name": "shell"},
		"response_url": sh.sims.slack.ResponseURL("click-" + who.name + "-" + strconv.Itoa(n)),
		"actions": []any{map[string]any{
			"action_id": btn.ActionID, "block_id": blockID, "text": btn.Text, "value": btn.Value,
			"type": "button", "action_ts": now,
		}},
	}
	if !m.ephemeral { // Slack leaves the message out of clicks on ephemeral ones
		payload["message"] = map[string]any{"type": "message", "ts": m.ts, "text": m.text, "blocks": json.RawMessage(m.blocks)}
	}
	raw, _ := json.Marshal(payload)
	rec := sh.post("/slack/interactions", []byte(url.Values{"payload": {string(raw)}}.Encode()))
	if rec.Code != http.StatusOK {
		sh.printf("(shell) the responder answered %d: %s\n", rec.Code, rec.Body.String())
	}
}

// responder is whom a response_url named by command or sendClick answers.
func responder(name string) person {
	parts := strings.Split(name, "-")
	if len(parts) > 1 {
		if p, ok := lookupPerson(parts[1]); ok {
			return p
		}
	}
	return shellPeople[0]
}

func lookupPerson(name string) (person, bool) {
	for _, p := range shellPeople {
		if p.name == strings.TrimPrefix(name, "@") {
			return p, true
		}
	}
	return person{}, false
}

func peopleNames() string {
	var names []string
	for _, p := range shellPeople {
		names = append(names, p.name)
	}
	return strings.Join(names, " or ")
}

// afterFields is line without its first n fields.
func afterFields(line string, n int) string {
	s := strings.TrimSpace(line)
	for range n {
		i := strings.IndexFunc(s, unicode.IsSpace)
		if i < 0 {
			return ""
		}
		s = strings.TrimSpace(s[i:])
	}
	return s
}
