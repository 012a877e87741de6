package engine_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/wire"
)

// merged runs reqs as one call of the purchase script's merged form, as a
// batching Redis sends it, and returns each purchase's result.
func merged(ctx context.Context, t *testing.T, eng *engine.Engine, reqs ...engine.Request) []engine.Result {
	t.Helper()
	return mergedAs(ctx, t, eng, engine.PurchaseScript.Merge, reqs...)
}

// mergedFull is merged in the full form, every purchase's keys passed,
// as a call with a rate limit goes.
func mergedFull(ctx context.Context, t *testing.T, eng *engine.Engine, reqs ...engine.Request) []engine.Result {
	t.Helper()
	full := *engine.PurchaseScript.Merge
	full.Compact = nil
	return mergedAs(ctx, t, eng, &full, reqs...)
}

// mergedAs is merged with the merged form m.
func mergedAs(ctx context.Context, t *testing.T, eng *engine.Engine, m *engine.MergeSpec, reqs ...engine.Request) []engine.Result {
	t.Helper()
	calls := make([][]any, len(reqs))
	for i, req := range reqs {
		args, ok := engine.PurchaseArgs(eng, req)
		if !ok {
			t.Fatalf("request %d %+v answered without Redis", i, req)
		}
		calls[i] = args
	}
	v, err := engine.RedisOf(eng).Eval(ctx, m.Script, m.Args(len(calls), func(i int) []any { return calls[i] })...)
	if err != nil {
		t.Fatalf("merged call: %v", err)
	}
	parts, err := redis.Values(v, nil)
	if err != nil || len(parts) != len(reqs)*m.Stride {
		t.Fatalf("merged reply %v (%v): want %d answers of %d", v, err, len(reqs), m.Stride)
	}
	out := make([]engine.Result, len(reqs))
	for i := range out {
		if out[i], err = engine.PurchaseResult(parts[i*m.Stride : (i+1)*m.Stride]); err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
	}
	return out
}

// summary spells what a purchase's result says, order id aside.
func summary(r engine.Result) string {
	switch r.Status {
	case wire.StatusSuccess:
		return fmt.Sprintf("SUCCESS %d x%d", r.Remaining, r.Quantity)
	case wire.StatusReserved: // (its quantity is the request's, filled in by Purchase)
		return fmt.Sprintf("RESERVED %d", r.Remaining)
	case wire.StatusInsufficientStock:
		return fmt.Sprintf("INSUFFICIENT_STOCK %d", r.Remaining)
	case wire.StatusAlreadyPurchased:
		return fmt.Sprintf("ALREADY_PURCHASED %d/%d", r.Held, r.Limit)
	case wire.StatusError:
		return "ERROR " + r.Code
	}
	return r.Status.String()
}

