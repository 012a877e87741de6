package transport

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/gomodule/redigo/redis"

	"github.com/flashsale/flashsale/engine"
)

func TestRetryable(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		ok   bool
		want Retry
	}{
		{"nil", nil, false, 0},
		{"MOVED", redis.Error("MOVED 9710 127.0.0.1:7102"), true, RetryMoved},
		{"ASK", redis.Error("ASK 9710 127.0.0.1:7102"), true, RetryAsk},
		{"TRYAGAIN, classified", classify(redis.Error("TRYAGAIN Multiple keys request during rehashing of slot")), true, RetryTryAgain},
		{"CLUSTERDOWN, classified", classify(redis.Error("CLUSTERDOWN The cluster is down")), true, RetryClusterDown},
		{"READONLY, classified", classify(redis.Error("READONLY You can't write against a read only replica.")), true, RetryNodeDown},
		{"not sent", errUnsent, true, RetryNodeDown},
		{"a script's own error", redis.Error("ERR something"), false, 0},
		{"outcome unknown", fmt.Errorf("%w: %w: EOF", engine.ErrUnavailable, engine.ErrOutcomeUnknown), false, 0},
		{"not durable", fmt.Errorf("%w: WAIT", engine.ErrNotDurable), false, 0},
		{"caller's deadline", fmt.Errorf("%w: %w", engine.ErrUnavailable, context.DeadlineExceeded), false, 0},
		{"other", errors.New("boom"), false, 0},
	} {
		if got, ok := retryable(tc.err); ok != tc.ok || got != tc.want {
			t.Errorf("%s: retryable(%v) = %v, %v; want %v, %v", tc.name, tc.err, got, ok, tc.want, tc.ok)
		}
	}
}

func TestRetryNames(t *testing.T) {
	seen := map[string]bool{}
	for i, r := range Retries() {
		if int(r) != i || seen[r.String()] || r.String() == "unknown" {
			t.Errorf("Retries()[%d] = %d %q", i, r, r)
		}
		seen[r.String()] = true
	}
	if Retry(-1).String() != "unknown" || Retry(len(Retries())).String() != "unknown" {
		t.Error("an out-of-range Retry has a name")
	}
}

func TestNodeAddr(t *testing.T) {
	for _, tc := range []struct{ base, node, want string }{
		{"127.0.0.1:7000", "10.0.0.2:7001", "10.0.0.2:7001"},
		{"redis://u:p@10.0.0.1:7000", "10.0.0.2:7001", "redis://u:p@10.0.0.2:7001"},
		{"rediss://:p@h:1?foo=bar", "10.0.0.2:7001", "rediss://:p@10.0.0.2:7001?foo=bar"},
		{"", "10.0.0.2:7001", "10.0.0.2:7001"},
	} {
		if got := nodeAddr(tc.base, tc.node); got != tc.want {
			t.Errorf("nodeAddr(%q, %q) = %q, want %q", tc.base, tc.node, got, tc.want)
		}
	}
}

func TestSlotOf(t *testing.T) {
	k := engine.KeysFor("iphone15")
	for _, args := range [][]any{{k.Stock}, {[]byte(k.Stock)}, {k.Meta, 1, "x"}} {
		// 9710: the slot of the issue's `MOVED 9710` for iphone15.
		if got := slotOf(args); got != 9710 {
			t.Errorf("slotOf(%v) = %d", args, got)
		}
	}
	if slotOf([]any{k.Stock}) != slotOf([]any{k.Orders}) {
		t.Error("a product's keys are in different slots")
	}
}
