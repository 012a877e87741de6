package engine_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/transport"
	"github.com/flashsale/flashsale/wire"
)

// homedUser is a user id whose home is shard home of k.
func homedUser(prefix string, home, k int) string {
	for i := 0; ; i++ {
		if u := fmt.Sprintf("%s-%d", prefix, i); engine.HomeShard(u, k) == home {
			return u
		}
	}
}

// newSharded initialises a fresh product of units over k shards and
// returns it with its shard ids.
func newSharded(t *testing.T, eng *engine.Engine, units int64, k int, opts ...engine.InitOption) (string, []string) {
	t.Helper()
	ctx := testContext(t)
	id := redistest.Product(t)
	if err := eng.InitSharded(ctx, id, units, k, opts...); err != nil {
		t.Fatal(err)
	}
	ids, err := eng.Shards(ctx, id)
	if err != nil || len(ids) != k {
		t.Fatalf("shards of %s: %v, %v", id, ids, err)
	}
	return id, ids
}

// mustVerify checks that product id's books balance, with initial units
// given and remaining left, and returns the audit.
func mustVerify(t *testing.T, eng *engine.Engine, id string, initial, remaining int64) engine.Audit {
	t.Helper()
	a, err := eng.Verify(testContext(t), id)
	if err != nil {
		t.Fatal(err)
	}
	if !a.OK() || a.Initial != initial || a.Remaining != remaining || a.InTransit != 0 {
		t.Fatalf("verify %s: %+v, want OK with initial %d and %d remaining", id, a, initial, remaining)
	}
	return a
}

// shardStocks reads the stock of each shard.
func shardStocks(t *testing.T, eng *engine.Engine, shards []string) []int64 {
	t.Helper()
	var out []int64
	for _, sid := range shards {
		st, err := eng.Status(testContext(t), sid)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, st.Remaining)
	}
	return out
}

func mustBuy(t *testing.T, eng *engine.Engine, id, user string, want wire.Status) engine.Result {
	t.Helper()
	r := eng.Purchase(testContext(t), engine.Request{ProductID: id, UserID: user})
	if r.Status != want {
		t.Fatalf("%s buys %s: %v %s %v, want %v", user, id, r.Status, r.Message, r.Err, want)
	}
	return r
}

