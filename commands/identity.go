package commands

import (
	"strconv"
)

func loginCommand() Command {
	return Command{
		Name:    "login",
		Summary: "Link your Slack account to your company sign-in (Okta), so your groups decide what you may do.",
		Parse: func(args []string, _ Catalog) (Request, error) {
			if len(args) > 0 {
				return Request{}, usageErrorf("", "`login` takes nothing more.")
			}
			return Request{}, nil
		},
	}
}

func whoamiCommand() Command {
	return Command{
		Name:    "whoami",
		Summary: "Show who deploybot thinks you are, your groups, and what they allow.",
		Parse: func(args []string, _ Catalog) (Request, error) {
			if len(args) > 0 {
				return Request{}, usageErrorf("", "`whoami` takes nothing more.")
			}
			return Request{}, nil
		},
	}
}

// auditMax is the most entries /deploy audit shows.
const auditMax = 50

func auditCommand() Command {
	return Command{
		Name:    "audit",
		Args:    "[service|@user] [n]",
		Summary: "Show the audit trail: every command, click, approval, denial and permission change (admins).",
		Example: "api 20",
		Action:  "admin",
		Parse: func(args []string, cat Catalog) (Request, error) {
			var req Request
			n := 10
			if len(args) > 0 {
				if v, err := strconv.Atoi(args[len(args)-1]); err == nil {
					if v < 1 || v > auditMax {
						return Request{}, usageErrorf("", "`audit` shows 1 to %d entries.", auditMax)
					}
					n, args = v, args[:len(args)-1]
				}
			}
			switch {
			case len(args) > 1:
				return Request{}, usageErrorf("", "`audit` takes one service or user, then optionally how many entries.")
			case len(args) == 1 && slackUser.MatchString(args[0]):
				m := slackUser.FindStringSubmatch(args[0])
				req.User = m[1] + m[2]
			case len(args) == 1:
				svc, err := lookupService(args[0], cat)
				if err != nil {
					return Request{}, err
				}
				req.Service = svc.Name
			}
			req.Count = n
			return req, nil
		},
	}
}
