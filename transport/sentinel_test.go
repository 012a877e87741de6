package transport_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/transport"
	"github.com/flashsale/flashsale/wire"
)

// TestSentinelFollowsFailover: with real sentinels, the pool finds the
// primary through them, and a manual failover (SENTINEL FAILOVER) moves
// the pool and every batcher lane to the new primary while purchases go
// on; the books balance there.
func TestSentinelFollowsFailover(t *testing.T) {
	ss := redistest.StartSentinels(t, redistest.SentinelConfig{})
	ctx := testContext(t)
	pool := transport.NewPool(transport.PoolConfig{
		Timeout:  time.Second,
		Sentinel: transport.SentinelConfig{Addrs: ss.Addrs(), Master: redistest.SentinelMaster},
		Logger:   zerolog.New(zerolog.NewTestWriter(t)),
	})
	t.Cleanup(func() { pool.Close() })
	if err := pool.Load(ctx, engine.Scripts()...); err != nil {
		t.Fatal(err)
	}
	b := transport.NewBatcher(pool, transport.BatcherConfig{Conns: 3})
	t.Cleanup(func() { b.Close() })
	eng := engine.New(b)
	if got := primaryOf(t, pool); got != ss.Nodes[0].Addr {
		t.Fatalf("the pool reached %s, want the primary %s", got, ss.Nodes[0].Addr)
	}
	id := newProduct(t, eng, 1_000_000, engine.WithPerUserLimit(0))

	var sold atomic.Int64
	var lastSale atomic.Int64 // Unix ns
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				cctx, cancel := context.WithTimeout(ctx, time.Second)
				r := eng.Purchase(cctx, engine.Request{ProductID: id, UserID: fmt.Sprintf("w%d-%d", w, i)})
				cancel()
				if r.Status == wire.StatusSuccess {
					sold.Add(1)
					lastSale.Store(time.Now().UnixNano())
				} else {
					time.Sleep(10 * time.Millisecond)
				}
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	if sold.Load() == 0 {
		t.Fatal("no purchase succeeded before the failover")
	}
	start := time.Now()
	np, err := ss.Failover(ctx)
	if err != nil {
		t.Fatalf("failover: %v", err)
	}
	t.Logf("the sentinels named %s the primary %s after SENTINEL FAILOVER", np.Addr, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	for deadline := time.Now().Add(5 * time.Second); primaryOf(t, pool) != np.Addr; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the pool still reaches %s 5s after the failover, want %s", primaryOf(t, pool), np.Addr)
		}
	}
	moved := time.Now()
	t.Logf("the pool moved to the new primary %s after the sentinels named it", moved.Sub(start).Round(time.Millisecond))
	for time.Since(moved) < 10*time.Second && !time.Unix(0, lastSale.Load()).After(moved.Add(200*time.Millisecond)) {
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if !time.Unix(0, lastSale.Load()).After(moved) {
		t.Fatalf("no purchase succeeded within 10s of the move")
	}
	t.Logf("purchases succeed again: %d sold in all", sold.Load())
	// Every new purchase succeeds, on the new primary.
	for i := range 50 {
		if r := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: fmt.Sprint("after-", i)}); r.Status != wire.StatusSuccess {
			t.Fatalf("purchase %d after the failover: %+v", i, r)
		}
	}
	if a, err := eng.Verify(ctx, id); err != nil || !a.OK() {
		t.Fatalf("verify on the new primary: %+v %v", a, err)
	}
}

// primaryOf is the address of the node the pool's connections reach.
func primaryOf(t *testing.T, pool *transport.Pool) string {
	t.Helper()
	cpu, err := pool.CPU(testContext(t))
	if err != nil || len(cpu) != 1 {
		t.Fatalf("CPU: %v %v", cpu, err)
	}
	return cpu[0].Addr
}

// TestSentinelNoneAnswers: when no sentinel answers, a call fails as
// unavailable, naming the master, in bounded time.
func TestSentinelNoneAnswers(t *testing.T) {
	t.Parallel()
	pool := transport.NewPool(transport.PoolConfig{
		Timeout:  time.Second,
		Sentinel: transport.SentinelConfig{Addrs: []string{"127.0.0.1:1", "127.0.0.1:2"}, Master: "nosuch"},
	})
	defer pool.Close()
	start := time.Now()
	err := pool.Ping(testContext(t))
	if !errors.Is(err, engine.ErrUnavailable) || !errors.Is(err, transport.ErrNoPrimary) || !strings.Contains(err.Error(), "nosuch") {
		t.Fatalf("Ping with no sentinel up: %v, want unavailable naming the master", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("took %s", took)
	}
}
