package commands

func helpCommand() Command {
	return Command{
		Name:    "help",
		Args:    "[command]",
		Summary: "Show this help, or the help of one command.",
		Example: "build",
		Parse: func(args []string, _ Catalog) (Request, error) {
			if len(args) > 1 {
				return Request{}, usageErrorf("", "`help` takes at most one command name.")
			}
			var topic string
			if len(args) == 1 {
				topic = args[0]
			}
			return Request{Topic: topic}, nil
		},
	}
}
