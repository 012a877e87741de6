package engine_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/redistest"
)

// newBatched returns an Engine whose Redis is a Batcher on the shared test
// Redis, with a sold-out cache of ttl (0 for none).
func newBatched(t testing.TB, cfg engine.BatcherConfig, opts ...engine.Option) (*engine.Engine, *engine.Batcher, string) {
	t.Helper()
	pool, addr := newPool(t)
	b := engine.NewBatcher(pool, cfg)
	t.Cleanup(func() { b.Close() })
	return engine.New(b, opts...), b, addr
}

// TestBatcherConcurrentPurchases: many purchases through the batches, sync
// and async, sell exactly the stock and balance the books.
func TestBatcherConcurrentPurchases(t *testing.T) {
	t.Parallel()
	for _, cfg := range []engine.BatcherConfig{{}, {Conns: 1, MaxBatch: 3}, {Conns: 4, MaxBatch: 1}} {
		t.Run(fmt.Sprintf("conns=%d,max=%d", cfg.Conns, cfg.MaxBatch), func(t *testing.T) {
			t.Parallel()
			eng, _, _ := newBatched(t, cfg)
			ctx := testContext(t)
			id := newProduct(t, eng, 100, engine.WithPerUserLimit(0))
			var mu sync.Mutex
			counts := map[engine.Status]int{}
			var wg sync.WaitGroup
			for i := range 1000 {
				wg.Add(1)
				req := engine.Request{ProductID: id, UserID: fmt.Sprint("u", i)}
				record := func(r engine.Result) {
					mu.Lock()
					counts[r.Status]++
					mu.Unlock()
					wg.Done()
				}
				if i%2 == 0 {
					go func() { record(eng.Purchase(ctx, req)) }()
				} else {
					eng.PurchaseAsync(req, time.Now().Add(testTimeout), record)
				}
			}
			wg.Wait()
			if counts[engine.StatusSuccess] != 100 || counts[engine.StatusSoldOut] != 900 {
				t.Fatalf("results %v, want 100 SUCCESS and 900 SOLD_OUT", counts)
			}
			if a, err := eng.Verify(ctx, id); err != nil || !a.OK() {
				t.Fatalf("verify: %+v %v", a, err)
			}
		})
	}
}

// TestBatcherErrorReplyFailsOnlyItsCall: a script error in a batch fails
// its own call, not its neighbours.
func TestBatcherErrorReplyFailsOnlyItsCall(t *testing.T) {
	t.Parallel()
	eng, _, addr := newBatched(t, engine.BatcherConfig{Conns: 1})
	ctx := testContext(t)
	good := newProduct(t, eng, 1000, engine.WithPerUserLimit(0))
	bad := newProduct(t, eng, 10)
	c := redistest.Conn(t, addr)
	rawDo(t, c, "SET", engine.KeysFor(bad).Stock, "not-a-number")
	var wg sync.WaitGroup
	results := make([]engine.Result, 200)
	for i := range results {
		wg.Add(1)
		id := good
		if i%10 == 0 {
			id = bad
		}
		eng.PurchaseAsync(engine.Request{ProductID: id, UserID: fmt.Sprint("u", i)}, time.Now().Add(testTimeout),
			func(r engine.Result) { results[i] = r; wg.Done() })
	}
	wg.Wait()
	for i, r := range results {
		want := engine.StatusSuccess
		if i%10 == 0 {
			want = engine.StatusError
		}
		if r.Status != want {
			t.Errorf("request %d: %+v, want %v", i, r, want)
		}
	}
	if a, err := eng.Verify(ctx, good); err != nil || !a.OK() || a.Orders != 180 {
		t.Fatalf("verify: %+v %v", a, err)
	}
}

// TestBatcherNoScript: SCRIPT FLUSH between batches is invisible.
func TestBatcherNoScript(t *testing.T) {
	if !redistest.Real(t) {
		t.Skip("needs a real Redis's script cache")
	}
	eng, _, addr := newBatched(t, engine.BatcherConfig{})
	ctx := testContext(t)
	id := newProduct(t, eng, 50, engine.WithPerUserLimit(0))
	c := redistest.Conn(t, addr)
	for round := range 5 {
		rawDo(t, c, "SCRIPT", "FLUSH")
		var wg sync.WaitGroup
		for i := range 10 {
			wg.Add(1)
			eng.PurchaseAsync(engine.Request{ProductID: id, UserID: fmt.Sprint(round, "-", i)}, time.Now().Add(testTimeout),
				func(r engine.Result) {
					if r.Status != engine.StatusSuccess {
						t.Errorf("after SCRIPT FLUSH: %+v", r)
					}
					wg.Done()
				})
		}
		wg.Wait()
	}
	if a, err := eng.Verify(ctx, id); err != nil || !a.OK() || a.Orders != 50 {
		t.Fatalf("verify: %+v %v", a, err)
	}
}

// TestBatcherRedisDown: with no Redis, calls fail fast as "did not run".
func TestBatcherRedisDown(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	pool := engine.NewPool(engine.PoolConfig{Addr: addr, Timeout: 500 * time.Millisecond, DialTimeout: 200 * time.Millisecond})
	defer pool.Close()
	b := engine.NewBatcher(pool, engine.BatcherConfig{})
	defer b.Close()
	eng := engine.New(b)
	done := make(chan engine.Result, 1)
	eng.PurchaseAsync(engine.Request{ProductID: "p", UserID: "u"}, time.Now().Add(2*time.Second), func(r engine.Result) { done <- r })
	select {
	case r := <-done:
		if r.Code != engine.CodeUnavailable || !errors.Is(r.Err, engine.ErrUnavailable) || errors.Is(r.Err, engine.ErrOutcomeUnknown) {
			t.Fatalf("result %+v (%v), want UNAVAILABLE that did not run", r, r.Err)
		}
	case <-time.After(testTimeout):
		t.Fatal("no answer with Redis down")
	}
	r := eng.Purchase(testContext(t), engine.Request{ProductID: "p", UserID: "u"})
	if r.Code != engine.CodeUnavailable {
		t.Fatalf("sync purchase with Redis down: %+v", r)
	}
}

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
			if err := admin.Init(ctx, id, 1); err != nil {
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
			if r := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "first"}); r.Status != engine.StatusSuccess {
				t.Fatalf("first purchase: %+v", r)
			}
			if r := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "second"}); r.Status != engine.StatusSoldOut {
				t.Fatalf("second purchase: %+v", r)
			}
			before := counter.count()
			for i := range 100 {
				if r := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: fmt.Sprint("late", i)}); r.Status != engine.StatusSoldOut {
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
				if r.Status == engine.StatusSuccess {
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
	if r := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "b"}); r.Status != engine.StatusSoldOut {
		t.Fatalf("after the last unit: %+v", r)
	}
	if _, _, err := admin.Restock(ctx, id, 1); err != nil { // nobody listens on the control channel
		t.Fatal(err)
	}
	advance(ttl - time.Millisecond)
	if r := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "c"}); r.Status != engine.StatusSoldOut {
		t.Fatalf("within the TTL: %+v, want the cached SOLD_OUT", r)
	}
	advance(time.Millisecond)
	if r := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "d"}); r.Status != engine.StatusSuccess {
		t.Fatalf("at the TTL: %+v, want SUCCESS from Redis", r)
	}
}
