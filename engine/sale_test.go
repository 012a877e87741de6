package engine_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/transport"
	"github.com/flashsale/flashsale/wire"
)

// books is every key of a product as Redis holds it, for "nothing
// changed" checks.
type books struct {
	Stock    string
	Meta     map[string]string
	Holders  map[string]string
	Buyers   []string
	Orders   int64
	Released map[string]string
}

// ttlEngine is an engine on a real Redis that remembers request ids for
// ttl, with a product of 10 units and no per-customer limit.
func ttlEngine(t *testing.T, ttl time.Duration) (*engine.Engine, *transport.Pool, redis.Conn, string) {
	t.Helper()
	redistest.SkipUnlessReal(t, "the embedded store does not expire keys as time passes")
	pool, addr := newPool(t)
	eng := engine.New(pool, engine.WithRequestTTL(ttl))
	id := newProduct(t, eng, 10, engine.WithPerUserLimit(0))
	return eng, pool, redistest.Conn(t, addr), id
}

// requestRecord returns request id rid's record in product id's request
// hashes, and the PTTL of the hash holding it.
func requestRecord(t testing.TB, c redis.Conn, id, rid string) (string, int64) {
	t.Helper()
	for _, key := range engine.KeysFor(id).Requests {
		rec, err := redis.String(c.Do("HGET", key, rid))
		if err == redis.ErrNil {
			continue
		}
		pttl, err2 := redis.Int64(c.Do("PTTL", key))
		if err != nil || err2 != nil {
			t.Fatalf("record %s in %s: %v, %v", rid, key, err, err2)
		}
		return rec, pttl
	}
	t.Fatalf("no record of %s in %v", rid, engine.KeysFor(id).Requests)
	return "", 0
}

// redisNowMs is Redis's clock, in ms.
func redisNowMs(t testing.TB, c redis.Conn) int64 {
	t.Helper()
	v, err := redis.Int64s(c.Do("TIME"))
	if err != nil || len(v) != 2 {
		t.Fatalf("TIME: %v %v", v, err)
	}
	return v[0]*1000 + v[1]/1000
}

func readBooks(t testing.TB, c redis.Conn, id string) books {
	t.Helper()
	k := engine.KeysFor(id)
	var b books
	var err error
	if b.Stock, err = redis.String(c.Do("GET", k.Stock)); err != nil {
		t.Fatalf("GET %s: %v", k.Stock, err)
	}
	if b.Meta, err = redis.StringMap(c.Do("HGETALL", k.Meta)); err != nil {
		t.Fatalf("HGETALL %s: %v", k.Meta, err)
	}
	if b.Holders, err = redis.StringMap(c.Do("HGETALL", k.Holders)); err != nil {
		t.Fatalf("HGETALL %s: %v", k.Holders, err)
	}
	if b.Buyers, err = redis.Strings(c.Do("LRANGE", k.Buyers, 0, -1)); err != nil {
		t.Fatalf("LRANGE %s: %v", k.Buyers, err)
	}
	if b.Orders, err = redis.Int64(c.Do("XLEN", k.Orders)); err != nil {
		t.Fatalf("XLEN %s: %v", k.Orders, err)
	}
	if b.Released, err = redis.StringMap(c.Do("HGETALL", k.Released)); err != nil {
		t.Fatalf("HGETALL %s: %v", k.Released, err)
	}
	return b
}

func (b books) String() string {
	return fmt.Sprintf("stock %s meta %v holders %v buyers %q orders %d released %v",
		b.Stock, b.Meta, b.Holders, b.Buyers, b.Orders, b.Released)
}

func sameBooks(a, b books) bool {
	return a.Stock == b.Stock && a.Orders == b.Orders && slices.Equal(a.Buyers, b.Buyers) &&
		mapsEqual(a.Meta, b.Meta) && mapsEqual(a.Holders, b.Holders) && mapsEqual(a.Released, b.Released)
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// expectUnchanged fails the test if the product's keys differ from before.
func expectUnchanged(t testing.TB, c redis.Conn, id string, before books, what string) {
	t.Helper()
	if after := readBooks(t, c, id); !sameBooks(before, after) {
		t.Errorf("%s changed the product:\nbefore %v\nafter  %v", what, before, after)
	}
}

// expectBalanced fails the test unless Verify finds the books balanced.
func expectBalanced(t testing.TB, eng *engine.Engine, id, when string) engine.Audit {
	t.Helper()
	a, err := eng.Verify(testContext(t), id)
	if err != nil {
		t.Fatalf("Verify %s: %v", when, err)
	}
	if !a.OK() {
		t.Errorf("Verify %s: problems %q (audit %+v)", when, a.Problems, a)
	}
	return a
}

// sameOutcome compares the fields of a Result a client sees, except the
// order id, which only SUCCESS has and which is checked apart.
func sameOutcome(got, want engine.Result) bool {
	return got.Status == want.Status && got.Remaining == want.Remaining && got.Quantity == want.Quantity &&
		got.Held == want.Held && got.Limit == want.Limit && got.Code == want.Code
}

func TestPerUserLimit(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	type step struct {
		user string
		qty  int64
		want engine.Result
	}
	success := func(remaining, qty int64) engine.Result {
		return engine.Result{Status: wire.StatusSuccess, Remaining: remaining, Quantity: qty}
	}
	already := func(held, limit int64) engine.Result {
		return engine.Result{Status: wire.StatusAlreadyPurchased, Held: held, Limit: limit}
	}
	tests := []struct {
		name  string
		units int64
		opts  []engine.InitOption
		limit int64 // what Status reports
		steps []step
	}{
		{"default limit is one", 5, nil, 1, []step{
			{"alice", 1, success(4, 1)},
			{"alice", 1, already(1, 1)},
			{"alice", 2, already(1, 1)},
			{"bob", 2, already(0, 1)}, // one purchase may not pass the limit either
			{"bob", 0, success(3, 1)}, // quantity 0 means 1
			{"bob", 1, already(1, 1)},
		}},
		{"limit of three with quantities", 10, []engine.InitOption{engine.WithPerUserLimit(3)}, 3, []step{
			{"alice", 2, success(8, 2)},
			{"alice", 2, already(2, 3)},
			{"alice", 1, success(7, 1)},
			{"alice", 1, already(3, 3)},
			{"bob", 4, already(0, 3)},
			{"bob", 3, success(4, 3)},
			{"carol", 3, success(1, 3)},
			{"dave", 2, engine.Result{Status: wire.StatusInsufficientStock, Remaining: 1}},
			{"dave", 1, success(0, 1)},
			{"erin", 1, engine.Result{Status: wire.StatusSoldOut}},
		}},
		{"limit zero is unlimited", 10, []engine.InitOption{engine.WithPerUserLimit(0)}, 0, []step{
			{"alice", 3, success(7, 3)},
			{"alice", 3, success(4, 3)},
			{"alice", 1, success(3, 1)},
			{"alice", 3, success(0, 3)},
			{"alice", 1, engine.Result{Status: wire.StatusSoldOut}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			id := newProduct(t, eng, tt.units, tt.opts...)
			held := make(map[string]int64)
			for i, s := range tt.steps {
				res := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: s.user, Quantity: s.qty})
				if !sameOutcome(res, s.want) {
					t.Fatalf("step %d: %s buys %d = %+v, want %+v", i, s.user, s.qty, res, s.want)
				}
				if res.Status == wire.StatusSuccess {
					if err := engine.ValidateOrderID(res.OrderID); err != nil {
						t.Errorf("step %d: order id: %v", i, err)
					}
					held[s.user] += res.Quantity
				} else if res.OrderID != "" {
					t.Errorf("step %d: %v with order id %q", i, res.Status, res.OrderID)
				}
			}
			st, err := eng.Status(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			var sum int64
			for _, q := range held {
				sum += q
			}
			if st.Limit != tt.limit || st.Held != sum || st.Remaining != tt.units-sum {
				t.Errorf("Status = %+v, want limit %d, %d held, %d remaining", st, tt.limit, sum, tt.units-sum)
			}
			a := expectBalanced(t, eng, id, "after the steps")
			if a.Customers != int64(len(held)) || a.Held != sum {
				t.Errorf("audit = %+v, want %d customers holding %d", a, len(held), sum)
			}
		})
	}
}

func TestAlreadyPurchasedChangesNothing(t *testing.T) {
	t.Parallel()
	eng, addr := newEngine(t)
	ctx := testContext(t)
	c := redistest.Conn(t, addr)
	id := newProduct(t, eng, 10)
	first := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "alice"})
	if first.Status != wire.StatusSuccess || first.Remaining != 9 {
		t.Fatalf("first purchase = %+v", first)
	}
	before := readBooks(t, c, id)
	if before.Stock != "9" || before.Holders["alice"] != "1" || len(before.Buyers) != 1 || before.Orders != 1 {
		t.Fatalf("after one sale: %v", before)
	}
	for _, q := range []int64{1, 2} {
		res := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "alice", Quantity: q})
		if want := (engine.Result{Status: wire.StatusAlreadyPurchased, Held: 1, Limit: 1}); res != want {
			t.Errorf("second purchase of %d = %+v, want %+v", q, res, want)
		}
	}
	expectUnchanged(t, c, id, before, "ALREADY_PURCHASED")
	expectBalanced(t, eng, id, "after refusals")
}

