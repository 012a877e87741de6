package engine_test

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/lua"
	"github.com/flashsale/flashsale/transport"
	"github.com/flashsale/flashsale/wire"
)

func TestPurchaseUntilSoldOut(t *testing.T) {
	t.Parallel()
	eng, addr := newEngine(t)
	tests := []struct {
		name     string
		units    int64
		attempts int
	}{
		{"zero units", 0, 3},
		{"one unit", 1, 3},
		{"five units", 5, 8},
		{"exact", 4, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			c := redistest.Conn(t, addr)
			id := newProduct(t, eng, tt.units)
			k := engine.KeysFor(id)

			var wantBuyers []string
			orderIDs := make(map[string]bool)
			for i := range tt.attempts {
				user := fmt.Sprintf("user_%d", i)
				res := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: user})
				if int64(i) < tt.units {
					if want := tt.units - int64(i) - 1; res.Status != wire.StatusSuccess || res.Remaining != want || res.Quantity != 1 {
						t.Fatalf("purchase %d = %+v, want SUCCESS of 1 unit, remaining %d", i, res, want)
					}
					if err := engine.ValidateOrderID(res.OrderID); err != nil || orderIDs[res.OrderID] {
						t.Errorf("purchase %d: order id %q is invalid (%v) or repeated", i, res.OrderID, err)
					}
					orderIDs[res.OrderID] = true
					wantBuyers = append(wantBuyers, user)
				} else if res != (engine.Result{Status: wire.StatusSoldOut}) {
					t.Fatalf("purchase %d = %+v, want SOLD_OUT", i, res)
				}
				stock, err := redis.Int64(c.Do("GET", k.Stock))
				if err != nil {
					t.Fatalf("GET stock: %v", err)
				}
				if stock < 0 {
					t.Fatalf("stock went negative: %d", stock)
				}
			}

			if stock, err := redis.String(c.Do("GET", k.Stock)); err != nil || stock != "0" {
				t.Errorf("stock = %q, %v; want \"0\"", stock, err)
			}
			buyers, err := redis.Strings(c.Do("LRANGE", k.Buyers, 0, -1))
			if err != nil {
				t.Fatalf("LRANGE: %v", err)
			}
			if !slices.Equal(buyers, wantBuyers) {
				t.Errorf("buyers = %q, want %q", buyers, wantBuyers)
			}
			meta, err := redis.StringMap(c.Do("HGETALL", k.Meta))
			if err != nil {
				t.Fatalf("HGETALL: %v", err)
			}
			if meta["initial"] != strconv.FormatInt(tt.units, 10) {
				t.Errorf("meta = %v, want initial %d", meta, tt.units)
			}
		})
	}
}

func TestPurchaseUnknownProductCreatesNoKey(t *testing.T) {
	t.Parallel()
	eng, addr := newEngine(t)
	c := redistest.Conn(t, addr)
	id := redistest.Product(t)

	res := eng.Purchase(testContext(t), engine.Request{ProductID: id, UserID: "alice"})
	if res.Status != wire.StatusError || res.Code != engine.CodeUnknownProduct || res.Message != "unknown product" {
		t.Errorf("Purchase(unknown) = %+v, want ERROR UNKNOWN_PRODUCT \"unknown product\"", res)
	}
	if !errors.Is(res.Err, engine.ErrUnknownProduct) {
		t.Errorf("Purchase(unknown).Err = %v, want ErrUnknownProduct", res.Err)
	}
	k := engine.KeysFor(id)
	for _, key := range []string{k.Stock, k.Buyers, k.Meta} {
		if n, err := redis.Int(c.Do("EXISTS", key)); err != nil || n != 0 {
			t.Errorf("EXISTS %s = %d, %v; want 0", key, n, err)
		}
	}
}

