package dashboard

import "testing"

// BenchmarkTallySale is the cost, on the subscription's goroutine, of one
// sale event: what a flood of them costs the server.
func BenchmarkTallySale(b *testing.B) {
	tl := newTally(DefaultMaxProducts)
	payload := []byte(`{"product_id":"iphone15","buyer":"user-123456","remaining":99731,"timestamp":1764108000,"order_id":"1764108000123-0","quantity":1}`)
	b.ReportAllocs()
	for b.Loop() {
		tl.sale(payload)
	}
}
