package transport_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/rs/zerolog"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
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

// fakeSentinel is a sentinel on loopback that names the primary the test
// sets, in the config epoch it sets.
type fakeSentinel struct {
	named atomic.Pointer[[2]string] // host, port
	epoch atomic.Int64
}

func (f *fakeSentinel) name(addr string, epoch int64) {
	host, port, _ := net.SplitHostPort(addr)
	f.named.Store(&[2]string{host, port})
	f.epoch.Store(epoch)
}

// reply answers what a sentinel client sends.
func (f *fakeSentinel) reply(args []string) string {
	bulk := func(ss ...string) string {
		out := fmt.Sprintf("*%d\r\n", len(ss))
		for _, s := range ss {
			out += fmt.Sprintf("$%d\r\n%s\r\n", len(s), s)
		}
		return out
	}
	n := f.named.Load()
	switch strings.ToUpper(strings.Join(args[:min(2, len(args))], " ")) {
	case "SENTINEL GET-MASTER-ADDR-BY-NAME":
		return bulk(n[0], n[1])
	case "SENTINEL MASTER":
		return bulk("name", args[2], "ip", n[0], "port", n[1], "config-epoch", strconv.FormatInt(f.epoch.Load(), 10))
	case "SUBSCRIBE " + strings.ToUpper(args[min(1, len(args)-1)]):
		return "*3\r\n$9\r\nsubscribe\r\n" + fmt.Sprintf("$%d\r\n%s\r\n", len(args[1]), args[1]) + ":1\r\n"
	}
	return "+PONG\r\n"
}

// TestSentinelReplicaRefusedAsked: a node that has become a replica
// behind the sentinels' back refuses every purchase as not run (READONLY,
// never "outcome unknown"), new connections to it are refused after ROLE,
// and once the sentinels name the new primary every purchase succeeds
// there.
func TestSentinelReplicaRefusedAsked(t *testing.T) {
	a := redistest.StartTestServer(t, "--repl-diskless-sync-delay", "0")
	b := redistest.StartTestServer(t, "--repl-diskless-sync-delay", "0", "--replicaof", "127.0.0.1", a.Port())
	fs := &fakeSentinel{}
	fs.name(a.Addr, 0)
	sentinelAddr := saletest.Loopback(t, func(nc net.Conn) {
		answerWith(nc, func(args []string) (string, bool) { return fs.reply(args), true })
	})
	ctx := testContext(t)
	pool := transport.NewPool(transport.PoolConfig{
		Timeout:  time.Second,
		Sentinel: transport.SentinelConfig{Addrs: []string{sentinelAddr}, Master: "m"},
	})
	t.Cleanup(func() { pool.Close() })
	if err := pool.Load(ctx, engine.Scripts()...); err != nil {
		t.Fatal(err)
	}
	bat := transport.NewBatcher(pool, transport.BatcherConfig{})
	t.Cleanup(func() { bat.Close() })
	eng := engine.New(bat)
	id := newProduct(t, eng, 1000, engine.WithPerUserLimit(0))
	buy := func(user string) engine.Result {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		return eng.Purchase(cctx, engine.Request{ProductID: id, UserID: user})
	}
	if r := buy("before"); r.Status != wire.StatusSuccess {
		t.Fatalf("purchase on the primary: %+v", r)
	}
	// The sale reaches b; then b is promoted and a follows it, while the
	// sentinel still names a.
	rb := redistest.Conn(t, b.Addr)
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		if n, _ := redis.Int(rb.Do("XLEN", engine.KeysFor(id).Orders)); n > 0 {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("the sale did not reach the replica")
		}
	}
	rawDo(t, rb, "REPLICAOF", "NO", "ONE")
	rawDo(t, redistest.Conn(t, a.Addr), "REPLICAOF", "127.0.0.1", b.Port())
	for i := range 5 {
		r := buy(fmt.Sprint("between-", i))
		if r.Status != wire.StatusError || r.Code != engine.CodeUnavailable || errors.Is(r.Err, engine.ErrOutcomeUnknown) {
			t.Fatalf("purchase on the demoted node: %+v, want UNAVAILABLE, not run", r)
		}
	}
	fs.name(b.Addr, 1)
	var r engine.Result
	for start := time.Now(); time.Since(start) < 5*time.Second; time.Sleep(20 * time.Millisecond) {
		if r = buy("after"); r.Status == wire.StatusSuccess {
			break
		}
	}
	if r.Status != wire.StatusSuccess {
		t.Fatalf("5s after the sentinel named the new primary: %+v", r)
	}
	if got := primaryOf(t, pool); got != b.Addr {
		t.Errorf("the pool reaches %s, want %s", got, b.Addr)
	}
	if a, err := eng.Verify(ctx, id); err != nil || !a.OK() || a.Sold != 2 {
		t.Fatalf("verify on the new primary: %+v %v, want 2 sold", a, err)
	}
}
