package engine_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/gomodule/redigo/redis"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/wire"
)

// Re-initialising a product in use is refused, with what it would clear,
// and changes nothing; WithForce wipes it and reports; Reset reports.
func TestInitProductInUse(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	ctx := testContext(t)
	plain := func(ctx context.Context, id string, units int64, opts ...engine.InitOption) error {
		return eng.Init(ctx, id, units, opts...)
	}
	sharded := func(ctx context.Context, id string, units int64, opts ...engine.InitOption) error {
		return eng.InitSharded(ctx, id, units, 3, opts...)
	}
	used := engine.Cleared{Orders: 2, Held: 2, Customers: 2, Entries: 2}
	tests := []struct {
		name         string
		first, again func(context.Context, string, int64, ...engine.InitOption) error
		sales        int
	}{
		{"plain fresh", plain, plain, 0},
		{"plain used", plain, plain, 2},
		{"sharded fresh", sharded, sharded, 0},
		{"sharded used", sharded, sharded, 2},
		{"plain used then sharded", plain, sharded, 2},
		{"sharded used then plain", sharded, plain, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := newProduct(t, eng, 10) // fresh: re-created as tt.first says
			if err := tt.first(ctx, id, 10); err != nil {
				t.Fatal(err)
			}
			for i := range tt.sales {
				if r := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: fmt.Sprint("u", i)}); r.Status != wire.StatusSuccess {
					t.Fatalf("purchase: %+v", r)
				}
			}
			before, err := eng.Status(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			var cleared engine.Cleared
			err = tt.again(ctx, id, 3, engine.WithCleared(&cleared))
			if tt.sales == 0 {
				if err != nil || cleared.Any() {
					t.Fatalf("init of a fresh product: %v, cleared %+v", err, cleared)
				}
				return
			}
			var inUse *engine.ProductInUseError
			if !errors.Is(err, engine.ErrProductInUse) || !errors.As(err, &inUse) || inUse.Cleared != used {
				t.Fatalf("re-init of a used product = %v, want ErrProductInUse with %+v", err, used)
			}
			if after, err := eng.Status(ctx, id); err != nil || !sameStatus(after, before) {
				t.Fatalf("after a refused init: %+v, %v; want unchanged %+v", after, err, before)
			}
			if err := tt.again(ctx, id, 3, engine.WithForce(), engine.WithCleared(&cleared)); err != nil || cleared != used {
				t.Fatalf("forced re-init = %v, cleared %+v; want %+v", err, cleared, used)
			}
			if st, err := eng.Status(ctx, id); err != nil || st.Initial != 3 || st.Remaining != 3 || st.Buyers != 0 {
				t.Fatalf("after a forced init: %+v, %v; want 3 units, no orders", st, err)
			}
		})
	}
}

func TestResetReportsCleared(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	ctx := testContext(t)
	tests := []struct {
		name   string
		shards int
	}{{"plain", 0}, {"sharded", 3}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := newProduct(t, eng, 10)
			if tt.shards > 0 {
				if err := eng.InitSharded(ctx, id, 10, tt.shards); err != nil {
					t.Fatal(err)
				}
			}
			for i := range 3 {
				if r := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: fmt.Sprint("u", i)}); r.Status != wire.StatusSuccess {
					t.Fatalf("purchase: %+v", r)
				}
			}
			st, err := eng.Status(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			initial, cleared, err := eng.Reset(ctx, id)
			want := engine.Cleared{Orders: st.Buyers, Held: st.Held, Customers: st.Customers, Entries: st.Orders}
			if err != nil || initial != 10 || cleared != want || cleared.Orders != 3 {
				t.Fatalf("Reset = %d, %+v, %v; want 10, %+v", initial, cleared, err, want)
			}
		})
	}
}

// hookRedis runs hook once, before the first call of the script named
// before.
type hookRedis struct {
	engine.Redis
	before string
	hook   func()
	once   sync.Once
}

func (h *hookRedis) Eval(ctx context.Context, s *engine.Script, keysAndArgs ...any) (any, error) {
	if s.Name() == h.before {
		h.once.Do(h.hook)
	}
	return h.Redis.Eval(ctx, s, keysAndArgs...)
}

// A sale that lands after init read the product (and found it unused),
// before it wipes it, is not cleared: the wipe that would clear it checks
// again in its own call, and init fails with ErrProductInUse. A sharded
// product loses the shards dropped before the sale's (they held no sale);
// a plain one about to be sharded stays as it was. WithForce then clears
// the sale, and says so.
func TestInitSaleDuringCheck(t *testing.T) {
	t.Parallel()
	pool, addr := newPool(t)
	rc := redistest.Conn(t, addr)
	ctx := testContext(t)
	seller := engine.New(pool)
	plain := func(e *engine.Engine, id string, opts ...engine.InitOption) error {
		return e.Init(ctx, id, 10, opts...)
	}
	sharded := func(k int) func(*engine.Engine, string, ...engine.InitOption) error {
		return func(e *engine.Engine, id string, opts ...engine.InitOption) error {
			return e.InitSharded(ctx, id, 10, k, opts...)
		}
	}
	user := "u0" // whose home is the second of 2 shards: the first is dropped before the sale's
	for i := 0; engine.HomeShard(user, 2) != 1; i++ {
		user = fmt.Sprint("u", i)
	}
	tests := []struct {
		name         string
		first, again func(*engine.Engine, string, ...engine.InitOption) error
		before       string // the script before which the sale lands
	}{
		{"sharded re-sharded", sharded(2), sharded(3), "shard_drop"},
		{"sharded made plain", sharded(2), plain, "shard_drop"},
		{"plain made sharded", plain, sharded(2), "shard_base"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := newProduct(t, seller, 10)
			if err := tt.first(seller, id); err != nil {
				t.Fatal(err)
			}
			shards, err := seller.Shards(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			var sold engine.Result
			h := &hookRedis{Redis: pool, before: tt.before, hook: func() {
				sold = seller.Purchase(ctx, engine.Request{ProductID: id, UserID: user})
			}}
			err = tt.again(engine.New(h), id)
			if sold.Status != wire.StatusSuccess {
				t.Fatalf("the sale during init: %+v", sold)
			}
			if !errors.Is(err, engine.ErrProductInUse) {
				t.Fatalf("init with a sale landing during its check = %v, want ErrProductInUse", err)
			}
			var entries int64
			for _, sid := range append(shards, id) {
				n, err := redis.Int64(rc.Do("XLEN", engine.KeysFor(sid).Orders))
				if err != nil {
					t.Fatal(err)
				}
				entries += n
			}
			if entries != 1 {
				t.Fatalf("%d orders-stream entries after the refused init, want the sale's", entries)
			}
			if shards == nil {
				if st, err := seller.Status(ctx, id); err != nil || st.Shards != 0 || st.Buyers != 1 {
					t.Errorf("plain product after the refused sharding: %+v, %v; want plain with its sale", st, err)
				}
				if n, _ := redis.Int(rc.Do("EXISTS", engine.KeysFor(id+"#0").Meta, engine.KeysFor(id+"#1").Meta)); n != 0 {
					t.Errorf("%d new shards left behind, want none", n)
				}
			}
			var cleared engine.Cleared
			if err := tt.again(seller, id, engine.WithForce(), engine.WithCleared(&cleared)); err != nil || cleared.Orders != 1 {
				t.Fatalf("forced init = %v, cleared %+v; want the sale cleared", err, cleared)
			}
			if v, err := seller.Verify(ctx, id); err != nil || !v.OK() {
				t.Errorf("verify after the forced init: %+v, %v", v, err)
			}
		})
	}
}
