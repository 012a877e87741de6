package engine_test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/wire"
)

// A model-based test of reservations: several goroutines reserve, replay,
// confirm, cancel and sweep a product with a short hold, plain and spread
// over shards, at random, with reservations expiring meanwhile. Every
// answer is recorded; at the end the product's orders streams give the
// order in which Redis ran what changed state (a customer's orders all
// live in one stream), and a sequential model checks the answers and the
// books against it.

const (
	modelUnits   = 24
	modelLimit   = 2
	modelUsers   = 12
	modelWorkers = 4
	modelOps     = 120
	modelHold    = 40 * time.Millisecond
	// modelSlack is how far this host's clock and Redis's (on the same
	// host) may be apart, and the granularity of expiries (ms).
	modelSlack = 2 * time.Millisecond
)

// modelAnswer is one confirm or cancel of an order and what it answered.
type modelAnswer struct {
	op         string
	status     wire.Status
	start, end time.Time
}

func (a modelAnswer) String() string {
	return fmt.Sprintf("%s %s (began %s)", a.op, a.status, a.start.Format("15:04:05.000"))
}

// modelOrder is a reservation and every answer about it.
type modelOrder struct {
	user, id string
	expires  time.Time
	answers  []modelAnswer
}

// modelRun is what the workers saw.
type modelRun struct {
	mu       sync.Mutex
	orders   map[string]*modelOrder // by shard|order id
	keys     []string
	requests map[string]engine.Result // request id -> its first answer, a reservation
	problems []string
}

func (m *modelRun) fail(format string, args ...any) {
	m.mu.Lock()
	m.problems = append(m.problems, fmt.Sprintf(format, args...))
	m.mu.Unlock()
}

func TestHoldModel(t *testing.T) {
	// Not parallel: TestSweeperReleasesOnTime counts the release lags of
	// every product in the shared Redis, and this one's expire by the
	// dozen.
	for _, shards := range []int{0, 3} {
		t.Run(fmt.Sprint("shards ", shards), func(t *testing.T) {
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d", seed)
			runHoldModel(t, shards, seed)
		})
	}
}

func runHoldModel(t *testing.T, shards int, seed uint64) {
	eng, _ := newEngine(t)
	ctx := testContext(t)
	opts := []engine.InitOption{engine.WithHold(modelHold), engine.WithPerUserLimit(modelLimit)}
	var id string
	var ids []string // shard ids, nil for a plain product
	if shards == 0 {
		id = newProduct(t, eng, modelUnits, opts...)
	} else {
		id, ids = newSharded(t, eng, modelUnits, shards, opts...)
	}
	run := &modelRun{orders: map[string]*modelOrder{}, requests: map[string]engine.Result{}}
	var wg sync.WaitGroup
	for w := range modelWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for i := range modelOps {
				modelStep(t, eng, id, ids, run, rng, fmt.Sprintf("w%d-%d", w, i))
			}
		}()
	}
	wg.Wait()

	// Let every hold run out, then sweep until nothing is reserved.
	var last time.Time
	for _, o := range run.orders {
		if o.expires.After(last) {
			last = o.expires
		}
	}
	time.Sleep(time.Until(last) + modelSlack)
	for {
		sw, err := eng.Sweep(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !sw.More {
			break
		}
	}
	for _, p := range run.problems {
		t.Error(p)
	}
	checkHoldModel(t, eng, id, run)
}

