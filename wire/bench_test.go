package wire_test

import (
	"fmt"
	"io"
	"testing"

	"github.com/flashsale/flashsale/wire"
)

func BenchmarkReaderNext(b *testing.B) {
	// A stream of many purchases with distinct users; repeatReader serves
	// it forever, so the loop never rebuilds the reader.
	var stream []byte
	const frames = 1024
	for i := range frames {
		req := wire.PurchaseRequest{ProductID: "iphone15", UserID: fmt.Sprintf("user_%d", i)}
		stream = wire.AppendFrame(stream, wire.TypePurchase, wire.AppendPurchase(nil, req))
	}
	r := wire.NewReader(&repeatReader{buf: stream}, 0)
	b.SetBytes(int64(len(stream) / frames))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Next(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendResponse(b *testing.B) {
	for _, tt := range responses {
		switch tt.name {
		case "success", "sold-out", "error":
		default:
			continue
		}
		b.Run(tt.name, func(b *testing.B) {
			buf := make([]byte, 0, 256)
			b.ReportAllocs()
			for b.Loop() {
				buf = wire.AppendResponse(buf[:0], &tt.r)
			}
		})
	}
}

func BenchmarkWriteFrame(b *testing.B) {
	payload := []byte(`{"status":"SUCCESS","remaining_stock":42}`)
	b.Run("buffered", func(b *testing.B) {
		w := wire.NewWriter(io.Discard)
		b.SetBytes(int64(wire.HeaderSize + len(payload)))
		b.ReportAllocs()
		for b.Loop() {
			if err := w.WriteFrame(wire.TypePurchaseResponse, payload); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
	})
	b.Run("flush-each", func(b *testing.B) {
		w := wire.NewWriter(io.Discard)
		b.SetBytes(int64(wire.HeaderSize + len(payload)))
		b.ReportAllocs()
		for b.Loop() {
			if err := w.WriteFrame(wire.TypePurchaseResponse, payload); err != nil {
				b.Fatal(err)
			}
			if err := w.Flush(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDecodePurchase is here for comparison: it goes through
// encoding/json and is the one per-request path that allocates.
func BenchmarkDecodePurchase(b *testing.B) {
	p := []byte(purchase)
	b.ReportAllocs()
	for b.Loop() {
		var req wire.PurchaseRequest
		if err := wire.DecodePurchase(p, &req); err != nil {
			b.Fatal(err)
		}
	}
}
