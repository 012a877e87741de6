package transport_test

import (
	"context"
	"testing"
	"time"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
	"github.com/flashsale/flashsale/transport"
	"github.com/flashsale/flashsale/wire"
)

// BenchmarkBatcherPurchase: purchases through the Batcher, many in flight
// at once as a server has them (b.N spread over 256 concurrent callers).
func BenchmarkBatcherPurchase(b *testing.B) {
	for _, units := range []int64{0, saletest.BenchStock} {
		name := "sold-out"
		if units > 0 {
			name = "success"
		}
		b.Run(name, func(b *testing.B) {
			eng, _, _ := newBatched(b, transport.BatcherConfig{})
			id := newProduct(b, eng, units, engine.WithPerUserLimit(0))
			b.Cleanup(func() { eng.Delete(context.Background(), id) })
			req := engine.Request{ProductID: id, UserID: "bench_user"}
			b.ReportAllocs()
			b.SetParallelism(128)
			b.RunParallel(func(pb *testing.PB) {
				done := make(chan engine.Result, 1)
				for pb.Next() {
					eng.PurchaseAsync(req, time.Now().Add(testTimeout), func(r engine.Result) { done <- r })
					if r := <-done; r.Status == wire.StatusError {
						b.Errorf("purchase: %+v", r)
						return
					}
				}
			})
		})
	}
}
