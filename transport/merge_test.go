package transport_test

import (
	"context"
	"fmt"
	"maps"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/metrics"
	"github.com/flashsale/flashsale/internal/testkit/metricstest"
	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/transport"
	"github.com/flashsale/flashsale/wire"
)

// mergeObserver records the purchase calls and the retries a Batcher
// reports.
type mergeObserver struct {
	countingObserver
	mu      sync.Mutex
	merged  []int
	retried map[transport.Retry]int
}

func (o *mergeObserver) Merged(calls int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.merged = append(o.merged, calls)
}

func (o *mergeObserver) Retried(why transport.Retry) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.retried == nil {
		o.retried = map[transport.Retry]int{}
	}
	o.retried[why]++
}

// gatedBatcher returns a one-lane Batcher whose connection opens only when
// open is called: everything queued before that is in its first batch, so
// what merges is certain, whatever the timing.
func gatedBatcher(t *testing.T, obs transport.Observer) (b *transport.Batcher, admin *engine.Engine, open func()) {
	t.Helper()
	pool, _ := newPool(t)
	gate := make(chan struct{})
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	dial := func(_ context.Context, network, addr string) (net.Conn, error) {
		select {
		case <-gate:
		case <-stop:
			return nil, net.ErrClosed
		}
		var d net.Dialer
		return d.DialContext(context.Background(), network, addr)
	}
	b = transport.NewBatcher(pool, transport.BatcherConfig{Conns: 1, Dial: dial, Observer: obs})
	t.Cleanup(func() { b.Close() })
	var once sync.Once
	return b, engine.New(pool), func() { once.Do(func() { close(gate) }) }
}

// mergedRun queues reqs on eng (whose batcher is gated) and returns their
// results once the gate opens.
func mergedRun(t *testing.T, eng *engine.Engine, open func(), reqs []engine.Request) []engine.Result {
	t.Helper()
	results := make([]engine.Result, len(reqs))
	var wg sync.WaitGroup
	for i, req := range reqs {
		wg.Add(1)
		eng.PurchaseAsync(req, time.Now().Add(testTimeout), func(r engine.Result) {
			results[i] = r
			wg.Done()
		})
	}
	open()
	wg.Wait()
	return results
}

// TestBatcherMergesPurchases: purchases of two products queued together
// go as merged calls of at most MaxMergedPurchases per product, status
// reads between them go alone, and every answer is what the purchase
// would get alone in that order.
func TestBatcherMergesPurchases(t *testing.T) {
	t.Parallel()
	obs := &mergeObserver{}
	b, admin, open := gatedBatcher(t, obs)
	eng := engine.New(b)
	ctx := testContext(t)
	free := newProduct(t, admin, 100, engine.WithPerUserLimit(0))
	limited := newProduct(t, admin, 1000, engine.WithPerUserLimit(1))
	var reqs []engine.Request
	for i := range 150 {
		// Each limited customer twice: the second time a retry of the
		// first (same request id) for every third customer, else a new
		// attempt, over the limit.
		k := i / 2
		rid := fmt.Sprint("r", k)
		if i%2 == 1 && k%3 != 0 {
			rid = ""
		}
		reqs = append(reqs,
			engine.Request{ProductID: free, UserID: fmt.Sprint("u", i)},
			engine.Request{ProductID: limited, UserID: fmt.Sprint("u", k), RequestID: rid})
	}
	statusDone := make(chan error, 1)
	go func() {
		// A read-only script between the purchases, through the same queue.
		_, err := engine.New(b).Status(ctx, free)
		statusDone <- err
	}()
	for b.QueueDepth() == 0 {
		time.Sleep(time.Millisecond) // the status call is queued (the gate holds it)
	}
	results := mergedRun(t, eng, open, reqs)
	if err := <-statusDone; err != nil {
		t.Fatal(err)
	}

	freeSold, limitedSold := 0, map[string]int{}
	for i, r := range results {
		req := reqs[i]
		switch {
		case req.ProductID == free && r.Status == wire.StatusSuccess:
			freeSold++
			if want := int64(100 - freeSold); r.Remaining != want {
				t.Errorf("free sale %d: remaining %d, want %d (arrival order)", freeSold, r.Remaining, want)
			}
		case req.ProductID == free:
			if r.Status != wire.StatusSoldOut || freeSold != 100 {
				t.Errorf("free purchase %d: %+v after %d sales", i, r, freeSold)
			}
		case r.Status == wire.StatusSuccess:
			limitedSold[req.UserID]++
			if i%4 == 3 && req.RequestID == "" {
				t.Errorf("limited purchase %d %+v: %+v, want ALREADY_PURCHASED", i, req, r)
			}
		case r.Status != wire.StatusAlreadyPurchased || req.RequestID != "":
			t.Errorf("limited purchase %d %+v: %+v", i, req, r)
		}
	}
	if freeSold != 100 || len(limitedSold) != 75 || limitedSold["u0"] != 2 || limitedSold["u1"] != 1 {
		t.Errorf("sold %d free, to %d customers of 75 limited", freeSold, len(limitedSold))
	}
	for _, id := range []string{free, limited} {
		if a, err := admin.Verify(ctx, id); err != nil || !a.OK() {
			t.Fatalf("verify %s: %+v %v", id, a, err)
		}
	}
	obs.mu.Lock()
	merged := slices.Sorted(slices.Values(obs.merged))
	obs.mu.Unlock()
	// 150 per product: 64 + 64 + 22 each.
	if want := []int{22, 22, 64, 64, 64, 64}; !slices.Equal(merged, want) {
		t.Errorf("merged calls of %v, want %v", merged, want)
	}
	obs.countingObserver.mu.Lock()
	defer obs.countingObserver.mu.Unlock()
	// 300 purchases, and the status call: its read of the product's shard
	// directory (engine/shards.go) and its status script.
	if obs.scripts != 302 {
		t.Errorf("observer saw %d calls, want 302", obs.scripts)
	}
}

