package engine_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// testTimeout bounds every Redis or network operation of a test. It only
// keeps a bug from hanging the run; nothing asserts on speed.
const testTimeout = 30 * time.Second

// testContext returns a context that ends with the test or after
// testTimeout.
func testContext(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// newPool returns a Pool on the shared test Redis with every script loaded.
func newPool(t testing.TB) (*engine.Pool, string) {
	t.Helper()
	addr := redistest.Addr(t)
	pool := engine.NewPool(engine.PoolConfig{Addr: addr, Timeout: 10 * time.Second})
	t.Cleanup(func() { pool.Close() })
	if err := pool.Load(testContext(t), engine.Scripts()...); err != nil {
		t.Fatalf("Load: %v", err)
	}
	return pool, addr
}

// newEngine returns an Engine on the shared test Redis and the Redis
// address, for raw connections.
func newEngine(t testing.TB) (*engine.Engine, string) {
	t.Helper()
	pool, addr := newPool(t)
	return engine.New(pool), addr
}

// newProduct initialises a fresh product with units in stock.
func newProduct(t testing.TB, eng *engine.Engine, units int64, opts ...engine.InitOption) string {
	t.Helper()
	id := redistest.Product(t)
	if err := eng.Init(testContext(t), id, units, opts...); err != nil {
		t.Fatalf("Init(%q, %d): %v", id, units, err)
	}
	return id
}

// rawDo runs one command on a raw connection and fails the test on error.
func rawDo(t testing.TB, c redis.Conn, cmd string, args ...any) any {
	t.Helper()
	v, err := c.Do(cmd, args...)
	if err != nil {
		t.Fatalf("%s %v: %v", cmd, args, err)
	}
	return v
}

// purchaseConcurrently runs n purchases of product id at once, the i-th by
// user(i), and returns their results in order.
func purchaseConcurrently(t testing.TB, eng *engine.Engine, id string, n int, user func(i int) string) []engine.Result {
	t.Helper()
	ctx := testContext(t)
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

// checkSoldOut checks a product whose units were all sold: the remaining
// stocks the sales reported are exactly 0..units-1, stock is "0", and the
// buyers list holds exactly the users told SUCCESS.
func checkSoldOut(t testing.TB, addr, id string, units int, remaining []int64, winners map[string]bool) {
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
