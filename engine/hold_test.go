package engine_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/wire"
)

// reserve buys one unit of id for user and fails the test unless it is
// RESERVED.
func reserve(t *testing.T, eng *engine.Engine, id, user string) engine.Result {
	t.Helper()
	r := eng.Purchase(testContext(t), engine.Request{ProductID: id, UserID: user})
	if r.Status != wire.StatusReserved || r.OrderID == "" || r.ExpiresAt.IsZero() || r.Quantity != 1 {
		t.Fatalf("purchase of %s by %s = %+v, want RESERVED", id, user, r)
	}
	return r
}

// verified fails the test unless id's books balance, and returns them.
func verified(t *testing.T, eng *engine.Engine, id string) engine.Audit {
	t.Helper()
	a, err := eng.Verify(testContext(t), id)
	if err != nil || !a.OK() {
		t.Fatalf("verify %s = %+v, %v", id, a, err)
	}
	return a
}

func order(id, user, oid string) engine.OrderRequest {
	return engine.OrderRequest{ProductID: id, UserID: user, OrderID: oid}
}

func TestReserveConfirmCancel(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	ctx := testContext(t)
	id := newProduct(t, eng, 3, engine.WithHold(time.Minute))

	a := reserve(t, eng, id, "alice")
	if d := time.Until(a.ExpiresAt); d < 50*time.Second || d > 70*time.Second {
		t.Errorf("expires in %s, want about a minute", d)
	}
	b := reserve(t, eng, id, "bob")
	steps := []struct {
		name string
		do   func() engine.Result
		want wire.Status
		code string
	}{
		{"confirm", func() engine.Result { return eng.Confirm(ctx, order(id, "alice", a.OrderID)) }, wire.StatusPaid, ""},
		{"confirm again", func() engine.Result { return eng.Confirm(ctx, order(id, "alice", a.OrderID)) }, wire.StatusPaid, ""},
		{"cancel paid", func() engine.Result { return eng.Cancel(ctx, order(id, "alice", a.OrderID)) }, wire.StatusAlreadyPaid, ""},
		{"another customer", func() engine.Result { return eng.Confirm(ctx, order(id, "mallory", b.OrderID)) }, wire.StatusError, engine.CodeForbidden},
		{"unknown order", func() engine.Result { return eng.Confirm(ctx, order(id, "bob", "1-1")) }, wire.StatusError, engine.CodeUnknownOrder},
		{"malformed", func() engine.Result { return eng.Confirm(ctx, order(id, "bob", "x")) }, wire.StatusError, engine.CodeInvalidRequest},
		{"cancel", func() engine.Result { return eng.Cancel(ctx, order(id, "bob", b.OrderID)) }, wire.StatusReleased, ""},
		{"cancel again", func() engine.Result { return eng.Cancel(ctx, order(id, "bob", b.OrderID)) }, wire.StatusReleased, ""},
		{"confirm cancelled", func() engine.Result { return eng.Confirm(ctx, order(id, "bob", b.OrderID)) }, wire.StatusReleased, ""},
	}
	for _, s := range steps {
		if r := s.do(); r.Status != s.want || r.Code != s.code {
			t.Errorf("%s = %+v, want %s %s", s.name, r, s.want, s.code)
		}
	}
	st, err := eng.Status(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.Remaining != 2 || st.Reserved != 0 || st.Paid != 1 || st.Cancelled != 1 || st.Hold != time.Minute {
		t.Errorf("status = %+v, want 2 left, 1 paid, 1 cancelled", st)
	}
	// The cancel freed bob's allowance (limit 1).
	reserve(t, eng, id, "bob")
	a2 := verified(t, eng, id)
	if a2.Reserved != 1 || a2.Paid != 1 {
		t.Errorf("audit = %+v, want 1 reserved and 1 paid", a2)
	}
}

func TestReservationReplay(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	ctx := testContext(t)
	id := newProduct(t, eng, 2, engine.WithHold(time.Minute))
	req := engine.Request{ProductID: id, UserID: "alice", RequestID: "r1"}
	first := eng.Purchase(ctx, req)
	if first.Status != wire.StatusReserved {
		t.Fatalf("purchase = %+v", first)
	}
	if r := eng.Confirm(ctx, order(id, "alice", first.OrderID)); r.Status != wire.StatusPaid {
		t.Fatalf("confirm = %+v", r)
	}
	again := eng.Purchase(ctx, req)
	if again.Status != wire.StatusReserved || again.OrderID != first.OrderID ||
		!again.ExpiresAt.Equal(first.ExpiresAt) || again.Remaining != first.Remaining {
		t.Errorf("replay = %+v, want the original reservation %+v", again, first)
	}
	verified(t, eng, id)
}

// TestExpiredUnitsServeTheNextBuyer: with no sweeper running, a purchase
// releases the expired reservations before it judges stock, and a
// confirm of an expired reservation answers EXPIRED.
func TestExpiredUnitsServeTheNextBuyer(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	ctx := testContext(t)
	id := newProduct(t, eng, 1, engine.WithHold(50*time.Millisecond))
	a := reserve(t, eng, id, "alice")
	if r := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "bob"}); r.Status != wire.StatusSoldOut {
		t.Fatalf("purchase while reserved = %+v, want SOLD_OUT", r)
	}
	time.Sleep(time.Until(a.ExpiresAt) + 20*time.Millisecond)
	b := reserve(t, eng, id, "carol")
	if b.Remaining != 0 {
		t.Errorf("carol's reservation = %+v, want the last unit", b)
	}
	if r := eng.Confirm(ctx, order(id, "alice", a.OrderID)); r.Status != wire.StatusExpired {
		t.Errorf("confirm after expiry = %+v, want EXPIRED", r)
	}
	st, _ := eng.Status(ctx, id)
	if st.Expired != 1 || st.Reserved != 1 {
		t.Errorf("status = %+v, want 1 expired, 1 reserved", st)
	}
	verified(t, eng, id)
}

