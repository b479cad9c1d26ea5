package bot

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"testing"
)

// FuzzSocketPayload feeds any envelope payload to the translation from
// Socket Mode to the HTTP body the handlers read. It never panics; a slash
// command accepted keeps every string field as it came; an interaction
// accepted is its JSON, whole, in the payload field.
func FuzzSocketPayload(f *testing.F) {
	for _, name := range []string{"slash-commands.json", "interactive-block-actions.json", "events-api-app-home-opened.json"} {
		raw, err := os.ReadFile(filepath.Join("..", "testdata", "slack", "socket", name))
		if err != nil {
			f.Fatal(err)
		}
		var env struct {
			Payload json.RawMessage `json:"payload"`
		}
		if err := json.Unmarshal(raw, &env); err != nil {
			f.Fatal(err)
		}
		for ep := range uint8(3) {
			f.Add(ep, []byte(env.Payload))
		}
	}
	f.Add(uint8(0), []byte(`{"user_id":null,"text":["a"],"x":{"y":1}}`))
	endpoints := []Endpoint{EndpointCommands, EndpointInteractions, EndpointEvents}
	f.Fuzz(func(t *testing.T, which uint8, payload []byte) {
		ep := endpoints[int(which)%len(endpoints)]
		body, _, err := httpBody(ep, payload)
		if err != nil {
			return
		}
		switch ep {
		case EndpointCommands:
			form, err := url.ParseQuery(string(body))
			if err != nil {
				t.Fatalf("command body %q is not a form: %v", body, err)
			}
			var fields map[string]any
			_ = json.Unmarshal(payload, &fields)
			for k, v := range fields {
				if s, ok := v.(string); ok && form.Get(k) != s {
					t.Fatalf("field %s: %q became %q", k, s, form.Get(k))
				}
			}
		case EndpointInteractions:
			form, err := url.ParseQuery(string(body))
			if err != nil || form.Get("payload") != string(payload) {
				t.Fatalf("interaction body %q does not carry the payload whole (%v)", body, err)
			}
		}
	})
}
