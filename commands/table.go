package commands

import (
	"fmt"
	"strings"
)

// Command is one subcommand of /deploy: its name, its documentation and its
// parser. Help is generated from these fields.
type Command struct {
	// Name is the first word of the command text.
	Name string
	// Args is the argument synopsis shown in help, e.g. "<service> [ref]".
	Args string
	// Summary is one line saying what the command does.
	Summary string
	// Example is a complete example invocation's arguments, without the slash
	// command or the name.
	Example string
	// Action is the permission verb the command needs; empty for commands
	// anyone may run.
	Action string
	// Parse turns the words after the name into a request. It sets Service,
	// Ref, Env and Topic; Kind is filled in from the table, and so is Action
	// unless the parser set it.
	Parse func(args []string, cat Catalog) (Request, error)
}

// Builtin returns the commands deploybot understands, in help order.
func Builtin() []Command {
	return []Command{
		deployCommand(),
		promoteCommand(),
		rollbackCommand(),
		buildCommand(),
		statusCommand(),
		historyCommand(),
		lockCommand(),
		unlockCommand(),
		recheckCommand(),
		submitCommand(),
		whoamiCommand(),
		loginCommand(),
		permsCommand(),
		auditCommand(),
		helpCommand(),
	}
}

// Table is a validated set of commands.
type Table struct {
	// Slash is the slash command users type, used in help: "/deploy".
	Slash  string
	cmds   []Command
	byName map[string]int
}

// NewTable checks cmds and indexes them. It fails on an empty or duplicate
// name or a missing parser, so a bad table never reaches a user.
func NewTable(slash string, cmds []Command) (*Table, error) {
	if slash == "" {
		slash = "/deploy"
	}
	t := &Table{Slash: slash, cmds: cmds, byName: make(map[string]int, len(cmds))}
	for i, c := range cmds {
		if c.Name == "" || strings.ContainsAny(c.Name, " \t") {
			return nil, fmt.Errorf("commands: command %d has a bad name %q", i, c.Name)
		}
		if c.Parse == nil {
			return nil, fmt.Errorf("commands: command %q has no parser", c.Name)
		}
		if _, dup := t.byName[c.Name]; dup {
			return nil, fmt.Errorf("commands: duplicate command %q", c.Name)
		}
		t.byName[c.Name] = i
	}
	return t, nil
}

// Lookup returns the command called name.
func (t *Table) Lookup(name string) (Command, bool) {
	i, ok := t.byName[name]
	if !ok {
		return Command{}, false
	}
	return t.cmds[i], true
}

// Commands returns the table's commands in help order.
func (t *Table) Commands() []Command {
	return append([]Command(nil), t.cmds...)
}

// Parse turns the text of a slash command into a request. Errors are
// *UsageError, whose text can be shown to the user as it is.
func (t *Table) Parse(text string, cat Catalog) (Request, error) {
	words := strings.Fields(Unescape(text))
	if len(words) == 0 {
		return Request{Kind: "help"}, nil
	}
	name := strings.ToLower(words[0])
	c, ok := t.Lookup(name)
	if _, isService := cat.Service(name); !ok && isService {
		// "/deploy api feature/login to staging": deploy is the command
		// people come for, so its name may be left out.
		if c, ok = t.Lookup("deploy"); ok {
			words = append([]string{"deploy"}, words...)
		}
	}
	if !ok {
		msg := fmt.Sprintf("I don't know the command %q.", words[0])
		if s := closest(name, t.names()); s != "" {
			msg += fmt.Sprintf(" Did you mean `%s %s`?", t.Slash, s)
		}
		return Request{}, &UsageError{Msg: msg, Usage: t.Help("", cat)}
	}
	req, err := c.Parse(words[1:], cat)
	if err != nil {
		if ue, ok := err.(*UsageError); ok && ue.Usage == "" {
			ue.Usage = t.usage(c)
		}
		return Request{}, err
	}
	req.Kind = c.Name
	if req.Action == "" {
		// A parser sets the action itself where it depends on the
		// words: "perms show" needs none, "perms grant" needs admin.
		req.Action = c.Action
	}
	return req, nil
}

func (t *Table) names() []string {
	names := make([]string, len(t.cmds))
	for i, c := range t.cmds {
		names[i] = c.Name
	}
	return names
}

func (t *Table) usage(c Command) string {
	line := "Usage: `" + t.Slash + " " + c.Name
	if c.Args != "" {
		line += " " + EscapeMrkdwn(c.Args)
	}
	line += "`"
	if c.Example != "" {
		line += ", e.g. `" + t.Slash + " " + c.Name + " " + c.Example + "`"
	}
	return line
}

// Help is the help text for topic (a command name), or for every command
// when topic is empty or unknown. It is Slack mrkdwn.
func (t *Table) Help(topic string, cat Catalog) string { return t.HelpFor(topic, cat, nil) }

// HelpFor is Help listing only the commands may allows (all when may is
// nil): what the person asking is allowed to run. A topic is explained
// whether or not they may run it.
func (t *Table) HelpFor(topic string, cat Catalog, may func(Command) bool) string {
	var b strings.Builder
	if c, ok := t.Lookup(strings.ToLower(topic)); ok {
		b.WriteString("*" + t.Slash + " " + c.Name + "* — " + c.Summary + "\n")
		b.WriteString(t.usage(c) + "\n")
	} else {
		b.WriteString("*" + t.Slash + "* builds and deploys from Slack. Commands:\n")
		hidden := 0
		for _, c := range t.cmds {
			if may != nil && !may(c) {
				hidden++
				continue
			}
			line := "• `" + t.Slash + " " + c.Name
			if c.Args != "" {
				line += " " + EscapeMrkdwn(c.Args)
			}
			b.WriteString(line + "` — " + c.Summary + "\n")
		}
		switch {
		case hidden == 1:
			b.WriteString(fmt.Sprintf("_1 more command needs permissions you don't have; `%s whoami` shows yours._\n", t.Slash))
		case hidden > 1:
			b.WriteString(fmt.Sprintf("_%d more commands need permissions you don't have; `%s whoami` shows yours._\n", hidden, t.Slash))
		}
	}
	if names := cat.ServiceNames(); len(names) > 0 {
		b.WriteString("Services: " + strings.Join(names, ", ") + ".")
	} else {
		b.WriteString("No services are configured yet.")
	}
	return b.String()
}

// EscapeMrkdwn escapes what Slack's mrkdwn would read as markup: "<service>"
// must show as text, not become a link, and "<!channel>" in a ref must not
// ping anybody.
func EscapeMrkdwn(s string) string { return mrkdwnEscaper.Replace(s) }

// UnescapeEntities undoes the escaping of &, < and > that Slack applies to
// text it sends.
func UnescapeEntities(s string) string { return entityUnescaper.Replace(s) }

// The replacers are built once: building one costs more than using it, and
// the responder escapes on every answer. They are never changed.
var (
	mrkdwnEscaper   = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
	entityUnescaper = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")
)