func TestPurchaseInvalidRequest(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	valid := newProduct(t, eng, 10)
	tests := []struct {
		name    string
		req     engine.Request
		message string
	}{
		{"missing product", engine.Request{UserID: "alice"}, "missing product_id"},
		{"missing user", engine.Request{ProductID: valid}, "missing user_id"},
		{"missing both", engine.Request{}, "missing product_id"},
		{"long product", engine.Request{ProductID: strings.Repeat("p", 129), UserID: "alice"}, "product_id longer than 128 bytes"},
		{"long user", engine.Request{ProductID: valid, UserID: strings.Repeat("u", 129)}, "user_id longer than 128 bytes"},
		{"brace in product", engine.Request{ProductID: "a{b}", UserID: "alice"}, "product_id contains a forbidden character"},
		{"control in user", engine.Request{ProductID: valid, UserID: "al\nice"}, "user_id contains a forbidden character"},
		{"invalid UTF-8 user", engine.Request{ProductID: valid, UserID: "\xc3\x28"}, "user_id is not valid UTF-8"},
		{"negative quantity", engine.Request{ProductID: valid, UserID: "alice", Quantity: -1}, "quantity must be between 1 and 10000"},
		{"quantity above the cap", engine.Request{ProductID: valid, UserID: "alice", Quantity: engine.MaxQuantity + 1}, "quantity must be between 1 and 10000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := eng.Purchase(testContext(t), tt.req)
			if res.Status != wire.StatusError || res.Code != engine.CodeInvalidRequest || res.Message != tt.message {
				t.Errorf("Purchase(%+v) = %+v, want ERROR INVALID_REQUEST %q", tt.req, res, tt.message)
			}
			if !errors.Is(res.Err, engine.ErrInvalidRequest) {
				t.Errorf("Err = %v, want it to wrap ErrInvalidRequest", res.Err)
			}
		})
	}
	// None of the refused requests sold anything.
	st, err := eng.Status(testContext(t), valid)
	if err != nil {
		t.Fatal(err)
	}
	if st.Remaining != 10 || st.Buyers != 0 {
		t.Errorf("after invalid requests: %+v, want 10 remaining and no buyers", st)
	}
}

func TestConcurrentPurchasesSellExactlyTheStock(t *testing.T) {
	t.Parallel()
	const units, attempts = 100, 1000
	eng, addr := newEngine(t)
	id := newProduct(t, eng, units)

	results := purchaseConcurrently(t, eng, id, attempts, func(i int) string { return fmt.Sprintf("user_%d", i) })

	var remaining []int64
	winners := make(map[string]bool)
	for i, res := range results {
		switch res.Status {
		case wire.StatusSuccess:
			remaining = append(remaining, res.Remaining)
			winners[fmt.Sprintf("user_%d", i)] = true
		case wire.StatusSoldOut:
		default:
			t.Errorf("purchase %d = %+v", i, res)
		}
	}
	checkSoldOut(t, addr, id, units, remaining, winners)
}

// saleEvent is what the purchase script publishes for one sale.
type saleEvent struct {
	ProductID string `json:"product_id"`
	Buyer     string `json:"buyer"`
	Remaining int64  `json:"remaining"`
	Timestamp int64  `json:"timestamp"`
	OrderID   string `json:"order_id"`
	Quantity  int64  `json:"quantity"`
}