// TestMergedPurchaseOutcomes: every outcome inside one merged call, each
// purchase judged after the ones before it, as if it ran alone.
func TestMergedPurchaseOutcomes(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	req := func(user string, qty int64, rid string) engine.Request {
		return engine.Request{UserID: user, Quantity: qty, RequestID: rid}
	}
	tests := []struct {
		name   string
		units  int64
		init   []engine.InitOption
		opts   []engine.Option
		before []engine.Request // run alone first
		// release the order of before[0] after running before
		release bool
		unknown bool // the product does not exist
		reqs    []engine.Request
		want    []string
		// same[i] = j: answer i carries the order id of answer j (a replay);
		// -1 for an order id of a before request.
		same map[int]int
	}{
		{name: "sold out in the middle", units: 2, init: []engine.InitOption{engine.WithPerUserLimit(0)},
			reqs: []engine.Request{req("a", 1, ""), req("b", 1, ""), req("c", 1, ""), req("d", 1, "")},
			want: []string{"SUCCESS 1 x1", "SUCCESS 0 x1", "SOLD_OUT", "SOLD_OUT"}},
		{name: "limit hit, then another customer", units: 10,
			reqs: []engine.Request{req("a", 1, ""), req("a", 1, ""), req("b", 1, ""), req("b", 1, "")},
			want: []string{"SUCCESS 9 x1", "ALREADY_PURCHASED 1/1", "SUCCESS 8 x1", "ALREADY_PURCHASED 1/1"}},
		{name: "limit 3 across quantities", units: 10, init: []engine.InitOption{engine.WithPerUserLimit(3)},
			before: []engine.Request{req("a", 1, "")},
			reqs:   []engine.Request{req("a", 1, ""), req("a", 2, ""), req("a", 1, "")},
			want:   []string{"SUCCESS 8 x1", "ALREADY_PURCHASED 2/3", "SUCCESS 7 x1"}},
		{name: "replay inside the call and of an earlier call", units: 10,
			before: []engine.Request{req("z", 1, "r0")},
			reqs:   []engine.Request{req("a", 1, "r1"), req("a", 1, "r1"), req("z", 1, "r0"), req("b", 1, "")},
			want:   []string{"SUCCESS 8 x1", "SUCCESS 8 x1", "SUCCESS 9 x1", "SUCCESS 7 x1"},
			same:   map[int]int{1: 0, 2: -1}},
		{name: "request id reused", units: 10, init: []engine.InitOption{engine.WithPerUserLimit(0)},
			before: []engine.Request{req("z", 1, "r0")},
			reqs:   []engine.Request{req("a", 1, "r1"), req("a", 2, "r1"), req("b", 1, "r1"), req("y", 1, "r0"), req("a", 1, "r1")},
			want:   []string{"SUCCESS 8 x1", "ERROR REQUEST_ID_REUSED", "ERROR REQUEST_ID_REUSED", "ERROR REQUEST_ID_REUSED", "SUCCESS 8 x1"},
			same:   map[int]int{4: 0}},
		{name: "released order replayed", units: 10,
			before: []engine.Request{req("z", 1, "r0")}, release: true,
			reqs: []engine.Request{req("z", 1, "r0"), req("z", 1, "r0"), req("z", 1, "")},
			want: []string{"ERROR ORDER_RELEASED", "ERROR ORDER_RELEASED", "SUCCESS 9 x1"}},
		{name: "unknown product", unknown: true,
			reqs: []engine.Request{req("a", 1, ""), req("b", 2, "r1")},
			want: []string{"ERROR UNKNOWN_PRODUCT", "ERROR UNKNOWN_PRODUCT"}},
		{name: "insufficient, then smaller quantities", units: 3, init: []engine.InitOption{engine.WithPerUserLimit(0)},
			reqs: []engine.Request{req("a", 5, ""), req("b", 2, ""), req("c", 2, ""), req("d", 1, ""), req("e", 1, "")},
			want: []string{"INSUFFICIENT_STOCK 3", "SUCCESS 1 x2", "INSUFFICIENT_STOCK 1", "SUCCESS 0 x1", "SOLD_OUT"}},
		{name: "not started", units: 3, init: []engine.InitOption{engine.WithWindow(time.Now().Add(time.Hour), time.Time{})},
			reqs: []engine.Request{req("a", 1, ""), req("b", 1, "")},
			want: []string{"NOT_STARTED", "NOT_STARTED"}},
		{name: "ended", units: 3, init: []engine.InitOption{engine.WithWindow(time.Time{}, time.Now().Add(-time.Hour))},
			reqs: []engine.Request{req("a", 1, "r1")},
			want: []string{"ENDED"}},
		{name: "rate limit: replays do not count, refusals write nothing", units: 10,
			init: []engine.InitOption{engine.WithPerUserLimit(0)},
			opts: []engine.Option{engine.WithUserRate(engine.Rate{Interval: time.Hour, Burst: 2})},
			reqs: []engine.Request{req("a", 1, "r1"), req("a", 1, "r1"), req("a", 1, ""), req("a", 1, ""), req("b", 1, ""), req("a", 1, "r1")},
			want: []string{"SUCCESS 9 x1", "SUCCESS 9 x1", "SUCCESS 8 x1", "RATE_LIMITED", "SUCCESS 7 x1", "SUCCESS 9 x1"},
			same: map[int]int{1: 0, 5: 0}},
		{name: "rate limit counts a sold-out attempt", units: 1,
			init: []engine.InitOption{engine.WithPerUserLimit(0)},
			opts: []engine.Option{engine.WithUserRate(engine.Rate{Interval: time.Hour, Burst: 2})},
			reqs: []engine.Request{req("b", 1, ""), req("a", 1, ""), req("a", 1, ""), req("b", 1, ""), req("b", 1, "")},
			want: []string{"SUCCESS 0 x1", "SOLD_OUT", "SOLD_OUT", "SOLD_OUT", "RATE_LIMITED"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			eng := engine.New(pool, tt.opts...)
			id := fmt.Sprintf("merge_%d", rand.Int64())
			if !tt.unknown {
				id = newProduct(t, eng, tt.units, tt.init...)
			}
			var before []engine.Result
			for _, r := range tt.before {
				r.ProductID = id
				res := eng.Purchase(ctx, r)
				if res.Status != wire.StatusSuccess {
					t.Fatalf("before: %+v", res)
				}
				before = append(before, res)
			}
			if tt.release {
				if _, err := eng.Release(ctx, id, before[0].OrderID); err != nil {
					t.Fatal(err)
				}
			}
			reqs := slices.Clone(tt.reqs)
			for i := range reqs {
				reqs[i].ProductID = id
			}
			got := merged(ctx, t, eng, reqs...)
			var sums []string
			orders := map[string]bool{}
			for i, r := range got {
				sums = append(sums, summary(r))
				if r.Status != wire.StatusSuccess {
					continue
				}
				if r.OrderID == "" {
					t.Errorf("answer %d: no order id", i)
				}
				j, replay := tt.same[i]
				switch {
				case replay && j == -1:
					if r.OrderID != before[0].OrderID {
						t.Errorf("answer %d: order %s, want the earlier %s", i, r.OrderID, before[0].OrderID)
					}
				case replay:
					if r.OrderID != got[j].OrderID {
						t.Errorf("answer %d: order %s, want answer %d's %s", i, r.OrderID, j, got[j].OrderID)
					}
				default:
					if orders[r.OrderID] {
						t.Errorf("answer %d: order %s given twice", i, r.OrderID)
					}
					orders[r.OrderID] = true
				}
			}
			if !slices.Equal(sums, tt.want) {
				t.Fatalf("answers\n got %q\nwant %q", sums, tt.want)
			}
			if tt.unknown {
				return
			}
			a, err := eng.Verify(ctx, id)
			if err != nil || !a.OK() {
				t.Fatalf("verify: %+v %v", a, err)
			}
			// One orders stream entry per sale, with the sale's order id.
			all, err := eng.Orders(ctx, id, 0)
			if err != nil {
				t.Fatal(err)
			}
			inStream := map[string]bool{}
			for _, o := range all {
				if o.Type == "sale" {
					inStream[o.OrderID] = true
				}
			}
			for oid := range orders {
				if !inStream[oid] {
					t.Errorf("order %s not in the orders stream %+v", oid, all)
				}
			}
			if want := len(orders) + len(before); len(inStream) != want {
				t.Errorf("%d sales in the orders stream, want %d", len(inStream), want)
			}
		})
	}
}