func TestPerUserLimitConcurrent(t *testing.T) {
	t.Parallel()
	const units, attempts, customers = 100, 1000, 50
	eng, addr := newEngine(t)
	id := newProduct(t, eng, units)

	results := purchaseConcurrently(t, eng, id, attempts, func(i int) string { return fmt.Sprintf("customer_%d", i%customers) })

	wins := make(map[string]int)
	var remaining []int64
	for i, res := range results {
		user := fmt.Sprintf("customer_%d", i%customers)
		switch res.Status {
		case wire.StatusSuccess:
			wins[user]++
			remaining = append(remaining, res.Remaining)
		case wire.StatusAlreadyPurchased:
			if res.Held != 1 || res.Limit != 1 {
				t.Errorf("attempt %d = %+v, want held 1 of limit 1", i, res)
			}
		default:
			t.Errorf("attempt %d = %+v", i, res)
		}
	}
	if len(remaining) != customers {
		t.Fatalf("%d SUCCESS, want %d (one per customer)", len(remaining), customers)
	}
	for u, n := range wins {
		if n != 1 {
			t.Errorf("%s bought %d times", u, n)
		}
	}
	slices.Sort(remaining)
	for i, r := range remaining {
		if want := int64(units - customers + i); r != want {
			t.Fatalf("remaining of the sales = %v, want %d..%d", remaining, units-customers, units-1)
		}
	}

	c := redistest.Conn(t, addr)
	b := readBooks(t, c, id)
	if b.Stock != fmt.Sprint(units-customers) || len(b.Holders) != customers || len(b.Buyers) != customers || b.Orders != customers {
		t.Errorf("books = %v, want %d customers with one unit each", b, customers)
	}
	for u, q := range b.Holders {
		if q != "1" || wins[u] != 1 {
			t.Errorf("holder %s holds %s units, won %d times", u, q, wins[u])
		}
	}
	listed := make(map[string]bool)
	for _, u := range b.Buyers {
		if listed[u] {
			t.Errorf("buyer %s listed twice", u)
		}
		listed[u] = true
	}
	a := expectBalanced(t, eng, id, "after the rush")
	if a.Orders != customers || a.Customers != customers || a.Sold != customers {
		t.Errorf("audit = %+v", a)
	}
}

func TestQuantity(t *testing.T) {
	t.Parallel()
	eng, addr := newEngine(t)
	unlimited := engine.WithPerUserLimit(0)

	t.Run("all or nothing", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name  string
			units int64
			sold  int64 // sold first, in one purchase
			qty   int64
			want  engine.Result
		}{
			{"more than the stock", 5, 0, 6, engine.Result{Status: wire.StatusInsufficientStock, Remaining: 5}},
			{"more than what is left", 5, 3, 3, engine.Result{Status: wire.StatusInsufficientStock, Remaining: 2}},
			{"the cap against a small stock", 5, 0, engine.MaxQuantity, engine.Result{Status: wire.StatusInsufficientStock, Remaining: 5}},
			{"exactly what is left", 5, 3, 2, engine.Result{Status: wire.StatusSuccess, Remaining: 0, Quantity: 2}},
			{"the whole stock", 7, 0, 7, engine.Result{Status: wire.StatusSuccess, Remaining: 0, Quantity: 7}},
			{"sold out beats insufficient", 4, 4, 2, engine.Result{Status: wire.StatusSoldOut}},
			{"the cap", engine.MaxQuantity, 0, engine.MaxQuantity, engine.Result{Status: wire.StatusSuccess, Remaining: 0, Quantity: engine.MaxQuantity}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				ctx := testContext(t)
				c := redistest.Conn(t, addr)
				id := newProduct(t, eng, tt.units, unlimited)
				if tt.sold > 0 {
					if res := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "first", Quantity: tt.sold}); res.Status != wire.StatusSuccess {
						t.Fatalf("first purchase = %+v", res)
					}
				}
				before := readBooks(t, c, id)
				res := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "second", Quantity: tt.qty})
				if !sameOutcome(res, tt.want) {
					t.Fatalf("purchase of %d = %+v, want %+v", tt.qty, res, tt.want)
				}
				if res.Status != wire.StatusSuccess {
					expectUnchanged(t, c, id, before, res.Status.String())
				} else if b := readBooks(t, c, id); b.Holders["second"] != fmt.Sprint(tt.qty) || b.Stock != "0" {
					t.Errorf("after the sale: %v", b)
				}
				expectBalanced(t, eng, id, "after the purchase")
			})
		}
	})

	t.Run("validate defaults", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			qty, want int64
		}{{0, 1}, {1, 1}, {2, 2}, {engine.MaxQuantity, engine.MaxQuantity}}
		for _, tt := range tests {
			req := engine.Request{ProductID: "p", UserID: "u", Quantity: tt.qty}
			if err := req.Validate(); err != nil || req.Quantity != tt.want {
				t.Errorf("Validate(quantity %d) = %v, quantity %d; want nil, %d", tt.qty, err, req.Quantity, tt.want)
			}
		}
	})

	t.Run("bounds", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t)
		c := redistest.Conn(t, addr)
		id := newProduct(t, eng, 2*engine.MaxQuantity, unlimited)
		before := readBooks(t, c, id)
		for _, q := range []int64{-1, -engine.MaxQuantity, engine.MaxQuantity + 1, math.MaxInt64, math.MinInt64} {
			req := engine.Request{ProductID: id, UserID: "u", Quantity: q}
			if err := req.Validate(); !errors.Is(err, engine.ErrInvalidRequest) {
				t.Errorf("Validate(quantity %d) = %v, want ErrInvalidRequest", q, err)
			}
			res := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "u", Quantity: q})
			if res.Status != wire.StatusError || res.Code != engine.CodeInvalidRequest {
				t.Errorf("purchase of %d = %+v, want INVALID_REQUEST", q, res)
			}
		}
		expectUnchanged(t, c, id, before, "invalid quantities")
		for i, q := range []int64{0, 1, engine.MaxQuantity} {
			res := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "u", Quantity: q})
			if want := max(q, 1); res.Status != wire.StatusSuccess || res.Quantity != want {
				t.Errorf("purchase %d of %d = %+v, want SUCCESS of %d", i, q, res, want)
			}
		}
		if st, err := eng.Status(ctx, id); err != nil || st.Remaining != engine.MaxQuantity-2 {
			t.Errorf("Status = %+v, %v; want %d remaining", st, err, engine.MaxQuantity-2)
		}
	})
}

