package saletest

import (
	"bytes"
	"context"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/transport"
)

// Timeout bounds every Redis or network operation of a test. It only
// keeps a bug from hanging the run; nothing asserts on speed.
const Timeout = 30 * time.Second

// Context returns a context that ends with the test or after
// Timeout.
func Context(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	t.Cleanup(cancel)
	return ctx
}

// Pool returns a transport.Pool on the shared test Redis with every script loaded.
func Pool(t testing.TB) (*transport.Pool, string) {
	t.Helper()
	addr := redistest.Addr(t)
	pool := transport.NewPool(transport.PoolConfig{Addr: addr, Timeout: 10 * time.Second})
	t.Cleanup(func() { pool.Close() })
	if err := pool.Load(Context(t), engine.Scripts()...); err != nil {
		t.Fatalf("Load: %v", err)
	}
	return pool, addr
}

// Engine returns an Engine on the shared test Redis and the Redis
// address, for raw connections.
func Engine(t testing.TB) (*engine.Engine, string) {
	t.Helper()
	pool, addr := Pool(t)
	return engine.New(pool), addr
}

// Product initialises a fresh product with units in stock.
func Product(t testing.TB, eng *engine.Engine, units int64, opts ...engine.InitOption) string {
	t.Helper()
	id := redistest.Product(t)
	if err := eng.Init(Context(t), id, units, opts...); err != nil {
		t.Fatalf("Init(%q, %d): %v", id, units, err)
	}
	return id
}

// Do runs one command on a raw connection and fails the test on error.
func Do(t testing.TB, c redis.Conn, cmd string, args ...any) any {
	t.Helper()
	v, err := c.Do(cmd, args...)
	if err != nil {
		t.Fatalf("%s %v: %v", cmd, args, err)
	}
	return v
}

// PurchaseConcurrently runs n purchases of product id at once, the i-th by
// user(i), and returns their results in order.
func PurchaseConcurrently(t testing.TB, eng *engine.Engine, id string, n int, user func(i int) string) []engine.Result {
	t.Helper()
	ctx := Context(t)
	results := make([]engine.Result, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			results[i] = eng.Purchase(ctx, engine.Request{ProductID: id, UserID: user(i)})
		})
	}
	close(start)
	wg.Wait()
	return results
}

// CheckSoldOut checks a product whose units were all sold: the remaining
// stocks the sales reported are exactly 0..units-1, stock is "0", and the
// buyers list holds exactly the users told SUCCESS.
func CheckSoldOut(t testing.TB, addr, id string, units int, remaining []int64, winners map[string]bool) {
	t.Helper()
	if len(remaining) != units {
		t.Fatalf("%d SUCCESS, want %d", len(remaining), units)
	}
	slices.Sort(remaining)
	for i, r := range remaining {
		if r != int64(i) {
			t.Fatalf("remaining values of the sales = %v, want exactly 0..%d", remaining, units-1)
		}
	}
	c := redistest.Conn(t, addr)
	k := engine.KeysFor(id)
	if stock, err := redis.String(c.Do("GET", k.Stock)); err != nil || stock != "0" {
		t.Errorf("stock = %q, %v; want \"0\"", stock, err)
	}
	buyers, err := redis.Strings(c.Do("LRANGE", k.Buyers, 0, -1))
	if err != nil {
		t.Fatal(err)
	}
	if len(buyers) != units {
		t.Errorf("LLEN buyers = %d, want %d", len(buyers), units)
	}
	seen := make(map[string]bool)
	for _, b := range buyers {
		if !winners[b] || seen[b] {
			t.Errorf("buyer %q was not told SUCCESS, or is listed twice", b)
		}
		seen[b] = true
	}
}

// BenchStock is enough units that a success benchmark never sells out.
// Benchmark products have no per-user limit, so one user buys repeatedly.
const BenchStock = 1 << 40

// ClosedAddr returns a loopback address nothing listens on.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// SyncBuffer is a bytes.Buffer that several goroutines may write (a log
// sink) while a test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what was written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
