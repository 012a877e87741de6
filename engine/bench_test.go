package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
	"github.com/flashsale/flashsale/wire"
)

// benchStock is enough units that a success benchmark never sells out.
const benchStock = saletest.BenchStock

func BenchmarkPurchase(b *testing.B) {
	eng, _ := newEngine(b)
	ctx := context.Background()
	tests := []struct {
		name  string
		units int64
		want  wire.Status
	}{
		{"sold-out", 0, wire.StatusSoldOut},
		{"success", benchStock, wire.StatusSuccess},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			id := newProduct(b, eng, tt.units, engine.WithPerUserLimit(0))
			b.Cleanup(func() { eng.Delete(context.Background(), id) })
			req := engine.Request{ProductID: id, UserID: "bench_user"}
			b.ReportAllocs()
			for b.Loop() {
				if res := eng.Purchase(ctx, req); res.Status != tt.want {
					b.Fatalf("Purchase = %+v, want %v", res, tt.want)
				}
			}
		})
		b.Run(tt.name+"-parallel", func(b *testing.B) {
			id := newProduct(b, eng, tt.units, engine.WithPerUserLimit(0))
			b.Cleanup(func() { eng.Delete(context.Background(), id) })
			req := engine.Request{ProductID: id, UserID: "bench_user"}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if res := eng.Purchase(ctx, req); res.Status != tt.want {
						b.Errorf("Purchase = %+v, want %v", res, tt.want)
						return
					}
				}
			})
		})
	}
}

// BenchmarkPurchaseAsyncSoldOut: a purchase the sold-out cache answers
// goes no further than the engine, and allocates nothing (a server's
// sold-out path).
func BenchmarkPurchaseAsyncSoldOut(b *testing.B) {
	pool, _ := newPool(b)
	eng := engine.New(pool, engine.WithSoldOutCache(time.Hour))
	id := newProduct(b, eng, 0, engine.WithPerUserLimit(0))
	b.Cleanup(func() { eng.Delete(context.Background(), id) })
	req := engine.Request{ProductID: id, UserID: "bench_user"}
	if res := eng.Purchase(context.Background(), req); res.Status != wire.StatusSoldOut {
		b.Fatalf("Purchase = %+v, want SOLD_OUT", res)
	}
	var got wire.Status
	done := func(res engine.Result) { got = res.Status }
	deadline := time.Now().Add(time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		eng.PurchaseAsync(req, deadline, done)
		if got != wire.StatusSoldOut {
			b.Fatalf("PurchaseAsync = %v, want SOLD_OUT", got)
		}
	}
}