func TestRequestIDConcurrentRetries(t *testing.T) {
	t.Parallel()
	const retries = 200
	eng, addr := newEngine(t)
	ctx := testContext(t)
	c := redistest.Conn(t, addr)
	id := newProduct(t, eng, 10)
	const rid = "req-42"

	results := make([]engine.Result, retries)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range retries {
		wg.Go(func() {
			<-start
			results[i] = eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "alice", RequestID: rid})
		})
	}
	close(start)
	wg.Wait()

	first := results[0]
	if first.Status != wire.StatusSuccess || first.Remaining != 9 || first.Quantity != 1 || first.OrderID == "" {
		t.Fatalf("result 0 = %+v, want SUCCESS remaining 9", first)
	}
	for i, res := range results {
		if res != first {
			t.Errorf("result %d = %+v, want the same as result 0 %+v", i, res, first)
		}
	}
	b := readBooks(t, c, id)
	if b.Stock != "9" || b.Orders != 1 || len(b.Buyers) != 1 || b.Holders["alice"] != "1" {
		t.Errorf("books = %v, want exactly one unit sold", b)
	}
	orders, err := eng.Orders(ctx, id, 0)
	if err != nil || len(orders) != 1 || orders[0].ID != first.OrderID {
		t.Errorf("Orders = %+v, %v; want the one sale %s", orders, err, first.OrderID)
	}

	// The record: a field of the product's request hash, with the
	// request's expiry in it; the hash has a TTL.
	rec, pttl := requestRecord(t, c, id, rid)
	if pttl <= 0 || pttl > engine.DefaultRequestTTL.Milliseconds() {
		t.Errorf("PTTL of the request hash = %d; want in (0, %d]", pttl, engine.DefaultRequestTTL.Milliseconds())
	}
	// epoch|expires_ms|remaining|order_id|user\nquantity
	if f := strings.SplitN(rec, "|", 5); len(f) != 5 || f[2] != "9" || f[3] != first.OrderID || f[4] != "alice\n1" {
		t.Errorf("record of %s = %q; want remaining 9, order %s", rid, rec, first.OrderID)
	}
	expectBalanced(t, eng, id, "after the retries")

	// A replay answers the same even when stock moved since.
	if res := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "bob"}); res.Status != wire.StatusSuccess || res.Remaining != 8 {
		t.Fatalf("bob = %+v", res)
	}
	if res := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "alice", RequestID: rid}); res != first {
		t.Errorf("late retry = %+v, want %+v", res, first)
	}
	// The same id on another product is another request.
	other := newProduct(t, eng, 3)
	if res := eng.Purchase(ctx, engine.Request{ProductID: other, UserID: "alice", RequestID: rid}); res.Status != wire.StatusSuccess || res.Remaining != 2 {
		t.Errorf("same request id on another product = %+v, want SUCCESS remaining 2", res)
	}
}

func TestRequestIDReused(t *testing.T) {
	t.Parallel()
	eng, addr := newEngine(t)
	tests := []struct {
		name  string
		limit int64
		user  string
		qty   int64
	}{
		{"another user", 1, "bob", 1},
		{"another quantity", 5, "alice", 2},
		{"another quantity above the limit", 1, "alice", 2},
		{"both", 5, "bob", 3},
		{"another user, quantity unset", 5, "bob", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			c := redistest.Conn(t, addr)
			id := newProduct(t, eng, 10, engine.WithPerUserLimit(tt.limit))
			orig := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "alice", RequestID: "r1"})
			if orig.Status != wire.StatusSuccess {
				t.Fatalf("first purchase = %+v", orig)
			}
			before := readBooks(t, c, id)
			res := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: tt.user, Quantity: tt.qty, RequestID: "r1"})
			if res.Status != wire.StatusError || res.Code != engine.CodeRequestReused || !errors.Is(res.Err, engine.ErrRequestReused) {
				t.Errorf("reused request id = %+v, want ERROR %s", res, engine.CodeRequestReused)
			}
			expectUnchanged(t, c, id, before, "a reused request id")
			// The original still replays; quantity 1 is what it had unset.
			if res := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "alice", Quantity: 1, RequestID: "r1"}); res != orig {
				t.Errorf("retry of the original = %+v, want %+v", res, orig)
			}
		})
	}
}

func TestRequestIDAfterReset(t *testing.T) {
	t.Parallel()
	eng, addr := newEngine(t)
	ctx := testContext(t)
	c := redistest.Conn(t, addr)
	id := newProduct(t, eng, 10)
	req := engine.Request{ProductID: id, UserID: "alice", RequestID: "r-reset"}
	if res := eng.Purchase(ctx, req); res.Status != wire.StatusSuccess || res.Remaining != 9 {
		t.Fatalf("purchase = %+v", res)
	}
	for _, op := range []string{"Reset", "Init"} {
		if op == "Reset" {
			if _, _, err := eng.Reset(ctx, id); err != nil {
				t.Fatal(err)
			}
		} else if err := eng.Init(ctx, id, 10, engine.WithForce()); err != nil {
			t.Fatal(err)
		}
		// A replay would answer without selling; the new epoch sells.
		res := eng.Purchase(ctx, req)
		if res.Status != wire.StatusSuccess || res.Remaining != 9 {
			t.Fatalf("purchase after %s = %+v, want SUCCESS remaining 9", op, res)
		}
		if b := readBooks(t, c, id); b.Stock != "9" || b.Orders != 1 || b.Holders["alice"] != "1" {
			t.Errorf("after %s and a purchase: %v, want a new sale", op, b)
		}
		if again := eng.Purchase(ctx, req); again != res {
			t.Errorf("retry after %s = %+v, want the replay %+v", op, again, res)
		}
		expectBalanced(t, eng, id, "after "+op)
	}
}