// TestMergedPurchaseEvents: one event per sale of a merged call, each with
// its own order id and remaining stock, in order, spelt exactly as a lone
// sale's: in both merged forms, with ids as they are or JSON escapes, and
// for reservations.
func TestMergedPurchaseEvents(t *testing.T) {
	t.Parallel()
	eng, addr := newEngine(t)
	tests := []struct {
		name  string
		users []string // the buyers of the 3 units; the first one twice
		hold  bool
		full  bool // the full form, as with a rate limit
	}{
		{"plain", []string{"a", "b", "c"}, false, false},
		{"escaped", []string{`q"uote`, `back\slash`, "ü/"}, false, false},
		{"mixed", []string{"a", "b/", "c"}, false, false},
		{"held", []string{"a", `b"`, "c"}, true, false},
		{"full form", []string{"a", `b"`, "c"}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			psc := subscribeEvents(t, addr)
			var opts []engine.InitOption
			if tt.hold {
				opts = append(opts, engine.WithHold(time.Hour))
			}
			id := newProduct(t, eng, 3, opts...)
			call := merged
			if tt.full {
				call = mergedFull
			}
			u := tt.users
			got := call(ctx, t, eng,
				engine.Request{ProductID: id, UserID: u[0]}, engine.Request{ProductID: id, UserID: u[0]},
				engine.Request{ProductID: id, UserID: u[1], Quantity: 1}, engine.Request{ProductID: id, UserID: u[2]})
			for i, r := range []engine.Result{got[0], got[2], got[3]} {
				status, head := wire.StatusSuccess, ""
				if tt.hold {
					status = wire.StatusReserved
					head = fmt.Sprintf(`"type":"reserved","expires_at":%d,`, r.ExpiresAt.UnixMilli())
				}
				ev := string(nextEvent(t, psc, id))
				want := fmt.Sprintf(`{%s"product_id":%s,"buyer":%s,"remaining":%d,"timestamp":`,
					head, jsonString(t, id), cjsonString(t, u[i]), 2-i)
				tail := fmt.Sprintf(`,"order_id":%s,"quantity":1}`, jsonString(t, r.OrderID))
				if r.Status != status || !strings.HasPrefix(ev, want) || !strings.HasSuffix(ev, tail) {
					t.Errorf("event %s for %+v, want %s…%s", ev, r, want, tail)
				}
			}
		})
	}
}

