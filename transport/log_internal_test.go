package transport

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// TestRefreshFailed: a slot map refresh that failed with no caller to hear
// of it is logged, once a second at most, and only then.
func TestRefreshFailed(t *testing.T) {
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	boom := errors.New("boom")
	for _, tc := range []struct {
		name   string
		ctx    context.Context
		errs   []error
		closed bool
		lines  int
	}{
		{"failed", context.Background(), []error{boom}, false, 1},
		{"failed often", context.Background(), []error{boom, boom, boom}, false, 1},
		{"no failure", context.Background(), []error{nil}, false, 0},
		{"the caller's context ended", ended, []error{boom}, false, 0},
		{"closing", context.Background(), []error{boom}, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log strings.Builder
			c := &Cluster{stop: make(chan struct{}), refreshLog: everySecond(zerolog.New(&log))}
			if tc.closed {
				close(c.stop)
			}
			for _, err := range tc.errs {
				c.refreshFailed(tc.ctx, err, "MOVED")
			}
			got := log.String()
			if n := strings.Count(got, "\n"); n != tc.lines {
				t.Errorf("%d lines, want %d: %q", n, tc.lines, got)
			}
			if tc.lines > 0 && (!strings.Contains(got, "boom") || !strings.Contains(got, `"after":"MOVED"`)) {
				t.Errorf("the log does not say what failed after what: %q", got)
			}
		})
	}
}

func TestLogAddr(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"127.0.0.1:6379", "127.0.0.1:6379"},
		{"redis://127.0.0.1:6379/2", "redis://127.0.0.1:6379/2"},
		{"redis://u:secret@h:1", "redis://u:xxxxx@h:1"},
		{"rediss://:secret@h:1", "rediss://:xxxxx@h:1"},
	} {
		if got := logAddr(tc.addr); got != tc.want {
			t.Errorf("logAddr(%q) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}
