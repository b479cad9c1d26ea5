package commands

func statusCommand() Command {
	return Command{
		Name:    "status",
		Args:    "[service]",
		Summary: "Show the recent jobs of a service, or of every service.",
		Example: "api",
		Parse: func(args []string, cat Catalog) (Request, error) {
			switch len(args) {
			case 0:
				return Request{}, nil
			case 1:
				svc, err := lookupService(args[0], cat)
				if err != nil {
					return Request{}, err
				}
				return Request{Service: svc.Name}, nil
			default:
				return Request{}, usageErrorf("", "`status` takes at most one service; I got %d words.", len(args))
			}
		},
	}
}