// cjsonString is s as Redis's cjson.encode spells it (as jsonString, and
// a slash escaped), for the ids in these tests.
func cjsonString(t *testing.T, s string) string {
	return strings.ReplaceAll(jsonString(t, s), "/", `\/`)
}

// subscribeEvents returns a connection subscribed to the sale events.
func subscribeEvents(t *testing.T, addr string) redis.PubSubConn {
	t.Helper()
	psc := redis.PubSubConn{Conn: redistest.Conn(t, addr)}
	if err := psc.Subscribe(engine.EventChannel); err != nil {
		t.Fatal(err)
	}
	if m, ok := psc.ReceiveWithTimeout(testTimeout).(redis.Subscription); !ok || m.Channel != engine.EventChannel {
		t.Fatalf("SUBSCRIBE answered %#v", m)
	}
	return psc
}

// TestMergedEqualsOneByOne: random sequences of purchases (repeat
// customers, quantities, request ids with the same or another payload, a
// rate limit, a per-user limit, a hold) get the same answers, and leave
// the same books, merged into one call as run one call each, and merged
// in the full form as in the compact one.
func TestMergedEqualsOneByOne(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			rng := rand.New(rand.NewPCG(seed, 7))
			var opts []engine.Option
			if rng.IntN(2) == 0 {
				opts = append(opts, engine.WithUserRate(engine.Rate{Interval: time.Hour, Burst: 1 + rng.IntN(3)}))
			}
			eng := engine.New(pool, opts...)
			units := int64(1 + rng.IntN(20))
			init := []engine.InitOption{engine.WithPerUserLimit(int64(rng.IntN(4)))}
			if seed%3 == 2 {
				init = append(init, engine.WithHold(time.Hour))
			}
			one, all, full := newProduct(t, eng, units, init...), newProduct(t, eng, units, init...), newProduct(t, eng, units, init...)
			n := 1 + rng.IntN(engine.MaxMergedPurchases)
			reqs := make([]engine.Request, n)
			for i := range reqs {
				reqs[i] = engine.Request{UserID: fmt.Sprint("u", rng.IntN(6)), Quantity: 1 + rng.Int64N(3)}
				if rng.IntN(2) == 0 {
					reqs[i].RequestID = fmt.Sprint("r", rng.IntN(8))
				}
			}
			var alone []string
			for _, r := range reqs {
				r.ProductID = one
				alone = append(alone, summary(eng.Purchase(ctx, r)))
			}
			// inOneCall runs reqs on product id as one call of run's form.
			inOneCall := func(id string, run func(context.Context, *testing.T, *engine.Engine, ...engine.Request) []engine.Result) []string {
				for i := range reqs {
					reqs[i].ProductID = id
				}
				var got []string
				for _, r := range run(ctx, t, eng, reqs...) {
					got = append(got, summary(r))
				}
				return got
			}
			together := inOneCall(all, merged)
			if !slices.Equal(alone, together) {
				t.Fatalf("requests %+v\n alone  %q\n merged %q", reqs, alone, together)
			}
			booksAlike(ctx, t, eng, one, all)
			fully := inOneCall(full, mergedFull)
			if !slices.Equal(fully, together) {
				t.Fatalf("requests %+v\n full form %q\n compact   %q", reqs, fully, together)
			}
			booksAlike(ctx, t, eng, all, full)
		})
	}
}

