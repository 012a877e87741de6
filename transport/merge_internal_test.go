package transport

import (
	"testing"

	"github.com/flashsale/flashsale/engine"
)

// TestMergeKey: calls merge when Redis would receive their shared keys and
// arguments alike, and only then.
func TestMergeKey(t *testing.T) {
	s := &engine.Script{Merge: &engine.MergeSpec{Max: 4, Keys: 2, SharedKeys: 1, SharedArgs: 1, Stride: 1}}
	s.Merge.Script = s
	// args: shared key, own key, shared arg, own arg.
	mk := func(args ...any) *call { return &call{s: s, args: args} }
	cases := []struct {
		name string
		a, b *call
		same bool
	}{
		{"equal", mk("k", "a", "x", 1), mk("k", "b", "x", 2), true},
		{"int64 and string", mk("k", "a", int64(7), 1), mk("k", "b", "7", 2), true},
		{"int and int64", mk("k", "a", 7, 1), mk("k", "b", int64(7), 2), true},
		{"bytes and string", mk([]byte("k"), "a", "x", 1), mk("k", "b", "x", 2), true},
		{"other shared key", mk("k", "a", "x", 1), mk("j", "a", "x", 1), false},
		{"other shared arg", mk("k", "a", "x", 1), mk("k", "a", "y", 1), false},
		{"bytes shifted between arguments", mk("ab", "a", "c", 1), mk("a", "a", "bc", 1), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := sameShared(c.a, c.b); got != c.same {
				t.Errorf("sameShared = %v, want %v", got, c.same)
			}
			if c.same && keyOf(c.a) != keyOf(c.b) {
				t.Errorf("equal calls hash apart: %v, %v", keyOf(c.a), keyOf(c.b))
			}
		})
	}
}
