package slacktest

import (
	"encoding/json"
	"net/http"
	"strings"
)

// maxSectionText is Slack's documented limit on a section block's text;
// Slack refuses longer ones with invalid_blocks.
const maxSectionText = 3000

// validBlocks applies the limits Slack enforces that the bot could break.
func validBlocks(raw string) bool {
	if raw == "" {
		return true
	}
	var blocks []struct {
		Type string `json:"type"`
		Text *struct {
			Text string `json:"text"`
		} `json:"text"`
	}
	if json.Unmarshal([]byte(raw), &blocks) != nil || len(blocks) > 50 {
		return false
	}
	for _, b := range blocks {
		if b.Type == "section" && b.Text != nil && len([]rune(b.Text.Text)) > maxSectionText {
			return false
		}
	}
	return true
}

func (s *Server) postMessage(w http.ResponseWriter, r *http.Request) {
	ch := r.PostForm.Get("channel")
	if !validBlocks(r.PostForm.Get("blocks")) {
		writeJSON(w, map[string]any{"ok": false, "error": "invalid_blocks"})
		return
	}
	s.mu.Lock()
	if strings.HasPrefix(ch, "#") {
		ch = s.names[ch] // Slack resolves a name; an unknown one is not found
	}
	blocked := s.blocked[ch]
	s.mu.Unlock()
	switch {
	case ch == "":
		writeFile(w, http.StatusOK, "error-channel_not_found.json", nil)
		return
	case blocked:
		writeFile(w, http.StatusOK, "error-not_in_channel.json", nil)
		return
	}
	m := &Message{Channel: ch, TS: s.newTS(), ThreadTS: r.PostForm.Get("thread_ts"), Text: r.PostForm.Get("text"), Blocks: r.PostForm.Get("blocks")}
	s.mu.Lock()
	s.msgs = append(s.msgs, m)
	msg := *m
	s.mu.Unlock()
	writeFile(w, http.StatusOK, "chat.postMessage.json", func(p map[string]any) {
		p["channel"], p["ts"] = msg.Channel, msg.TS
		if mm, ok := p["message"].(map[string]any); ok {
			mm["text"], mm["ts"] = msg.Text, msg.TS
			delete(mm, "attachments")
		}
	})
	kind := "post"
	if msg.ThreadTS != "" {
		kind = "reply"
	}
	s.emit(Event{Kind: kind, Message: msg})
}

func (s *Server) update(w http.ResponseWriter, r *http.Request) {
	ch, ts := r.PostForm.Get("channel"), r.PostForm.Get("ts")
	if !validBlocks(r.PostForm.Get("blocks")) {
		writeJSON(w, map[string]any{"ok": false, "error": "invalid_blocks"})
		return
	}
	if strings.HasPrefix(ch, "#") {
		// chat.update refuses channel names (python-slack-sdk#696).
		writeFile(w, http.StatusOK, "error-channel_not_found.json", nil)
		return
	}
	s.mu.Lock()
	var found *Message
	for _, m := range s.msgs {
		if m.Channel == ch && m.TS == ts {
			found = m
		}
	}
	if found == nil {
		s.mu.Unlock()
		writeJSON(w, map[string]any{"ok": false, "error": "message_not_found"})
		return
	}
	found.Text, found.Blocks = r.PostForm.Get("text"), r.PostForm.Get("blocks")
	found.Edits++
	msg := *found
	s.mu.Unlock()
	writeFile(w, http.StatusOK, "chat.update.json", func(p map[string]any) {
		p["channel"], p["ts"], p["text"] = msg.Channel, msg.TS, msg.Text
		if mm, ok := p["message"].(map[string]any); ok {
			mm["text"] = msg.Text
		}
	})
	s.emit(Event{Kind: "update", Message: msg})
}