func TestRequestIDExpires(t *testing.T) {
	t.Parallel()
	const ttl = 300 * time.Millisecond
	eng, _, c, id := ttlEngine(t, ttl)
	ctx := testContext(t)
	req := engine.Request{ProductID: id, UserID: "alice", RequestID: "r-ttl"}
	first := eng.Purchase(ctx, req)
	if first.Status != wire.StatusSuccess || first.Remaining != 9 {
		t.Fatalf("purchase = %+v", first)
	}
	rec, pttl := requestRecord(t, c, id, req.RequestID)
	if pttl > ttl.Milliseconds() || pttl <= 0 {
		t.Fatalf("PTTL of the request hash = %d; want at most %d", pttl, ttl.Milliseconds())
	}
	// Wait (on Redis's clock) past the record's own expiry; the
	// deadline only guards against a hang.
	expires, err := strconv.ParseInt(strings.SplitN(rec, "|", 3)[1], 10, 64)
	if err != nil {
		t.Fatalf("record %q: %v", rec, err)
	}
	for redisNowMs(t, c) <= expires {
		if ctx.Err() != nil {
			t.Fatalf("request record %q never expired", rec)
		}
		time.Sleep(50 * time.Millisecond)
	}
	again := eng.Purchase(ctx, req)
	if again.Status != wire.StatusSuccess || again.Remaining != 8 || again.OrderID == first.OrderID {
		t.Errorf("retry after expiry = %+v, want a new sale (remaining 8)", again)
	}
	if b := readBooks(t, c, id); b.Orders != 2 || b.Holders["alice"] != "2" {
		t.Errorf("books = %v, want two sales", b)
	}
}

func TestSaleWindow(t *testing.T) {
	t.Parallel()
	eng, addr := newEngine(t)
	// Sub-millisecond parts: the engine keeps milliseconds.
	now := time.Now()
	future := now.Add(time.Hour + 123456*time.Nanosecond)
	later := now.Add(2*time.Hour + 987654*time.Nanosecond)
	past := now.Add(-time.Hour - 555555*time.Nanosecond)
	earlier := now.Add(-2 * time.Hour)
	ms := func(t time.Time) time.Time { return time.UnixMilli(t.UnixMilli()).UTC() }
	tests := []struct {
		name       string
		start, end time.Time
		want       engine.Result
		state      engine.State
	}{
		{"future start", future, time.Time{}, engine.Result{Status: wire.StatusNotStarted, Start: ms(future)}, engine.StateUpcoming},
		{"future start and end", future, later, engine.Result{Status: wire.StatusNotStarted, Start: ms(future)}, engine.StateUpcoming},
		{"past end", time.Time{}, past, engine.Result{Status: wire.StatusEnded, End: ms(past)}, engine.StateEnded},
		{"past start and end", earlier, past, engine.Result{Status: wire.StatusEnded, End: ms(past)}, engine.StateEnded},
		{"inside the window", past, future, engine.Result{Status: wire.StatusSuccess, Remaining: 2, Quantity: 1}, engine.StateOpen},
		{"past start only", past, time.Time{}, engine.Result{Status: wire.StatusSuccess, Remaining: 2, Quantity: 1}, engine.StateOpen},
		{"future end only", time.Time{}, future, engine.Result{Status: wire.StatusSuccess, Remaining: 2, Quantity: 1}, engine.StateOpen},
		{"no window", time.Time{}, time.Time{}, engine.Result{Status: wire.StatusSuccess, Remaining: 2, Quantity: 1}, engine.StateOpen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			c := redistest.Conn(t, addr)
			id := newProduct(t, eng, 3, engine.WithWindow(tt.start, tt.end))
			st, err := eng.Status(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			wantStart, wantEnd := time.Time{}, time.Time{}
			if !tt.start.IsZero() {
				wantStart = ms(tt.start)
			}
			if !tt.end.IsZero() {
				wantEnd = ms(tt.end)
			}
			if !st.Start.Equal(wantStart) || !st.End.Equal(wantEnd) {
				t.Errorf("Status = %+v, want start %v end %v", st, wantStart, wantEnd)
			}
			if st.State() != tt.state {
				t.Errorf("State() = %s, want %s", st.State(), tt.state)
			}
			before := readBooks(t, c, id)
			res := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "alice"})
			if !sameOutcome(res, tt.want) || !res.Start.Equal(tt.want.Start) || !res.End.Equal(tt.want.End) {
				t.Fatalf("purchase = %+v, want %+v", res, tt.want)
			}
			if res.Status != wire.StatusSuccess {
				expectUnchanged(t, c, id, before, res.Status.String())
			}
		})
	}
}