// jsonKeys returns the keys of the JSON object raw, in order.
func jsonKeys(raw []byte) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("not an object: %v %v", tok, err)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		keys = append(keys, tok.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// jsonString encodes s the way a JSON encoder without HTML escaping does.
func jsonString(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func TestPurchasePublishesEvent(t *testing.T) {
	t.Parallel()
	eng, addr := newEngine(t)
	tests := []struct {
		name  string
		units int64
		users []string
	}{
		{"plain", 3, []string{"alice", "bob", "carol"}},
		{"escaped ids", 2, []string{`quote "q" back\slash`, "élodie ü ユーザー"}},
		// Lua prints numbers with 14 significant digits; the event must
		// still carry the exact remaining stock.
		{"large stock", 1_000_000_000_000_000, []string{"big_1", "big_2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			psc := redis.PubSubConn{Conn: redistest.Conn(t, addr)}
			if err := psc.Subscribe(engine.EventChannel); err != nil {
				t.Fatal(err)
			}
			switch m := psc.ReceiveWithTimeout(testTimeout).(type) {
			case redis.Subscription:
				if m.Kind != "subscribe" || m.Channel != engine.EventChannel {
					t.Fatalf("subscription = %+v", m)
				}
			default:
				t.Fatalf("SUBSCRIBE answered %#v", m)
			}

			id := newProduct(t, eng, tt.units)
			var orderIDs []string
			for i, user := range tt.users {
				res := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: user})
				if want := tt.units - int64(i) - 1; res.Status != wire.StatusSuccess || res.Remaining != want {
					t.Fatalf("purchase %d = %+v, want SUCCESS remaining %d", i, res, want)
				}
				orderIDs = append(orderIDs, res.OrderID)
			}
			// A sold-out attempt publishes nothing: after the sales, the
			// next event for this product would be unexpected.
			if tt.units == int64(len(tt.users)) {
				if res := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "late"}); res.Status != wire.StatusSoldOut {
					t.Fatalf("late purchase = %+v, want SOLD_OUT", res)
				}
			}

			for i, user := range tt.users {
				raw := nextEvent(t, psc, id)
				var ev saleEvent
				dec := json.NewDecoder(bytes.NewReader(raw))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&ev); err != nil {
					t.Fatalf("event %s: %v", raw, err)
				}
				wantRemaining := tt.units - int64(i) - 1
				if ev.ProductID != id || ev.Buyer != user || ev.Remaining != wantRemaining || ev.OrderID != orderIDs[i] || ev.Quantity != 1 {
					t.Errorf("event %d = %+v, want product %q buyer %q remaining %d order %s quantity 1", i, ev, id, user, wantRemaining, orderIDs[i])
				}
				if d := time.Since(time.Unix(ev.Timestamp, 0)); d < -time.Minute || d > time.Minute {
					t.Errorf("event timestamp %d is %v away from now", ev.Timestamp, d)
				}
				keys, err := jsonKeys(raw)
				if err != nil {
					t.Fatalf("event %s: %v", raw, err)
				}
				if want := []string{"product_id", "buyer", "remaining", "timestamp", "order_id", "quantity"}; !slices.Equal(keys, want) {
					t.Errorf("event keys = %q, want %q", keys, want)
				}
				want := `{"product_id":` + jsonString(t, id) + `,"buyer":` + jsonString(t, user) +
					`,"remaining":` + strconv.FormatInt(wantRemaining, 10) +
					`,"timestamp":` + strconv.FormatInt(ev.Timestamp, 10) +
					`,"order_id":` + jsonString(t, orderIDs[i]) + `,"quantity":1}`
				if string(raw) != want {
					t.Errorf("event = %s\nwant    %s", raw, want)
				}
			}
			// Nothing more for this product: ask Redis to echo a marker
			// through the same connection and expect it before any event.
			if err := psc.Ping("end"); err != nil {
				t.Fatal(err)
			}
			for {
				switch m := psc.ReceiveWithTimeout(testTimeout).(type) {
				case redis.Pong:
					if m.Data != "end" {
						t.Fatalf("pong %q", m.Data)
					}
					return
				case redis.Message:
					if bytes.Contains(m.Data, []byte(jsonString(t, id))) {
						t.Fatalf("unexpected extra event %s", m.Data)
					}
				case error:
					t.Fatal(m)
				}
			}
		})
	}
}

