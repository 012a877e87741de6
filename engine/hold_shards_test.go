package engine_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/wire"
)

// TestShardedHoldLivesOnItsShard: a sharded product with a hold reserves
// in its customer's home shard, and confirm, cancel, admin release, sweep,
// SetHold, status and verify act on the product.
func TestShardedHoldLivesOnItsShard(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	ctx := testContext(t)
	id, shards := newSharded(t, eng, 8, 2, engine.WithHold(time.Minute), engine.WithPerUserLimit(0))
	for _, sid := range shards {
		if st, err := eng.Status(ctx, sid); err != nil || st.Hold != time.Minute {
			t.Fatalf("shard %s: %+v, %v: want the hold of a minute", sid, st, err)
		}
	}
	users := []string{homedUser("a", 0, 2), homedUser("b", 1, 2), homedUser("c", 0, 2), homedUser("d", 1, 2)}
	var res []engine.Result
	for _, u := range users {
		res = append(res, reserve(t, eng, id, u))
	}
	if r := eng.Confirm(ctx, order(id, users[0], res[0].OrderID)); r.Status != wire.StatusPaid {
		t.Errorf("confirm on shard 0 = %+v", r)
	}
	if r := eng.Confirm(ctx, order(id, users[1], res[1].OrderID)); r.Status != wire.StatusPaid {
		t.Errorf("confirm on shard 1 = %+v", r)
	}
	if r := eng.Cancel(ctx, order(id, users[2], res[2].OrderID)); r.Status != wire.StatusReleased {
		t.Errorf("cancel on shard 0 = %+v", r)
	}
	// Order ids are per shard: the admin names the customer.
	rel, err := eng.Release(ctx, id, res[3].OrderID, engine.ReleaseOfUser(users[3]))
	if err != nil {
		t.Fatalf("admin release of a reservation on shard 1: %+v, %v", rel, err)
	}
	if r := eng.Confirm(ctx, order(id, users[3], res[3].OrderID)); r.Status != wire.StatusReleased {
		t.Errorf("confirm after admin release = %+v, want RELEASED", r)
	}
	st, err := eng.Status(ctx, id)
	if err != nil || st.Remaining != 6 || st.Paid != 2 || st.Reserved != 0 || st.Cancelled != 2 || st.Hold != time.Minute {
		t.Errorf("status = %+v, %v: want 6 left, 2 paid, 2 cancelled", st, err)
	}
	a := mustVerify(t, eng, id, 8, 6)
	if a.Paid != 2 || a.Reserved != 0 {
		t.Errorf("audit = %+v, want 2 paid", a)
	}

	// SetHold sets every shard; a sweep sweeps every shard.
	if was, err := eng.SetHold(ctx, id, 30*time.Millisecond); err != nil || was != time.Minute {
		t.Fatalf("set hold = %s, %v", was, err)
	}
	var last time.Time
	for _, u := range []string{homedUser("e", 0, 2), homedUser("f", 1, 2)} {
		last = reserve(t, eng, id, u).ExpiresAt
	}
	time.Sleep(time.Until(last) + 20*time.Millisecond)
	sw, err := eng.Sweep(ctx, id)
	if err != nil || sw.Units != 2 || len(sw.Lags) != 2 || !sw.Next.IsZero() {
		t.Errorf("sweep = %+v, %v: want both shards' reservations released", sw, err)
	}
	st, err = eng.Status(ctx, id)
	if err != nil || st.Expired != 2 || st.Reserved != 0 || st.Remaining != 6 {
		t.Errorf("status = %+v, %v: want 2 expired, 6 left", st, err)
	}
	mustVerify(t, eng, id, 8, 6)
}