// watchingEngine is an engine on r with a sold-out cache that only the
// control channel clears (its TTL outlives the test), following the
// channel: it returns once the subscription is seen to work.
func watchingEngine(t *testing.T, r engine.Redis, admin *engine.Engine) *engine.Engine {
	t.Helper()
	ctx := testContext(t)
	eng := engine.New(r, engine.WithSoldOutCache(time.Hour))
	wctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	go eng.WatchControl(wctx)
	probe := redistest.Product(t)
	if err := admin.Init(ctx, probe, 0); err != nil {
		t.Fatal(err)
	}
	mustBuy(t, eng, probe, "probe", wire.StatusSoldOut)
	for deadline := time.Now().Add(testTimeout); ; {
		if err := admin.Init(ctx, probe, 0); err != nil { // announces probe
			t.Fatal(err)
		}
		hits := eng.Stats().SoldOutHits
		mustBuy(t, eng, probe, "probe", wire.StatusSoldOut)
		if eng.Stats().SoldOutHits == hits { // asked Redis: the cache forgot
			return eng
		}
		if time.Now().After(deadline) {
			t.Fatal("the control channel never cleared the sold-out cache")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestFillLowest(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		stocks []int64
		units  int64
		want   []int64
	}{
		{[]int64{0, 0, 0, 0}, 6, []int64{2, 2, 1, 1}},
		{[]int64{0, 2, 2, 2}, 2, []int64{2, 0, 0, 0}},
		{[]int64{0, 2, 2, 2}, 3, []int64{3, 0, 0, 0}},
		{[]int64{5, 1, 3, 0}, 4, []int64{0, 1, 0, 3}},
		{[]int64{5, 1, 3, 0}, 1, []int64{0, 0, 0, 1}},
		{[]int64{5, 1, 3, 0}, 100, []int64{22, 26, 24, 28}},
		{[]int64{7, 7}, 1, []int64{1, 0}},
	} {
		got := engine.FillLowest(tt.stocks, tt.units)
		if !slices.Equal(got, tt.want) {
			t.Errorf("FillLowest(%v, %d) = %v, want %v", tt.stocks, tt.units, got, tt.want)
		}
	}
}

// TestShardedRestock: a restock of a sharded product fills its emptiest
// shards, counts in the units it was given, and turns a sold-out product
// back on for every server's sold-out cache.
func TestShardedRestock(t *testing.T) {
	pool, _ := newPool(t)
	admin := engine.New(pool)
	eng := watchingEngine(t, pool, admin)
	ctx := testContext(t)
	const k = 4
	for _, tt := range []struct {
		name       string
		sell       []int // the home shard of each unit sold first
		restock    int64
		wantStocks []int64
	}{
		{"sold out", []int{0, 1, 2, 3, 0, 1, 2, 3}, 6, []int64{2, 2, 1, 1}},
		{"one shard dry", []int{2, 2}, 3, []int64{2, 2, 3, 2}},
		{"live", []int{1}, 8, []int64{4, 4, 4, 3}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			id, shards := newSharded(t, admin, 8, k, engine.WithPerUserLimit(0))
			for i, home := range tt.sell {
				mustBuy(t, eng, id, homedUser(fmt.Sprint("buyer", i), home, k), wire.StatusSuccess)
			}
			left := 8 - int64(len(tt.sell))
			if left == 0 {
				mustBuy(t, eng, id, "late", wire.StatusSoldOut)
				mustBuy(t, eng, id, "later", wire.StatusSoldOut) // from the cache
			}
			remaining, initial, err := admin.Restock(ctx, id, tt.restock)
			if err != nil || remaining != left+tt.restock || initial != 8+tt.restock {
				t.Fatalf("restock: %d remaining, initial %d, %v; want %d, %d", remaining, initial, err, left+tt.restock, 8+tt.restock)
			}
			if got := shardStocks(t, admin, shards); !slices.Equal(got, tt.wantStocks) {
				t.Errorf("shard stocks %v after the restock, want %v", got, tt.wantStocks)
			}
			mustVerify(t, admin, id, 8+tt.restock, left+tt.restock)
			orders, err := admin.Orders(ctx, id, 0)
			if err != nil {
				t.Fatal(err)
			}
			var restocked int64
			for _, o := range orders {
				if o.Type == "restock" {
					restocked += o.Quantity
				}
			}
			if restocked != tt.restock {
				t.Errorf("orders streams record %d units restocked, want %d", restocked, tt.restock)
			}
			// Every unit sells, to customers of any shard, then SOLD_OUT.
			for i := range left + tt.restock {
				deadline := time.Now().Add(testTimeout)
				for {
					r := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: fmt.Sprint("again", i)})
					if r.Status == wire.StatusSuccess {
						break
					}
					if r.Status != wire.StatusSoldOut || time.Now().After(deadline) {
						t.Fatalf("purchase %d after the restock: %v %s", i, r.Status, r.Message)
					}
					time.Sleep(5 * time.Millisecond) // the announcement is on its way
				}
			}
			mustBuy(t, eng, id, "last", wire.StatusSoldOut)
			mustVerify(t, admin, id, 8+tt.restock, 0)
		})
	}
}

