package client_test

import (
	"math"
	"strconv"
	"testing"

	"github.com/flashsale/flashsale/client"
	"github.com/flashsale/flashsale/wire"
)

func TestPurchaseEncoder(t *testing.T) {
	sign := func(req *wire.PurchaseRequest, user int64) {
		req.Token, req.Expires = "tok-"+strconv.FormatInt(user, 10), 1764108000+user
	}
	for _, tc := range []struct {
		product, prefix string
		quantity        int64
		sign            func(*wire.PurchaseRequest, int64)
	}{
		{"iphone15", "user", 1, nil},
		{"p", "u", 3, nil},
		{`odd "one"`, "ü\u2028\\\t\xff", 1, nil},
		{"iphone15", "user", 2, sign},
	} {
		e := client.NewPurchaseEncoder(tc.product, tc.prefix, tc.quantity, tc.sign)
		var buf []byte
		for _, user := range []int64{0, 1, 9, 10, 12345, math.MaxInt64} {
			buf = e.AppendFrame(buf[:0], user)
			req := wire.PurchaseRequest{ProductID: tc.product, UserID: tc.prefix + "_" + strconv.FormatInt(user, 10)}
			if tc.quantity != 1 {
				req.Quantity = tc.quantity
			}
			if tc.sign != nil {
				tc.sign(&req, user)
			}
			want := wire.AppendFrame(nil, wire.TypePurchase, wire.AppendPurchase(nil, req))
			if string(buf) != string(want) {
				t.Errorf("user %d of %+v:\n got %q\nwant %q", user, tc, buf, want)
			}
		}
	}
}

func TestEncodeScanAllocs(t *testing.T) {
	e := client.NewPurchaseEncoder("iphone15", "user", 1, nil)
	buf := make([]byte, 0, 1024)
	k := int64(0)
	if n := testing.AllocsPerRun(100, func() { buf = e.AppendFrame(buf[:0], k); k++ }); n != 0 {
		t.Errorf("AppendFrame allocates %v times", n)
	}
	p := []byte(`{"status":"SUCCESS","remaining_stock":42,"quantity":1,"order_id":"1764108000123-0"}`)
	if n := testing.AllocsPerRun(100, func() { client.ScanAnswer(p) }); n != 0 {
		t.Errorf("ScanAnswer allocates %v times", n)
	}
}

var scanCases = []string{
	`{"status":"SUCCESS","remaining_stock":42,"quantity":1,"order_id":"1764108000123-0"}`,
	`{"status":"SUCCESS","remaining_stock":0,"quantity":25,"order_id":"1-0"}`,
	`{"status":"SUCCESS"}`,
	`{"status":"SOLD_OUT"}`,
	`{"status":"INSUFFICIENT_STOCK","remaining_stock":2}`,
	`{"status":"ALREADY_PURCHASED","held":1,"limit":1}`,
	`{"status":"NOT_STARTED","start":"2026-11-27T09:00:00Z"}`,
	`{"status":"ENDED","end":"2026-11-27T10:00:00Z"}`,
	`{"status":"RATE_LIMITED","retry_after_ms":180}`,
	`{"status":"UNAUTHORIZED","error":"token expired"}`,
	`{"quantity":-3,"status":"SUCCESS","status":"SOLD_OUT"}`,
	`{"status":"ERROR","code":"INVALID_REQUEST","error":"invalid json"}`,
	`{"status":"WHATEVER"}`,
	// Left to wire.DecodeResponse:
	`{"status":""}`,
	`{"quantity":1}`,
	`{}`,
	`{"status":"SUCCESS","quantity":1.0}`,
	`{"status":"SUCCESS","quantity":1e2}`,
	`{"status":"SUCCESS","quantity":01}`,
	`{"status":"SUCCESS","quantity":99999999999999999999}`,
	`{"status":"SUCCESS","quantity":"1"}`,
	`{"status":"SUCCESS","quantity":null}`,
	`{"status":"SUCC\u0045SS"}`,
	`{"Status":"SUCCESS"}`,
	`{"status":"SUCCESS","extra":true}`,
	`{"status":"SUCCESS", "quantity":1}`,
	`{"status":"SUCCESS"} `,
	`{"status":"SUCCESS"}{}`,
	`{"status":"SUCCESS",}`,
	`{"status":"SUCCESS"`,
	`{"status":"SUCCESS","order_id":5}`,
	`{"status":"SUCCESS","error":"a\"b"}`,
	`null`,
	``,
}

// TestScanAnswer: what ScanAnswer accepts, wire.DecodeResponse reads the
// same way.
func TestScanAnswer(t *testing.T) {
	quick := 0
	for _, p := range scanCases {
		if checkScan(t, []byte(p)) {
			quick++
		}
	}
	if quick != 13 {
		t.Errorf("ScanAnswer took %d of the cases, want 13", quick)
	}
}

func FuzzScanAnswer(f *testing.F) {
	for _, p := range scanCases {
		f.Add([]byte(p))
	}
	f.Fuzz(func(t *testing.T, p []byte) { checkScan(t, p) })
}

func checkScan(t *testing.T, p []byte) bool {
	t.Helper()
	a, ok := client.ScanAnswer(p)
	if !ok {
		return false
	}
	var r wire.Response
	if err := wire.DecodeResponse(p, &r); err != nil {
		t.Errorf("ScanAnswer took %q, DecodeResponse: %v", p, err)
		return true
	}
	if string(a.Status) != r.Status || a.Quantity != r.Quantity || string(a.OrderID) != r.OrderID {
		t.Errorf("ScanAnswer(%q) = %s, %d, %s; DecodeResponse: %s, %d, %s", p, a.Status, a.Quantity, a.OrderID, r.Status, r.Quantity, r.OrderID)
	}
	return true
}