func TestSaleWindowOpenClose(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	ctx := testContext(t)
	future := time.Now().Add(time.Hour)
	state := func(id string) engine.State {
		t.Helper()
		st, err := eng.Status(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return st.State()
	}
	buy := func(id, user string) wire.Status {
		t.Helper()
		return eng.Purchase(ctx, engine.Request{ProductID: id, UserID: user}).Status
	}

	id := newProduct(t, eng, 2, engine.WithWindow(future, time.Time{}))
	if s, st := buy(id, "a"), state(id); s != wire.StatusNotStarted || st != engine.StateUpcoming {
		t.Fatalf("before the start: %v, %s", s, st)
	}
	if err := eng.Open(ctx, id); err != nil {
		t.Fatal(err)
	}
	if st := state(id); st != engine.StateOpen {
		t.Errorf("after Open: %s, want OPEN", st)
	}
	if s := buy(id, "a"); s != wire.StatusSuccess {
		t.Errorf("after Open: %v, want SUCCESS", s)
	}
	if err := eng.Close(ctx, id); err != nil {
		t.Fatal(err)
	}
	if s, st := buy(id, "b"), state(id); s != wire.StatusEnded || st != engine.StateEnded {
		t.Errorf("after Close: %v, %s; want ENDED", s, st)
	}
	if err := eng.Open(ctx, id); err != nil {
		t.Fatal(err)
	}
	if s := buy(id, "b"); s != wire.StatusSuccess {
		t.Errorf("reopened: %v, want SUCCESS", s)
	}
	if st := state(id); st != engine.StateSoldOut {
		t.Errorf("after the last unit: %s, want SOLD_OUT", st)
	}
	if err := eng.Close(ctx, id); err != nil {
		t.Fatal(err)
	}
	if st := state(id); st != engine.StateEnded {
		t.Errorf("sold out and closed: %s, want ENDED", st)
	}
	expectBalanced(t, eng, id, "after open and close")

	// Open keeps an end still ahead.
	end := time.Now().Add(time.Hour)
	id2 := newProduct(t, eng, 1, engine.WithWindow(future.Add(-30*time.Minute), end))
	if err := eng.Open(ctx, id2); err != nil {
		t.Fatal(err)
	}
	if st, err := eng.Status(ctx, id2); err != nil || !st.Start.IsZero() || !st.End.Equal(time.UnixMilli(end.UnixMilli())) {
		t.Errorf("after Open: %+v, %v; want no start, end %v", st, err, end)
	}
	// A product that never had units is SOLD_OUT, not OPEN.
	if st := state(newProduct(t, eng, 0)); st != engine.StateSoldOut {
		t.Errorf("zero units: %s, want SOLD_OUT", st)
	}

	unknown := redistest.Product(t)
	if err := eng.Open(ctx, unknown); !errors.Is(err, engine.ErrUnknownProduct) {
		t.Errorf("Open(unknown) = %v, want ErrUnknownProduct", err)
	}
	if err := eng.Close(ctx, unknown); !errors.Is(err, engine.ErrUnknownProduct) {
		t.Errorf("Close(unknown) = %v, want ErrUnknownProduct", err)
	}
}

func TestInvalidWindow(t *testing.T) {
	t.Parallel()
	eng, addr := newEngine(t)
	c := redistest.Conn(t, addr)
	start := time.Now().Add(time.Hour)
	for _, end := range []time.Time{start, start.Add(-time.Millisecond), start.Add(-time.Hour)} {
		id := redistest.Product(t)
		if err := eng.Init(testContext(t), id, 5, engine.WithWindow(start, end)); !errors.Is(err, engine.ErrInvalidWindow) {
			t.Errorf("Init(window %v..%v) = %v, want ErrInvalidWindow", start, end, err)
		}
		k := engine.KeysFor(id)
		if n, err := redis.Int(c.Do("EXISTS", k.Stock, k.Meta)); err != nil || n != 0 {
			t.Errorf("a refused Init created keys: EXISTS = %d, %v", n, err)
		}
	}
}

func TestOrdersStream(t *testing.T) {
	t.Parallel()
	eng, addr := newEngine(t)
	ctx := testContext(t)
	c := redistest.Conn(t, addr)
	id := newProduct(t, eng, 10, engine.WithPerUserLimit(0))
	testStart := time.Now()

	buy := func(user string, qty int64) engine.Result {
		t.Helper()
		res := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: user, Quantity: qty})
		if res.Status != wire.StatusSuccess {
			t.Fatalf("%s buys %d = %+v", user, qty, res)
		}
		return res
	}
	a := buy("alice", 2)
	b := buy("bob", 1)
	// Refusals add nothing to the stream.
	if res := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "zed", Quantity: 100}); res.Status != wire.StatusInsufficientStock {
		t.Fatalf("zed = %+v", res)
	}
	rel, err := eng.Release(ctx, id, a.OrderID)
	if err != nil {
		t.Fatal(err)
	}
	remaining, _, err := eng.Restock(ctx, id, 5)
	if err != nil {
		t.Fatal(err)
	}
	cr := buy("carol", 3)

	want := []engine.Order{
		{ID: a.OrderID, Type: "sale", OrderID: a.OrderID, UserID: "alice", Quantity: 2, Remaining: 8},
		{ID: b.OrderID, Type: "sale", OrderID: b.OrderID, UserID: "bob", Quantity: 1, Remaining: 7},
		{Type: "release", OrderID: a.OrderID, UserID: "alice", Quantity: 2, Remaining: rel.Remaining},
		{Type: "restock", Quantity: 5, Remaining: remaining},
		{ID: cr.OrderID, Type: "sale", OrderID: cr.OrderID, UserID: "carol", Quantity: 3, Remaining: 11},
	}
	if rel.Remaining != 9 || remaining != 14 {
		t.Fatalf("release remaining %d, restock remaining %d; want 9, 14", rel.Remaining, remaining)
	}
	orders, err := eng.Orders(ctx, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(orders) != len(want) {
		t.Fatalf("Orders = %+v, want %d entries", orders, len(want))
	}
	for i, o := range orders {
		w := want[i]
		if w.ID == "" {
			w.ID = o.ID // release and restock entries: any fresh id
		}
		if engine.ValidateOrderID(o.ID) != nil {
			t.Errorf("entry %d id %q", i, o.ID)
		}
		if d := o.Time.Sub(testStart); d < -time.Hour || d > time.Hour {
			t.Errorf("entry %d time %v is far from the test's %v", i, o.Time, testStart)
		}
		o.Time = time.Time{}
		if o != w {
			t.Errorf("entry %d = %+v, want %+v", i, o, w)
		}
	}
	if !slices.IsSortedFunc(orders, func(x, y engine.Order) int { return compareStreamIDs(x.ID, y.ID) }) {
		t.Errorf("Orders ids are not in stream order: %+v", orders)
	}

	// The raw sale entry has exactly the documented fields.
	entries, err := redis.Values(c.Do("XRANGE", engine.KeysFor(id).Orders, a.OrderID, a.OrderID))
	if err != nil || len(entries) != 1 {
		t.Fatalf("XRANGE %s = %v, %v", a.OrderID, entries, err)
	}
	var eid string
	var fields []string
	if _, err := redis.Scan(entries[0].([]any), &eid, &fields); err != nil {
		t.Fatal(err)
	}
	var names []string
	for i := 0; i+1 < len(fields); i += 2 {
		names = append(names, fields[i])
	}
	if wantNames := []string{"type", "user_id", "quantity", "remaining", "time"}; eid != a.OrderID || !slices.Equal(names, wantNames) || fields[1] != "sale" {
		t.Errorf("sale entry %s = %q, want fields %q with type sale", eid, fields, wantNames)
	}

	for _, n := range []int{1, 2, 5, 100, -1} {
		got, err := eng.Orders(ctx, id, n)
		wantN := len(orders)
		if n > 0 {
			wantN = min(n, len(orders))
		}
		if err != nil || len(got) != wantN || !slices.Equal(got, orders[:wantN]) {
			t.Errorf("Orders(limit %d) = %d entries, %v; want the first %d", n, len(got), err, wantN)
		}
	}
	if got, err := eng.Orders(ctx, newProduct(t, eng, 1), 0); err != nil || len(got) != 0 {
		t.Errorf("Orders(fresh) = %+v, %v; want none", got, err)
	}
	if _, err := eng.Orders(ctx, redistest.Product(t), 0); !errors.Is(err, engine.ErrUnknownProduct) {
		t.Errorf("Orders(unknown) = %v, want ErrUnknownProduct", err)
	}
	expectBalanced(t, eng, id, "after sales, a release and a restock")
}

