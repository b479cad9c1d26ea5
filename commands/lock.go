package commands

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Lock durations: how long a lock holds when none is given, and the
// bounds of one that is.
const (
	DefaultLockFor = 2 * time.Hour
	minLockFor     = time.Minute
	maxLockFor     = 7 * 24 * time.Hour
)

func lockCommand() Command {
	return Command{
		Name:    "lock",
		Args:    "<env> [reason] [for <duration>]",
		Summary: "Stop everyone else's deploys to an environment, until you unlock it or the lock expires (default 2h).",
		Example: "prod release freeze for 4h",
		Action:  "lock",
		Parse: func(args []string, cat Catalog) (Request, error) {
			if len(args) == 0 {
				return Request{}, &UsageError{Msg: "Which environment should I lock?"}
			}
			env, err := lookupAnyEnv(args[0], cat)
			if err != nil {
				return Request{}, err
			}
			rest, d := args[1:], DefaultLockFor
			if n := len(rest); n >= 2 && rest[n-2] == "for" {
				if d, err = ParseLockDuration(rest[n-1]); err != nil {
					return Request{}, err
				}
				rest = rest[:n-2]
			}
			reason := strings.Join(rest, " ")
			if len(reason) > 200 {
				return Request{}, &UsageError{Msg: "Keep the reason under 200 characters."}
			}
			return Request{Env: env, Reason: reason, For: d}, nil
		},
	}
}

func unlockCommand() Command {
	return Command{
		Name:    "unlock",
		Args:    "<env>",
		Summary: "Lift the lock on an environment; deploys waiting for it start.",
		Example: "prod",
		Action:  "lock",
		Parse: func(args []string, cat Catalog) (Request, error) {
			if len(args) != 1 {
				return Request{}, usageErrorf("", "`unlock` takes one environment.")
			}
			env, err := lookupAnyEnv(args[0], cat)
			if err != nil {
				return Request{}, err
			}
			return Request{Env: env}, nil
		},
	}
}

// ParseLockDuration reads "2h", "90m", "1h30m" or "3d", between a minute
// and a week.
func ParseLockDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if days, ok := strings.CutSuffix(s, "d"); ok && err != nil {
		n, aerr := strconv.Atoi(days)
		d, err = time.Duration(n)*24*time.Hour, aerr
	}
	if err != nil {
		return 0, &UsageError{Msg: fmt.Sprintf("%q is not a duration; write it like 30m, 2h or 1d.", s)}
	}
	if d < minLockFor || d > maxLockFor {
		return 0, &UsageError{Msg: fmt.Sprintf("A lock holds between a minute and a week; %s is outside that.", s)}
	}
	return d, nil
}

// lookupAnyEnv finds an environment by name, whichever services use it.
func lookupAnyEnv(name string, cat Catalog) (string, error) {
	env := strings.ToLower(name)
	if slices.Contains(cat.Environments, env) {
		return env, nil
	}
	msg := fmt.Sprintf("I don't know the environment %q.", name)
	if s := closest(env, cat.Environments); s != "" {
		msg += fmt.Sprintf(" Did you mean `%s`?", s)
	}
	if len(cat.Environments) > 0 {
		msg += " Environments: " + strings.Join(cat.Environments, ", ") + "."
	}
	return "", &UsageError{Msg: msg}
}
