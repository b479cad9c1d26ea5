package slacktest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
)

// maxHomeBlocks is the most blocks Slack takes in a Home tab
// (https://docs.slack.dev/surfaces/app-home).
const maxHomeBlocks = 100

// userID is the shape of a user ID views.publish takes (U or W, then
// capitals and digits; the underscore lets tests name users U_ANN).
var userID = regexp.MustCompile(`^[UW][A-Z0-9_]+$`)

// Home is a Home tab the bot published with views.publish.
type Home struct {
	User string
	// Blocks is the view's blocks array as the bot sent it.
	Blocks json.RawMessage
}

// Homes returns the Home tabs published so far, oldest first.
func (s *Server) Homes() []Home {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Home, len(s.homes))
	for i, h := range s.homes {
		out[i] = Home{User: h.User, Blocks: bytes.Clone(h.Blocks)}
	}
	return out
}

// publishView serves views.publish: a view of type "home" for user_id,
// which slack-go sends as a JSON body.
func (s *Server) publishView(w http.ResponseWriter, r *http.Request) {
	var body struct {
		UserID string `json:"user_id"`
		View   struct {
			Type   string          `json:"type"`
			Blocks json.RawMessage `json:"blocks"`
		} `json:"view"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4*maxViewBytes)).Decode(&body); err != nil {
		invalidArguments(w, []string{"invalid JSON body"})
		return
	}
	var blocks []json.RawMessage
	switch {
	case body.UserID == "":
		invalidArguments(w, []string{"missing required field: user_id"})
		return
	case !userID.MatchString(body.UserID):
		invalidArguments(w, []string{"[ERROR] invalid user_id"})
		return
	case body.View.Type != "home":
		invalidArguments(w, []string{schemaError("/view/type")})
		return
	case json.Unmarshal(body.View.Blocks, &blocks) != nil:
		invalidArguments(w, []string{schemaError("/view/blocks")})
		return
	case len(blocks) > maxHomeBlocks:
		invalidArguments(w, []string{fmt.Sprintf("[ERROR] no more than %d items allowed [json-pointer:/view/blocks]", maxHomeBlocks)})
		return
	}
	s.mu.Lock()
	s.homes = append(s.homes, Home{User: body.UserID, Blocks: bytes.Clone(body.View.Blocks)})
	n := len(s.homes)
	s.mu.Unlock()
	writeFile(w, http.StatusOK, "views.publish.json", func(m map[string]any) {
		if v, ok := m["view"].(map[string]any); ok {
			v["id"], v["root_view_id"] = fmt.Sprintf("VH%07d", n), fmt.Sprintf("VH%07d", n)
			v["blocks"] = body.View.Blocks
		}
	})
	s.emit(Event{Kind: "home"})
}