// compareStreamIDs orders two stream entry ids <ms>-<seq>.
func compareStreamIDs(a, b string) int {
	var am, as, bm, bs uint64
	fmt.Sscanf(a, "%d-%d", &am, &as)
	fmt.Sscanf(b, "%d-%d", &bm, &bs)
	if am != bm {
		return cmpUint(am, bm)
	}
	return cmpUint(as, bs)
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestRelease(t *testing.T) {
	t.Parallel()
	eng, addr := newEngine(t)

	t.Run("frees the allowance", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t)
		c := redistest.Conn(t, addr)
		id := newProduct(t, eng, 3)
		first := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "alice"})
		if first.Status != wire.StatusSuccess {
			t.Fatalf("purchase = %+v", first)
		}
		if res := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "alice"}); res.Status != wire.StatusAlreadyPurchased {
			t.Fatalf("second purchase before the release = %+v", res)
		}
		rel, err := eng.Release(ctx, id, first.OrderID)
		if want := (engine.Release{Remaining: 3, Quantity: 1, UserID: "alice"}); err != nil || rel != want {
			t.Fatalf("Release = %+v, %v; want %+v", rel, err, want)
		}
		b := readBooks(t, c, id)
		if _, ok := b.Holders["alice"]; ok || b.Stock != "3" || len(b.Buyers) != 0 || b.Orders != 2 {
			t.Errorf("after the release: %v", b)
		}
		expectBalanced(t, eng, id, "after the release")

		orders, err := eng.Orders(ctx, id, 0)
		if err != nil || len(orders) != 2 {
			t.Fatalf("Orders = %+v, %v", orders, err)
		}
		if o := orders[1]; o.Type != "release" || o.OrderID != first.OrderID || o.UserID != "alice" || o.Quantity != 1 || o.Remaining != 3 {
			t.Errorf("release entry = %+v", o)
		}
		if b.Released[first.OrderID] != orders[1].ID {
			t.Errorf("released record = %v, want %s → %s", b.Released, first.OrderID, orders[1].ID)
		}

		again := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "alice"})
		if again.Status != wire.StatusSuccess || again.Remaining != 2 {
			t.Fatalf("purchase after the release = %+v, want SUCCESS remaining 2", again)
		}
		expectBalanced(t, eng, id, "after buying again")

		// Releasing the first order again changes nothing.
		before := readBooks(t, c, id)
		rel, err = eng.Release(ctx, id, first.OrderID)
		if want := (engine.Release{Already: true, Remaining: 2, Quantity: 1, UserID: "alice"}); err != nil || rel != want {
			t.Errorf("second Release = %+v, %v; want %+v", rel, err, want)
		}
		expectUnchanged(t, c, id, before, "a second release")
		expectBalanced(t, eng, id, "after the second release")
		if res := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "alice"}); res.Status != wire.StatusAlreadyPurchased {
			t.Errorf("purchase after a repeated release = %+v, want ALREADY_PURCHASED", res)
		}
	})

	t.Run("one buyers entry per order", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t)
		c := redistest.Conn(t, addr)
		id := newProduct(t, eng, 10, engine.WithPerUserLimit(0))
		var oids []string
		for _, p := range []struct {
			user string
			qty  int64
		}{{"alice", 2}, {"bob", 1}, {"alice", 3}} {
			res := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: p.user, Quantity: p.qty})
			if res.Status != wire.StatusSuccess {
				t.Fatalf("purchase = %+v", res)
			}
			oids = append(oids, res.OrderID)
		}
		rel, err := eng.Release(ctx, id, oids[0])
		if want := (engine.Release{Remaining: 6, Quantity: 2, UserID: "alice"}); err != nil || rel != want {
			t.Fatalf("Release = %+v, %v; want %+v", rel, err, want)
		}
		b := readBooks(t, c, id)
		slices.Sort(b.Buyers)
		if !slices.Equal(b.Buyers, []string{"alice", "bob"}) || b.Holders["alice"] != "3" {
			t.Errorf("after releasing one of alice's orders: %v", b)
		}
		expectBalanced(t, eng, id, "after a partial release")
		for _, oid := range oids[1:] {
			if _, err := eng.Release(ctx, id, oid); err != nil {
				t.Fatal(err)
			}
		}
		b = readBooks(t, c, id)
		if b.Stock != "10" || len(b.Buyers) != 0 || len(b.Holders) != 0 || len(b.Released) != 3 {
			t.Errorf("after releasing everything: %v", b)
		}
		a := expectBalanced(t, eng, id, "after releasing everything")
		if a.Sold != 6 || a.Released != 6 || a.Orders != 0 || a.Customers != 0 {
			t.Errorf("audit = %+v", a)
		}
	})

	t.Run("errors", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t)
		c := redistest.Conn(t, addr)
		id := newProduct(t, eng, 5)
		sale := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "alice"})
		if sale.Status != wire.StatusSuccess {
			t.Fatalf("purchase = %+v", sale)
		}
		if _, err := eng.Release(ctx, id, sale.OrderID); err != nil {
			t.Fatal(err)
		}
		if _, _, err := eng.Restock(ctx, id, 1); err != nil {
			t.Fatal(err)
		}
		orders, err := eng.Orders(ctx, id, 0)
		if err != nil || len(orders) != 3 {
			t.Fatalf("Orders = %+v, %v", orders, err)
		}
		before := readBooks(t, c, id)
		tests := []struct {
			name    string
			product string
			order   string
			want    error
		}{
			{"no such entry", id, "1-1", engine.ErrUnknownOrder},
			{"zero id", id, "0-1", engine.ErrUnknownOrder},
			{"largest id", id, "18446744073709551615-18446744073709551615", engine.ErrUnknownOrder},
			{"a release entry", id, orders[1].ID, engine.ErrUnknownOrder},
			{"a restock entry", id, orders[2].ID, engine.ErrUnknownOrder},
			{"empty", id, "", engine.ErrInvalidRequest},
			{"no sequence", id, "1764108000123", engine.ErrInvalidRequest},
			{"empty sequence", id, "1764108000123-", engine.ErrInvalidRequest},
			{"empty time", id, "-1", engine.ErrInvalidRequest},
			{"three parts", id, "1-2-3", engine.ErrInvalidRequest},
			{"letters", id, "abc-def", engine.ErrInvalidRequest},
			{"XRANGE special", id, "-", engine.ErrInvalidRequest},
			{"XRANGE special +", id, "+", engine.ErrInvalidRequest},
			{"exclusive range", id, "(1-1", engine.ErrInvalidRequest},
			{"time past 64 bits", id, "18446744073709551616-0", engine.ErrInvalidRequest},
			{"sequence past 64 bits", id, "1-18446744073709551616", engine.ErrInvalidRequest},
			{"20 nines", id, "99999999999999999999-0", engine.ErrInvalidRequest},
			{"unknown product", redistest.Product(t), sale.OrderID, engine.ErrUnknownProduct},
			{"invalid product", "a{b}", sale.OrderID, engine.ErrInvalidRequest},
		}
		for _, tt := range tests {
			rel, err := eng.Release(ctx, tt.product, tt.order)
			if !errors.Is(err, tt.want) {
				t.Errorf("%s: Release(%q) = %+v, %v; want %v", tt.name, tt.order, rel, err, tt.want)
			}
		}
		expectUnchanged(t, c, id, before, "refused releases")
		expectBalanced(t, eng, id, "after refused releases")
	})
}

func TestRestock(t *testing.T) {
	t.Parallel()
	eng, addr := newEngine(t)
	ctx := testContext(t)
	c := redistest.Conn(t, addr)
	id := newProduct(t, eng, 2)
	for _, u := range []string{"a", "b"} {
		if res := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: u}); res.Status != wire.StatusSuccess {
			t.Fatalf("purchase = %+v", res)
		}
	}
	if res := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "c"}); res.Status != wire.StatusSoldOut {
		t.Fatalf("purchase = %+v, want SOLD_OUT", res)
	}
	expectBalanced(t, eng, id, "sold out")

	steps := []struct{ units, remaining, initial int64 }{{3, 3, 5}, {1, 4, 6}}
	for _, s := range steps {
		remaining, initial, err := eng.Restock(ctx, id, s.units)
		if err != nil || remaining != s.remaining || initial != s.initial {
			t.Fatalf("Restock(%d) = %d, %d, %v; want %d, %d", s.units, remaining, initial, err, s.remaining, s.initial)
		}
		st, err := eng.Status(ctx, id)
		if err != nil || st.Remaining != s.remaining || st.Initial != s.initial || !st.Consistent() || st.State() != engine.StateOpen {
			t.Errorf("Status after Restock(%d) = %+v, %v", s.units, st, err)
		}
		expectBalanced(t, eng, id, fmt.Sprintf("after Restock(%d)", s.units))
	}
	orders, err := eng.Orders(ctx, id, 0)
	if err != nil || len(orders) != 4 {
		t.Fatalf("Orders = %+v, %v", orders, err)
	}
	for i, s := range steps {
		o := orders[2+i]
		if o.Type != "restock" || o.Quantity != s.units || o.Remaining != s.remaining || o.UserID != "" || o.OrderID != "" {
			t.Errorf("restock entry %d = %+v", i, o)
		}
	}
	if res := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "c"}); res.Status != wire.StatusSuccess || res.Remaining != 3 {
		t.Errorf("purchase after restock = %+v, want SUCCESS remaining 3", res)
	}
	a := expectBalanced(t, eng, id, "after selling restocked units")
	if a.Initial != 6 || a.Remaining != 3 || a.Sold != 3 {
		t.Errorf("audit = %+v", a)
	}

	before := readBooks(t, c, id)
	for _, units := range []int64{0, -1, math.MinInt64, engine.MaxUnits + 1, math.MaxInt64} {
		if _, _, err := eng.Restock(ctx, id, units); !errors.Is(err, engine.ErrInvalidRequest) {
			t.Errorf("Restock(%d) = %v, want ErrInvalidRequest", units, err)
		}
	}
	expectUnchanged(t, c, id, before, "refused restocks")
	if _, _, err := eng.Restock(ctx, redistest.Product(t), 1); !errors.Is(err, engine.ErrUnknownProduct) {
		t.Errorf("Restock(unknown) = %v, want ErrUnknownProduct", err)
	}
	if _, _, err := eng.Restock(ctx, "{x}", 1); !errors.Is(err, engine.ErrInvalidRequest) {
		t.Errorf("Restock(invalid id) = %v, want ErrInvalidRequest", err)
	}
}

