package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mna/redisc"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/transport"
	"github.com/flashsale/flashsale/wire"
)

// shardServers returns n engines, each with its own cluster client (as n
// servers would have), over the cluster c.
func shardServers(t *testing.T, c *redistest.Cluster, n int) []*engine.Engine {
	t.Helper()
	var engs []*engine.Engine
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		cl, err := transport.NewCluster(ctx, transport.ClusterConfig{Seeds: c.Addrs()[:1], Batch: &transport.BatcherConfig{}})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close() })
		if err := cl.Load(testContext(t), engine.Scripts()...); err != nil {
			t.Fatal(err)
		}
		engs = append(engs, engine.New(cl, engine.WithSoldOutCache(time.Minute)))
	}
	return engs
}

// buyAsync is one PurchaseAsync, waited for.
func buyAsync(eng *engine.Engine, req engine.Request) engine.Result {
	ch := make(chan engine.Result, 1)
	eng.PurchaseAsync(req, time.Now().Add(10*time.Second), func(r engine.Result) { ch <- r })
	return <-ch
}

// hotRun is what a race of customers for a sharded product saw.
type hotRun struct {
	sold      int64
	perUser   map[string]int64
	soldOuts  int64
	early     []string // SOLD_OUT answers while units remained
	errs      int64
	lastError string
}

// skewedCustomer is the name of customer i of a race over k shards: every
// other one has its home in shard 0 or 1, so those run dry early and
// units must move to them.
func skewedCustomer(i, k int) string {
	user := fmt.Sprintf("cust-%d", i)
	for n := 0; i%2 == 0 && engine.HomeShard(user, k) > 1; n++ {
		user = fmt.Sprintf("cust-%d-%d", i, n)
	}
	return user
}

// raceHot has customers (limit 2 each) buy one unit at a time from id
// (over k shards), spread over engs, until the limit or SOLD_OUT; an ERROR
// is retried.
func raceHot(t *testing.T, engs []*engine.Engine, id string, k, customers int) *hotRun {
	t.Helper()
	ctx := testContext(t)
	run := &hotRun{perUser: map[string]int64{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range customers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			eng, user := engs[i%len(engs)], skewedCustomer(i, k)
			for attempt := 0; attempt < 10; attempt++ {
				r := buyAsync(eng, engine.Request{ProductID: id, UserID: user, Quantity: 1, RequestID: fmt.Sprintf("%s-%d", user, attempt)})
				mu.Lock()
				switch r.Status {
				case wire.StatusSuccess:
					run.sold++
					run.perUser[user]++
				case wire.StatusSoldOut:
					run.soldOuts++
				case wire.StatusError:
					run.errs++
					run.lastError = r.Message + ": " + fmt.Sprint(r.Err)
				}
				mu.Unlock()
				switch r.Status {
				case wire.StatusSuccess, wire.StatusError:
					continue
				case wire.StatusSoldOut:
					// Once sold out, nothing may remain anywhere (stock
					// never comes back without a restock).
					if st, err := eng.Status(ctx, id); err != nil || st.Remaining+st.InTransit != 0 {
						mu.Lock()
						run.early = append(run.early, fmt.Sprintf("%s: SOLD_OUT with %d left, %d in transit (%v)", user, st.Remaining, st.InTransit, err))
						mu.Unlock()
					}
				}
				return
			}
		}()
	}
	wg.Wait()
	return run
}