// TestShardedRestockInterrupted: a restock stopped after its directory
// step leaves its parts in transit; verify counts them, so the books
// balance, names each until --repair credits it, and a purchase that
// finds every shard empty credits them itself.
func TestShardedRestockInterrupted(t *testing.T) {
	// Not parallel: the transfer hook is global.
	eng, _ := newEngine(t)
	ctx := testContext(t)
	for _, tt := range []struct {
		name   string
		passed int // parts credited before the crash
		repair bool
	}{
		{"none credited then repaired", 0, true},
		{"two credited then repaired", 2, true},
		{"none credited then a purchase completes it", 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			id, _ := newSharded(t, eng, 4, 4, engine.WithPerUserLimit(0))
			for i := range 4 {
				mustBuy(t, eng, id, fmt.Sprint("u", i), wire.StatusSuccess)
			}
			n := 0
			restore := engine.SetTransferHook(func(string) error {
				if n++; n > tt.passed {
					return errors.New("crashed")
				}
				return nil
			}, eng)
			_, _, err := eng.Restock(ctx, id, 8)
			restore()
			if err == nil {
				t.Fatal("restock went through its crash")
			}
			a, err := eng.Verify(ctx, id)
			inTransit := int64(8 - 2*tt.passed)
			if err != nil || a.OK() || a.InTransit != inTransit || a.Initial != 12 || a.Remaining+a.Held+a.InTransit != 12 {
				t.Fatalf("verify mid-restock: %+v, %v: want %d units in transit and the sum whole", a, err, inTransit)
			}
			for _, p := range a.Problems {
				if !strings.Contains(p, "restock part") || !strings.Contains(p, "--repair") {
					t.Errorf("problem %q: want only restock parts to repair", p)
				}
			}
			if st, err := eng.Status(ctx, id); err != nil || !st.Consistent() || st.InTransit != inTransit {
				t.Fatalf("status mid-restock: %+v, %v", st, err)
			}
			if tt.repair {
				if n, err := eng.Repair(ctx, id); err != nil || n != 4-tt.passed {
					t.Fatalf("repair: %d, %v; want %d parts", n, err, 4-tt.passed)
				}
				mustVerify(t, eng, id, 12, 8)
			} else {
				mustBuy(t, eng, id, "finder", wire.StatusSuccess)
				mustVerify(t, eng, id, 12, 7)
			}
			// Another restock stopped halfway, then the product re-created:
			// nothing of that restock is left.
			restore = engine.SetTransferHook(func(string) error { return errors.New("crashed") }, eng)
			_, _, err = eng.Restock(ctx, id, 4)
			restore()
			if err == nil {
				t.Fatal("second restock went through its crash")
			}
			if err := eng.InitSharded(ctx, id, 4, 4, engine.WithForce()); err != nil {
				t.Fatal(err)
			}
			mustVerify(t, eng, id, 4, 4)
		})
	}
}

