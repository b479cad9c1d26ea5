package commands

import (
	"fmt"
	"slices"
	"strings"
)

func deployCommand() Command {
	return Command{
		Name:    "deploy",
		Args:    "<service> [ref] to <env>",
		Summary: "Build the service at a ref (default: its default branch) and deploy it to an environment: migrations, rollout, health checks, automatic rollback. `deploy` may be left out.",
		Example: "api feature/login to staging",
		Action:  "deploy",
		Parse:   parseDeploy,
	}
}

// parseDeploy reads "<service> [ref] to <env>". It also serves the short
// form without the word "deploy", the one people type most.
func parseDeploy(args []string, cat Catalog) (Request, error) {
	if len(args) == 0 {
		return Request{}, &UsageError{Msg: "Which service should I deploy?"}
	}
	svc, err := lookupService(args[0], cat)
	if err != nil {
		return Request{}, err
	}
	rest := args[1:]
	to := slices.Index(rest, "to")
	if to < 0 {
		msg := fmt.Sprintf("Deploy %s where? Add `to <env>`; %s.", svc.Name, envList(svc))
		if len(rest) == 1 {
			msg += fmt.Sprintf(" To only build it, use `build %s %s`.", svc.Name, rest[0])
		}
		return Request{}, &UsageError{Msg: msg}
	}
	if to > 1 || len(rest) != to+2 {
		return Request{}, usageErrorf("", "I read `deploy` as `<service> [ref] to <env>`; I got %q.", strings.Join(args, " "))
	}
	ref := svc.DefaultRef
	if to == 1 {
		ref = rest[0]
	}
	if err := CheckRef(ref); err != nil {
		return Request{}, err
	}
	env, err := lookupEnv(rest[to+1], svc, cat)
	if err != nil {
		return Request{}, err
	}
	return Request{Service: svc.Name, Ref: ref, Env: env}, nil
}

func promoteCommand() Command {
	return Command{
		Name:    "promote",
		Args:    "<service> [from-env] to <env>",
		Summary: "Deploy to an environment exactly the artifact that is live in the one before it (or in from-env), without rebuilding.",
		Example: "api staging to prod",
		Action:  "promote",
		Parse: func(args []string, cat Catalog) (Request, error) {
			if len(args) < 3 || args[len(args)-2] != "to" || len(args) > 4 {
				return Request{}, usageErrorf("", "`promote` takes a service, optionally the environment to promote from, then `to <env>`.")
			}
			svc, err := lookupService(args[0], cat)
			if err != nil {
				return Request{}, err
			}
			env, err := lookupEnv(args[len(args)-1], svc, cat)
			if err != nil {
				return Request{}, err
			}
			from, ok := cat.Previous(svc, env)
			if len(args) == 4 {
				if from, err = lookupEnv(args[1], svc, cat); err != nil {
					return Request{}, err
				}
			} else if !ok {
				return Request{}, usageErrorf("", "%s is the first environment %s is deployed to; there is nothing to promote from. Deploy it with `deploy %s <ref> to %s`.", env, svc.Name, svc.Name, env)
			}
			if slices.Index(cat.Environments, from) >= slices.Index(cat.Environments, env) {
				return Request{}, usageErrorf("", "Promotion goes forward, from an earlier environment to a later one (%s); %s does not come before %s.", strings.Join(cat.Environments, " → "), from, env)
			}
			return Request{Service: svc.Name, From: from, Env: env}, nil
		},
	}
}

func rollbackCommand() Command {
	return Command{
		Name:    "rollback",
		Args:    "<service> <env>",
		Summary: "Put back the version that ran in an environment before the last deploy.",
		Example: "api prod",
		Action:  "rollback",
		Parse: func(args []string, cat Catalog) (Request, error) {
			if len(args) != 2 {
				return Request{}, usageErrorf("", "`rollback` takes a service and an environment.")
			}
			svc, err := lookupService(args[0], cat)
			if err != nil {
				return Request{}, err
			}
			env, err := lookupEnv(args[1], svc, cat)
			if err != nil {
				return Request{}, err
			}
			return Request{Service: svc.Name, Env: env}, nil
		},
	}
}

func historyCommand() Command {
	return Command{
		Name:    "history",
		Args:    "<service> [env]",
		Summary: "List the recent deploys of a service, in one environment or all.",
		Example: "api prod",
		Parse: func(args []string, cat Catalog) (Request, error) {
			if len(args) == 0 || len(args) > 2 {
				return Request{}, usageErrorf("", "`history` takes a service and optionally an environment.")
			}
			svc, err := lookupService(args[0], cat)
			if err != nil {
				return Request{}, err
			}
			req := Request{Service: svc.Name}
			if len(args) == 2 {
				if req.Env, err = lookupEnv(args[1], svc, cat); err != nil {
					return Request{}, err
				}
			}
			return req, nil
		},
	}
}

// lookupEnv finds the environment a user named, one svc is deployed to.
func lookupEnv(name string, svc Service, cat Catalog) (string, error) {
	env, err := lookupAnyEnv(name, cat)
	if err != nil {
		return "", err
	}
	if !svc.DeploysTo(env) {
		return "", &UsageError{Msg: fmt.Sprintf("%s is not deployed to %s; %s.", svc.Name, env, envList(svc))}
	}
	return env, nil
}

// envList says where svc is deployed, for messages.
func envList(svc Service) string {
	if len(svc.Envs) == 0 {
		return "it has no environments configured"
	}
	return "it is deployed to " + strings.Join(svc.Envs, ", ")
}
