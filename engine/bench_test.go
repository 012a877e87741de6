package engine_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/wire"
)

// benchStock is enough units that a success benchmark never sells out.
// Benchmark products have no per-user limit, so one user buys repeatedly.
const benchStock = 1 << 40

func BenchmarkPurchase(b *testing.B) {
	eng, _ := newEngine(b)
	ctx := context.Background()
	tests := []struct {
		name  string
		units int64
		want  engine.Status
	}{
		{"sold-out", 0, engine.StatusSoldOut},
		{"success", benchStock, engine.StatusSuccess},
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

// BenchmarkServerPurchase measures one whole request through the server
// over loopback: write the frame, wait for the answer. Each RunParallel
// goroutine is one client connection, so -cpu sets the concurrency.
func BenchmarkServerPurchase(b *testing.B) {
	eng, _ := newEngine(b)
	srv := startServer(b, eng, engine.ServerConfig{})
	tests := []struct {
		name   string
		units  int64
		status string
	}{
		{"sold-out", 0, "SOLD_OUT"},
		{"success", benchStock, "SUCCESS"},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			id := newProduct(b, eng, tt.units, engine.WithPerUserLimit(0))
			b.Cleanup(func() { eng.Delete(context.Background(), id) })
			frame := purchaseFrame(id, "bench_user")
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				nc, err := net.DialTimeout("tcp", srv.addr, testTimeout)
				if err != nil {
					b.Error(err)
					return
				}
				defer nc.Close()
				rd := wire.NewReader(nc, 0)
				var resp wire.Response
				for n := 0; pb.Next(); n++ {
					if n%256 == 0 {
						nc.SetDeadline(time.Now().Add(testTimeout))
					}
					if _, err := nc.Write(frame); err != nil {
						b.Error(err)
						return
					}
					f, err := rd.Next()
					if err != nil {
						b.Error(err)
						return
					}
					if err := wire.DecodeResponse(f.Payload, &resp); err != nil || resp.Status != tt.status {
						b.Errorf("answer %q, want %s", f.Payload, tt.status)
						return
					}
				}
			})
		})
	}
}

// BenchmarkBatcherPurchase: purchases through the Batcher, many in flight
// at once as a server has them (b.N spread over 256 concurrent callers).
func BenchmarkBatcherPurchase(b *testing.B) {
	for _, units := range []int64{0, benchStock} {
		name := "sold-out"
		if units > 0 {
			name = "success"
		}
		b.Run(name, func(b *testing.B) {
			eng, _, _ := newBatched(b, engine.BatcherConfig{})
			id := newProduct(b, eng, units, engine.WithPerUserLimit(0))
			b.Cleanup(func() { eng.Delete(context.Background(), id) })
			req := engine.Request{ProductID: id, UserID: "bench_user"}
			b.ReportAllocs()
			b.SetParallelism(128)
			b.RunParallel(func(pb *testing.PB) {
				done := make(chan engine.Result, 1)
				for pb.Next() {
					eng.PurchaseAsync(req, time.Now().Add(testTimeout), func(r engine.Result) { done <- r })
					if r := <-done; r.Status == engine.StatusError {
						b.Errorf("purchase: %+v", r)
						return
					}
				}
			})
		})
	}
}
