package dashboard

import (
	"slices"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
	"github.com/flashsale/flashsale/wire"
)

func TestSaleOf(t *testing.T) {
	tests := []struct {
		name      string
		payload   string
		id        string
		remaining int64
		quantity  int64
		fast      bool // read without encoding/json
		ok        bool
	}{
		{"purchase.lua's layout", `{"product_id":"iphone15","buyer":"u1","remaining":41,"timestamp":1764108000,"order_id":"1764108000123-0","quantity":2}`, "iphone15", 41, 2, true, true},
		{"escaped buyer", `{"product_id":"p","buyer":"a\"b\\c\",\"remaining\":9","remaining":3,"timestamp":1,"order_id":"1-0","quantity":1}`, "p", 3, 1, true, true},
		{"escaped id falls back", `{"product_id":"a\"b","buyer":"u","remaining":0,"timestamp":1,"order_id":"1-0","quantity":1}`, `a"b`, 0, 1, false, true},
		{"other field order falls back", `{"remaining":5,"product_id":"p","quantity":3}`, "p", 5, 3, false, true},
		{"no quantity", `{"product_id":"p","buyer":"u","remaining":5,"timestamp":1,"order_id":"1-0"}`, "p", 5, 0, false, true},
		{"trailing bytes", `{"product_id":"p","buyer":"u","remaining":5,"timestamp":1,"order_id":"1-0","quantity":1}x`, "", 0, 0, false, false},
		{"not JSON", `iphone15`, "", 0, 0, false, false},
		{"no product", `{"remaining":5}`, "", 0, 0, false, false},
		{"empty", ``, "", 0, 0, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, fast := parseSale([]byte(tt.payload))
			id, remaining, quantity, _, ok := saleOf([]byte(tt.payload))
			if fast != tt.fast || ok != tt.ok || string(id) != tt.id || remaining != tt.remaining || quantity != tt.quantity {
				t.Errorf("saleOf = %q %d %d %v (fast %v), want %q %d %d %v (fast %v)",
					id, remaining, quantity, ok, fast, tt.id, tt.remaining, tt.quantity, tt.ok, tt.fast)
			}
		})
	}
}

// The events the purchase script really publishes take the fast path: a
// change of its layout shows up here, not as a slow dashboard.
func TestPurchaseEventsTakeTheFastPath(t *testing.T) {
	eng, addr := saletest.Engine(t)
	id := saletest.Product(t, eng, 10)
	psc := redis.PubSubConn{Conn: redistest.Conn(t, addr)}
	if err := psc.Subscribe(engine.EventChannel); err != nil {
		t.Fatal(err)
	}
	if _, ok := psc.ReceiveWithTimeout(saletest.Timeout).(redis.Subscription); !ok {
		t.Fatal("no subscription confirmation")
	}
	ctx := saletest.Context(t)
	if r := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: `a "quoted" \ user`, Quantity: 1}); r.Status != wire.StatusSuccess {
		t.Fatalf("purchase: %v %v", r.Status, r.Err)
	}
	for {
		m, ok := psc.ReceiveWithTimeout(saletest.Timeout).(redis.Message)
		if !ok {
			t.Fatal("no sale event")
		}
		got, remaining, quantity, fast := parseSale(m.Data)
		if string(got) != id {
			continue // another test's sale
		}
		if !fast || remaining != 9 || quantity != 1 {
			t.Fatalf("parseSale(%s) = %q %d %d fast %v; want %q 9 1 fast", m.Data, got, remaining, quantity, fast, id)
		}
		return
	}
}

// The events of a product sold with a hold: a reservation is a sale (its
// units left the stock), read by hand; paid and released ones settle it
// and sell nothing.
func TestHoldEvents(t *testing.T) {
	tests := []struct {
		name      string
		payload   string
		remaining int64
		quantity  int64
		settles   bool
		fast      bool
	}{
		{"reserved", `{"type":"reserved","expires_at":1764108600123,"product_id":"p","buyer":"u1","remaining":41,"timestamp":1764108000,"order_id":"1764108000123-0","quantity":2}`, 41, 2, false, true},
		{"paid", `{"type":"paid","product_id":"p","buyer":"u1","timestamp":1764108000,"order_id":"1764108000123-0","quantity":2}`, 0, 2, true, false},
		{"released", `{"type":"released","product_id":"p","buyer":"u1","remaining":43,"timestamp":1764108000,"order_id":"1764108000123-0","quantity":2,"reason":"expired"}`, 43, 2, true, false},
		{"another type", `{"type":"restocked","product_id":"p","remaining":5,"quantity":5}`, 5, 5, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, fast := parseSale([]byte(tt.payload))
			id, remaining, quantity, settles, ok := saleOf([]byte(tt.payload))
			if !ok || string(id) != "p" || remaining != tt.remaining || quantity != tt.quantity || settles != tt.settles || fast != tt.fast {
				t.Errorf("saleOf = %q %d %d settles %v ok %v (fast %v), want \"p\" %d %d settles %v ok true (fast %v)",
					id, remaining, quantity, settles, ok, fast, tt.remaining, tt.quantity, tt.settles, tt.fast)
			}
		})
	}
}

// A paid or released event is not a sale: the tally marks its product
// to be read again instead.
func TestTallySettlingEvents(t *testing.T) {
	tl := newTally(DefaultMaxProducts)
	tl.sale([]byte(`{"type":"reserved","expires_at":1,"product_id":"a","buyer":"u","remaining":9,"timestamp":1,"order_id":"1-0","quantity":1}`))
	tl.sale([]byte(`{"type":"paid","product_id":"a","buyer":"u","timestamp":1,"order_id":"1-0","quantity":1}`))
	tl.sale([]byte(`{"type":"released","product_id":"b","buyer":"u","remaining":3,"timestamp":1,"order_id":"2-0","quantity":1,"reason":"cancelled"}`))
	sales, dirty, _ := tl.take(statusPerTick)
	if len(sales) != 1 || sales["a"] == nil || *sales["a"] != (sale{units: 1, orders: 1, remaining: 9}) {
		t.Errorf("sales %v, want a's reservation only", sales)
	}
	slices.Sort(dirty)
	if !slices.Equal(dirty, []string{"a", "b"}) {
		t.Errorf("to read again: %v, want [a b]", dirty)
	}
}

// The reservation events the purchase script really publishes take the
// fast path too.
func TestReservationEventsTakeTheFastPath(t *testing.T) {
	eng, addr := saletest.Engine(t)
	id := saletest.Product(t, eng, 10, engine.WithHold(time.Minute), engine.WithPerUserLimit(0))
	psc := redis.PubSubConn{Conn: redistest.Conn(t, addr)}
	if err := psc.Subscribe(engine.EventChannel); err != nil {
		t.Fatal(err)
	}
	if _, ok := psc.ReceiveWithTimeout(saletest.Timeout).(redis.Subscription); !ok {
		t.Fatal("no subscription confirmation")
	}
	ctx := saletest.Context(t)
	if r := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "u", Quantity: 2}); r.Status != wire.StatusReserved {
		t.Fatalf("purchase: %v %v", r.Status, r.Err)
	}
	for {
		m, ok := psc.ReceiveWithTimeout(saletest.Timeout).(redis.Message)
		if !ok {
			t.Fatal("no reservation event")
		}
		got, remaining, quantity, fast := parseSale(m.Data)
		if string(got) != id {
			continue // another test's sale
		}
		if !fast || remaining != 8 || quantity != 2 {
			t.Fatalf("parseSale(%s) = %q %d %d fast %v; want %q 8 2 fast", m.Data, got, remaining, quantity, fast, id)
		}
		return
	}
}
