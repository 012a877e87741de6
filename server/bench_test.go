package server_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/metrics"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
	"github.com/flashsale/flashsale/server"
	"github.com/flashsale/flashsale/transport"
	"github.com/flashsale/flashsale/wire"
)

// BenchmarkServerPurchase measures one whole request through the server
// over loopback: write the frame, wait for the answer. Each RunParallel
// goroutine is one client connection, so -cpu sets the concurrency. The
// metrics cases are the same with a metrics.Metrics recording, to show its
// cost.
//
// The batcher case runs on the stack 'flashsale serve' runs on (a
// transport.Batcher over the pool, which merges purchases); the others on
// the pool alone.
func BenchmarkServerPurchase(b *testing.B) {
	eng, _ := newEngine(b)
	pool, _ := newPool(b)
	batcher := transport.NewBatcher(pool, transport.BatcherConfig{})
	b.Cleanup(func() { batcher.Close() })
	batched := engine.New(batcher)
	type stack int
	const (
		plain stack = iota
		withMetrics
		withBatcher
	)
	srvs := map[stack]*testServer{
		plain:       startServer(b, eng, server.Config{}),
		withMetrics: startServer(b, eng, server.Config{Metrics: metrics.New(metrics.Config{})}),
		withBatcher: startServer(b, batched, server.Config{}),
	}
	tests := []struct {
		name   string
		units  int64
		status string
		stack  stack
	}{
		{"sold-out", 0, "SOLD_OUT", plain},
		{"success", saletest.BenchStock, "SUCCESS", plain},
		{"sold-out+metrics", 0, "SOLD_OUT", withMetrics},
		{"success+metrics", saletest.BenchStock, "SUCCESS", withMetrics},
		{"success+batcher", saletest.BenchStock, "SUCCESS", withBatcher},
	}
	for _, tt := range tests {
		srv := srvs[tt.stack]
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
