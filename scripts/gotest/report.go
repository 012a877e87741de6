package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// Markers and needs of internal/testkit/redistest (report_test.go checks that they
// agree; this command does not import it, to build without its
// dependencies).
const (
	skipMarker     = "SKIPPED"
	embeddedMarker = "EMBEDDED"
	usingMarker    = "USING"

	needRedis   = "redis"
	needBrowser = "browser"
	needNoRace  = "norace"

	// embeddedKind begins redistest's KindEmbedded, what USING names the
	// embedded store by.
	embeddedKind = "miniredis"
)

// envRedis is redistest's FLASHSALE_TEST_REDIS; envEmbedded its value that
// simulates a machine without Redis.
const (
	envRedis    = "FLASHSALE_TEST_REDIS"
	envEmbedded = "embedded"
)

// event is one line of go test -json (cmd/test2json); a build-output
// event has no Package.
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// line is one line of a package's output and the test it belongs to ("":
// the package's own).
type line struct{ test, text string }

// pkgOutput is what a package printed so far and how its tests ended.
type pkgOutput struct {
	lines  []line
	result map[string]string // test → pass, fail or skip
}

// report turns a go test -json stream into go test's usual output and
// tallies the tests that did not run as they should have.
type report struct {
	w       io.Writer
	verbose bool // print everything, as go test -v does
	// simulated: FLASHSALE_TEST_REDIS=embedded, not a missing redis-server.
	simulated bool

	pkgs     map[string]*pkgOutput
	skipped  map[string]int      // need → tests skipped for want of it
	embedded int                 // tests that ran on the embedded store
	norace   map[string][]string // package → top-level tests to run without -race
	reran    int                 // tests run again without -race
	using    map[string]bool     // what real Redis the packages used
}

func newReport(w io.Writer, verbose, simulated bool) *report {
	return &report{
		w: w, verbose: verbose, simulated: simulated,
		pkgs:    map[string]*pkgOutput{},
		skipped: map[string]int{},
		norace:  map[string][]string{},
		using:   map[string]bool{},
	}
}

// read consumes a go test -json stream; a line that is not an event is
// printed as it is.
func (r *report) read(rd io.Reader) error {
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Action == "" {
			fmt.Fprintln(r.w, sc.Text())
			continue
		}
		r.event(e)
	}
	return sc.Err()
}

// event takes one event.
func (r *report) event(e event) {
	if e.Action == "build-output" {
		io.WriteString(r.w, e.Output)
	}
	if e.Package == "" {
		return
	}
	p := r.pkgs[e.Package]
	if p == nil {
		p = &pkgOutput{result: map[string]string{}}
		r.pkgs[e.Package] = p
	}
	switch e.Action {
	case "output":
		if r.verbose {
			io.WriteString(r.w, e.Output)
		}
		p.lines = append(p.lines, line{e.Test, e.Output})
	case "pass", "fail", "skip":
		if e.Test != "" {
			p.result[e.Test] = e.Action
			return
		}
		r.finish(e.Package, p, e.Action)
		delete(r.pkgs, e.Package)
	}
}

// finish prints what go test prints for a package that ended with action,
// and tallies its tests.
func (r *report) finish(pkg string, p *pkgOutput, action string) {
	byTest := map[string][]string{}
	for _, l := range p.lines {
		byTest[l.test] = append(byTest[l.test], l.text)
		if !r.verbose && shown(p, l, action) {
			io.WriteString(r.w, l.text)
		}
	}
	for test, result := range p.result {
		r.tally(pkg, test, result, byTest[test])
	}
}

// shown reports whether go test (without -v) prints l of a package that
// ended with action: for a passing or test-less package only its ok or ?
// line, for a failing one everything but the tests that passed or skipped
// and the === lines.
func shown(p *pkgOutput, l line, action string) bool {
	switch {
	case action != "fail" && l.test == "":
		return strings.HasPrefix(l.text, "ok  ") || strings.HasPrefix(l.text, "?   ")
	case action != "fail", strings.HasPrefix(l.text, "=== "):
		return false
	}
	res := p.result[l.test]
	return res != "pass" && res != "skip"
}