// checkHot checks a race for units units: all sold, nobody above 2,
// SOLD_OUT only after the last unit, and the books.
func checkHot(t *testing.T, eng *engine.Engine, id string, units int64, run *hotRun) {
	t.Helper()
	ctx := testContext(t)
	if run.sold != units {
		t.Errorf("sold %d units, want exactly %d (errors %d, last %s)", run.sold, units, run.errs, run.lastError)
	}
	for u, n := range run.perUser {
		if n > 2 {
			t.Errorf("customer %s bought %d units, above the limit of 2", u, n)
		}
	}
	if len(run.early) > 0 {
		t.Errorf("%d SOLD_OUT answers while units remained, first: %s", len(run.early), run.early[0])
	}
	if run.soldOuts == 0 {
		t.Error("no customer was told SOLD_OUT")
	}
	a, err := eng.Verify(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !a.OK() || a.Held != units || a.Remaining != 0 || a.Customers != int64(len(run.perUser)) {
		t.Errorf("verify: %+v", a)
	}
}

func TestShardedHotProduct(t *testing.T) {
	c := redistest.StartCluster(t, redistest.ClusterConfig{Masters: 3})
	engs := shardServers(t, c, 3)
	ctx := testContext(t)
	const id, units = "hotphone", 1000
	if err := engs[0].InitSharded(ctx, id, units, 8, engine.WithPerUserLimit(2)); err != nil {
		t.Fatal(err)
	}
	ids, err := engs[0].Shards(ctx, id)
	if err != nil || len(ids) != 8 {
		t.Fatalf("shards %v, %v", ids, err)
	}
	slots, masters := map[int]bool{}, map[string]int{}
	for _, sid := range ids {
		slot := redisc.Slot(engine.KeysFor(sid).Stock)
		slots[slot] = true
		m, err := c.NodeFor(ctx, slot)
		if err != nil {
			t.Fatal(err)
		}
		masters[m.Addr]++
	}
	if len(slots) != 8 || len(masters) != 3 {
		t.Fatalf("shards %v on %d slots, masters %v", ids, len(slots), masters)
	}
	for m, n := range masters {
		if n < 2 || n > 3 {
			t.Errorf("master %s holds %d of 8 shards", m, n)
		}
	}
	list, err := engs[1].Products(ctx)
	if err != nil || strings.Join(list, ",") != id {
		t.Errorf("products %v, %v: want the one product", list, err)
	}
	st, err := engs[1].Status(ctx, id)
	if err != nil || st.Initial != units || st.Remaining != units || st.Shards != 8 || !st.Consistent() {
		t.Fatalf("status %+v, %v", st, err)
	}

	checkHot(t, engs[0], id, units, raceHot(t, engs, id, 8, 600))

	// A retry of an answered request gets its answer again, on any server.
	r := engs[2].Purchase(ctx, engine.Request{ProductID: id, UserID: "cust-7", Quantity: 1, RequestID: "cust-7-0"})
	if r.Status != wire.StatusSuccess && r.Status != wire.StatusSoldOut {
		t.Errorf("replay of cust-7's first attempt: %v %s", r.Status, r.Message)
	}
}

func TestShardedTransferInterrupted(t *testing.T) {
	c := redistest.StartCluster(t, redistest.ClusterConfig{Masters: 3})
	engs := shardServers(t, c, 3)
	ctx := testContext(t)
	const id, units = "hotdrop", 1000
	if err := engs[0].InitSharded(ctx, id, units, 8, engine.WithPerUserLimit(2)); err != nil {
		t.Fatal(err)
	}
	// The first transfers stop after their debit, as if their server died.
	var crashed atomic.Int64
	restore := engine.SetTransferHook(func(string) error {
		if crashed.Add(1) <= 5 {
			return errors.New("crashed after the debit")
		}
		return nil
	}, engs...)
	run := raceHot(t, engs, id, 8, 600)
	restore()
	t.Logf("sold %d, sold-outs %d, errors %d (%s), early %d", run.sold, run.soldOuts, run.errs, run.lastError, len(run.early))
	if crashed.Load() < 5 {
		t.Fatalf("only %d transfers ran", crashed.Load())
	}
	// Every server finishes pending transfers before answering SOLD_OUT,
	// so the race still sells every unit; repair then finds the books whole.
	if _, err := engs[1].Repair(ctx, id); err != nil {
		t.Fatal(err)
	}
	checkHot(t, engs[0], id, units, run)
}

func TestShardedRepair(t *testing.T) {
	c := redistest.StartCluster(t, redistest.ClusterConfig{Masters: 3})
	eng := shardServers(t, c, 1)[0]
	ctx := testContext(t)
	const id = "tiny"
	if err := eng.InitSharded(ctx, id, 2, 2, engine.WithPerUserLimit(0)); err != nil {
		t.Fatal(err)
	}
	user := "u0"
	for i := 0; engine.HomeShard(user, 2) != 0; i++ {
		user = "u" + strconv.Itoa(i)
	}
	buy := func() engine.Result {
		return eng.Purchase(ctx, engine.Request{ProductID: id, UserID: user, Quantity: 1})
	}
	if r := buy(); r.Status != wire.StatusSuccess {
		t.Fatalf("first purchase: %v %s", r.Status, r.Message)
	}
	restore := engine.SetTransferHook(func(string) error { return errors.New("crashed after the debit") }, eng)
	if r := buy(); r.Status != wire.StatusError {
		t.Fatalf("purchase whose transfer crashed: %v, want ERROR", r.Status)
	}
	restore()
	a, err := eng.Verify(ctx, id)
	if err != nil || a.OK() || a.InTransit != 1 || a.Remaining != 0 || a.Held != 1 {
		t.Fatalf("verify mid-transfer: %+v, %v: want a pending transfer of 1 unit", a, err)
	}
	if st, err := eng.Status(ctx, id); err != nil || st.InTransit != 1 || !st.Consistent() {
		t.Fatalf("status mid-transfer: %+v, %v", st, err)
	}
	if n, err := eng.Repair(ctx, id); err != nil || n != 1 {
		t.Fatalf("repair: %d, %v", n, err)
	}
	if n, err := eng.Repair(ctx, id); err != nil || n != 0 {
		t.Fatalf("second repair: %d, %v: want nothing left to do", n, err)
	}
	if a, err := eng.Verify(ctx, id); err != nil || !a.OK() || a.Remaining != 1 {
		t.Fatalf("verify after repair: %+v, %v", a, err)
	}
	if r := buy(); r.Status != wire.StatusSuccess {
		t.Fatalf("purchase after repair: %v %s", r.Status, r.Message)
	}
	if r := buy(); r.Status != wire.StatusSoldOut {
		t.Fatalf("purchase of nothing left: %v %s", r.Status, r.Message)
	}
}

// cmdCalls reads how many times node n ran command cmd without failing
// (INFO commandstats, which counts the commands scripts run too).
func cmdCalls(t *testing.T, c *redistest.Cluster, n *redistest.Node, cmd string) int64 {
	t.Helper()
	v, err := c.Do(testContext(t), n, "INFO", "commandstats")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := v.(string)
	if b, ok := v.([]byte); ok {
		s = string(b)
	}
	for _, line := range strings.Split(s, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_"+cmd+":calls="); ok {
			calls, _, _ := strings.Cut(rest, ",")
			n, _ := strconv.ParseInt(calls, 10, 64)
			_, failed, _ := strings.Cut(rest, "failed_calls=")
			f, _ := strconv.ParseInt(strings.TrimSpace(failed), 10, 64)
			return n - f
		}
	}
	return 0
}

