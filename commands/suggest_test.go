package commands

import (
	"strings"
	"testing"
)

// TestUsageErrorsAsTyped: an unknown flag is quoted as typed, with a
// suggestion when it is a near miss of one the command has; so is an
// unknown command. Each is a usage error (exit 2).
func TestUsageErrorsAsTyped(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--listne", ":8080"}, "flag provided but not defined: --listne; did you mean --listen? (see 'flashsale serve --help')"},
		{[]string{"serve", "--listne=:8080"}, "flag provided but not defined: --listne; did you mean --listen?"},
		{[]string{"serve", "--nonsense"}, "flag provided but not defined: --nonsense (see 'flashsale serve --help')"},
		{[]string{"serve", "-nonsense"}, "flag provided but not defined: -nonsense (see"},
		{[]string{"--nonsense"}, "flag provided but not defined: --nonsense (see 'flashsale --help')"},
		{[]string{"--verison"}, "did you mean --version?"},
		{[]string{"bench", "--duraton", "1s"}, "flag provided but not defined: --duraton; did you mean --duration?"},
		{[]string{"bench", "-x"}, "flag provided but not defined: -x (see"},
		{[]string{"admin", "init", "p", "1", "--per-user-limt", "2"}, "--per-user-limt; did you mean --per-user-limit? (see 'flashsale admin init --help')"},
		{[]string{"sreve"}, `unknown command "sreve"; did you mean "serve"? (see 'flashsale --help')`},
		{[]string{"admin", "stauts", "p"}, `unknown command "stauts"; did you mean "status"? (see 'flashsale admin --help')`},
		{[]string{"admin", "frobnicate"}, `unknown command "frobnicate" (see 'flashsale admin --help')`},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, err := runApp(t, tt.args...)
			if ExitCode(err) != 2 || out != "" || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("flashsale %v: exit %d, error %v, output %q; want exit 2 and %q", tt.args, ExitCode(err), err, out, tt.want)
			}
		})
	}
}

func TestNearMiss(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{"listne", "listen", true},        // swapped letters
		{"lsten", "listen", true},         // one left out
		{"redis-adr", "redis-addr", true}, // one left out
		{"per-user-limt", "per-user-limit", true},
		{"lisetn", "listen", true}, // two edits in six letters
		{"nonsense", "no-color", false},
		{"listen", "listen", false}, // not a typo: the same
		{"x", "c", false},           // one letter: anything is one edit away
		{"adr", "addr", true},
		{"abcd", "addr", false},
	} {
		if got := nearMiss(tt.a, tt.b); got != tt.want {
			t.Errorf("nearMiss(%q, %q) = %v, want %v (distance %d)", tt.a, tt.b, got, tt.want, editDistance([]rune(tt.a), []rune(tt.b)))
		}
	}
}
