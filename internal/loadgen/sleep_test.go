package loadgen

import (
	"testing"
	"time"
)

// TestSleeperUntil: a sleeper returns once the time is due, never before
// (with its fine timer, after it failed, and without one), and returns
// false at once when stopped. No timing is asserted beyond "not early".
func TestSleeperUntil(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		make func() *sleeper
	}{
		{"fine", func() *sleeper { return newSleeper(true) }},
		{"fine timer closed", func() *sleeper { s := newSleeper(true); s.close(); return s }},
		{"go timer only", func() *sleeper { return newSleeper(false) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := &Generator{start: time.Now(), stopCh: make(chan struct{})}
			s := tt.make()
			defer s.close()
			for _, wait := range []time.Duration{-time.Millisecond, 0, 50 * time.Microsecond, time.Millisecond, 3 * time.Millisecond} {
				due := g.since() + int64(wait)
				if !s.until(g, due, g.stopCh) {
					t.Fatalf("until(+%v) = false, want true", wait)
				}
				if now := g.since(); now < due {
					t.Fatalf("until(+%v) returned %v early", wait, time.Duration(due-now))
				}
			}
			g.stop()
			if s.until(g, g.since()+int64(time.Hour), g.stopCh) {
				t.Fatal("until an hour ahead, stopped: true, want false")
			}
		})
	}
}
