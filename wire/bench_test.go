package wire_test

import (
	"bytes"
	"fmt"
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

func BenchmarkAppendResponseFrame(b *testing.B) {
	r := wire.Response{Status: "SUCCESS", Has: wire.FieldRemaining, RemainingStock: 42}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = wire.AppendResponseFrame(buf[:0], wire.TypePurchaseResponse, &r)
	}
}

// BenchmarkDecodePurchase: the hand-written decoder, strings as views of
// the payload.
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

// BenchmarkCodecRoundTrip is one request's whole trip through the codec:
// the client encodes a purchase frame, the server reads and decodes it and
// encodes the answer frame, the client reads it. The target is 0 allocs/op.
func BenchmarkCodecRoundTrip(b *testing.B) {
	req := wire.PurchaseRequest{ProductID: "iphone15", UserID: "user_123", RequestID: "r-1"}
	resp := wire.Response{Status: "SUCCESS", Has: wire.FieldRemaining | wire.FieldQuantity, RemainingStock: 41, Quantity: 1, OrderID: "1764108000123-0"}
	var in, out, payload []byte
	var stream bytes.Reader
	r := wire.NewReader(&stream, 0)
	var got wire.PurchaseRequest
	b.ReportAllocs()
	for b.Loop() {
		payload = wire.AppendPurchase(payload[:0], req)
		in = wire.AppendFrame(in[:0], wire.TypePurchase, payload)
		stream.Reset(in)
		f, err := r.Next()
		if err != nil {
			b.Fatal(err)
		}
		if err := wire.DecodePurchase(f.Payload, &got); err != nil {
			b.Fatal(err)
		}
		out = wire.AppendResponseFrame(out[:0], wire.TypePurchaseResponse, &resp)
		stream.Reset(out)
		if _, err := r.Next(); err != nil {
			b.Fatal(err)
		}
	}
}
