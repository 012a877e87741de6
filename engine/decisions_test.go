package engine_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/wire"
)

// TestReplayAfterRelease: a retry with the request_id of an order that
// admin release undid answers ERROR ORDER_RELEASED naming the order,
// changes nothing and takes no stock; a new request_id buys again.
func TestReplayAfterRelease(t *testing.T) {
	t.Parallel()
	eng, addr := newEngine(t)
	ctx := testContext(t)
	c := redistest.Conn(t, addr)
	id := newProduct(t, eng, 3)
	req := engine.Request{ProductID: id, UserID: "alice", RequestID: "order-1"}
	first := eng.Purchase(ctx, req)
	if first.Status != wire.StatusSuccess {
		t.Fatalf("purchase = %+v", first)
	}
	if again := eng.Purchase(ctx, req); again.Status != wire.StatusSuccess || again.OrderID != first.OrderID {
		t.Fatalf("replay before the release = %+v, want the original SUCCESS", again)
	}
	if _, err := eng.Release(ctx, id, first.OrderID); err != nil {
		t.Fatal(err)
	}
	before := readBooks(t, c, id)
	replay := eng.Purchase(ctx, req)
	if replay.Status != wire.StatusError || replay.Code != engine.CodeOrderReleased ||
		!errors.Is(replay.Err, engine.ErrOrderReleased) || !strings.Contains(replay.Message, first.OrderID) {
		t.Fatalf("replay after the release = %+v, want ERROR %s naming order %s", replay, engine.CodeOrderReleased, first.OrderID)
	}
	expectUnchanged(t, c, id, before, "a replay after the release")
	if r := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "alice", RequestID: "order-2"}); r.Status != wire.StatusSuccess {
		t.Fatalf("a new request after the release = %+v, want SUCCESS", r)
	}
	expectBalanced(t, eng, id, "after buying again")
}

// TestRateLimitCounts: the per-customer limiter counts every attempt it
// admits, whatever the sale answers; an attempt it refuses writes nothing
// (the limiter's key and the product are unchanged); a replay is answered
// before the limiter and is not refused.
func TestRateLimitCounts(t *testing.T) {
	t.Parallel()
	pool, addr := newPool(t)
	eng := engine.New(pool, engine.WithUserRate(engine.Rate{Interval: time.Hour, Burst: 1}))
	c := redistest.Conn(t, addr)
	ctx := testContext(t)
	future := time.Now().Add(time.Hour)
	tests := []struct {
		name  string
		units int64
		opts  []engine.InitOption
		first wire.Status
	}{
		{"sale", 10, nil, wire.StatusSuccess},
		{"sold out", 0, nil, wire.StatusSoldOut},
		{"not started", 10, []engine.InitOption{engine.WithWindow(future, time.Time{})}, wire.StatusNotStarted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := newProduct(t, eng, tt.units, tt.opts...)
			req := engine.Request{ProductID: id, UserID: "bob", RequestID: "r-1"}
			if r := eng.Purchase(ctx, req); r.Status != tt.first {
				t.Fatalf("first attempt = %+v, want %v", r, tt.first)
			}
			rateKey := engine.KeysFor(id).Rate("bob")
			tat, err := redis.String(c.Do("GET", rateKey))
			if err != nil {
				t.Fatalf("the admitted attempt was not counted: GET %s: %v", rateKey, err)
			}
			books := readBooks(t, c, id)
			for range 3 {
				if r := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "bob"}); r.Status != wire.StatusRateLimited {
					t.Fatalf("attempt past the burst = %+v, want RATE_LIMITED", r)
				}
			}
			if after, _ := redis.String(c.Do("GET", rateKey)); after != tat {
				t.Errorf("refused attempts moved the limiter from %s to %s", tat, after)
			}
			expectUnchanged(t, c, id, books, "refused attempts")
			if tt.first == wire.StatusSuccess {
				if r := eng.Purchase(ctx, req); r.Status != wire.StatusSuccess {
					t.Errorf("replay with the burst spent = %+v, want the original SUCCESS", r)
				}
			}
		})
	}
}
