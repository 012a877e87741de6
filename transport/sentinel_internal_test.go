package transport

import (
	"slices"
	"testing"

	"github.com/rs/zerolog"
)

// TestSentinelSetIgnoresOlderEpochs: the primary moves on a new address
// named in the config epoch followed or a later one, never back to one a
// lagging sentinel names from an older epoch.
func TestSentinelSetIgnoresOlderEpochs(t *testing.T) {
	var moves []string
	s := &sentinel{log: zerolog.Nop(), epoch: -1, move: func(a string) { moves = append(moves, a) }}
	for _, step := range []struct {
		addr  string
		epoch int64
	}{
		{"a:1", 0}, // first named
		{"a:1", 0}, // the same: no move
		{"b:1", 1}, // a failover
		{"a:1", 0}, // a lagging sentinel
		{"b:1", 1},
		{"c:1", 2}, // another failover
	} {
		s.set(step.addr, step.epoch)
	}
	if want := []string{"a:1", "b:1", "c:1"}; !slices.Equal(moves, want) {
		t.Errorf("moves %v, want %v", moves, want)
	}
}