// nextEvent returns the next event on psc about product id, skipping the
// events of other tests sharing the channel.
func nextEvent(t *testing.T, psc redis.PubSubConn, id string) []byte {
	t.Helper()
	for {
		switch m := psc.ReceiveWithTimeout(testTimeout).(type) {
		case redis.Message:
			if m.Channel != engine.EventChannel {
				t.Fatalf("message on channel %q", m.Channel)
			}
			// Decode only the product id: an event of another test
			// that is wrong elsewhere is that test's failure.
			var ev struct {
				ProductID string `json:"product_id"`
			}
			if err := json.Unmarshal(m.Data, &ev); err != nil {
				t.Fatalf("event %s is not JSON: %v", m.Data, err)
			}
			if ev.ProductID == id {
				return m.Data
			}
		case error:
			t.Fatalf("waiting for event: %v", m)
		default:
			t.Fatalf("unexpected pub/sub message %#v", m)
		}
	}
}

// TestPurchaseReloadsFlushedScripts is not parallel: SCRIPT FLUSH empties
// the script cache of the whole Redis.
func TestPurchaseReloadsFlushedScripts(t *testing.T) {
	eng, addr := newEngine(t)
	ctx := testContext(t)
	c := redistest.Conn(t, addr)
	id := newProduct(t, eng, 10)
	purchaseHash := fmt.Sprintf("%x", sha1.Sum([]byte(lua.Purchase)))

	if res := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "before"}); res.Status != wire.StatusSuccess || res.Remaining != 9 {
		t.Fatalf("purchase before flush = %+v", res)
	}
	rawDo(t, c, "SCRIPT", "FLUSH")
	if exists, err := redis.Ints(c.Do("SCRIPT", "EXISTS", purchaseHash)); err != nil || !slices.Equal(exists, []int{0}) {
		t.Fatalf("SCRIPT EXISTS after flush = %v, %v; want [0]", exists, err)
	}

	if res := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "after"}); res.Status != wire.StatusSuccess || res.Remaining != 8 {
		t.Fatalf("purchase after flush = %+v, want SUCCESS remaining 8", res)
	}
	if exists, err := redis.Ints(c.Do("SCRIPT", "EXISTS", purchaseHash)); err != nil || !slices.Equal(exists, []int{1}) {
		t.Errorf("SCRIPT EXISTS after reload = %v, %v; want [1]", exists, err)
	}
	// The reload ran the purchase once, not twice.
	total, buyers, err := eng.Buyers(ctx, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	if total != 2 || !slices.Equal(buyers, []string{"before", "after"}) {
		t.Errorf("buyers = %d %q, want 2 [before after]", total, buyers)
	}
	// Admin scripts reload too.
	rawDo(t, c, "SCRIPT", "FLUSH")
	st, err := eng.Status(ctx, id)
	if err != nil {
		t.Fatalf("Status after flush: %v", err)
	}
	if st.Remaining != 8 || st.Initial != 10 || st.Buyers != 2 {
		t.Errorf("Status after flush = %+v", st)
	}
}

