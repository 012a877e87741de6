package transport_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/flashsale/flashsale/client"
	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/metrics"
	"github.com/flashsale/flashsale/internal/testkit/metricstest"
	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
	"github.com/flashsale/flashsale/server"
	"github.com/flashsale/flashsale/transport"
	"github.com/flashsale/flashsale/wire"
)

// farmServer is one flashsale server of a farm: its cluster client, its
// engine, its metrics (its batchers' and cluster client's observer), and
// where it listens.
type farmServer struct {
	cl   *transport.Cluster
	eng  *engine.Engine
	m    *metrics.Metrics
	addr string
}

// farm starts n servers, each with its own cluster client (as n `serve`
// processes would have), over the cluster c; they stop when the test ends.
func farm(t *testing.T, c *redistest.Cluster, n int, pool transport.PoolConfig) []*farmServer {
	t.Helper()
	var fs []*farmServer
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		m := metrics.New(metrics.Config{})
		cl, err := transport.NewCluster(ctx, transport.ClusterConfig{
			Seeds: c.Addrs()[:1], Pool: pool, Batch: &transport.BatcherConfig{Observer: m},
		})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		eng := engine.New(cl, engine.WithSoldOutCache(time.Minute))
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		sctx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- server.New(eng, server.Config{Logger: zerolog.Nop(), RequestTimeout: 3 * time.Second}).Serve(sctx, ln)
		}()
		t.Cleanup(func() { stop(); <-done; cl.Close() })
		fs = append(fs, &farmServer{cl: cl, eng: eng, m: m, addr: ln.Addr().String()})
	}
	return fs
}

// tally is what a load run got back.
type tally struct {
	mu     sync.Mutex
	status map[string]int
	orders map[string][]string // product → SUCCESS order ids
	errs   []string
}

func newTally() *tally { return &tally{status: map[string]int{}, orders: map[string][]string{}} }

func (ty *tally) add(product string, r client.Response, err error) {
	ty.mu.Lock()
	defer ty.mu.Unlock()
	switch {
	case err != nil:
		ty.status["transport error"]++
		ty.errs = append(ty.errs, err.Error())
	case r.Status == "SUCCESS":
		ty.status[r.Status]++
		ty.orders[product] = append(ty.orders[product], r.OrderID)
	default:
		ty.status[r.Status]++
		if r.Status == "ERROR" {
			ty.errs = append(ty.errs, r.Code+": "+r.Error)
		}
	}
}

// buy runs the purchases jobs yields, over conns client connections per
// server, spread round-robin; it returns when jobs is drained.
func buy(t *testing.T, fs []*farmServer, conns int, ty *tally, jobs <-chan client.Request) {
	t.Helper()
	var wg sync.WaitGroup
	for i := range conns * len(fs) {
		c, err := client.Dial(saletest.Context(t), fs[i%len(fs)].addr, client.Options{Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer c.Close()
			for req := range jobs {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				r, err := c.Purchase(ctx, req)
				cancel()
				ty.add(req.ProductID, r, err)
			}
		})
	}
	wg.Wait()
}