// tally counts the markers in out, the output of test, which ended with
// result (pass, fail or skip).
func (r *report) tally(pkg, test, result string, out []string) {
	for _, text := range out {
		if what, ok := marked(text, usingMarker, needRedis); ok && !strings.HasPrefix(what, embeddedKind) {
			r.using[strings.TrimSpace(what)] = true
		}
	}
	switch {
	case result == "skip":
		need, ok := skipNeed(out)
		if !ok {
			return
		}
		r.skipped[need]++
		if top, _, _ := strings.Cut(test, "/"); need == needNoRace && !slices.Contains(r.norace[pkg], top) {
			r.norace[pkg] = append(r.norace[pkg], top)
		}
	case slices.ContainsFunc(out, func(s string) bool { _, ok := marked(s, embeddedMarker, needRedis); return ok }):
		r.embedded++
	}
}

// skipNeed returns the need of the first skip marker in out.
func skipNeed(out []string) (string, bool) {
	for _, text := range out {
		i := strings.Index(text, skipMarker+"(")
		if i < 0 {
			continue
		}
		rest := text[i+len(skipMarker)+1:]
		if need, _, ok := strings.Cut(rest, "): "); ok && need != "" && !strings.ContainsAny(need, " ()") {
			return need, true
		}
	}
	return "", false
}

// marked returns what follows marker(need): in text.
func marked(text, marker, need string) (string, bool) {
	m := marker + "(" + need + "): "
	i := strings.Index(text, m)
	if i < 0 {
		return "", false
	}
	return text[i+len(m):], true
}

// missing is the number of tests skipped for want of something other than
// a build without -race, plus those that ran on the embedded store.
func (r *report) missing() int {
	n := r.embedded
	for need, k := range r.skipped {
		if need != needNoRace {
			n += k
		}
	}
	return n
}

// summary is the last line: what did not run as it should have, and how
// to run it.
func (r *report) summary() string {
	var parts []string
	if p := r.redisPart(); p != "" {
		parts = append(parts, p)
	}
	if n := r.skipped[needBrowser]; n > 0 {
		parts = append(parts, tests(n, "browser test")+" skipped: no chromium on $PATH; install it (apt-get install chromium) and run again")
	}
	for _, need := range slices.Sorted(maps.Keys(r.skipped)) {
		if need != needRedis && need != needBrowser && need != needNoRace {
			parts = append(parts, fmt.Sprintf("%s skipped for want of %s", tests(r.skipped[need], "test"), need))
		}
	}
	if len(parts) == 0 {
		parts = append(parts, "nothing skipped for want of Redis or a browser")
		if len(r.using) > 0 {
			parts = append(parts, strings.Join(slices.Sorted(maps.Keys(r.using)), ", "))
		}
	}
	if n := r.skipped[needNoRace]; n > 0 {
		parts = append(parts, fmt.Sprintf("%s skipped under -race, %d ran again without it", tests(n, "test"), r.reran))
	}
	return "tests: " + strings.Join(parts, "; ")
}

// redisPart is the summary's part on Redis-backed tests, "" when every one
// ran on a real Redis.
func (r *report) redisPart() string {
	skipped, embedded := r.skipped[needRedis], r.embedded
	var did string
	switch {
	case skipped == 0 && embedded == 0:
		return ""
	case embedded == 0:
		did = tests(skipped, "Redis-backed test") + " skipped"
	case skipped == 0:
		did = tests(embedded, "test") + " ran on the embedded store, not a real Redis"
	default:
		did = fmt.Sprintf("%s skipped and %d ran on the embedded store, not a real Redis", tests(skipped, "Redis-backed test"), embedded)
	}
	if r.simulated {
		return did + ": " + envRedis + "=" + envEmbedded + " asked for no real Redis; unset it to run them"
	}
	return did + ": no redis-server on $PATH; install it (apt-get install redis-server / brew install redis) and run again"
}

// tests is "1 noun" or "n nouns".
func tests(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// noRaceArgs returns go test's arguments that run the tests skipped under
// -race (need norace) without it, and counts them as run again.
func (r *report) noRaceArgs() []string {
	var names, pkgs []string
	for _, pkg := range slices.Sorted(maps.Keys(r.norace)) {
		pkgs = append(pkgs, pkg)
		names = append(names, r.norace[pkg]...)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	r.reran += len(names)
	r.norace = map[string][]string{}
	return append([]string{"-count=1", "-run", "^(" + strings.Join(names, "|") + ")$"}, pkgs...)
}