// TestShardedRelease: releasing an order of a sharded product returns its
// units to its customer's home shard and frees their allowance there.
func TestShardedRelease(t *testing.T) {
	t.Parallel()
	eng, addr := newEngine(t)
	ctx := testContext(t)
	const k = 4
	id, shards := newSharded(t, eng, 8, k, engine.WithPerUserLimit(1))
	ann, bob := homedUser("ann", 1, k), homedUser("bob", 2, k)
	sale := mustBuy(t, eng, id, ann, wire.StatusSuccess)
	time.Sleep(2 * time.Millisecond) // bob's order id is not ann's (ids are milliseconds)
	mustBuy(t, eng, id, bob, wire.StatusSuccess)
	mustBuy(t, eng, id, ann, wire.StatusAlreadyPurchased)

	for _, tt := range []struct {
		name    string
		order   string
		opts    []engine.ReleaseOption
		want    error
		already bool
	}{
		{"someone else's by user", sale.OrderID, []engine.ReleaseOption{engine.ReleaseOfUser(bob)}, engine.ErrUnknownOrder, false},
		{"no such order", "1-0", nil, engine.ErrUnknownOrder, false},
		{"found in its shard", sale.OrderID, nil, nil, false},
		{"again", sale.OrderID, []engine.ReleaseOption{engine.ReleaseOfUser(ann)}, nil, true},
	} {
		r, err := eng.Release(ctx, id, tt.order, tt.opts...)
		if !errors.Is(err, tt.want) {
			t.Fatalf("%s: release: %v, want %v", tt.name, err, tt.want)
		}
		if err == nil && (r.Already != tt.already || r.UserID != ann || r.Quantity != 1) {
			t.Errorf("%s: release %+v", tt.name, r)
		}
	}
	if got := shardStocks(t, eng, shards); !slices.Equal(got, []int64{2, 2, 1, 2}) {
		t.Errorf("shard stocks %v after the release, want ann's unit back in shard 1", got)
	}
	mustVerify(t, eng, id, 8, 7)
	mustBuy(t, eng, id, ann, wire.StatusSuccess)
	mustVerify(t, eng, id, 8, 6)

	// Each shard's stream makes its own ids: one id may name sales in two
	// shards, and only the customer tells them apart.
	c := redistest.Conn(t, addr)
	rawDo(t, c, "XADD", engine.KeysFor(shards[3]).Orders, sale.OrderID, "type", "sale", "user_id", "carol", "quantity", 1)
	if _, err := eng.Release(ctx, id, sale.OrderID); !errors.Is(err, engine.ErrAmbiguousOrder) || !strings.Contains(err.Error(), "carol") {
		t.Fatalf("release of an id in two shards: %v, want ErrAmbiguousOrder naming both customers", err)
	}
	if r, err := eng.Release(ctx, id, sale.OrderID, engine.ReleaseOfUser(ann)); err != nil || !r.Already {
		t.Fatalf("release naming ann: %+v, %v", r, err)
	}
}

// TestShardedReset: reset puts a sharded product back to every unit it was
// given, restocks included, with no buyers, completing transfers first.
func TestShardedReset(t *testing.T) {
	// Not parallel: the transfer hook is global.
	eng, _ := newEngine(t)
	ctx := testContext(t)
	const k = 4
	for _, tt := range []struct {
		name    string
		restock int64
		crash   bool // a transfer stopped after its debit before the reset
	}{
		{"after sales and transfers", 0, false},
		{"after a restock", 5, false},
		{"with a transfer half done", 0, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			id, shards := newSharded(t, eng, 8, k, engine.WithPerUserLimit(1))
			// Customers of shard 0 only: its 2 units go, then units move.
			for i := range 4 {
				mustBuy(t, eng, id, homedUser(fmt.Sprint("c", i), 0, k), wire.StatusSuccess)
			}
			if tt.restock > 0 {
				if _, _, err := eng.Restock(ctx, id, tt.restock); err != nil {
					t.Fatal(err)
				}
			}
			if tt.crash {
				restore := engine.SetTransferHook(func(string) error { return errors.New("crashed") }, eng)
				for i := 4; ; i++ {
					if r := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: homedUser(fmt.Sprint("c", i), 0, k)}); r.Status == wire.StatusError {
						break
					}
				}
				restore()
			}
			total := 8 + tt.restock
			initial, _, err := eng.Reset(ctx, id)
			if err != nil || initial != total {
				t.Fatalf("reset: %d, %v; want %d", initial, err, total)
			}
			st, err := eng.Status(ctx, id)
			if err != nil || st.Remaining != total || st.Held != 0 || st.Buyers != 0 || st.Orders != 0 || st.InTransit != 0 {
				t.Fatalf("status after reset: %+v, %v", st, err)
			}
			mustVerify(t, eng, id, total, total)
			want := []int64{2, 2, 2, 2}
			if tt.restock > 0 {
				want = []int64{4, 3, 3, 3}
			}
			if got := shardStocks(t, eng, shards); !slices.Equal(got, want) {
				t.Errorf("shard stocks %v after reset, want the even spread %v", got, want)
			}
			mustBuy(t, eng, id, homedUser("c0", 0, k), wire.StatusSuccess) // a buyer again
			mustVerify(t, eng, id, total, total-1)
		})
	}
}

