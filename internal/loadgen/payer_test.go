package loadgen

import (
	"bufio"
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/testkit/saletest"
	"github.com/flashsale/flashsale/wire"
)

// TestPayerFates: the shares come out exact, or within one, on any number
// of reservations.
func TestPayerFates(t *testing.T) {
	for _, tc := range []struct {
		n           int
		pay, cancel float64
	}{
		{10, 0.5, 0}, {100, 0.7, 0}, {1000, 0.7, 0.1}, {999, 0.33, 0.33}, {50, 0, 0}, {50, 1, 0}, {50, 0, 1},
	} {
		p := NewPayer(context.Background(), PayConfig{Addrs: []string{"x"}, Pay: tc.pay, Cancel: tc.cancel})
		var counts [3]int
		for i := range tc.n {
			counts[p.fate(i)]++
		}
		for f, share := range map[Fate]float64{Pay: tc.pay, Cancel: tc.cancel, Abandon: 1 - tc.pay - tc.cancel} {
			if want := share * float64(tc.n); float64(counts[f]) < want-1.5 || float64(counts[f]) > want+1.5 {
				t.Errorf("n %d, pay %v, cancel %v: %d of fate %d, want about %.0f", tc.n, tc.pay, tc.cancel, counts[f], f, want)
			}
		}
	}
}

// reserveServer answers every purchase RESERVED (order "o-" + its user id)
// and every confirm PAID, cancel RELEASED, when the order is the user's.
func reserveServer(t *testing.T) string {
	return saletest.Loopback(t, func(nc net.Conn) {
		defer nc.Close()
		rd, bw := wire.NewReader(nc, 0), bufio.NewWriter(nc)
		for {
			f, err := rd.Next()
			if err != nil {
				return
			}
			var answer string
			var pr wire.PurchaseRequest
			var or wire.OrderRequest
			switch {
			case f.Type == wire.TypePurchase && wire.DecodePurchase(f.Payload, &pr) == nil:
				answer = `{"status":"RESERVED","remaining_stock":1,"quantity":1,"order_id":"o-` + pr.UserID + `","expires_at":1764108600124}`
			case wire.DecodeOrder(f.Payload, &or) != nil || or.OrderID != "o-"+or.UserID:
				answer = `{"status":"ERROR","code":"FORBIDDEN","error":"the order is another customer's"}`
			case f.Type == wire.TypeConfirm:
				answer = `{"status":"PAID","quantity":1,"order_id":"` + or.OrderID + `"}`
			default:
				answer = `{"status":"RELEASED","quantity":1,"order_id":"` + or.OrderID + `"}`
			}
			bw.Write(wire.AppendFrame(nil, f.Type|wire.ResponseBit, []byte(answer)))
			if rd.Buffered() == 0 && bw.Flush() != nil {
				return
			}
		}
	})
}

// TestPayerSettles: each reservation reaches the payer with its customer,
// order and expiry, and is confirmed, cancelled or left as its fate says,
// by its own customer.
func TestPayerSettles(t *testing.T) {
	addr := reserveServer(t)
	cfg := testLoadConfig(addr)
	cfg.Requests = 200
	p := NewPayer(context.Background(), PayConfig{
		Addrs: cfg.Addrs, Conns: 2, Product: cfg.Product, UserPrefix: cfg.UserPrefix,
		Pay: 0.5, Cancel: 0.25, Delay: 10 * time.Millisecond, Jitter: 10 * time.Millisecond,
	})
	cfg.OnReserved = p.Reserved
	res := New(cfg).Run(context.Background())
	settled := p.Wait(context.Background())
	if res.Count(wire.StatusReserved) != 200 || len(settled) != 200 {
		t.Fatalf("%d RESERVED answers, %d reservations settled; want 200", res.Count(wire.StatusReserved), len(settled))
	}
	var counts [3]int
	for _, s := range settled {
		counts[s.Fate]++
		want := map[Fate]wire.Status{Pay: wire.StatusPaid, Cancel: wire.StatusReleased, Abandon: wire.StatusError}[s.Fate]
		switch {
		case s.OrderID != "o-u_"+strconv.FormatInt(s.User, 10) || s.ExpiresAt != 1764108600124 || s.Quantity != 1 || s.At.IsZero():
			t.Errorf("reservation %+v", s)
		case s.Status != want || s.Err != "":
			t.Errorf("reservation %s, fate %d: status %s (%s), want %s", s.OrderID, s.Fate, s.Status, s.Err, want)
		}
	}
	if counts != [3]int{50, 100, 50} {
		t.Errorf("fates abandon, pay, cancel: %v, want [50 100 50]", counts)
	}
}
