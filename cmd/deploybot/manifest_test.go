package main

import (
	"bytes"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestSlackAppManifest: the example manifest points Slack at the
// endpoints the responder serves, escapes mentions (perms test @user
// needs the user ID), and asks for exactly the scopes the bot uses.
func TestSlackAppManifest(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join("..", "..", "examples", "slack-app-manifest.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Features struct {
			AppHome struct {
				HomeTab bool `yaml:"home_tab_enabled"`
			} `yaml:"app_home"`
			SlashCommands []struct {
				Command      string `yaml:"command"`
				URL          string `yaml:"url"`
				ShouldEscape bool   `yaml:"should_escape"`
			} `yaml:"slash_commands"`
		} `yaml:"features"`
		OAuth struct {
			Scopes struct {
				Bot []string `yaml:"bot"`
			} `yaml:"scopes"`
		} `yaml:"oauth_config"`
		Settings struct {
			Events struct {
				RequestURL string   `yaml:"request_url"`
				BotEvents  []string `yaml:"bot_events"`
			} `yaml:"event_subscriptions"`
			Interactivity struct {
				Enabled    bool   `yaml:"is_enabled"`
				RequestURL string `yaml:"request_url"`
			} `yaml:"interactivity"`
		} `yaml:"settings"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	path := func(raw string) string {
		u, err := url.Parse(raw)
		if err != nil || u.Scheme != "https" {
			t.Fatalf("%q is not an https URL", raw)
		}
		return u.Path
	}
	if len(m.Features.SlashCommands) != 1 {
		t.Fatalf("slash commands: %+v", m.Features.SlashCommands)
	}
	sc := m.Features.SlashCommands[0]
	if sc.Command != slashOf(&fileConfig{}) || path(sc.URL) != "/slack/commands" || !sc.ShouldEscape {
		t.Fatalf("slash command %+v; want /deploy at /slack/commands with should_escape", sc)
	}
	if !m.Settings.Interactivity.Enabled || path(m.Settings.Interactivity.RequestURL) != "/slack/interactions" {
		t.Fatalf("interactivity %+v", m.Settings.Interactivity)
	}
	if ev := m.Settings.Events; path(ev.RequestURL) != "/slack/events" || !slices.Equal(ev.BotEvents, []string{"app_home_opened"}) || !m.Features.AppHome.HomeTab {
		t.Fatalf("events %+v, home tab %v; want app_home_opened at /slack/events and the Home tab on", ev, m.Features.AppHome.HomeTab)
	}
	want := []string{"chat:write", "commands", "im:write", "users:read", "users:read.email"}
	got := slices.Sorted(slices.Values(m.OAuth.Scopes.Bot))
	if !slices.Equal(got, want) {
		t.Fatalf("bot scopes %v, want exactly %v", got, want)
	}
}
