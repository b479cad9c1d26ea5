package commands

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxRefLen bounds a ref; git has no limit, but nothing sane is longer and the
// ref ends up in URLs and Jenkins parameters.
const MaxRefLen = 200

// CheckRef reports whether ref is a name git would accept for a branch or tag
// (the rules of git check-ref-format, plus no leading "-" so a ref can never
// be taken for an option). Its error is a *UsageError saying which rule was
// broken, in words a user can act on.
func CheckRef(ref string) error {
	bad := func(why string) error {
		return &UsageError{Msg: fmt.Sprintf("%q is not a valid git ref: %s.", ref, why)}
	}
	switch {
	case ref == "":
		return &UsageError{Msg: "The ref is empty."}
	case len(ref) > MaxRefLen:
		return &UsageError{Msg: fmt.Sprintf("The ref is %d characters long; the limit is %d.", len(ref), MaxRefLen)}
	case !utf8.ValidString(ref):
		return &UsageError{Msg: "The ref is not valid UTF-8."}
	case ref == "@":
		return bad("it cannot be the single character @")
	case strings.HasPrefix(ref, "-"):
		return bad("it cannot start with -")
	case strings.HasPrefix(ref, "/") || strings.HasSuffix(ref, "/"):
		return bad("it cannot start or end with /")
	case strings.HasSuffix(ref, "."):
		return bad("it cannot end with .")
	case strings.Contains(ref, "//"):
		return bad("it cannot contain //")
	case strings.Contains(ref, ".."):
		return bad("it cannot contain ..")
	case strings.Contains(ref, "@{"):
		return bad("it cannot contain @{")
	}
	for _, r := range ref {
		switch {
		case r < 0x20 || r == 0x7f:
			return bad("it cannot contain control characters")
		case strings.ContainsRune(" ~^:?*[\\", r):
			return bad(fmt.Sprintf("it cannot contain %q", r))
		}
	}
	for _, part := range strings.Split(ref, "/") {
		if strings.HasPrefix(part, ".") {
			return bad("no part of it can start with .")
		}
		if strings.HasSuffix(part, ".lock") {
			return bad("no part of it can end with .lock")
		}
	}
	return nil
}

// lookupService finds the service a user named, or explains which ones exist.
func lookupService(name string, cat Catalog) (Service, error) {
	if svc, ok := cat.Service(strings.ToLower(name)); ok {
		return svc, nil
	}
	names := cat.ServiceNames()
	if len(names) == 0 {
		return Service{}, &UsageError{Msg: fmt.Sprintf("I don't know the service %q: no services are configured.", name)}
	}
	msg := fmt.Sprintf("I don't know the service %q.", name)
	if s := closest(strings.ToLower(name), names); s != "" {
		msg += fmt.Sprintf(" Did you mean `%s`?", s)
	}
	msg += " Known services: " + strings.Join(names, ", ") + "."
	return Service{}, &UsageError{Msg: msg}
}

// closest returns the candidate within edit distance 2 of word, if exactly
// one is nearest.
func closest(word string, candidates []string) string {
	best, bestDist, tie := "", 3, false
	for _, c := range candidates {
		d := editDistance(word, c)
		switch {
		case d < bestDist:
			best, bestDist, tie = c, d, false
		case d == bestDist:
			tie = true
		}
	}
	if tie || len(word) < 2 {
		return ""
	}
	return best
}

func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		return 1 << 30
	}
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// Unescape turns Slack's encoding of message text back into what the user
// typed: "&amp;", "&lt;" and "&gt;" are decoded, and links Slack added
// ("<http://x.io|x.io>") become their label. Mentions ("<@U123|ann>") and channel links are kept as they are.
func Unescape(text string) string {
	var b strings.Builder
	for {
		open := strings.IndexByte(text, '<')
		if open < 0 {
			break
		}
		end := strings.IndexByte(text[open:], '>')
		if end < 0 {
			break
		}
		b.WriteString(text[:open])
		inner := text[open+1 : open+end]
		switch {
		case strings.HasPrefix(inner, "@"), strings.HasPrefix(inner, "#"), strings.HasPrefix(inner, "!"):
			b.WriteString("<" + inner + ">")
		case strings.Contains(inner, "|"):
			b.WriteString(inner[strings.IndexByte(inner, '|')+1:])
		default:
			b.WriteString(inner)
		}
		text = text[open+end+1:]
	}
	b.WriteString(text)
	return UnescapeEntities(b.String())
}
