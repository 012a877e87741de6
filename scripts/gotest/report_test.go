package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flashsale/flashsale/internal/testkit/redistest"
)

var update = flag.Bool("update", false, "rewrite testdata/gotest/*.golden")

const testdata = "../../testdata/gotest"

// TestReport: each canned go test -json stream (and, when the run skipped
// tests under -race, the stream of their second run) prints what its
// golden file holds: go test's lines, then the summary.
func TestReport(t *testing.T) {
	for _, tc := range []struct {
		name      string
		simulated bool
		verbose   bool
		noRace    string // the stream of the second run, without -race
		wantArgs  string // its arguments
	}{
		{name: "embedded", simulated: true, noRace: "embedded-norace",
			wantArgs: "-count=1 -run ^(TestIdleConnStack)$ github.com/flashsale/flashsale/server"},
		{name: "real", noRace: "real-norace",
			wantArgs: "-count=1 -run ^(TestIdleConnStack)$ github.com/flashsale/flashsale/server"},
		{name: "fail"},
		{name: "fail", verbose: true},
	} {
		golden := tc.name
		if tc.verbose {
			golden += "-v"
		}
		t.Run(golden, func(t *testing.T) {
			var out bytes.Buffer
			r := newReport(&out, tc.verbose, tc.simulated)
			readStream(t, r, tc.name)
			if tc.noRace != "" {
				if got := strings.Join(r.noRaceArgs(), " "); got != tc.wantArgs {
					t.Errorf("rerun without -race: %s, want %s", got, tc.wantArgs)
				}
				readStream(t, r, tc.noRace)
			} else if len(r.norace) > 0 {
				t.Errorf("tests to rerun without -race: %v", r.norace)
			}
			out.WriteString(r.summary() + "\n")
			compareGolden(t, golden+".golden", out.String())
		})
	}
}

func readStream(t *testing.T, r *report, name string) {
	t.Helper()
	f, err := os.Open(filepath.Join(testdata, name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := r.read(f); err != nil {
		t.Fatal(err)
	}
}

func compareGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join(testdata, name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("got:\n%s\nwant (%s):\n%s", got, path, want)
	}
}

// TestMissing: -strict fails a run that skipped for want of Redis or a
// browser, or ran on the embedded store, not one that only reran tests
// without -race.
func TestMissing(t *testing.T) {
	for _, tc := range []struct {
		name     string
		skipped  map[string]int
		embedded int
		want     int
	}{
		{"none", nil, 0, 0},
		{"norace only", map[string]int{needNoRace: 1}, 0, 0},
		{"redis and browser", map[string]int{needRedis: 2, needBrowser: 1, needNoRace: 1}, 0, 3},
		{"embedded", nil, 5, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newReport(nil, false, false)
			r.skipped, r.embedded = tc.skipped, tc.embedded
			if r.skipped == nil {
				r.skipped = map[string]int{}
			}
			if got := r.missing(); got != tc.want {
				t.Errorf("missing() = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestMarkersAgree: what this command looks for is what redistest writes.
func TestMarkersAgree(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{skipMarker, redistest.SkipMarker},
		{embeddedMarker, redistest.EmbeddedMarker},
		{usingMarker, redistest.UsingMarker},
		{needRedis, string(redistest.NeedRedis)},
		{needBrowser, string(redistest.NeedBrowser)},
		{needNoRace, string(redistest.NeedNoRace)},
		{envRedis, redistest.EnvRequireReal},
		{envEmbedded, redistest.EnvEmbedded},
	} {
		if tc.got != tc.want {
			t.Errorf("gotest has %q, redistest %q", tc.got, tc.want)
		}
	}
	msg := "    x_test.go:1: " + redistest.Mark(redistest.SkipMarker, redistest.NeedBrowser, "no chromium (apt-get install chromium)") + "\n"
	if need, ok := skipNeed([]string{msg}); !ok || need != needBrowser {
		t.Errorf("skipNeed(%q) = %q, %v", msg, need, ok)
	}
	if !strings.HasPrefix(string(redistest.KindEmbedded), embeddedKind) {
		t.Errorf("KindEmbedded %q does not start with %q, which tally tells the embedded store by", redistest.KindEmbedded, embeddedKind)
	}
}

func TestIsRace(t *testing.T) {
	for a, want := range map[string]bool{
		"-race": true, "--race": true, "-race=true": true,
		"-race=false": false, "-count=1": false, "./...": false,
	} {
		if got := isRace(a); got != want {
			t.Errorf("isRace(%q) = %v, want %v", a, got, want)
		}
	}
}
