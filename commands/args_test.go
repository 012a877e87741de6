package commands

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

func TestReorderArgs(t *testing.T) {
	app := NewApp("test")
	for _, tc := range []struct{ in, want string }{
		{"admin init iphone15 100 --per-user-limit 2", "admin init --per-user-limit 2 iphone15 100"},
		{"admin init --per-user-limit 2 iphone15 100", "admin init --per-user-limit 2 iphone15 100"},
		{"admin init iphone15 --per-user-limit=2 100", "admin init --per-user-limit=2 iphone15 100"},
		// A bool flag takes no value: 100 stays an argument.
		{"admin status iphone15 --json", "admin status --json iphone15"},
		{"admin init iphone15 --json 100", "admin init --json iphone15 100"},
		// -- ends the flags: what follows stays an argument.
		{"admin release iphone15 -- --odd-order-id", "admin release -- iphone15 --odd-order-id"},
		// Negative numbers are arguments, for the command to refuse.
		{"admin restock iphone15 -5", "admin restock iphone15 -5"},
		{"buy iphone15 user_1 --quantity 2 --request-id r1", "buy --quantity 2 --request-id r1 iphone15 user_1"},
		{"buy iphone15 user_1 -q 2", "buy -q 2 iphone15 user_1"},
		{"bench -n 10 -c 2", "bench -n 10 -c 2"},
		// A flag's value that looks like a flag is still its value.
		{"bench --user-prefix -x", "bench --user-prefix -x"},
		// Unknown flags move too, for urfave/cli to refuse.
		{"stock iphone15 --bogus", "stock --bogus iphone15"},
		{"stock iphone15 --help", "stock --help iphone15"},
		// Flags of the app stay where they are; a missing value stays missing.
		{"--version", "--version"},
		{"admin init iphone15 --per-user-limit", "admin init --per-user-limit iphone15"},
		{"nope a --b", "nope a --b"},
		{"admin nope a --b", "admin nope a --b"},
		// Completion requests are left alone.
		{"admin init iphone15 --generate-bash-completion", "admin init iphone15 --generate-bash-completion"},
		{"", ""},
	} {
		in := append([]string{"flashsale"}, strings.Fields(tc.in)...)
		want := append([]string{"flashsale"}, strings.Fields(tc.want)...)
		if got := ReorderArgs(app, in); !slices.Equal(got, want) {
			t.Errorf("ReorderArgs(%q)\n got %q\nwant %q", tc.in, got[1:], want[1:])
		}
	}
}

// commandPaths lists every command of app: "serve", "admin init", …
func commandPaths(cmds []*cli.Command, prefix string) []string {
	var paths []string
	for _, c := range cmds {
		if c.Name == "help" {
			continue
		}
		path := strings.TrimSpace(prefix + " " + c.Name)
		paths = append(paths, path)
		paths = append(paths, commandPaths(c.Subcommands, path)...)
	}
	return paths
}

// TestUsageErrors: every command refuses an unknown flag with one line
// and exit code 2; every command has help; so has the app.
func TestUsageErrors(t *testing.T) {
	paths := commandPaths(NewApp("test").Commands, "")
	if len(paths) < 20 {
		t.Fatalf("only %d commands: %v", len(paths), paths)
	}
	for _, path := range append(paths, "") {
		args := append(strings.Fields(path), "--no-such-flag")
		out, err := runApp(t, args...)
		if ExitCode(err) != 2 || out != "" || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "no-such-flag") {
			t.Errorf("flashsale %s: exit %d, error %q, output %q", strings.Join(args, " "), ExitCode(err), err, out)
		}
		out, err = runApp(t, append(strings.Fields(path), "--help")...)
		if err != nil || !strings.Contains(out, "USAGE") {
			t.Errorf("flashsale %s --help: %v\n%s", path, err, out)
		}
	}
	for _, args := range [][]string{{"nope"}, {"admin", "nope"}, {"completion", "tcsh"}, {"completion"}} {
		if out, err := runApp(t, args...); ExitCode(err) != 2 || strings.Contains(err.Error(), "\n") {
			t.Errorf("flashsale %v: exit %d, %v\n%s", args, ExitCode(err), err, out)
		}
	}
	for _, args := range [][]string{{"help"}, {"help", "bench"}, {}} {
		if out, err := runApp(t, args...); err != nil || !strings.Contains(out, "USAGE") {
			t.Errorf("flashsale %v: %v\n%s", args, err, out)
		}
	}
}

func TestCompletion(t *testing.T) {
	for _, tc := range []struct{ shell, want string }{
		{"bash", "complete -o bashdefault"},
		{"zsh", "compdef _flashsale flashsale"},
		{"fish", "complete -c flashsale"},
	} {
		out := mustRun(t, "completion", tc.shell)
		if !strings.Contains(out, tc.want) {
			t.Errorf("completion %s lacks %q:\n%s", tc.shell, tc.want, out)
		}
		if tc.shell == "bash" {
			if bash, err := exec.LookPath("bash"); err == nil {
				cmd := exec.Command(bash, "-n")
				cmd.Stdin = strings.NewReader(out)
				if msg, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("bash -n: %v\n%s", err, msg)
				}
			}
		}
	}
	// The scripts ask the binary; it answers with the subcommands.
	// urfave/cli reads the word before the cursor from os.Args.
	args := []string{"admin", "--generate-bash-completion"}
	saved := os.Args
	os.Args = append([]string{"flashsale"}, args...)
	defer func() { os.Args = saved }()
	out := mustRun(t, args...)
	for _, want := range []string{"init\n", "status\n", "verify\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("admin completions lack %q:\n%s", want, out)
		}
	}
}