func TestVerifyBalanced(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	ctx := testContext(t)
	id := newProduct(t, eng, 4, engine.WithPerUserLimit(2))
	want := engine.Audit{ID: id, Initial: 4, Remaining: 4}
	check := func(when string) {
		t.Helper()
		a := expectBalanced(t, eng, id, when)
		if a.Problems = nil; fmt.Sprintf("%+v", a) != fmt.Sprintf("%+v", want) {
			t.Errorf("Verify %s = %+v, want %+v", when, a, want)
		}
	}
	check("fresh")
	var oids []string
	for _, p := range []struct {
		user string
		qty  int64
	}{{"a", 2}, {"b", 1}, {"c", 1}} {
		res := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: p.user, Quantity: p.qty})
		if res.Status != wire.StatusSuccess {
			t.Fatalf("purchase = %+v", res)
		}
		oids = append(oids, res.OrderID)
	}
	want = engine.Audit{ID: id, Initial: 4, Remaining: 0, Held: 4, Sold: 4, Orders: 3, Customers: 3}
	check("sold out")
	if _, err := eng.Release(ctx, id, oids[0]); err != nil {
		t.Fatal(err)
	}
	want = engine.Audit{ID: id, Initial: 4, Remaining: 2, Held: 2, Sold: 4, Released: 2, Orders: 2, Customers: 2}
	check("released")
	if _, _, err := eng.Restock(ctx, id, 3); err != nil {
		t.Fatal(err)
	}
	want = engine.Audit{ID: id, Initial: 7, Remaining: 5, Held: 2, Sold: 4, Released: 2, Orders: 2, Customers: 2}
	check("restocked")
	if _, _, err := eng.Reset(ctx, id); err != nil {
		t.Fatal(err)
	}
	want = engine.Audit{ID: id, Initial: 7, Remaining: 7}
	check("reset")

	if _, err := eng.Verify(ctx, redistest.Product(t)); !errors.Is(err, engine.ErrUnknownProduct) {
		t.Errorf("Verify(unknown) = %v, want ErrUnknownProduct", err)
	}
	if _, err := eng.Verify(ctx, "{x}"); !errors.Is(err, engine.ErrInvalidRequest) {
		t.Errorf("Verify(invalid id) = %v, want ErrInvalidRequest", err)
	}
}

func TestVerifyFindsCorruption(t *testing.T) {
	t.Parallel()
	eng, addr := newEngine(t)
	type cmd []any
	tests := []struct {
		name    string
		corrupt []cmd  // run on the product's keys; "$stock" and the like are replaced
		want    string // a substring of one of the problems
	}{
		{"stock drift", []cmd{{"INCRBY", "$stock", 1}},
			"initial 5 != remaining 4 + units held 2"},
		{"negative stock", []cmd{{"SET", "$stock", -1}},
			"stock is negative: -1"},
		{"holder without order", []cmd{{"HSET", "$holders", "ghost", 1}, {"DECRBY", "$stock", 1}},
			"customer ghost holds 1 units with no order in the stream"},
		{"order without holder", []cmd{{"XADD", "$orders", "*", "type", "sale", "user_id", "ghost", "quantity", 1, "remaining", 2, "time", 0}, {"RPUSH", "$buyers", "ghost"}},
			"customer ghost: orders stream says 1 units, record says 0"},
		{"order without units", []cmd{{"XADD", "$orders", "*", "type", "sale", "user_id", "alice", "quantity", 1, "remaining", 2, "time", 0}, {"RPUSH", "$buyers", "alice"}},
			"orders stream holds 3 units (sold 3 - released 0) but customers hold 2"},
		{"above the limit", []cmd{{"HSET", "$holders", "alice", 3}, {"DECRBY", "$stock", 2}},
			"customer alice holds 3 units, above the limit of 2"},
		{"holder of nothing", []cmd{{"HSET", "$holders", "zed", 0}},
			"customer zed holds 0 units"},
		{"missing buyer entry", []cmd{{"LREM", "$buyers", 0, "alice"}},
			"customer alice has 1 orders but is not in the buyers list"},
		{"missing buyer entry, counted", []cmd{{"LREM", "$buyers", 0, "alice"}},
			"buyers list has 1 entries for 2 orders not released"},
		{"extra buyer entry", []cmd{{"RPUSH", "$buyers", "alice"}},
			"customer alice is listed 2 times as a buyer for 1 orders"},
		{"buyer with no order", []cmd{{"RPUSH", "$buyers", "intruder"}},
			"customer intruder is listed 1 times as a buyer for 0 orders"},
		{"lost release", []cmd{{"HINCRBY", "$holders", "bob", -1}, {"INCRBY", "$stock", 1}},
			"customer bob: orders stream says 1 units, record says 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			c := redistest.Conn(t, addr)
			id := newProduct(t, eng, 5, engine.WithPerUserLimit(2))
			for _, u := range []string{"alice", "bob"} {
				if res := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: u}); res.Status != wire.StatusSuccess {
					t.Fatalf("purchase = %+v", res)
				}
			}
			expectBalanced(t, eng, id, "before the corruption")
			k := engine.KeysFor(id)
			keys := strings.NewReplacer("$stock", k.Stock, "$meta", k.Meta, "$holders", k.Holders, "$buyers", k.Buyers, "$orders", k.Orders)
			for _, cm := range tt.corrupt {
				args := slices.Clone(cm[1:])
				for i, a := range args {
					if s, ok := a.(string); ok {
						args[i] = keys.Replace(s)
					}
				}
				rawDo(t, c, cm[0].(string), args...)
			}
			a, err := eng.Verify(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if a.OK() {
				t.Fatalf("Verify after %s = %+v, want problems", tt.name, a)
			}
			if !slices.ContainsFunc(a.Problems, func(p string) bool { return strings.Contains(p, tt.want) }) {
				t.Errorf("Verify after %s: problems %q, want one containing %q", tt.name, a.Problems, tt.want)
			}
		})
	}
}

