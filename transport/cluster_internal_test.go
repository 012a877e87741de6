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
		want int
	}{
		{"nil", nil, noRetry},
		{"MOVED", redis.Error("MOVED 9710 127.0.0.1:7102"), retryMoved},
		{"ASK", redis.Error("ASK 9710 127.0.0.1:7102"), retryAsk},
		{"TRYAGAIN, classified", classify(redis.Error("TRYAGAIN Multiple keys request during rehashing of slot")), retryLater},
		{"CLUSTERDOWN, classified", classify(redis.Error("CLUSTERDOWN The cluster is down")), retryLater},
		{"not sent", errUnsent, retryLater},
		{"a script's own error", redis.Error("ERR something"), noRetry},
		{"outcome unknown", fmt.Errorf("%w: %w: EOF", engine.ErrUnavailable, engine.ErrOutcomeUnknown), noRetry},
		{"not durable", fmt.Errorf("%w: WAIT", engine.ErrNotDurable), noRetry},
		{"caller's deadline", fmt.Errorf("%w: %w", engine.ErrUnavailable, context.DeadlineExceeded), noRetry},
		{"other", errors.New("boom"), noRetry},
	} {
		if got := retryable(tc.err); got != tc.want {
			t.Errorf("%s: retryable(%v) = %d, want %d", tc.name, tc.err, got, tc.want)
		}
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
