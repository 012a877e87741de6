package commands

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// completionFlag is the hidden flag urfave/cli answers with completions.
const completionFlag = "--generate-bash-completion"

// ReorderArgs lets flags follow positional arguments, as most command lines
// allow: urfave/cli stops parsing flags at the first positional argument,
// so `flashsale admin init iphone15 100 --per-user-limit 2` is rewritten as
// `flashsale admin init --per-user-limit 2 iphone15 100` before it parses.
//
// It walks args (args[0] is the program) down the app's command tree. At
// the command that runs, every flag it knows is moved, with its value
// when it takes one (not bool flags, nor --flag=value), ahead of the
// positional arguments, in order; `--` ends the flags, and what follows it
// stays positional. Unknown flags are moved too, without a value, for
// urfave/cli to refuse. A completion request is left as it is.
func ReorderArgs(app *cli.App, args []string) []string {
	if len(args) < 2 || args[len(args)-1] == completionFlag {
		return args
	}
	out := []string{args[0]}
	flags, cmds := app.Flags, app.Commands
	i := 1
	// Descend through command names, keeping flags of the levels above.
	for len(cmds) > 0 {
		if i == len(args) {
			return args
		}
		a := args[i]
		if isFlag(a) {
			n := flagWidth(flags, args, i)
			out = append(out, args[i:i+n]...)
			i += n
			continue
		}
		cmd := findCommand(cmds, a)
		if cmd == nil {
			// Not a command: urfave/cli will say so, with args as given.
			return args
		}
		out = append(out, a)
		flags, cmds = cmd.Flags, cmd.Subcommands
		i++
	}
	var moved, positional []string
	dashdash := false
	for i < len(args) {
		a := args[i]
		switch {
		case dashdash || !isFlag(a):
			positional = append(positional, a)
			i++
		case a == "--":
			dashdash = true
			i++
		default:
			n := flagWidth(flags, args, i)
			moved = append(moved, args[i:i+n]...)
			i += n
		}
	}
	out = append(out, moved...)
	if dashdash {
		out = append(out, "--")
	}
	return append(out, positional...)
}

// isFlag reports whether a looks like a flag: "-x", "--name", "--name=v",
// or "--". A lone "-" is an argument (stdin, by convention), and so is a
// negative number ("-5"), for the command to refuse with its own message.
func isFlag(a string) bool {
	return len(a) > 1 && a[0] == '-' && (a[1] < '0' || a[1] > '9')
}

// flagWidth is how many arguments the flag at args[i] spans: 2 when it
// takes a value given separately, else 1.
func flagWidth(flags []cli.Flag, args []string, i int) int {
	a := args[i]
	if a == "--" || strings.Contains(a, "=") {
		return 1
	}
	name := strings.TrimLeft(a, "-")
	f := findFlag(flags, name)
	if f == nil || !takesValue(f) || i+1 >= len(args) {
		return 1
	}
	return 2
}

func findFlag(flags []cli.Flag, name string) cli.Flag {
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	// -h / --help and -v / --version are urfave/cli's own bool flags.
	return nil
}

// takesValue reports whether f needs a value: every flag but a bool one.
func takesValue(f cli.Flag) bool {
	if df, ok := f.(cli.DocGenerationFlag); ok {
		return df.TakesValue()
	}
	_, isBool := f.(*cli.BoolFlag)
	return !isBool
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}