// TestShardedBuyers: the buyers of a sharded product are the union of its
// shards', listed shard by shard.
func TestShardedBuyers(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	ctx := testContext(t)
	const k = 4
	id, shards := newSharded(t, eng, 12, k, engine.WithPerUserLimit(2))
	var users []string
	for i, home := range []int{0, 2, 0, 3, 2, 0} {
		u := homedUser(fmt.Sprint("b", i), home, k)
		users = append(users, u)
		mustBuy(t, eng, id, u, wire.StatusSuccess)
	}
	mustBuy(t, eng, id, users[1], wire.StatusSuccess) // a second order
	var want []string                                 // shard by shard
	for _, sid := range shards {
		_, ids, err := eng.Buyers(ctx, sid, 0)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, ids...)
	}
	if len(want) != 7 {
		t.Fatalf("shards list %v, want 7 orders", want)
	}
	for _, tt := range []struct {
		limit int
		want  []string
	}{
		{0, want},
		{1, want[:1]},
		{4, want[:4]},
		{100, want},
	} {
		total, ids, err := eng.Buyers(ctx, id, tt.limit)
		if err != nil || total != 7 || !slices.Equal(ids, tt.want) {
			t.Errorf("buyers --limit %d: %d %v, %v; want 7 %v", tt.limit, total, ids, err, tt.want)
		}
	}
	got := slices.Clone(want)
	slices.Sort(got)
	wantUsers := append(slices.Clone(users), users[1])
	slices.Sort(wantUsers)
	if !slices.Equal(got, wantUsers) {
		t.Errorf("buyers %v, want %v", got, wantUsers)
	}
}

