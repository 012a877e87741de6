package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
)

func main() {
	strict := false
	args := os.Args[1:]
	if len(args) > 0 && (args[0] == "-strict" || args[0] == "--strict") {
		strict, args = true, args[1:]
	}
	raceDropped := hasRace(args) && !cgoEnabled()
	if raceDropped {
		args = slices.DeleteFunc(slices.Clone(args), isRace)
		fmt.Fprintln(os.Stdout, "gotest: running without -race: the race detector needs cgo, and go env CGO_ENABLED is not 1 (no C compiler found); install gcc (apt-get install gcc / xcode-select --install) to run with it")
	}
	r := newReport(os.Stdout, slices.Contains(args, "-v") || slices.Contains(args, "--v"),
		os.Getenv(envRedis) == envEmbedded)
	code := goTest(r, args)
	if code == 0 && hasRace(args) && len(r.norace) > 0 {
		code = rerunNoRace(r)
	}
	fmt.Fprintln(os.Stdout, r.summary())
	if code == 0 && strict && r.missing() > 0 {
		fmt.Fprintln(os.Stderr, "gotest: -strict: tests were skipped or ran on the embedded store (see the line above)")
		code = 1
	}
	if code == 0 && strict && raceDropped {
		fmt.Fprintln(os.Stderr, "gotest: -strict: -race was asked for but cannot run here (see the first line)")
		code = 1
	}
	os.Exit(code)
}

// goTest runs go test -json with args, printing through r, and returns
// its exit code (2 when it could not run).
func goTest(r *report, args []string) int {
	cmd := exec.Command("go", append([]string{"test", "-json"}, args...)...)
	cmd.Stdin, cmd.Stderr = os.Stdin, os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gotest:", err)
		return 2
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "gotest:", err)
		return 2
	}
	rerr := r.read(out)
	if rerr != nil {
		io.Copy(io.Discard, out) // let go test finish
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return exit.ExitCode()
	case err != nil || rerr != nil:
		fmt.Fprintln(os.Stderr, "gotest:", errors.Join(err, rerr))
		return 2
	}
	return 0
}

// hasRace reports whether args turn the race detector on.
func hasRace(args []string) bool { return slices.ContainsFunc(args, isRace) }

// isRace reports whether the argument a turns the race detector on.
func isRace(a string) bool {
	a = strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
	return a == "race" || a == "race=true"
}

// cgoEnabled reports whether go builds with cgo here, which -race needs:
// go turns cgo off by default when it finds no C compiler.
func cgoEnabled() bool {
	out, err := exec.Command("go", "env", "CGO_ENABLED").Output()
	return err != nil || strings.TrimSpace(string(out)) == "1"
}

// rerunNoRace runs the tests that skipped under -race again without it.
func rerunNoRace(r *report) int {
	args := r.noRaceArgs()
	fmt.Fprintf(r.w, "gotest: without -race: go test %s '%s' %s\n", strings.Join(args[:2], " "), args[2], strings.Join(args[3:], " "))
	return goTest(r, args)
}