func TestAdminStatus(t *testing.T) {
	t.Parallel()
	eng, addr := newEngine(t)
	ctx := testContext(t)
	c := redistest.Conn(t, addr)
	id := newProduct(t, eng, 5)
	for _, u := range []string{"a", "b"} {
		if res := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: u}); res.Status != wire.StatusSuccess {
			t.Fatalf("purchase %s = %+v", u, res)
		}
	}

	st, err := eng.Status(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	want := engine.ProductStatus{ID: id, Remaining: 3, Initial: 5, Held: 2, Buyers: 2, Customers: 2, Orders: 2, Limit: engine.DefaultPerUserLimit}
	if !sameStatus(st, want) {
		t.Errorf("Status = %+v, want %+v", st, want)
	}
	if d := time.Since(st.Now); d < -time.Minute || d > time.Minute {
		t.Errorf("Status.Now = %v, not within a minute of now", st.Now)
	}
	if !st.Consistent() || st.Sold() != 2 {
		t.Errorf("Consistent = %v, Sold = %d; want true, 2", st.Consistent(), st.Sold())
	}
	if a, err := eng.Verify(ctx, id); err != nil || !a.OK() {
		t.Errorf("Verify = %+v, %v; want no problems", a, err)
	}

	// A buyer nobody paid for: the audit sees it.
	k := engine.KeysFor(id)
	rawDo(t, c, "LPUSH", k.Buyers, "intruder")
	st, err = eng.Status(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.Buyers != 3 {
		t.Errorf("after LPUSH: %+v, want 3 buyers", st)
	}
	if a, err := eng.Verify(ctx, id); err != nil || a.OK() {
		t.Errorf("Verify after LPUSH = %+v, %v; want a problem", a, err)
	}

	// Customers holding more units than were sold break the invariant.
	rawDo(t, c, "HSET", k.Holders, "ghost", 1)
	st, err = eng.Status(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.Customers != 3 || st.Consistent() {
		t.Errorf("after HSET of a ghost holder: %+v Consistent = %v, want 3 customers and inconsistent", st, st.Consistent())
	}
}

// Status counts orders (Buyers) and customers apart: with no per-customer
// limit one customer's many orders are many orders of one customer, and a
// release that returns a customer's last units leaves them no customer.
func TestStatusOrdersAndCustomers(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	ctx := testContext(t)
	id := newProduct(t, eng, 100, engine.WithPerUserLimit(0))
	buy := func(user string, qty int64) string {
		t.Helper()
		res := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: user, Quantity: qty})
		if res.Status != wire.StatusSuccess {
			t.Fatalf("purchase by %s: %+v", user, res)
		}
		return res.OrderID
	}
	steps := []struct {
		name                    string
		do                      func()
		held, orders, customers int64
	}{
		{"one customer, ten orders", func() {
			for range 10 {
				buy("one", 1)
			}
		}, 10, 10, 1},
		{"a second customer, one order of five", func() { buy("two", 5) }, 15, 11, 2},
		{"a third customer, their only order released", func() {
			oid := buy("three", 2)
			if _, err := eng.Release(ctx, id, oid); err != nil {
				t.Fatal(err)
			}
		}, 15, 11, 2},
	}
	for _, s := range steps {
		s.do()
		st, err := eng.Status(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if st.Held != s.held || st.Buyers != s.orders || st.Customers != s.customers {
			t.Errorf("%s: held %d, orders %d, customers %d; want %d, %d, %d",
				s.name, st.Held, st.Buyers, st.Customers, s.held, s.orders, s.customers)
		}
	}
}

// sameStatus compares two readings, ignoring the clock.
func sameStatus(a, b engine.ProductStatus) bool {
	a.Now, b.Now = time.Time{}, time.Time{}
	return a == b
}

func TestProductStatusConsistent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		st   engine.ProductStatus
		want bool
	}{
		{"fresh", engine.ProductStatus{Remaining: 10, Initial: 10}, true},
		{"sold out", engine.ProductStatus{Remaining: 0, Initial: 10, Held: 10, Buyers: 10}, true},
		{"empty product", engine.ProductStatus{}, true},
		{"units held twice", engine.ProductStatus{Remaining: 5, Initial: 10, Held: 6}, false},
		{"units lost", engine.ProductStatus{Remaining: 5, Initial: 10, Held: 4}, false},
		{"negative stock", engine.ProductStatus{Remaining: -1, Initial: 10, Held: 11}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.st.Consistent(); got != tt.want {
				t.Errorf("%+v.Consistent() = %v, want %v", tt.st, got, tt.want)
			}
		})
	}
}