// TestShardedRemaining: a sharded SUCCESS's remaining_stock is the
// product's: never 0 while units remain in any shard, 0 after the last.
func TestShardedRemaining(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	const k, units = 4, 12
	for _, tt := range []struct {
		name string
		home func(i int) int // the home shard of the i-th customer
	}{
		{"spread", func(i int) int { return i % k }},
		{"one shard's customers", func(int) int { return 0 }}, // units move to shard 0
	} {
		t.Run(tt.name, func(t *testing.T) {
			eng := engine.New(pool)
			id, _ := newSharded(t, eng, units, k, engine.WithPerUserLimit(1))
			for i := range units {
				r := mustBuy(t, eng, id, homedUser(fmt.Sprint("r", i), tt.home(i), k), wire.StatusSuccess)
				// While units remain, never 0 (a figure of the others
				// read earlier may be above the truth, never 0 wrongly).
				if left := int64(units - 1 - i); (left > 0 && r.Remaining == 0) || r.Remaining > units {
					t.Errorf("sale %d: remaining_stock %d with %d units left", i+1, r.Remaining, left)
				}
			}
			// A second server, with no reading of the shards yet.
			other := engine.New(pool)
			id2, _ := newSharded(t, eng, units, k, engine.WithPerUserLimit(1))
			for i := range units - 1 {
				mustBuy(t, eng, id2, homedUser(fmt.Sprint("s", i), tt.home(i), k), wire.StatusSuccess)
			}
			if r := mustBuy(t, other, id2, homedUser("s-last", tt.home(units-1), k), wire.StatusSuccess); r.Remaining != 0 {
				t.Errorf("last unit on another server: remaining_stock %d, want 0", r.Remaining)
			}
		})
	}
	// Exact for one server selling alone once it has read the shards.
	eng := engine.New(pool)
	id, _ := newSharded(t, eng, 40, k, engine.WithPerUserLimit(1))
	mustBuy(t, eng, id, homedUser("warm", 0, k), wire.StatusSuccess) // its home shard: 9 left, a reading started
	deadline := time.Now().Add(testTimeout)
	for i := 1; ; i++ {
		r := mustBuy(t, eng, id, homedUser(fmt.Sprint("x", i), i%k, k), wire.StatusSuccess)
		if r.Remaining == int64(40-1-i) {
			break
		}
		if time.Now().After(deadline) || i > 30 {
			t.Fatalf("sale %d: remaining_stock %d, want %d once the shards are read", i+1, r.Remaining, 40-1-i)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestShardedAdminOnCluster: restock and buyers of a product over 4
// shards on 3 masters act on the product as one.
func TestShardedAdminOnCluster(t *testing.T) {
	c := redistest.StartCluster(t, redistest.ClusterConfig{Masters: 3})
	engs := shardServers(t, c, 2)
	ctx := testContext(t)
	const k = 4
	id, shards := newSharded(t, engs[0], 4, k, engine.WithPerUserLimit(1))
	watcher := watchingEngineOn(t, c, engs[0])
	var users []string
	for i := range 4 {
		u := homedUser(fmt.Sprint("w", i), i, k)
		users = append(users, u)
		mustBuy(t, watcher, id, u, wire.StatusSuccess)
	}
	mustBuy(t, watcher, id, "late", wire.StatusSoldOut)
	if remaining, initial, err := engs[1].Restock(ctx, id, 6); err != nil || remaining != 6 || initial != 10 {
		t.Fatalf("restock on the cluster: %d, %d, %v", remaining, initial, err)
	}
	if got := shardStocks(t, engs[0], shards); !slices.Equal(got, []int64{2, 2, 1, 1}) {
		t.Errorf("shard stocks %v, want the restock spread", got)
	}
	mustVerify(t, engs[0], id, 10, 6)
	deadline := time.Now().Add(testTimeout)
	for r := watcher.Purchase(ctx, engine.Request{ProductID: id, UserID: "late"}); r.Status != wire.StatusSuccess; r = watcher.Purchase(ctx, engine.Request{ProductID: id, UserID: "late"}) {
		if r.Status != wire.StatusSoldOut || time.Now().After(deadline) {
			t.Fatalf("purchase after the restock: %v %s", r.Status, r.Message)
		}
		time.Sleep(5 * time.Millisecond)
	}
	users = append(users, "late")
	total, ids, err := engs[1].Buyers(ctx, id, 0)
	slices.Sort(ids)
	slices.Sort(users)
	if err != nil || total != 5 || !slices.Equal(ids, users) {
		t.Errorf("buyers on the cluster: %d %v, %v; want %v", total, ids, err, users)
	}
	if r, err := engs[1].Release(ctx, id, mustOrder(t, engs[0], id, "late"), engine.ReleaseOfUser("late")); err != nil || r.UserID != "late" {
		t.Fatalf("release on the cluster: %+v, %v", r, err)
	}
	if initial, _, err := engs[0].Reset(ctx, id); err != nil || initial != 10 {
		t.Fatalf("reset on the cluster: %d, %v", initial, err)
	}
	mustVerify(t, engs[0], id, 10, 10)
}

// mustOrder is user's sale of product id.
func mustOrder(t *testing.T, eng *engine.Engine, id, user string) string {
	t.Helper()
	orders, err := eng.Orders(testContext(t), id, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range orders {
		if o.Type == "sale" && o.UserID == user {
			return o.OrderID
		}
	}
	t.Fatalf("no sale of %s to %s in %+v", id, user, orders)
	return ""
}

// watchingEngineOn is watchingEngine on a cluster client of its own.
func watchingEngineOn(t *testing.T, c *redistest.Cluster, admin *engine.Engine) *engine.Engine {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cl, err := transport.NewCluster(ctx, transport.ClusterConfig{Seeds: c.Addrs()[:1]})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	if err := cl.Load(testContext(t), engine.Scripts()...); err != nil {
		t.Fatal(err)
	}
	return watchingEngine(t, cl, admin)
}