// modelStep runs one random operation.
func modelStep(t *testing.T, eng *engine.Engine, id string, ids []string, run *modelRun, rng *rand.Rand, rid string) {
	ctx := testContext(t)
	user := fmt.Sprintf("m%d", rng.IntN(modelUsers))
	switch n := rng.IntN(20); {
	case n < 6: // reserve, with a request id one time in two
		req := engine.Request{ProductID: id, UserID: user}
		if n%2 == 0 {
			req.RequestID = rid
		}
		r := eng.Purchase(ctx, req)
		switch r.Status {
		case wire.StatusReserved:
			run.noteReservation(shardOf(ids, user), user, r, req.RequestID)
		case wire.StatusSoldOut, wire.StatusAlreadyPurchased:
		default:
			run.fail("purchase by %s = %+v", user, r)
		}
	case n < 8: // replay a request id answered RESERVED
		run.replay(t, eng, id, rng)
	case n < 18: // confirm or cancel a reservation: any, or the latest at its expiry
		o := run.pick(rng, n >= 14)
		if o == nil {
			return
		}
		op, settle := "confirm", eng.Confirm
		if n >= 12 && n < 14 {
			op, settle = "cancel", eng.Cancel
		}
		if n >= 14 { // race the expiry, from 4 ms before to 10 after
			time.Sleep(time.Until(o.expires) + time.Duration(rng.IntN(15)-4)*time.Millisecond)
		}
		start := time.Now()
		r := settle(ctx, order(id, o.user, o.id))
		a := modelAnswer{op: op, status: r.Status, start: start, end: time.Now()}
		if r.Status == wire.StatusError {
			run.fail("%s of %s's %s = %+v", op, o.user, o.id, r)
		}
		run.mu.Lock()
		o.answers = append(o.answers, a)
		run.mu.Unlock()
	default:
		if _, err := eng.Sweep(ctx, id); err != nil {
			run.fail("sweep: %v", err)
		}
		// A plain product's status is one script: its books balance at
		// every moment (a sharded one's are read shard by shard).
		if st, err := eng.Status(ctx, id); ids == nil && (err != nil || st.Remaining+st.Reserved+st.Paid != modelUnits) {
			run.fail("status mid-run = %+v, %v: stock + reserved + paid != %d", st, err, modelUnits)
		}
	}
	// Now and then wait for holds to run out.
	if rng.IntN(10) == 0 {
		time.Sleep(time.Duration(rng.IntN(int(modelHold/time.Millisecond))) * time.Millisecond)
	}
}

// shardOf is the shard id where user's orders live ("" for a plain
// product).
func shardOf(ids []string, user string) string {
	if ids == nil {
		return ""
	}
	return ids[engine.HomeShard(user, len(ids))]
}

// pick is a reservation made so far: any, or the latest.
func (m *modelRun) pick(rng *rand.Rand, latest bool) *modelOrder {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case len(m.keys) == 0:
		return nil
	case latest:
		return m.orders[m.keys[len(m.keys)-1]]
	}
	return m.orders[m.keys[rng.IntN(len(m.keys))]]
}

func (m *modelRun) noteReservation(shard, user string, r engine.Result, rid string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := shard + "|" + r.OrderID
	if _, dup := m.orders[key]; dup {
		m.problems = append(m.problems, fmt.Sprintf("order %s reserved twice", key))
		return
	}
	m.orders[key] = &modelOrder{user: user, id: r.OrderID, expires: r.ExpiresAt}
	m.keys = append(m.keys, key)
	if rid != "" {
		m.requests[rid+"|"+user] = r
	}
}

// replay retries a request answered RESERVED: it answers the original
// reservation, or ORDER_RELEASED once that was released.
func (m *modelRun) replay(t *testing.T, eng *engine.Engine, id string, rng *rand.Rand) {
	m.mu.Lock()
	var rid, user string
	var first engine.Result
	n := rng.IntN(len(m.requests) + 1)
	for k, r := range m.requests {
		if n--; n < 0 {
			first = r
			for i := len(k) - 1; i >= 0; i-- {
				if k[i] == '|' {
					rid, user = k[:i], k[i+1:]
					break
				}
			}
			break
		}
	}
	m.mu.Unlock()
	if rid == "" {
		return
	}
	r := eng.Purchase(testContext(t), engine.Request{ProductID: id, UserID: user, RequestID: rid})
	switch {
	case r.Status == wire.StatusReserved && r.OrderID == first.OrderID && r.ExpiresAt.Equal(first.ExpiresAt):
	case r.Status == wire.StatusError && r.Code == engine.CodeOrderReleased:
	default:
		m.fail("replay of %s by %s = %+v, want the reservation %s", rid, user, r, first.OrderID)
	}
}