func TestAdminBuyers(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	id := newProduct(t, eng, 10)
	users := []string{"u1", "u2", "u3", "u4"}
	for _, u := range users {
		if res := eng.Purchase(testContext(t), engine.Request{ProductID: id, UserID: u}); res.Status != wire.StatusSuccess {
			t.Fatalf("purchase %s = %+v", u, res)
		}
	}
	tests := []struct {
		limit int
		want  []string
	}{
		{0, users},
		{-1, users},
		{1, users[:1]},
		{2, users[:2]},
		{4, users},
		{100, users},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("limit=%d", tt.limit), func(t *testing.T) {
			t.Parallel()
			total, ids, err := eng.Buyers(testContext(t), id, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if total != int64(len(users)) || !slices.Equal(ids, tt.want) {
				t.Errorf("Buyers(limit %d) = %d %q, want %d %q", tt.limit, total, ids, len(users), tt.want)
			}
		})
	}

	t.Run("no buyers", func(t *testing.T) {
		t.Parallel()
		empty := newProduct(t, eng, 3)
		total, ids, err := eng.Buyers(testContext(t), empty, 0)
		if err != nil || total != 0 || len(ids) != 0 {
			t.Errorf("Buyers(empty) = %d %q %v, want 0 [] nil", total, ids, err)
		}
	})
}

func TestAdminReset(t *testing.T) {
	t.Parallel()
	eng, addr := newEngine(t)
	ctx := testContext(t)
	c := redistest.Conn(t, addr)
	id := newProduct(t, eng, 3)
	for i := range 5 {
		eng.Purchase(ctx, engine.Request{ProductID: id, UserID: fmt.Sprint("u", i)})
	}

	initial, _, err := eng.Reset(ctx, id)
	if err != nil || initial != 3 {
		t.Fatalf("Reset = %d, %v; want 3, nil", initial, err)
	}
	k := engine.KeysFor(id)
	if stock, err := redis.String(c.Do("GET", k.Stock)); err != nil || stock != "3" {
		t.Errorf("stock after reset = %q, %v; want \"3\"", stock, err)
	}
	if n, err := redis.Int(c.Do("EXISTS", k.Buyers)); err != nil || n != 0 {
		t.Errorf("buyers after reset: EXISTS = %d, %v; want 0", n, err)
	}
	st, err := eng.Status(ctx, id)
	if want := (engine.ProductStatus{ID: id, Remaining: 3, Initial: 3, Limit: engine.DefaultPerUserLimit}); err != nil || !sameStatus(st, want) {
		t.Errorf("Status after reset = %+v, %v; want %+v", st, err, want)
	}
	// The product sells again, to anyone.
	if res := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "u0"}); res.Status != wire.StatusSuccess || res.Remaining != 2 {
		t.Errorf("purchase after reset = %+v, want SUCCESS remaining 2", res)
	}
}

func TestAdminDelete(t *testing.T) {
	t.Parallel()
	eng, addr := newEngine(t)
	ctx := testContext(t)
	c := redistest.Conn(t, addr)
	id := newProduct(t, eng, 3)
	eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "alice"})

	if err := eng.Delete(ctx, id); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	k := engine.KeysFor(id)
	if n, err := redis.Int(c.Do("EXISTS", k.Stock, k.Buyers, k.Meta)); err != nil || n != 0 {
		t.Errorf("EXISTS after delete = %d, %v; want 0", n, err)
	}
	if err := eng.Delete(ctx, id); !errors.Is(err, engine.ErrUnknownProduct) {
		t.Errorf("second Delete = %v, want ErrUnknownProduct", err)
	}
	if res := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "bob"}); res.Code != engine.CodeUnknownProduct {
		t.Errorf("purchase after delete = %+v, want UNKNOWN_PRODUCT", res)
	}
}

func TestAdminUnknownProduct(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	id := redistest.Product(t)
	tests := []struct {
		name string
		op   func(ctx context.Context) error
	}{
		{"Status", func(ctx context.Context) error { _, err := eng.Status(ctx, id); return err }},
		{"Reset", func(ctx context.Context) error { _, _, err := eng.Reset(ctx, id); return err }},
		{"Buyers", func(ctx context.Context) error { _, _, err := eng.Buyers(ctx, id, 0); return err }},
		{"Delete", func(ctx context.Context) error { return eng.Delete(ctx, id) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.op(testContext(t)); !errors.Is(err, engine.ErrUnknownProduct) {
				t.Errorf("%s(unknown) = %v, want ErrUnknownProduct", tt.name, err)
			}
		})
	}
}

