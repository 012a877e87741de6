package engine_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/flashsale/flashsale/engine"
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