// checkHoldModel replays the orders streams through the model and checks
// every answer and the books.
func checkHoldModel(t *testing.T, eng *engine.Engine, id string, run *modelRun) {
	ctx := testContext(t)
	entries, err := eng.Orders(ctx, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	type fate struct{ reserved, paid, released int }
	fates := map[string]*fate{}
	active := map[string]int{} // shard|user -> units reserved or paid, in stream order
	var paid, released int64
	for _, e := range entries {
		switch e.Type {
		case "reserved":
			fates[e.Shard+"|"+e.ID] = &fate{reserved: 1}
			if active[e.Shard+"|"+e.UserID]++; active[e.Shard+"|"+e.UserID] > modelLimit {
				t.Errorf("%s holds %d units at %s, above the limit %d", e.UserID, active[e.Shard+"|"+e.UserID], e.ID, modelLimit)
			}
		case "paid", "released":
			f := fates[e.Shard+"|"+e.OrderID]
			if f == nil {
				t.Errorf("%s entry %s of an order %s never reserved", e.Type, e.ID, e.OrderID)
				continue
			}
			if e.Type == "paid" {
				f.paid++
				paid++
			} else {
				f.released++
				released++
				active[e.Shard+"|"+e.UserID]--
			}
			if f.paid+f.released > 1 {
				t.Errorf("order %s settled %d times (paid %d, released %d)", e.OrderID, f.paid+f.released, f.paid, f.released)
			}
		default:
			t.Errorf("unexpected entry %+v", e)
		}
	}
	if len(fates) != len(run.orders) {
		t.Errorf("the streams hold %d reservations, the buyers were told of %d", len(fates), len(run.orders))
	}
	for key, o := range run.orders {
		f := fates[key]
		if f == nil {
			t.Errorf("reservation %s answered but not in the stream", key)
			continue
		}
		if f.paid+f.released != 1 {
			t.Errorf("order %s: paid %d, released %d after every hold ran out", key, f.paid, f.released)
		}
		checkAnswers(t, key, o, f.paid == 1)
	}
	st, err := eng.Status(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case st.Paid != paid || st.Paid > modelUnits:
		t.Errorf("status paid %d, the streams %d (stock %d)", st.Paid, paid, modelUnits)
	case st.Reserved != 0 || st.Remaining+st.Reserved+st.Paid != modelUnits:
		t.Errorf("status %+v: stock + reserved + paid != %d", st, modelUnits)
	case st.Expired+st.Cancelled != released:
		t.Errorf("status %+v: expired + cancelled != %d released", st, released)
	}
	verified(t, eng, id)
	t.Logf("%d reservations: %d paid, %d expired, %d cancelled", len(run.orders), st.Paid, st.Expired, st.Cancelled)
}

// checkAnswers checks the confirms and cancels of order o (key) against
// its fate: paid, or released (on expiry or by a cancel), never both, and
// every retry agreeing.
func checkAnswers(t *testing.T, key string, o *modelOrder, paid bool) {
	t.Helper()
	var expired, cancelled, paidInTime bool
	for _, a := range o.answers {
		switch {
		case paid && a.op == "confirm" && a.status == wire.StatusPaid:
			paidInTime = paidInTime || a.start.Before(o.expires.Add(modelSlack))
		case paid && a.op == "cancel" && a.status == wire.StatusAlreadyPaid:
		case !paid && a.op == "confirm" && a.status == wire.StatusExpired:
			expired = true
			if a.end.Before(o.expires.Add(-modelSlack)) {
				t.Errorf("order %s: EXPIRED at %s, before its expiry %s", key, a.end, o.expires)
			}
		case !paid && a.op == "confirm" && a.status == wire.StatusReleased:
			cancelled = true
		case !paid && a.op == "cancel" && a.status == wire.StatusReleased:
		default:
			t.Errorf("order %s (paid %v): %s answered %s", key, paid, a.op, a.status)
		}
	}
	if expired && cancelled {
		t.Errorf("order %s: confirms answered both EXPIRED and RELEASED (cancelled)", key)
	}
	if paid && !paidInTime {
		t.Errorf("order %s: paid, but no confirm began before its expiry %s: %v", key, o.expires.Format("15:04:05.000"), o.answers)
	}
}