// saleCalls reads the sales node n made: its XADD calls, one per sale
// (the purchase script's). Sales, not script calls, measure the load:
// the batcher merges concurrent purchases of one shard into one script
// call, so the calls depend on how many purchases waited together, while
// each sale is one XADD, merged or not.
func saleCalls(t *testing.T, c *redistest.Cluster, n *redistest.Node) int64 {
	return cmdCalls(t, c, n, "xadd")
}

func TestShardedLoadSpread(t *testing.T) {
	c := redistest.StartCluster(t, redistest.ClusterConfig{Masters: 3})
	engs := shardServers(t, c, 2)
	ctx := testContext(t)
	const id = "spread"
	if err := engs[0].InitSharded(ctx, id, 6000, 6, engine.WithPerUserLimit(2)); err != nil {
		t.Fatal(err)
	}
	masters, err := c.Masters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, eng := range engs { // each reads the shard list once
		if r := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "warm-up"}); r.Status != wire.StatusSuccess && r.Status != wire.StatusAlreadyPurchased {
			t.Fatalf("warm-up purchase: %v %s", r.Status, r.Message)
		}
	}
	before, scriptsBefore := map[string]int64{}, map[string]int64{}
	for _, m := range masters {
		before[m.Addr] = saleCalls(t, c, m)
		scriptsBefore[m.Addr] = cmdCalls(t, c, m, "evalsha")
	}
	var wg sync.WaitGroup
	for i := range 1500 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := buyAsync(engs[i%2], engine.Request{ProductID: id, UserID: fmt.Sprintf("c%d", i)}); r.Status != wire.StatusSuccess {
				t.Errorf("purchase: %v %s", r.Status, r.Message)
			}
		}()
	}
	wg.Wait()
	var total int64
	calls, scripts := map[string]int64{}, map[string]int64{}
	for _, m := range masters {
		calls[m.Addr] = saleCalls(t, c, m) - before[m.Addr]
		scripts[m.Addr] = cmdCalls(t, c, m, "evalsha") - scriptsBefore[m.Addr]
		total += calls[m.Addr]
	}
	mean := float64(total) / float64(len(masters))
	for m, n := range calls {
		if d := (float64(n) - mean) / mean; d > 0.15 || d < -0.15 {
			t.Errorf("master %s made %d sales, %.0f%% off the mean %.0f (all: %v)", m, n, 100*d, mean, calls)
		}
	}
	t.Logf("sales per master: %v, in script calls (merged): %v", calls, scripts)
}