func TestAdminInvalidProductID(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	tests := []struct {
		name string
		op   func(ctx context.Context, id string) error
	}{
		{"Init", func(ctx context.Context, id string) error { return eng.Init(ctx, id, 1) }},
		{"Status", func(ctx context.Context, id string) error { _, err := eng.Status(ctx, id); return err }},
		{"Reset", func(ctx context.Context, id string) error { _, _, err := eng.Reset(ctx, id); return err }},
		{"Buyers", func(ctx context.Context, id string) error { _, _, err := eng.Buyers(ctx, id, 0); return err }},
		{"Delete", func(ctx context.Context, id string) error { return eng.Delete(ctx, id) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, id := range []string{"", "{x}", strings.Repeat("x", 129)} {
				if err := tt.op(testContext(t), id); !errors.Is(err, engine.ErrInvalidRequest) {
					t.Errorf("%s(%q) = %v, want ErrInvalidRequest", tt.name, id, err)
				}
			}
		})
	}
}

func TestInitNegativeUnits(t *testing.T) {
	t.Parallel()
	eng, addr := newEngine(t)
	c := redistest.Conn(t, addr)
	for _, units := range []int64{-1, -100} {
		id := redistest.Product(t)
		if err := eng.Init(testContext(t), id, units); !errors.Is(err, engine.ErrInvalidStock) {
			t.Errorf("Init(%d) = %v, want ErrInvalidStock", units, err)
		}
		k := engine.KeysFor(id)
		if n, err := redis.Int(c.Do("EXISTS", k.Stock, k.Buyers, k.Meta)); err != nil || n != 0 {
			t.Errorf("Init(%d) created keys: EXISTS = %d, %v", units, n, err)
		}
	}
}

func TestReInitClearsBuyers(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	ctx := testContext(t)
	id := newProduct(t, eng, 2)
	eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "a"})
	eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "b"})

	if err := eng.Init(ctx, id, 7, engine.WithForce()); err != nil {
		t.Fatal(err)
	}
	st, err := eng.Status(ctx, id)
	if want := (engine.ProductStatus{ID: id, Remaining: 7, Initial: 7, Limit: engine.DefaultPerUserLimit}); err != nil || !sameStatus(st, want) {
		t.Errorf("Status after re-Init = %+v, %v; want %+v", st, err, want)
	}
	total, ids, err := eng.Buyers(ctx, id, 0)
	if err != nil || total != 0 || len(ids) != 0 {
		t.Errorf("Buyers after re-Init = %d %q %v", total, ids, err)
	}
}

func TestRedisUnavailable(t *testing.T) {
	t.Parallel()
	pool := transport.NewPool(transport.PoolConfig{Addr: closedAddr(t), DialTimeout: time.Second, Timeout: 2 * time.Second})
	t.Cleanup(func() { pool.Close() })
	eng := engine.New(pool)

	// Guard against a hang only: Purchase must come back at all.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan engine.Result, 1)
	go func() { done <- eng.Purchase(ctx, engine.Request{ProductID: "p", UserID: "u"}) }()
	var res engine.Result
	select {
	case res = <-done:
	case <-time.After(testTimeout):
		t.Fatal("Purchase did not return with Redis down")
	}
	if res.Status != wire.StatusError || res.Code != engine.CodeUnavailable || res.Message != "redis unavailable" {
		t.Errorf("Purchase = %+v, want ERROR UNAVAILABLE \"redis unavailable\"", res)
	}
	if !errors.Is(res.Err, engine.ErrUnavailable) {
		t.Errorf("Purchase Err = %v, want ErrUnavailable", res.Err)
	}

	if err := pool.Ping(ctx); !errors.Is(err, engine.ErrUnavailable) {
		t.Errorf("Ping = %v, want ErrUnavailable", err)
	}
	if err := pool.Load(ctx, engine.Scripts()...); !errors.Is(err, engine.ErrUnavailable) {
		t.Errorf("Load = %v, want ErrUnavailable", err)
	}
	if _, err := eng.Status(ctx, "p"); !errors.Is(err, engine.ErrUnavailable) {
		t.Errorf("Status = %v, want ErrUnavailable", err)
	}
}