// TestShardedExpiredUnitsElsewhereServe: the last unit is held by an
// expired reservation in another shard than the buyer's home; the buyer
// gets it (not SOLD_OUT) though no one swept, and the books balance.
func TestShardedExpiredUnitsElsewhereServe(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	ctx := testContext(t)
	id, _ := newSharded(t, eng, 2, 2, engine.WithHold(40*time.Millisecond), engine.WithPerUserLimit(0))
	paid := reserve(t, eng, id, homedUser("a", 0, 2))
	if r := eng.Confirm(ctx, order(id, homedUser("a", 0, 2), paid.OrderID)); r.Status != wire.StatusPaid {
		t.Fatalf("confirm = %+v", r)
	}
	held := reserve(t, eng, id, homedUser("b", 1, 2))
	buyer := homedUser("c", 0, 2)
	if r := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: buyer}); r.Status != wire.StatusSoldOut {
		t.Fatalf("purchase while every unit is held = %+v, want SOLD_OUT", r)
	}
	time.Sleep(time.Until(held.ExpiresAt) + 20*time.Millisecond)
	// A fresh engine: no sold-out cache between.
	eng2, _ := newEngine(t)
	r := eng2.Purchase(ctx, engine.Request{ProductID: id, UserID: buyer})
	if r.Status != wire.StatusReserved {
		t.Fatalf("purchase after the other shard's reservation expired = %+v, want RESERVED", r)
	}
	if c := eng.Confirm(ctx, order(id, homedUser("b", 1, 2), held.OrderID)); c.Status != wire.StatusExpired {
		t.Errorf("confirm of the expired reservation = %+v, want EXPIRED", c)
	}
	st, err := eng.Status(ctx, id)
	if err != nil || st.Expired != 1 || st.Reserved != 1 || st.Paid != 1 || st.Remaining != 0 {
		t.Errorf("status = %+v, %v: want 1 expired, 1 reserved, 1 paid", st, err)
	}
	mustVerify(t, eng, id, 2, 0)
	cancelOpen(t, eng, id, buyer, r.OrderID)
}

// cancelOpen cancels a reservation a test leaves open, so that no sweeper
// of another test finds it expired (TestSweeperReleasesOnTime counts the
// lags of every product).
func cancelOpen(t *testing.T, eng *engine.Engine, id, user, orderID string) {
	t.Helper()
	if r := eng.Cancel(testContext(t), order(id, user, orderID)); r.Status != wire.StatusReleased {
		t.Errorf("cancel of %s's %s = %+v", user, orderID, r)
	}
}

// TestShardedReleaseClearsSoldOutCache: a purchase on one server releases
// expired reservations in its home shard, which announces the shard; the
// other servers' cached SOLD_OUT of the product must go (not parallel:
// waitSubscribed counts every subscriber of the shared Redis).
func TestShardedReleaseClearsSoldOutCache(t *testing.T) {
	pool, addr := newPool(t)
	ctx := testContext(t)
	admin := engine.New(pool)
	// 3 units over 2 shards: shard 0 holds 2, shard 1 one.
	id, _ := newSharded(t, admin, 3, 2, engine.WithHold(40*time.Millisecond), engine.WithPerUserLimit(0))
	cached := engine.New(pool, engine.WithSoldOutCache(time.Hour))
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go cached.WatchControl(wctx)
	waitSubscribed(t, addr)
	var last time.Time
	for _, u := range []string{homedUser("a", 0, 2), homedUser("b", 0, 2), homedUser("c", 1, 2)} {
		last = reserve(t, cached, id, u).ExpiresAt
	}
	buyer := homedUser("d", 0, 2)
	if r := cached.Purchase(ctx, engine.Request{ProductID: id, UserID: buyer}); r.Status != wire.StatusSoldOut {
		t.Fatalf("purchase while every unit is held = %+v, want SOLD_OUT", r)
	}
	time.Sleep(time.Until(last) + 20*time.Millisecond)
	// Another server's purchase in shard 0 releases its 2 units, takes 1.
	e := reserve(t, admin, id, homedUser("e", 0, 2))
	deadline := time.Now().Add(2 * time.Second)
	for {
		r := cached.Purchase(ctx, engine.Request{ProductID: id, UserID: buyer})
		if r.Status == wire.StatusReserved {
			defer cancelOpen(t, admin, id, buyer, r.OrderID)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("purchase after a release in shard 0 = %+v, want RESERVED: the cached SOLD_OUT stayed", r)
		}
		time.Sleep(10 * time.Millisecond)
	}
	mustVerify(t, admin, id, 3, 0)
	cancelOpen(t, admin, id, homedUser("e", 0, 2), e.OrderID)
	if sw, err := admin.Sweep(ctx, id); err != nil || sw.Units != 1 {
		t.Errorf("sweep = %+v, %v: want shard 1's expired unit", sw, err)
	}
}