// TestShorterHoldIsDue: a reservation made after the hold was shortened
// expires before the ones made earlier; a purchase still releases it on
// time (meta's due follows the soonest expiry, not the last one made).
func TestShorterHoldIsDue(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	ctx := testContext(t)
	id := newProduct(t, eng, 2, engine.WithHold(time.Hour))
	reserve(t, eng, id, "alice")
	if _, err := eng.SetHold(ctx, id, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	b := reserve(t, eng, id, "bob")
	time.Sleep(time.Until(b.ExpiresAt) + 20*time.Millisecond)
	if c := reserve(t, eng, id, "carol"); c.Remaining != 0 {
		t.Errorf("carol's reservation = %+v, want bob's released unit, the last", c)
	}
	verified(t, eng, id)
}

// TestConfirmRacesExpiry: confirms and sweeps race each reservation's
// expiry; each ends paid or released, never both, and the books balance.
func TestConfirmRacesExpiry(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	ctx := testContext(t)
	const n = 60
	id := newProduct(t, eng, n, engine.WithHold(30*time.Millisecond))
	res := make([]engine.Result, n)
	for i := range res {
		res[i] = reserve(t, eng, id, fmt.Sprintf("u%d", i))
	}
	var wg sync.WaitGroup
	confirms := make([]engine.Result, n)
	for i := range res {
		wg.Add(2)
		go func() {
			defer wg.Done()
			time.Sleep(time.Until(res[i].ExpiresAt) + time.Duration(i%7-3)*time.Millisecond)
			confirms[i] = eng.Confirm(ctx, order(id, fmt.Sprintf("u%d", i), res[i].OrderID))
		}()
		go func() {
			defer wg.Done()
			time.Sleep(time.Until(res[i].ExpiresAt) + time.Duration(i%5-2)*time.Millisecond)
			if _, err := eng.Sweep(ctx, id); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	paid := int64(0)
	for i, c := range confirms {
		switch c.Status {
		case wire.StatusPaid:
			paid++
		case wire.StatusExpired:
		default:
			t.Errorf("confirm %d = %+v", i, c)
		}
	}
	a := verified(t, eng, id)
	if a.Paid != paid || a.Remaining != n-paid || a.Reserved != 0 {
		t.Errorf("audit = %+v, want %d paid and the rest back in stock", a, paid)
	}
	t.Logf("%d of %d confirms won the race", paid, n)
}

// TestSweeperReleasesOnTime runs a sweeper: every reservation left unpaid
// is back in stock soon after its expiry, with no purchase to release it.
func TestSweeperReleasesOnTime(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	obs := &lagObserver{}
	eng := engine.New(pool, engine.WithHoldObserver(obs))
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	id := newProduct(t, eng, 5, engine.WithHold(200*time.Millisecond))
	sw := eng.NewSweeper(engine.SweeperConfig{})
	go sw.Run(ctx)
	var last time.Time
	for i := range 5 {
		last = reserve(t, eng, id, fmt.Sprintf("u%d", i)).ExpiresAt
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := eng.Status(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if st.Remaining == 5 {
			if late := time.Since(last); late > time.Second {
				t.Errorf("released %s after the last expiry", late)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status = %+v: reservations not released", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
	verified(t, eng, id)
	obs.mu.Lock()
	defer obs.mu.Unlock()
	// The sweeper sweeps every product of the shared test Redis: other
	// tests' expired reservations may add lags.
	if obs.reserved != 5 || len(obs.lags) < 5 {
		t.Errorf("observer heard %d reservations and %d lags, want 5 and at least 5", obs.reserved, len(obs.lags))
	}
	t.Logf("release lags %v", obs.lags)
}

type lagObserver struct {
	mu       sync.Mutex
	reserved int
	lags     []time.Duration
}

func (o *lagObserver) Reserved() {
	o.mu.Lock()
	o.reserved++
	o.mu.Unlock()
}

func (o *lagObserver) Settled(string, wire.Status) {}

func (o *lagObserver) Expired(lags []time.Duration) {
	o.mu.Lock()
	o.lags = append(o.lags, lags...)
	o.mu.Unlock()
}

// TestStreamQueue: a reservation writes nothing of itself but its orders
// entry (no record, nothing in the holds) while the hold does not shrink;
// a settled one gets its record; a sweep releases the expired ones in
// stream order and leaves the paid one; after a shorter hold, reservations
// go to the holds too until the older ones have expired; and a product
// with nothing reserved is swept without a write.
func TestStreamQueue(t *testing.T) {
	t.Parallel()
	eng, addr := newEngine(t)
	ctx := testContext(t)
	c := redistest.Conn(t, addr)
	id := newProduct(t, eng, 5, engine.WithHold(60*time.Millisecond), engine.WithPerUserLimit(0))
	k := engine.KeysFor(id)
	count := func(cmd, key string) int {
		t.Helper()
		n, err := redis.Int(c.Do(cmd, key))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	a, b := reserve(t, eng, id, "alice"), reserve(t, eng, id, "bob")
	if r, h := count("HLEN", k.Reservations), count("ZCARD", k.Holds); r != 0 || h != 0 {
		t.Errorf("after two reservations: %d records, %d in holds; want none", r, h)
	}
	if r := eng.Confirm(ctx, order(id, "alice", a.OrderID)); r.Status != wire.StatusPaid {
		t.Fatalf("confirm = %+v", r)
	}
	if r := count("HLEN", k.Reservations); r != 1 {
		t.Errorf("after a confirm: %d records, want 1", r)
	}
	verified(t, eng, id)
	time.Sleep(time.Until(b.ExpiresAt) + 10*time.Millisecond)
	// (Another test's sweeper, on the same Redis, may sweep first.)
	if _, err := eng.Sweep(ctx, id); err != nil {
		t.Fatal(err)
	}
	if st := verified(t, eng, id); st.Remaining != 4 || st.Paid != 1 {
		t.Errorf("after the sweep: %+v, want 4 left (bob's back) and alice's paid", st)
	}

	// A shorter hold: the next reservation expires before carol's, made
	// before, so it goes to the holds until carol's has expired.
	if _, err := eng.SetHold(ctx, id, time.Hour); err != nil {
		t.Fatal(err)
	}
	reserve(t, eng, id, "carol")
	if _, err := eng.SetHold(ctx, id, 30*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	d := reserve(t, eng, id, "dave")
	if h := count("ZCARD", k.Holds); h != 1 {
		t.Errorf("after a reservation under a shorter hold: %d in holds, want dave's", h)
	}
	time.Sleep(time.Until(d.ExpiresAt) + 10*time.Millisecond)
	if _, err := eng.Sweep(ctx, id); err != nil {
		t.Fatal(err)
	}
	if st := verified(t, eng, id); st.Remaining != 3 || st.Reserved != 1 {
		t.Errorf("after the sweep: %+v, want dave's unit back (3 left), carol's still reserved", st)
	}

	// Nothing reserved: a sweep reads nothing and writes nothing.
	plain := newProduct(t, eng, 5, engine.WithPerUserLimit(0))
	for range 3 {
		if r := eng.Purchase(ctx, engine.Request{ProductID: plain, UserID: "erin"}); r.Status != wire.StatusSuccess {
			t.Fatalf("purchase = %+v", r)
		}
	}
	if _, err := eng.Sweep(ctx, plain); err != nil {
		t.Fatal(err)
	}
	if ok, err := redis.Bool(c.Do("HEXISTS", engine.KeysFor(plain).Meta, "cursor")); err != nil || ok {
		t.Errorf("a sweep of a product with nothing reserved wrote a cursor (%v, %v)", ok, err)
	}
}