func TestPurchaseExpiredContext(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	id := newProduct(t, eng, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "u"})
	if res.Code != engine.CodeUnavailable || !errors.Is(res.Err, engine.ErrUnavailable) {
		t.Errorf("Purchase(cancelled ctx) = %+v, want UNAVAILABLE", res)
	}
	// Nothing was sold.
	if st, err := eng.Status(testContext(t), id); err != nil || st.Remaining != 1 {
		t.Errorf("Status = %+v, %v; want 1 remaining", st, err)
	}
}

func TestPing(t *testing.T) {
	t.Parallel()
	pool, addr := newPool(t)
	if err := pool.Ping(testContext(t)); err != nil {
		t.Errorf("Ping = %v", err)
	}
	if err := engine.New(pool).Ping(testContext(t)); err != nil {
		t.Errorf("Engine.Ping = %v", err)
	}

	t.Run("redis URL", func(t *testing.T) {
		t.Parallel()
		url := addr
		if !strings.Contains(url, "://") {
			url = "redis://" + addr + "/0"
		}
		p := transport.NewPool(transport.PoolConfig{Addr: url})
		t.Cleanup(func() { p.Close() })
		if err := p.Ping(testContext(t)); err != nil {
			t.Errorf("Ping(%s) = %v", url, err)
		}
	})
}

func TestFailCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		err     error
		code    string
		message string
	}{
		{"invalid", engine.ValidateUserID(""), engine.CodeInvalidRequest, "missing user_id"},
		{"unknown product", fmt.Errorf("x: %w", engine.ErrUnknownProduct), engine.CodeUnknownProduct, "unknown product"},
		{"unavailable hides details", fmt.Errorf("dial 10.0.0.1: %w", engine.ErrUnavailable), engine.CodeUnavailable, "redis unavailable"},
		{"refused", fmt.Errorf("eval: %w", engine.ErrRefused), engine.CodeUnavailable, "redis unavailable: the request did not run (nothing was sold); it can be retried"},
		{"store full before refused", fmt.Errorf("eval: %w: %w", engine.ErrRefused, engine.ErrStoreFull), engine.CodeStoreFull, "the sale's store is full: the request did not run (nothing was recorded); retry later"},
		{"internal hides details", errors.New("ERR stock of p is not a number"), engine.CodeInternal, "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := engine.Fail(tt.err)
			if res.Status != wire.StatusError || res.Code != tt.code || res.Message != tt.message || res.Err != tt.err {
				t.Errorf("Fail(%v) = %+v, want code %s message %q", tt.err, res, tt.code, tt.message)
			}
		})
	}
}

func TestPurchaseCorruptStockIsInternal(t *testing.T) {
	t.Parallel()
	eng, addr := newEngine(t)
	c := redistest.Conn(t, addr)
	id := newProduct(t, eng, 3)
	rawDo(t, c, "SET", engine.KeysFor(id).Stock, "lots")
	res := eng.Purchase(testContext(t), engine.Request{ProductID: id, UserID: "u"})
	if res.Status != wire.StatusError || res.Code != engine.CodeInternal || res.Message != "internal error" {
		t.Errorf("Purchase(corrupt stock) = %+v, want ERROR INTERNAL", res)
	}
	if errors.Is(res.Err, engine.ErrUnavailable) {
		t.Errorf("a script error reply was classified as unavailable: %v", res.Err)
	}
}

func TestResultZeroValueIsError(t *testing.T) {
	t.Parallel()
	var r engine.Result
	if r.Status != wire.StatusError {
		t.Errorf("zero Result.Status = %v, want ERROR", r.Status)
	}
}
