package engine_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/wire"
)

// countingRedis counts the scripts that reach Redis.
type countingRedis struct {
	engine.Redis
	mu    sync.Mutex
	evals int
}

func (c *countingRedis) Eval(ctx context.Context, s *engine.Script, keysAndArgs ...any) (any, error) {
	c.mu.Lock()
	c.evals++
	c.mu.Unlock()
	return c.Redis.Eval(ctx, s, keysAndArgs...)
}

func (c *countingRedis) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.evals
}

// TestSoldOutFastPath: once sold out, attempts are answered without Redis;
// an admin change brings them back at once through the control channel,
// and without it the cached answer lasts at most the TTL.
func TestSoldOutFastPath(t *testing.T) {
	t.Parallel()
	pool, addr := newPool(t)
	admin := engine.New(pool)
	ctx := testContext(t)
	id := newProduct(t, admin, 1)

	for _, watch := range []bool{true, false} {
		t.Run(fmt.Sprint("control channel ", watch), func(t *testing.T) {
			if err := admin.Init(ctx, id, 1, engine.WithForce()); err != nil {
				t.Fatal(err)
			}
			counter := &countingRedis{Redis: pool}
			ttl := 500 * time.Millisecond
			if watch {
				ttl = time.Hour // only the control channel can clear it
			}
			eng := engine.New(counter, engine.WithSoldOutCache(ttl))
			if watch {
				wctx, cancel := context.WithCancel(ctx)
				defer cancel()
				go eng.WatchControl(wctx)
				waitSubscribed(t, addr)
			}
			if r := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "first"}); r.Status != wire.StatusSuccess {
				t.Fatalf("first purchase: %+v", r)
			}
			if r := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "second"}); r.Status != wire.StatusSoldOut {
				t.Fatalf("second purchase: %+v", r)
			}
			before := counter.count()
			for i := range 100 {
				if r := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: fmt.Sprint("late", i)}); r.Status != wire.StatusSoldOut {
					t.Fatalf("late purchase: %+v", r)
				}
			}
			if n := counter.count() - before; n != 0 {
				t.Errorf("%d sold-out attempts reached Redis, want 0", n)
			}
			// A retry with a request_id still asks Redis.
			eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "retry", RequestID: "r1"})
			if counter.count() == before {
				t.Error("a request_id retry was answered from the cache")
			}
			if _, _, err := admin.Restock(ctx, id, 1); err != nil {
				t.Fatal(err)
			}
			restocked := time.Now()
			deadline := restocked.Add(10 * time.Second)
			for {
				r := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "after"})
				if r.Status == wire.StatusSuccess {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("still %v 10s after the restock", r.Status)
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}

// waitSubscribed waits until someone subscribes to the control channel.
func waitSubscribed(t *testing.T, addr string) {
	t.Helper()
	c := redistest.Conn(t, addr)
	deadline := time.Now().Add(testTimeout)
	for time.Now().Before(deadline) {
		v, err := redis.Values(c.Do("PUBSUB", "NUMSUB", engine.ControlChannel))
		if err == nil && len(v) == 2 {
			if n, _ := redis.Int(v[1], nil); n > 0 {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("nobody subscribed to the control channel")
}

// TestSoldOutStaleBound: without the control channel, a cached SOLD_OUT
// outlives a restock by at most the TTL, on the engine's own clock.
func TestSoldOutStaleBound(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	admin := engine.New(pool)
	ctx := testContext(t)
	id := newProduct(t, admin, 1)
	var mu sync.Mutex
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	const ttl = time.Second
	eng := engine.New(pool, engine.WithSoldOutCache(ttl), engine.WithClock(clock))

	eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "a"})
	if r := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "b"}); r.Status != wire.StatusSoldOut {
		t.Fatalf("after the last unit: %+v", r)
	}
	if _, _, err := admin.Restock(ctx, id, 1); err != nil { // nobody listens on the control channel
		t.Fatal(err)
	}
	advance(ttl - time.Millisecond)
	if r := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "c"}); r.Status != wire.StatusSoldOut {
		t.Fatalf("within the TTL: %+v, want the cached SOLD_OUT", r)
	}
	advance(time.Millisecond)
	if r := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "d"}); r.Status != wire.StatusSuccess {
		t.Fatalf("at the TTL: %+v, want SUCCESS from Redis", r)
	}
}
