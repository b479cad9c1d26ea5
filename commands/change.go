package commands

import (
	"fmt"
	"regexp"
	"strconv"
)

// changeForms are the ways a change can be named: its number, or a Gerrit
// URL — ".../c/platform/api/+/1503" (optionally "/2" for a patch set), the
// old ".../#/c/1503/", or the short "https://gerrit.example.com/1503".
var changeForms = []*regexp.Regexp{
	regexp.MustCompile(`^([0-9]{1,9})$`),
	regexp.MustCompile(`^https?://\S+?/\+/([0-9]{1,9})(?:/[0-9]{1,4})?/?$`),
	regexp.MustCompile(`^https?://\S+?/#?/?c/([0-9]{1,9})(?:/[0-9]{1,4})?/?$`),
	regexp.MustCompile(`^https?://[^/]+/([0-9]{1,9})/?$`),
}

// parseChange reads the change a command names.
func parseChange(verb string, args []string) (Request, error) {
	if len(args) != 1 {
		return Request{}, usageErrorf("", "`%s` takes one Gerrit change: its number or its URL.", verb)
	}
	var m []string
	for _, re := range changeForms {
		if m = re.FindStringSubmatch(args[0]); m != nil {
			break
		}
	}
	if m == nil {
		return Request{}, &UsageError{Msg: fmt.Sprintf("%q is not a Gerrit change number or URL.", args[0])}
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n <= 0 {
		return Request{}, &UsageError{Msg: fmt.Sprintf("%q is not a Gerrit change number.", args[0])}
	}
	return Request{Change: n}, nil
}

func recheckCommand() Command {
	return Command{
		Name:    "recheck",
		Args:    "<change>",
		Summary: "Ask CI to verify a Gerrit change again (posts the recheck comment its gating jobs listen for).",
		Example: "1503",
		Action:  "recheck",
		Parse:   func(args []string, _ Catalog) (Request, error) { return parseChange("recheck", args) },
	}
}

func submitCommand() Command {
	return Command{
		Name:    "submit",
		Args:    "<change>",
		Summary: "Submit (merge) a Gerrit change that has all the votes it needs.",
		Example: "1503",
		Action:  "submit",
		Parse:   func(args []string, _ Catalog) (Request, error) { return parseChange("submit", args) },
	}
}