func TestVerifyCapsProblems(t *testing.T) {
	t.Parallel()
	eng, addr := newEngine(t)
	c := redistest.Conn(t, addr)
	tests := []struct {
		ghosts int
		want   int // problems reported
		capped bool
	}{
		{1, 3, false},   // the ghost, initial != remaining + held, stream != held
		{18, 20, false}, // exactly 20: no marker
		{19, 21, true},
		{30, 21, true},
	}
	for _, tt := range tests {
		id := newProduct(t, eng, 5)
		k := engine.KeysFor(id)
		for i := range tt.ghosts {
			rawDo(t, c, "HSET", k.Holders, fmt.Sprintf("ghost_%02d", i), 1)
		}
		a, err := eng.Verify(testContext(t), id)
		if err != nil {
			t.Fatal(err)
		}
		if len(a.Problems) != tt.want {
			t.Errorf("%d ghosts: %d problems %q, want %d", tt.ghosts, len(a.Problems), a.Problems, tt.want)
			continue
		}
		const marker = "more discrepancies not shown"
		last := a.Problems[len(a.Problems)-1]
		markers := 0
		for _, p := range a.Problems {
			if p == marker {
				markers++
			}
		}
		if (last == marker) != tt.capped || markers > 1 {
			t.Errorf("%d ghosts: problems %q, capped %v", tt.ghosts, a.Problems, tt.capped)
		}
	}
}

func TestProductsListsTestProducts(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	ctx := testContext(t)
	ids := []string{newProduct(t, eng, 1), newProduct(t, eng, 0), newProduct(t, eng, 10, engine.WithPerUserLimit(0))}
	// A product created then deleted is gone.
	gone := newProduct(t, eng, 1)
	if err := eng.Delete(ctx, gone); err != nil {
		t.Fatal(err)
	}
	// Request records are not products, whatever their request id.
	for i, rid := range []string{"plain", "x}:meta", "}:meta"} {
		res := eng.Purchase(ctx, engine.Request{ProductID: ids[2], UserID: fmt.Sprint("u", i), RequestID: rid})
		if res.Status != wire.StatusSuccess {
			t.Fatalf("purchase = %+v", res)
		}
	}
	// Nor are rate limiters, whatever the user id.
	pool, addr := newPool(t)
	limited := engine.New(pool, engine.WithUserRate(engine.Rate{Interval: time.Minute, Burst: 5}))
	if res := limited.Purchase(ctx, engine.Request{ProductID: ids[2], UserID: "v}:meta"}); res.Status != wire.StatusSuccess {
		t.Fatalf("rate-limited purchase = %+v", res)
	}
	rateKey := engine.KeysFor(ids[2]).Rate("v}:meta")
	if n, err := redis.Int(redistest.Conn(t, addr).Do("EXISTS", rateKey)); err != nil || n != 1 {
		t.Errorf("EXISTS %s = %d, %v; want the limiter's key", rateKey, n, err)
	}
	list, err := eng.Products(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !sort.StringsAreSorted(list) {
		t.Errorf("Products() is not sorted")
	}
	for _, id := range ids {
		if !slices.Contains(list, id) {
			t.Errorf("Products() lacks %q", id)
		}
	}
	for _, p := range list {
		if p == gone {
			t.Errorf("Products() lists the deleted %q", gone)
		}
		if strings.HasPrefix(p, ids[2]) && p != ids[2] {
			t.Errorf("Products() lists %q, which is not a product", p)
		}
		if err := engine.ValidateProductID(p); err != nil {
			t.Errorf("Products() lists %q: %v", p, err)
		}
	}
}

func TestPurchaseEventQuantity(t *testing.T) {
	t.Parallel()
	eng, addr := newEngine(t)
	ctx := testContext(t)
	psc := subscribeEvents(t, addr)
	id := newProduct(t, eng, 5, engine.WithPerUserLimit(2))
	res := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "alice", Quantity: 2})
	if res.Status != wire.StatusSuccess || res.Remaining != 3 || res.Quantity != 2 {
		t.Fatalf("purchase = %+v", res)
	}
	raw := nextEvent(t, psc, id)
	var ev saleEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatalf("event %s: %v", raw, err)
	}
	if want := (saleEvent{ProductID: id, Buyer: "alice", Remaining: 3, Timestamp: ev.Timestamp, OrderID: res.OrderID, Quantity: 2}); ev != want {
		t.Errorf("event = %+v, want %+v", ev, want)
	}
}

// TestRequestRecordsTakeTurns: request records go into one of the product's
// two request hashes; once the one being written is a TTL old, the other is
// emptied and written instead, and a record still within its TTL in the
// older hash still replays.
func TestRequestRecordsTakeTurns(t *testing.T) {
	t.Parallel()
	const ttl = 2 * time.Second
	eng, pool, c, id := ttlEngine(t, ttl)
	ctx := testContext(t)
	k := engine.KeysFor(id)
	buy := func(rid string) engine.Result {
		t.Helper()
		res := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "u-" + rid, RequestID: rid})
		if res.Status != wire.StatusSuccess {
			t.Fatalf("purchase %s = %+v", rid, res)
		}
		return res
	}
	until := func(ms int64) {
		t.Helper()
		for redisNowMs(t, c) < ms {
			if ctx.Err() != nil {
				t.Fatal(ctx.Err())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	fields := func(i int) []string {
		t.Helper()
		f, err := redis.Strings(c.Do("HKEYS", k.Requests[i]))
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(f)
		return f
	}
	ms := ttl.Milliseconds()

	buy("r1")
	start := redisNowMs(t, c)
	until(start + ms*3/4)
	late := buy("r2") // still in the first hash, valid until about start + 1.75 TTL
	until(start + ms + 50)
	buy("r3") // the first hash is a TTL old: the second one now
	if got := fields(1); !slices.Equal(got, []string{"r3"}) {
		t.Errorf("second hash = %v, want [r3]", got)
	}
	if got := fields(0); !slices.Equal(got, []string{"r1", "r2"}) {
		t.Errorf("first hash = %v, want [r1 r2]", got)
	}
	again := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "u-r2", RequestID: "r2"})
	if redisNowMs(t, c) < start+ms*7/4 {
		if again != late {
			t.Errorf("replay of r2 from the older hash = %+v, want %+v", again, late)
		}
	} else {
		t.Logf("the replay of r2 came after its TTL (machine too slow); not checked")
	}
	until(start + 2*ms + 100)
	buy("r4") // the second hash is a TTL old: the first one, emptied, again
	if got := fields(0); !slices.Equal(got, []string{"r4"}) {
		t.Errorf("first hash after the second turn = %v, want [r4]", got)
	}
	// A server with a shorter TTL does not shorten the turns.
	short := engine.New(pool, engine.WithRequestTTL(100*time.Millisecond))
	if res := short.Purchase(ctx, engine.Request{ProductID: id, UserID: "u-r5", RequestID: "r5"}); res.Status != wire.StatusSuccess {
		t.Fatalf("purchase r5 = %+v", res)
	}
	if rttl, err := redis.Int64(c.Do("HGET", k.Meta, "rttl")); err != nil || rttl != ms {
		t.Errorf("meta rttl = %d, %v; want %d (the longest TTL seen)", rttl, err, ms)
	}
	expectBalanced(t, eng, id, "after the turns")
}