// booksAlike fails the test unless products a and b, sold the same
// purchases two ways, have the same books, each consistent and verified.
func booksAlike(ctx context.Context, t *testing.T, eng *engine.Engine, a, b string) {
	t.Helper()
	s1, err1 := eng.Status(ctx, a)
	s2, err2 := eng.Status(ctx, b)
	if err1 != nil || err2 != nil || s1.Remaining != s2.Remaining || s1.Held != s2.Held ||
		s1.Buyers != s2.Buyers || s1.Customers != s2.Customers || s1.Orders != s2.Orders ||
		s1.Reserved != s2.Reserved || s1.Expired != s2.Expired || !s1.Consistent() {
		t.Fatalf("books %s %+v %v, %s %+v %v", a, s1, err1, b, s2, err2)
	}
	for _, id := range []string{a, b} {
		if au, err := eng.Verify(ctx, id); err != nil || !au.OK() {
			t.Fatalf("verify %s: %+v %v", id, au, err)
		}
	}
}

// TestRequestRecordFormerFormat: on a product created before request
// records went into the product's request hashes, a record of either
// former format (a string key, or before that a hash key) still replays,
// and still refuses another payload, in the compact form (the script
// names the key) as in the full one (with a rate limit: the engine names
// it).
func TestRequestRecordFormerFormat(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"string", "hash"} {
		for _, rated := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s rated %v", format, rated), func(t *testing.T) {
				t.Parallel()
				testFormerRecord(t, format, rated)
			})
		}
	}
}

func testFormerRecord(t *testing.T, format string, rated bool) {
	pool, addr := newPool(t)
	var opts []engine.Option
	if rated {
		opts = append(opts, engine.WithUserRate(engine.Rate{Interval: time.Millisecond, Burst: 100}))
	}
	eng := engine.New(pool, opts...)
	ctx := testContext(t)
	c := redistest.Conn(t, addr)
	id := newProduct(t, eng, 10)
	req := engine.Request{ProductID: id, UserID: "alice", RequestID: "old-1"}
	first := eng.Purchase(ctx, req)
	if first.Status != wire.StatusSuccess {
		t.Fatalf("purchase = %+v", first)
	}
	// Turn the record into one of a product from before: no "records"
	// mark in meta, the record in a key of its own.
	rec, _ := requestRecord(t, c, id, req.RequestID)
	f := strings.SplitN(rec, "|", 5) // epoch|expires|remaining|order_id|fp
	if len(f) != 5 {
		t.Fatalf("record %q", rec)
	}
	k := engine.KeysFor(id)
	rawDo(t, c, "DEL", k.Requests[0], k.Requests[1])
	rawDo(t, c, "HDEL", k.Meta, "records")
	key := k.Request(req.RequestID)
	if format == "string" {
		rawDo(t, c, "SET", key, f[0]+"|"+f[2]+"|"+f[3]+"|"+f[4], "PX", 60000)
	} else {
		rawDo(t, c, "HSET", key, "fp", f[4], "remaining", f[2], "order_id", f[3], "epoch", f[0])
		rawDo(t, c, "PEXPIRE", key, 60000)
	}
	if got := eng.Purchase(ctx, req); got != first {
		t.Errorf("replay of a %s record = %+v, want %+v", format, got, first)
	}
	got := merged(ctx, t, eng, req, engine.Request{ProductID: id, UserID: "bob", RequestID: req.RequestID})
	if got[0] != first || got[1].Code != engine.CodeRequestReused {
		t.Errorf("merged replays of a %s record = %+v", format, got)
	}
	if s, err := eng.Status(ctx, id); err != nil || s.Remaining != 9 {
		t.Errorf("status %+v %v: want one unit sold", s, err)
	}
	// After a reset the former record is stale.
	if _, _, err := eng.Reset(ctx, id); err != nil {
		t.Fatal(err)
	}
	if got := eng.Purchase(ctx, req); got.Status != wire.StatusSuccess || got.OrderID == first.OrderID || got.Remaining != 9 {
		t.Errorf("after reset = %+v, want a new sale (first %+v)", got, first)
	}
}
