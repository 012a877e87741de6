package redistest

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
)

// Need is what a skipped test lacked. scripts/gotest counts the tests
// skipped for each Need and names them in its summary line.
type Need string

// Needs a test may be skipped for.
const (
	// NeedRedis: a real Redis (the shared one is the embedded store), or
	// a redis-server process of the test's own.
	NeedRedis Need = "redis"
	// NeedBrowser: a Chromium to drive headless.
	NeedBrowser Need = "browser"
	// NeedNoRace: a build without the race detector; scripts/gotest runs
	// such a test again without -race.
	NeedNoRace Need = "norace"
)

// Markers in a test's output that scripts/gotest looks for. Each is
// followed by the Need in parentheses and ": ".
const (
	// SkipMarker begins the message of a test skipped through Skip:
	// "SKIPPED(redis): …".
	SkipMarker = "SKIPPED"
	// EmbeddedMarker is logged by a test that got the embedded store as
	// its Redis: "EMBEDDED(redis): …".
	EmbeddedMarker = "EMBEDDED"
	// UsingMarker is logged once per package by the first test that asks
	// for the shared Redis, naming what it got: "USING(redis): …".
	UsingMarker = "USING"
)

// EnvEmbedded is the value of FLASHSALE_TEST_REDIS that makes a run behave
// as if no real Redis were installed: the shared Redis is the embedded
// store, and tests that need a redis-server of their own skip. It shows
// what a run on a machine without Redis skips.
const EnvEmbedded = "embedded"

// Mark returns marker(need): text, the form scripts/gotest recognises.
func Mark(marker string, need Need, text string) string {
	return fmt.Sprintf("%s(%s): %s", marker, need, text)
}

// Skip skips tb for want of need, with a message that scripts/gotest
// counts. Every test skipped for a missing tool goes through it.
func Skip(tb testing.TB, need Need, why string) {
	tb.Helper()
	tb.Skip(Mark(SkipMarker, need, why))
}

// SkipUnlessReal skips tb, for want of NeedRedis, unless the package's
// shared Redis is a real Redis (see Real).
func SkipUnlessReal(tb testing.TB, why string) {
	tb.Helper()
	if !Real(tb) {
		Skip(tb, NeedRedis, why)
	}
}

// simulated reports whether FLASHSALE_TEST_REDIS=embedded asks the run to
// behave as if no real Redis were installed.
func simulated() bool { return os.Getenv(EnvRequireReal) == EnvEmbedded }

var (
	announced atomic.Bool
	marked    sync.Map // testing.TB → struct{}: EmbeddedMarker logged
)

// announce logs, in the first test that asks for the shared Redis, what
// that Redis is, and in every test that got the embedded store, that it
// did (once per test).
func announce(tb testing.TB) {
	tb.Helper()
	if announced.CompareAndSwap(false, true) {
		tb.Log(Mark(UsingMarker, NeedRedis, describe))
	}
	if kind != KindEmbedded {
		return
	}
	if _, done := marked.LoadOrStore(tb, struct{}{}); !done {
		tb.Log(Mark(EmbeddedMarker, NeedRedis, "this test ran on the embedded store, not a real Redis"))
	}
}
