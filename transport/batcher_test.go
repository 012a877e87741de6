package transport_test

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/transport"
	"github.com/flashsale/flashsale/wire"
)

// newBatched returns an Engine whose Redis is a Batcher on the shared test
// Redis, with a sold-out cache of ttl (0 for none).
func newBatched(t testing.TB, cfg transport.BatcherConfig, opts ...engine.Option) (*engine.Engine, *transport.Batcher, string) {
	t.Helper()
	pool, addr := newPool(t)
	b := transport.NewBatcher(pool, cfg)
	t.Cleanup(func() { b.Close() })
	return engine.New(b, opts...), b, addr
}

// TestBatcherConcurrentPurchases: many purchases through the batches, sync
// and async, sell exactly the stock and balance the books.
func TestBatcherConcurrentPurchases(t *testing.T) {
	t.Parallel()
	for _, cfg := range []transport.BatcherConfig{{}, {Conns: 1, MaxBatch: 3}, {Conns: 4, MaxBatch: 1}} {
		t.Run(fmt.Sprintf("conns=%d,max=%d", cfg.Conns, cfg.MaxBatch), func(t *testing.T) {
			t.Parallel()
			eng, _, _ := newBatched(t, cfg)
			ctx := testContext(t)
			id := newProduct(t, eng, 100, engine.WithPerUserLimit(0))
			var mu sync.Mutex
			counts := map[wire.Status]int{}
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
			if counts[wire.StatusSuccess] != 100 || counts[wire.StatusSoldOut] != 900 {
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
	eng, _, addr := newBatched(t, transport.BatcherConfig{Conns: 1})
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
		want := wire.StatusSuccess
		if i%10 == 0 {
			want = wire.StatusError
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
	redistest.SkipUnlessReal(t, "needs a real Redis's script cache")
	eng, _, addr := newBatched(t, transport.BatcherConfig{})
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
					if r.Status != wire.StatusSuccess {
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

// TestBatcherLoneRefused: a lone purchase the script's lone form cannot
// serve (a room, reservations due) is refused by the script and goes
// again as the merged call of one: its customer gets the answer, not an
// error, sync and async, and the books balance.
func TestBatcherLoneRefused(t *testing.T) {
	t.Parallel()
	eng, _, _ := newBatched(t, transport.BatcherConfig{})
	ctx := testContext(t)
	roomed := newProduct(t, eng, 5)
	if _, err := eng.SetRoom(ctx, roomed, engine.Room{Rate: 10}); err != nil {
		t.Fatal(err)
	}
	held := newProduct(t, eng, 1, engine.WithHold(30*time.Millisecond))
	if r := eng.Purchase(ctx, engine.Request{ProductID: held, UserID: "first"}); r.Status != wire.StatusReserved {
		t.Fatalf("reservation = %+v", r)
	}
	time.Sleep(60 * time.Millisecond) // it falls due: the next purchase releases it
	if r := eng.Purchase(ctx, engine.Request{ProductID: roomed, UserID: "u"}); r.Code != engine.CodeNotAdmitted {
		t.Errorf("purchase of a product with a room = %+v, want NOT_ADMITTED", r)
	}
	done := make(chan engine.Result, 1)
	eng.PurchaseAsync(engine.Request{ProductID: held, UserID: "second"}, time.Now().Add(testTimeout), func(r engine.Result) { done <- r })
	if r := <-done; r.Status != wire.StatusReserved {
		t.Errorf("purchase after the reservation fell due = %+v, want RESERVED", r)
	}
	for _, id := range []string{roomed, held} {
		if a, err := eng.Verify(ctx, id); err != nil || !a.OK() {
			t.Errorf("verify %s: %+v %v", id, a, err)
		}
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
	pool := transport.NewPool(transport.PoolConfig{Addr: addr, Timeout: 500 * time.Millisecond, DialTimeout: 200 * time.Millisecond})
	defer pool.Close()
	b := transport.NewBatcher(pool, transport.BatcherConfig{})
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
