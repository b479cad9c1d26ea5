package commands

func buildCommand() Command {
	return Command{
		Name:    "build",
		Args:    "<service> [ref]",
		Summary: "Run the service's Jenkins job for a branch, tag or commit (default: the service's default branch) and follow it to its result.",
		Example: "api feature/login",
		Action:  "build",
		Parse: func(args []string, cat Catalog) (Request, error) {
			if len(args) == 0 {
				return Request{}, &UsageError{Msg: "Which service should I build?"}
			}
			if len(args) > 2 {
				return Request{}, usageErrorf("", "`build` takes a service and at most one ref; I got %d words.", len(args))
			}
			svc, err := lookupService(args[0], cat)
			if err != nil {
				return Request{}, err
			}
			ref := svc.DefaultRef
			if len(args) == 2 {
				ref = args[1]
			}
			if err := CheckRef(ref); err != nil {
				return Request{}, err
			}
			return Request{Service: svc.Name, Ref: ref}, nil
		},
	}
}
