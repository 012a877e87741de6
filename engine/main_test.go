package engine_test

import (
	"context"
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
