package commands

import (
	"context"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"
)

// typedArgsKey is where Run notes the command line in the app's Metadata,
// for usage errors to quote what was typed.
const typedArgsKey = "flashsale.typedArgs"

// Run runs app on args (args[0] is the program), flags reordered by
// ReorderArgs; a usage error quotes a flag as it was typed.
func Run(ctx context.Context, app *cli.App, args []string) error {
	if app.Metadata == nil {
		app.Metadata = map[string]any{}
	}
	app.Metadata[typedArgsKey] = args
	return app.RunContext(ctx, ReorderArgs(app, args))
}

// undefinedFlag is the name in the flag package's "flag provided but not
// defined: -name" (which has one dash, however many were typed).
func undefinedFlag(err error) (string, bool) {
	const prefix = "flag provided but not defined: -"
	msg := err.Error()
	if !strings.HasPrefix(msg, prefix) {
		return "", false
	}
	return msg[len(prefix):], true
}

// typedFlag is flag name as the command line had it: -name or --name
// (without a =value); else as help spells it.
func typedFlag(app *cli.App, name string) string {
	typed, _ := app.Metadata[typedArgsKey].([]string)
	for _, a := range typed {
		if flag, _, _ := strings.Cut(a, "="); isFlag(flag) && strings.TrimLeft(flag, "-") == name {
			return flag
		}
	}
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// suggestFlag is urfave/cli's nearest flag to name ("--listen"), "" when
// it is built without suggestions.
func suggestFlag(flags []cli.Flag, name string) string {
	if cli.SuggestFlag == nil {
		return ""
	}
	return cli.SuggestFlag(flags, name, false)
}

// suggestCommand is urfave/cli's nearest command to name.
func suggestCommand(cmds []*cli.Command, name string) string {
	if cli.SuggestCommand == nil {
		return ""
	}
	// It answers with the sentence "Did you mean "serve"?".
	s := cli.SuggestCommand(cmds, name)
	if i := strings.IndexByte(s, '"'); i >= 0 {
		q, _ := strconv.QuotedPrefix(s[i:])
		return q
	}
	return ""
}

// didYouMean is "; did you mean SUGGESTION?" when the app suggests and
// suggestion is a near miss of typed: urfave/cli names the nearest flag or
// command however far it is, and "--nonsense" is no typo of "--addr".
func didYouMean(c *cli.Context, typed, suggestion string) string {
	bare := func(s string) string { return strings.TrimLeft(strings.Trim(s, `"`), "-") }
	if !c.App.Suggest || suggestion == "" || !nearMiss(bare(typed), bare(suggestion)) {
		return ""
	}
	return "; did you mean " + suggestion + "?"
}

// nearMiss reports whether a is b mistyped: at most one edit (an insertion,
// a deletion, a substitution, or two letters swapped) in five letters,
// two at most.
func nearMiss(a, b string) bool {
	most := min(len([]rune(b))/5+1, 2)
	if len([]rune(b)) < 3 {
		most = 0
	}
	d := editDistance([]rune(a), []rune(b))
	return d > 0 && d <= most
}

// editDistance is the optimal string alignment distance between a and b:
// Levenshtein's, with a swap of two neighbours one edit.
func editDistance(a, b []rune) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