// TestShardedReservationRemaining: a RESERVED answer of a sharded product
// carries the product's remaining stock, as a SUCCESS does: never 0 while
// another shard holds units.
func TestShardedReservationRemaining(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	id, _ := newSharded(t, eng, 2, 2, engine.WithHold(time.Minute), engine.WithPerUserLimit(0))
	user := homedUser("a", 0, 2)
	r := reserve(t, eng, id, user)
	if r.Remaining != 1 {
		t.Errorf("reservation = %+v, want remaining 1 (the other shard's unit)", r)
	}
	cancelOpen(t, eng, id, user, r.OrderID)
}

// TestSweeperSweepsShards: a server's sweeper releases the expired
// reservations of every shard of a sharded product on time (not parallel:
// see TestSweeperReleasesOnTime).
func TestSweeperSweepsShards(t *testing.T) {
	pool, _ := newPool(t)
	eng := engine.New(pool)
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	id, _ := newSharded(t, eng, 4, 2, engine.WithHold(150*time.Millisecond), engine.WithPerUserLimit(0))
	go eng.NewSweeper(engine.SweeperConfig{}).Run(ctx)
	var last time.Time
	for i, home := range []int{0, 0, 1, 1} {
		last = reserve(t, eng, id, homedUser(fmt.Sprint("s", i), home, 2)).ExpiresAt
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := eng.Status(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if st.Remaining == 4 && st.Expired == 4 {
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
	mustVerify(t, eng, id, 4, 4)
}

// TestTransferLeavesReservations: a transfer out of a shard moves its
// stock only; the reservations there stay, and are confirmed and counted
// there.
func TestTransferLeavesReservations(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	ctx := testContext(t)
	id, shards := newSharded(t, eng, 4, 2, engine.WithHold(time.Minute), engine.WithPerUserLimit(0))
	kept := homedUser("k", 1, 2)
	k := reserve(t, eng, id, kept)
	var open []engine.Result
	for i := range 3 { // the third moves shard 1's last unit to shard 0
		open = append(open, reserve(t, eng, id, homedUser(fmt.Sprint("m", i), 0, 2)))
	}
	if st, err := eng.Status(ctx, shards[1]); err != nil || st.Remaining != 0 || st.Reserved != 1 || st.Initial != 1 {
		t.Errorf("shard 1 after the transfer = %+v, %v: want its reservation there, its stock gone", st, err)
	}
	if r := eng.Confirm(ctx, order(id, kept, k.OrderID)); r.Status != wire.StatusPaid {
		t.Errorf("confirm in the transfer's source = %+v", r)
	}
	if r := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: homedUser("late", 0, 2)}); r.Status != wire.StatusSoldOut {
		t.Errorf("purchase with every unit reserved or paid = %+v, want SOLD_OUT", r)
	}
	a := mustVerify(t, eng, id, 4, 0)
	if a.Paid != 1 || a.Reserved != 3 {
		t.Errorf("audit = %+v, want 1 paid, 3 reserved", a)
	}
	for i, r := range open {
		cancelOpen(t, eng, id, homedUser(fmt.Sprint("m", i), 0, 2), r.OrderID)
	}
}
