package commands

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"
)

// NewApp builds the flashsale command line. Run it with Run, so that flags
// may follow the positional arguments and a usage error quotes the
// command line as typed.
func NewApp(version string) *cli.App {
	app := &cli.App{
		Name:    "flashsale",
		Usage:   "sell limited stock to a flood of buyers, never one unit too many",
		Version: version,
		Commands: []*cli.Command{
			serveCommand(),
			adminCommand(),
			benchCommand(),
			demoCommand(),
			joinCommand(),
			waitCommand(),
			buyCommand(),
			confirmCommand(),
			cancelCommand(),
			stockCommand(),
			pingCommand(),
			completionCommand(),
			versionCommand(),
		},
		// Errors travel back to main, which alone decides the exit code.
		ExitErrHandler:       func(*cli.Context, error) {},
		OnUsageError:         onUsageError,
		EnableBashCompletion: true,
		// "did you mean" for `flashsale help <typo>`; onUsageError and
		// unknownCommand make the suggestions of the other usage errors,
		// which urfave/cli's own do not reach once OnUsageError is set.
		Suggest: true,
		// flashsale with no command shows the help; an unknown one is a
		// usage error.
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return unknownCommand(c, c.App.Commands)
			}
			return cli.ShowAppHelp(c)
		},
	}
	for _, cmd := range app.Commands {
		oneLineUsageErrors(cmd)
	}
	return app
}

// oneLineUsageErrors makes every usage mistake of cmd and its subcommands
// one line and exit code 2, instead of urfave/cli's help screen; a
// command with subcommands refuses an unknown one the same way.
func oneLineUsageErrors(cmd *cli.Command) {
	cmd.OnUsageError = onUsageError
	if len(cmd.Subcommands) > 0 && cmd.Action == nil {
		cmd.Action = func(c *cli.Context) error {
			if c.NArg() > 0 {
				return unknownCommand(c, c.Command.Subcommands)
			}
			return cli.ShowSubcommandHelp(c)
		}
	}
	for _, sub := range cmd.Subcommands {
		oneLineUsageErrors(sub)
	}
}

// UsageError is a mistake in how a command was called: a wrong flag, a
// missing argument. It exits with code 2.
type UsageError struct {
	Command string
	Err     error
}

func (e *UsageError) Error() string {
	if e.Command == "" {
		return fmt.Sprintf("%v (see 'flashsale --help')", e.Err)
	}
	return fmt.Sprintf("%v (see 'flashsale %s --help')", e.Err, e.Command)
}

func (e *UsageError) Unwrap() error { return e.Err }

func usageErrorf(c *cli.Context, format string, args ...any) error {
	return &UsageError{Command: commandPath(c), Err: fmt.Errorf(format, args...)}
}

func onUsageError(c *cli.Context, err error, _ bool) error {
	if name, ok := undefinedFlag(err); ok {
		flags := c.App.Flags
		if c.Command != nil {
			flags = c.Command.Flags
		}
		typed := typedFlag(c.App, name)
		err = fmt.Errorf("flag provided but not defined: %s%s", typed, didYouMean(c, typed, suggestFlag(flags, name)))
	}
	return &UsageError{Command: commandPath(c), Err: err}
}

func unknownCommand(c *cli.Context, cmds []*cli.Command) error {
	name := c.Args().First()
	return usageErrorf(c, "unknown command %q%s", name, didYouMean(c, name, suggestCommand(cmds, name)))
}

// commandPath is "admin init" for flashsale admin init, "" for flashsale.
func commandPath(c *cli.Context) string {
	path := ""
	for _, ctx := range c.Lineage() {
		if ctx.Command != nil && ctx.Command.Name != "" && ctx.Command.Name != c.App.Name {
			if path != "" {
				path = " " + path
			}
			path = ctx.Command.Name + path
		}
	}
	return path
}

// ExitCode maps an error returned by the app to the process exit code:
// 0 for nil, 2 for usage errors, 130 for a run interrupted by Ctrl-C (as
// shells report SIGINT), 1 for everything else.
func ExitCode(err error) int {
	var u *UsageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &u):
		return 2
	case errors.Is(err, ErrInterrupted):
		return 130
	}
	return 1
}

// args checks that c got exactly the named positional arguments.
func args(c *cli.Context, names ...string) ([]string, error) {
	if c.NArg() != len(names) {
		return nil, usageErrorf(c, "want %d argument(s) %v, got %d", len(names), names, c.NArg())
	}
	return c.Args().Slice(), nil
}