// checkBooks fails unless every product's books are right and every
// SUCCESS the clients got is in its product's orders stream, once.
func checkBooks(t *testing.T, eng *engine.Engine, ty *tally, units map[string]int64) {
	t.Helper()
	ctx := saletest.Context(t)
	for id, n := range units {
		a, err := eng.Verify(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !a.OK() {
			t.Errorf("verify %s: %+v", id, a)
		}
		if a.Sold > n {
			t.Errorf("%s: %d sold of %d: oversold", id, a.Sold, n)
		}
		orders, err := eng.Orders(ctx, id, 0)
		if err != nil {
			t.Fatal(err)
		}
		inStream := map[string]int{}
		for _, o := range orders {
			if o.Type == "sale" {
				inStream[o.OrderID]++
			}
		}
		for _, oid := range ty.orders[id] {
			if inStream[oid] != 1 {
				t.Errorf("%s: SUCCESS order %s appears %d times in the stream", id, oid, inStream[oid])
			}
		}
		if int64(len(ty.orders[id])) > a.Sold {
			t.Errorf("%s: %d SUCCESS answers, %d sold", id, len(ty.orders[id]), a.Sold)
		}
	}
}

// TestClusterManyServers: 50 products over 3 masters, 3 servers, every
// customer racing: each product sells exactly its stock, no answer is an
// error, and a restock on one server reaches the sold-out caches of all.
func TestClusterManyServers(t *testing.T) {
	c := redistest.StartCluster(t, redistest.ClusterConfig{Masters: 3})
	fs := farm(t, c, 3, transport.PoolConfig{})
	ctx := saletest.Context(t)
	const products, stock, buyers = 50, 4, 8
	units := map[string]int64{}
	base := redistest.Product(t)
	for i := range products {
		id := fmt.Sprintf("%s-%d", base, i)
		units[id] = stock
		if err := fs[i%3].eng.Init(ctx, id, stock); err != nil {
			t.Fatal(err)
		}
	}
	jobs := make(chan client.Request, products*buyers)
	for u := range buyers {
		for id := range units {
			jobs <- client.Request{ProductID: id, UserID: fmt.Sprintf("u%d", u)}
		}
	}
	close(jobs)
	ty := newTally()
	buy(t, fs, 4, ty, jobs)
	t.Logf("answers: %v", ty.status)
	if ty.status["SUCCESS"] != products*stock || ty.status["SOLD_OUT"] != products*(buyers-stock) {
		t.Errorf("answers %v, want %d SUCCESS and %d SOLD_OUT; errors: %v", ty.status, products*stock, products*(buyers-stock), ty.errs)
	}
	checkBooks(t, fs[0].eng, ty, units)
	ids, err := fs[1].eng.Products(ctx)
	if err != nil {
		t.Fatal(err)
	}
	listed := 0
	for _, id := range ids {
		if _, ok := units[id]; ok {
			listed++
		}
	}
	if listed != products {
		t.Errorf("Products over every master listed %d of the %d products", listed, products)
	}

	// Every server has cached SOLD_OUT for one product; a restock through
	// server 0 must reach the others' caches (PUBLISH on any node reaches
	// every node's subscribers).
	var id string
	for id = range units {
		break
	}
	for i, f := range fs {
		conn, err := client.Dial(ctx, f.addr, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if r, err := conn.Purchase(ctx, client.Request{ProductID: id, UserID: fmt.Sprintf("late%d", i)}); err != nil || r.Status != "SOLD_OUT" {
			t.Fatalf("server %d: %+v, %v; want SOLD_OUT", i, r, err)
		}
	}
	if _, _, err := fs[0].eng.Restock(ctx, id, 3); err != nil {
		t.Fatal(err)
	}
	for i, f := range fs {
		conn, _ := client.Dial(ctx, f.addr, client.Options{})
		defer conn.Close()
		var r client.Response
		for range 100 { // the announcement travels asynchronously
			if r, err = conn.Purchase(ctx, client.Request{ProductID: id, UserID: fmt.Sprintf("after%d", i)}); err != nil || r.Status != "SOLD_OUT" {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil || r.Status != "SUCCESS" {
			t.Errorf("server %d after the restock: %+v, %v; want SUCCESS", i, r, err)
		}
	}
}

// load buys from unique customers on the given products until stop
// closes.
func load(t *testing.T, fs []*farmServer, ty *tally, ids []string, stop <-chan struct{}) (wait func()) {
	jobs := make(chan client.Request)
	var n atomic.Int64
	go func() {
		defer close(jobs)
		for {
			i := n.Add(1)
			select {
			case <-stop:
				return
			case jobs <- client.Request{ProductID: ids[int(i)%len(ids)], UserID: fmt.Sprintf("c%d", i)}:
			}
		}
	}()
	done := make(chan struct{})
	go func() { buy(t, fs, 2, ty, jobs); close(done) }()
	return func() { <-done }
}

// TestClusterReshardUnderLoad moves a busy product's slot to another
// master while two servers sell it: TRYAGAIN while its keys are split,
// ASK once they are all at the target, MOVED after; no sale lost,
// duplicated or oversold, no error answered.
func TestClusterReshardUnderLoad(t *testing.T) {
	c := redistest.StartCluster(t, redistest.ClusterConfig{Masters: 3})
	fs := farm(t, c, 2, transport.PoolConfig{})
	ctx := saletest.Context(t)
	id := redistest.Product(t)
	const stock = 100000 // never sells out during the test
	if err := fs[0].eng.Init(ctx, id, stock); err != nil {
		t.Fatal(err)
	}
	k := engine.KeysFor(id)
	from, err := c.MasterOf(ctx, k.Stock)
	if err != nil {
		t.Fatal(err)
	}
	masters, _ := c.Masters(ctx)
	to := masters[0]
	if to == from {
		to = masters[1]
	}
	ty := newTally()
	stop := make(chan struct{})
	wait := load(t, fs, ty, []string{id}, stop)
	time.Sleep(200 * time.Millisecond)
	m, err := c.BeginReshard(ctx, redistest.Slot(k.Stock), from, to)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if err := m.Move(ctx, k.Stock, k.Buyers, k.Meta, k.Holders, k.Orders, k.Released); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // ASK
	if err := m.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // MOVED, then the new map
	close(stop)
	wait()

	var st transport.ClusterStats
	for _, f := range fs {
		s := f.cl.Stats()
		st.Moved, st.Ask, st.Later = st.Moved+s.Moved, st.Ask+s.Ask, st.Later+s.Later
	}
	t.Logf("answers %v; followed: %+v", ty.status, st)
	if ty.status["SUCCESS"] == 0 || len(ty.errs) > 0 {
		t.Errorf("answers %v; errors: %v", ty.status, ty.errs)
	}
	// ASK from the source sends a call to the target, which answers
	// TRYAGAIN for a script some of whose keys (a customer's, created by
	// the sale) are not there yet: such calls wait out the migration.
	if st.Ask == 0 {
		t.Errorf("followed %+v: want ASK met", st)
	}
	checkBooks(t, fs[0].eng, ty, map[string]int64{id: stock})
	if a, _ := fs[1].eng.Verify(ctx, id); a.Sold != int64(ty.status["SUCCESS"]) {
		t.Errorf("%d sold, %d SUCCESS answered", a.Sold, ty.status["SUCCESS"])
	}
	if now, _ := c.MasterOf(ctx, k.Stock); now != to {
		t.Errorf("the slot is on %s, want %s", now, to)
	}
	for i, f := range fs {
		checkClusterMetrics(t, f)
		if i == 0 {
			s := metricstest.Get(t, f.m.Handler())
			t.Logf("server 0's metrics: %v ASK, %v MOVED, %v TRYAGAIN, %v slot maps, %v purchase calls",
				s.Value(t, "flashsale_redis_redirects_total", "kind", "ask"),
				s.Value(t, "flashsale_redis_redirects_total", "kind", "moved"),
				s.Value(t, "flashsale_redis_retries_total", "reason", "tryagain"),
				s.Value(t, "flashsale_redis_slot_refreshes_total"),
				s.Value(t, "flashsale_redis_merge_size"))
			s.Lint(t)
		}
	}
	// Every server met the migration: ASK on its metrics.
	var asks float64
	for _, f := range fs {
		asks += metricstest.Get(t, f.m.Handler()).Value(t, "flashsale_redis_redirects_total", "kind", "ask")
	}
	if asks == 0 {
		t.Error("flashsale_redis_redirects_total{kind=\"ask\"} is 0 on every server after the migration")
	}

	// Calls still in flight at the end of a migration retry on a fresh
	// map; a quiet client's map goes stale: its next call meets MOVED.
	if err := c.Reshard(ctx, redistest.Slot(k.Stock), to, from); err != nil {
		t.Fatal(err)
	}
	moved := fs[0].cl.Stats().Moved
	if r := fs[0].eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "after-reshard"}); r.Status != wire.StatusSuccess {
		t.Errorf("purchase after a second reshard: %+v", r)
	}
	if fs[0].cl.Stats().Moved == moved {
		t.Error("the purchase after the second reshard met no MOVED")
	}
	checkClusterMetrics(t, fs[0])
	if got := metricstest.Get(t, fs[0].m.Handler()).Value(t, "flashsale_redis_redirects_total", "kind", "moved"); got < 1 {
		t.Errorf("flashsale_redis_redirects_total{kind=\"moved\"} = %v after a MOVED", got)
	}
}

// checkClusterMetrics checks that f's /metrics says what its cluster
// client followed: the redirects and retries it counted, as many slot maps
// read (at least the one at start), and the three masters of the test
// cluster. A slot map read after MOVED runs in the background, so the two
// are compared until they agree, for a few seconds at most.
func checkClusterMetrics(t *testing.T, f *farmServer) {
	t.Helper()
	var diffs []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		diffs = clusterMetricsDiff(t, f)
		if len(diffs) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, d := range diffs {
		t.Error(d)
	}
}

// clusterMetricsDiff lists where f's metrics and its cluster client's
// counts disagree.
func clusterMetricsDiff(t *testing.T, f *farmServer) []string {
	t.Helper()
	st := f.cl.Stats()
	s := metricstest.Get(t, f.m.Handler())
	later := 0.0
	for _, reason := range []string{"tryagain", "clusterdown", "node_down"} {
		later += s.Value(t, "flashsale_redis_retries_total", "reason", reason)
	}
	var diffs []string
	for _, c := range []struct {
		name string
		got  float64
		want uint64
	}{
		{"moved", s.Value(t, "flashsale_redis_redirects_total", "kind", "moved"), st.Moved},
		{"ask", s.Value(t, "flashsale_redis_redirects_total", "kind", "ask"), st.Ask},
		{"retries after a wait", later, st.Later},
		{"slot maps", s.Value(t, "flashsale_redis_slot_refreshes_total"), st.Refreshes},
	} {
		if c.got != float64(c.want) {
			diffs = append(diffs, fmt.Sprintf("metrics say %v %s, the cluster client %d", c.got, c.name, c.want))
		}
	}
	if st.Refreshes == 0 {
		diffs = append(diffs, "no slot map read")
	}
	if got := s.Value(t, "flashsale_redis_cluster_masters"); got != 3 {
		diffs = append(diffs, fmt.Sprintf("flashsale_redis_cluster_masters = %v, want 3", got))
	}
	if s.Value(t, "flashsale_redis_merge_size") == 0 {
		diffs = append(diffs, "no purchase call in flashsale_redis_merge_size")
	}
	return diffs
}

// TestClusterMasterKilled kills the master of a busy product under load
// with --durability replicas:1: answers fail only while its replica takes
// over, selling resumes, and every SUCCESS answered before the kill is in
// the promoted replica's books.
func TestClusterMasterKilled(t *testing.T) {
	c := redistest.StartCluster(t, redistest.ClusterConfig{Masters: 3, Replicas: 1, NodeTimeout: time.Second})
	durability := transport.Durability{Replicas: 1, Timeout: time.Second}
	fs := farm(t, c, 2, transport.PoolConfig{Durability: durability, Timeout: 3 * time.Second})
	ctx := saletest.Context(t)
	base := redistest.Product(t)
	const stock = 100000
	units := map[string]int64{}
	var ids []string
	for i := range 6 {
		id := fmt.Sprintf("%s-%d", base, i)
		ids, units[id] = append(ids, id), stock
		if err := fs[0].eng.Init(ctx, id, stock); err != nil {
			t.Fatal(err)
		}
	}
	ty := newTally()
	stop := make(chan struct{})
	wait := load(t, fs, ty, ids, stop)
	time.Sleep(300 * time.Millisecond)
	killed, promoted, err := c.KillMasterOf(ctx, engine.KeysFor(ids[0]).Stock)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("killed %s, promoted %s", killed, promoted)
	// The promoted master has no replica until the old one rejoins: until
	// then its writes are answered not durable.
	if err := c.Restart(ctx, killed); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wait()
	t.Logf("answers %v", ty.status)
	for i, f := range fs {
		m := metricstest.Get(t, f.m.Handler())
		var followed []string
		for _, r := range transport.Retries() {
			family, label := "flashsale_redis_retries_total", "reason"
			if r.Redirect() {
				family, label = "flashsale_redis_redirects_total", "kind"
			}
			followed = append(followed, fmt.Sprintf("%s %v", r, m.Value(t, family, label, r.String())))
		}
		t.Logf("server %d's metrics: %s; %v slot maps", i, strings.Join(followed, ", "), m.Value(t, "flashsale_redis_slot_refreshes_total"))
	}

	// Selling again: every product sells, through both servers.
	after := newTally()
	jobs := make(chan client.Request, 2*len(ids))
	for _, id := range ids {
		jobs <- client.Request{ProductID: id, UserID: "after-a-" + id}
		jobs <- client.Request{ProductID: id, UserID: "after-b-" + id}
	}
	close(jobs)
	buy(t, fs, 1, after, jobs)
	if after.status["SUCCESS"] != len(ids)*2 {
		t.Errorf("after the failover: %v, %v", after.status, after.errs)
	}
	checkBooks(t, fs[1].eng, ty, units)
	t.Logf("errors while the replica took over (%d): %.90q", len(ty.errs), ty.errs)
	// The only failures: Redis unreachable (not run, or outcome unknown for
	// the calls the dead master had), and sales on the promoted master
	// before its replica rejoined, which ran but are not yet durable.
	for _, e := range ty.errs {
		if !strings.HasPrefix(e, "UNAVAILABLE") && !strings.HasPrefix(e, "NOT_DURABLE") {
			t.Errorf("answer during the failover: %s", e)
		}
	}
}

// TestClusterFailoverDurability cuts a master's replication link, sells,
// and kills the master, so that its replica takes over without the last
// sales: without a durability wait those were answered SUCCESS and are
// lost (the books still balance); with replicas:1 none was answered
// SUCCESS.
func TestClusterFailoverDurability(t *testing.T) {
	c := redistest.StartCluster(t, redistest.ClusterConfig{Masters: 3, Replicas: 1, NodeTimeout: time.Second})
	ctx := saletest.Context(t)
	open := func(d transport.Durability) *engine.Engine {
		cl, err := transport.NewCluster(ctx, transport.ClusterConfig{Seeds: c.Addrs()[:1], Pool: transport.PoolConfig{Durability: d}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close() })
		return engine.New(cl)
	}
	fast, durable := open(transport.Durability{}), open(transport.Durability{Replicas: 1, Timeout: 50 * time.Millisecond})
	id := redistest.Product(t)
	if err := fast.Init(ctx, id, 10); err != nil {
		t.Fatal(err)
	}
	if r := durable.Purchase(ctx, engine.Request{ProductID: id, UserID: "kept"}); r.Status != wire.StatusSuccess {
		t.Fatalf("durable purchase: %+v", r)
	}
	master, err := c.MasterOf(ctx, engine.KeysFor(id).Stock)
	if err != nil {
		t.Fatal(err)
	}
	replicas, err := c.ReplicasOf(ctx, master)
	if err != nil || len(replicas) != 1 {
		t.Fatalf("replicas of %s: %v, %v", master, replicas, err)
	}
	// Frozen, the replica cannot reconnect once its link is cut; it must
	// be thawed within NodeTimeout, or its peers mark it failing too.
	if err := c.Signal(replicas[0], syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	thawed := false
	thaw := func() {
		if !thawed {
			thawed = true
			c.Signal(replicas[0], syscall.SIGCONT)
		}
	}
	defer thaw()
	if _, err := c.Do(ctx, master, "CLIENT", "KILL", "TYPE", "replica"); err != nil {
		t.Fatal(err)
	}
	var lost []string
	for i := range 3 {
		r := fast.Purchase(ctx, engine.Request{ProductID: id, UserID: fmt.Sprint("fast", i)})
		if r.Status != wire.StatusSuccess {
			t.Fatalf("purchase without a durability wait: %+v", r)
		}
		lost = append(lost, r.OrderID)
	}
	r := durable.Purchase(ctx, engine.Request{ProductID: id, UserID: "durable"})
	if err := c.Kill(master); err != nil {
		t.Fatal(err)
	}
	thaw()
	if r.Status == wire.StatusSuccess {
		t.Fatalf("purchase with replicas:1 while the replica is cut off: %+v, want NOT_DURABLE", r)
	}
	if r.Code != engine.CodeNotDurable {
		t.Errorf("purchase with replicas:1 while the replica is cut off: %+v, want NOT_DURABLE", r)
	}
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	a, err := fast.Verify(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	orders, err := fast.Orders(ctx, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]bool{}
	for _, o := range orders {
		in[o.OrderID] = true
	}
	t.Logf("after the failover: %d sold, %d in the stream; audit %+v", a.Sold, len(orders), a)
	if !a.OK() {
		t.Errorf("books after the failover: %+v", a)
	}
	if !in[orderOf(orders, "kept")] {
		t.Error("the sale acknowledged with replicas:1 before the cut is gone")
	}
	kept := 0
	for _, oid := range lost {
		if in[oid] {
			kept++
		}
	}
	if kept != 0 {
		t.Errorf("%d of the %d sales the cut-off replica never received are in its books", kept, len(lost))
	}
	if a.Sold != 1 {
		t.Errorf("%d sold after the failover, want 1 (the sale made before the cut)", a.Sold)
	}
}

// orderOf returns the order id of user's sale in orders, or "".
func orderOf(orders []engine.Order, user string) string {
	for _, o := range orders {
		if o.UserID == user && o.Type == "sale" {
			return o.OrderID
		}
	}
	return ""
}

// TestClusterRedirectInBatch: two products on one master, one of them
// resharded away behind the client's back; purchases of both, queued
// together on that master's batcher: the moved product's calls follow
// MOVED to the new master, the other's are answered where they are.
func TestClusterRedirectInBatch(t *testing.T) {
	c := redistest.StartCluster(t, redistest.ClusterConfig{Masters: 3})
	ctx := saletest.Context(t)
	fs := farm(t, c, 1, transport.PoolConfig{})
	base := redistest.Product(t)
	// Two products whose slots differ but share a master.
	var ids []string
	var m *redistest.Node
	for i := 0; len(ids) < 2; i++ {
		id := fmt.Sprintf("%s-%d", base, i)
		n, err := c.MasterOf(ctx, engine.KeysFor(id).Stock)
		if err != nil {
			t.Fatal(err)
		}
		if m == nil || n == m {
			m, ids = n, append(ids, id)
		}
	}
	const stock, buyers = 20, 20
	for _, id := range ids {
		if err := fs[0].eng.Init(ctx, id, stock); err != nil {
			t.Fatal(err)
		}
	}
	masters, _ := c.Masters(ctx)
	to := masters[0]
	if to == m {
		to = masters[1]
	}
	if err := c.Reshard(ctx, redistest.Slot(engine.KeysFor(ids[0]).Stock), m, to); err != nil {
		t.Fatal(err)
	}
	results := make(chan engine.Result, 2*buyers)
	deadline := time.Now().Add(5 * time.Second)
	for u := range buyers {
		for _, id := range ids {
			fs[0].eng.PurchaseAsync(engine.Request{ProductID: id, UserID: fmt.Sprint("u", u)}, deadline, func(r engine.Result) { results <- r })
		}
	}
	for range 2 * buyers {
		if r := <-results; r.Status != wire.StatusSuccess {
			t.Errorf("purchase: %+v", r)
		}
	}
	st := fs[0].cl.Stats()
	t.Logf("followed %+v", st)
	if st.Moved == 0 {
		t.Error("no MOVED followed")
	}
	checkClusterMetrics(t, fs[0])
	for _, id := range ids {
		if a, err := fs[0].eng.Verify(ctx, id); err != nil || !a.OK() || a.Sold != buyers {
			t.Errorf("verify %s: %+v, %v", id, a, err)
		}
	}
}