// TestBatcherMergedRetryAnswers: a retry queued next to its original
// (same request_id) is answered with the original's sale, in one merged
// call.
func TestBatcherMergedRetryAnswers(t *testing.T) {
	t.Parallel()
	obs := &mergeObserver{}
	b, admin, open := gatedBatcher(t, obs)
	id := newProduct(t, admin, 10)
	req := engine.Request{ProductID: id, UserID: "a", RequestID: "once"}
	other := engine.Request{ProductID: id, UserID: "b", RequestID: "once"}
	got := mergedRun(t, engine.New(b), open, []engine.Request{req, req, other, req})
	if got[0].Status != wire.StatusSuccess || got[1] != got[0] || got[3] != got[0] ||
		got[2].Code != engine.CodeRequestReused {
		t.Fatalf("answers %+v", got)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if !slices.Equal(obs.merged, []int{4}) {
		t.Errorf("merged calls %v, want [4]", obs.merged)
	}
}

// TestBatcherMergedNoScript is not parallel: SCRIPT FLUSH empties the
// script cache of the whole Redis. A merged call that meets NOSCRIPT ran
// nothing; each of its purchases runs again alone, once.
func TestBatcherMergedNoScript(t *testing.T) {
	obs := &mergeObserver{}
	b, admin, open := gatedBatcher(t, obs)
	id := newProduct(t, admin, 5, engine.WithPerUserLimit(0))
	_, addr := newPool(t)
	rawDo(t, redistest.Conn(t, addr), "SCRIPT", "FLUSH")
	var reqs []engine.Request
	for i := range 8 {
		reqs = append(reqs, engine.Request{ProductID: id, UserID: fmt.Sprint("u", i)})
	}
	c := countStatus(mergedRun(t, engine.New(b), open, reqs))
	if c["SUCCESS"] != 5 || c["SOLD_OUT"] != 3 {
		t.Fatalf("after NOSCRIPT: %v", c)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if !slices.Equal(obs.merged, []int{8}) {
		t.Errorf("merged calls %v, want [8]", obs.merged)
	}
	// Each purchase of the merged call was sent again, alone.
	if want := map[transport.Retry]int{transport.RetryNoScript: 8}; !maps.Equal(obs.retried, want) {
		t.Errorf("retries %v, want %v", obs.retried, want)
	}
	if a, err := admin.Verify(testContext(t), id); err != nil || !a.OK() {
		t.Fatalf("verify: %+v %v", a, err)
	}
}

// TestBatcherMergeSizeMetric: the merge sizes reach /metrics, one
// observation per purchase call sent: 150 purchases of one product queued
// together go as 64 + 64 + 22, and a lone purchase as 1.
func TestBatcherMergeSizeMetric(t *testing.T) {
	t.Parallel()
	m := metrics.New(metrics.Config{})
	b, admin, open := gatedBatcher(t, m)
	eng := engine.New(b)
	id := newProduct(t, admin, 1000, engine.WithPerUserLimit(0))
	var reqs []engine.Request
	for i := range 150 {
		reqs = append(reqs, engine.Request{ProductID: id, UserID: fmt.Sprint("u", i)})
	}
	if c := countStatus(mergedRun(t, eng, open, reqs)); c["SUCCESS"] != 150 {
		t.Fatalf("merged: %v", c)
	}
	if r := eng.Purchase(testContext(t), engine.Request{ProductID: id, UserID: "alone"}); r.Status != wire.StatusSuccess {
		t.Fatalf("lone purchase: %+v", r)
	}
	s := metricstest.Get(t, m.Handler())
	if n, sum := s.Value(t, "flashsale_redis_merge_size"), s.Sum(t, "flashsale_redis_merge_size"); n != 4 || sum != 151 {
		t.Errorf("flashsale_redis_merge_size: %v calls of %v purchases, want 4 of 151", n, sum)
	}
	// Cumulative buckets: the lone one at le=1, the 22 at le=32, all at 64.
	want := map[float64]uint64{1: 1, 2: 1, 16: 1, 32: 2, 64: 4}
	for _, bk := range s.Families["flashsale_redis_merge_size"].GetMetric()[0].GetHistogram().GetBucket() {
		if w, ok := want[bk.GetUpperBound()]; ok && bk.GetCumulativeCount() != w {
			t.Errorf("flashsale_redis_merge_size{le=%v} = %d, want %d", bk.GetUpperBound(), bk.GetCumulativeCount(), w)
		}
	}
	s.Lint(t)
}
