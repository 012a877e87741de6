package server_test

import (
	"net/url"
	"runtime"
	"testing"
	"time"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/metrics"
	"github.com/flashsale/flashsale/internal/testkit/metricstest"
	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
	"github.com/flashsale/flashsale/server"
	"github.com/flashsale/flashsale/transport"
	"github.com/flashsale/flashsale/wire"
)

// TestServerMetrics runs purchases over TLV through a batcher and checks
// what a scrape of /metrics says about them, then lints the scrape with
// promtool.
func TestServerMetrics(t *testing.T) {
	t.Parallel()
	pool, _ := saletest.Pool(t)
	m := metrics.New(metrics.Config{Version: "test", Revision: "r1"})
	b := transport.NewBatcher(pool, transport.BatcherConfig{Observer: m})
	t.Cleanup(func() { b.Close() })
	eng := engine.New(b, engine.WithSoldOutCache(time.Minute))
	m.WatchEngine(eng)
	m.WatchBatcher(b)
	srv := startServer(t, eng, server.Config{Metrics: m})

	id := newProduct(t, eng, 3)
	c := dial(t, srv.addr)
	answers := map[string]int{}
	for _, user := range []string{"u1", "u2", "u3", "u4", "u5", "a\x01b"} {
		c.send(purchaseFrame(id, user))
		answers[decodeResponse(t, c.mustNext()).Status]++
	}
	c.send(purchaseFrame(redistest.Product(t), "u1"))
	c.mustNext()
	// A query and a ping are no purchases.
	c.send(wire.AppendFrame(nil, wire.TypeQuery, wire.AppendQuery(nil, wire.QueryRequest{ProductID: id})))
	c.mustNext()
	c.send(wire.AppendFrame(nil, wire.TypePing, nil))
	c.mustNext()
	if answers["SUCCESS"] != 3 || answers["SOLD_OUT"] != 2 || answers["ERROR"] != 1 {
		t.Fatalf("answers %v, want 3 SUCCESS, 2 SOLD_OUT, 1 ERROR", answers)
	}

	s := metricstest.Get(t, m.Handler())
	stats := eng.Stats()
	s.Expect(t, []metricstest.Series{
		{Name: "flashsale_purchases_total", Labels: []string{"protocol", "tlv", "status", "SUCCESS", "code", ""}, Want: 3},
		{Name: "flashsale_purchases_total", Labels: []string{"protocol", "tlv", "status", "SOLD_OUT", "code", ""}, Want: 2},
		{Name: "flashsale_purchases_total", Labels: []string{"protocol", "tlv", "status", "ERROR", "code", engine.CodeInvalidRequest}, Want: 1},
		{Name: "flashsale_purchases_total", Labels: []string{"protocol", "tlv", "status", "ERROR", "code", engine.CodeUnknownProduct}, Want: 1},
		{Name: "flashsale_purchases_total", Labels: []string{"protocol", "http", "status", "SUCCESS", "code", ""}, Want: 0},
		{Name: "flashsale_purchase_duration_seconds", Labels: []string{"protocol", "tlv"}, Want: 7},
		{Name: "flashsale_open_connections", Labels: []string{"protocol", "tlv"}, Want: 1},
		{Name: "flashsale_connections_total", Labels: []string{"protocol", "tlv"}, Want: 1},
		{Name: "flashsale_redis_queue_depth", Want: 0},
		// One Redis: nothing redirected, no slot map.
		{Name: "flashsale_redis_redirects_total", Labels: []string{"kind", "moved"}, Want: 0},
		{Name: "flashsale_redis_retries_total", Labels: []string{"reason", "noscript"}, Want: 0},
		{Name: "flashsale_redis_slot_refreshes_total", Want: 0},
		{Name: "flashsale_redis_cluster_masters", Want: 0},
		{Name: "flashsale_soldout_cache_hits_total", Want: float64(stats.SoldOutHits)},
		{Name: "flashsale_control_reconnects_total", Want: float64(stats.ControlReconnects)},
		{Name: "flashsale_build_info", Labels: []string{"version", "test", "revision", "r1", "goversion", runtime.Version()}, Want: 1},
	})
	// The sales, the SOLD_OUT that Redis answered and the unknown product
	// went to Redis in batches: how many depends on timing. The scrape
	// itself reads the status of the held products in the shared test
	// Redis through the batcher (WatchEngine's gauges), so a batch may be
	// counted in its size before its round trip ends: both are at least 1.
	batches, trips := s.Value(t, "flashsale_redis_batch_size"), s.Value(t, "flashsale_redis_roundtrip_seconds")
	if batches < 1 || trips < 1 {
		t.Errorf("%v batches and %v round trips, want at least 1 of each", batches, trips)
	}
	// Every purchase Redis answered is in one purchase call: the three
	// sales, the unknown product, and the SOLD_OUTs not answered from the
	// cache.
	if got, want := s.Sum(t, "flashsale_redis_merge_size"), float64(6-stats.SoldOutHits); got != want {
		t.Errorf("flashsale_redis_merge_size sums %v purchases, want %v", got, want)
	}
	s.Lint(t)

	// Closing the connection brings the gauge back to 0, once the server
	// has seen the close.
	c.nc.Close()
	for deadline := time.Now().Add(testTimeout); ; time.Sleep(10 * time.Millisecond) {
		if metricstest.Get(t, m.Handler()).Value(t, "flashsale_open_connections", "protocol", "tlv") == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("flashsale_open_connections{protocol=\"tlv\"} stayed above 0 after the client closed")
		}
	}
}

// TestRoomMetrics joins a room and polls it over HTTP, fast enough that
// the server answers from its per-ticket cache, until admitted, and checks
// the waiting-room series of a scrape.
func TestRoomMetrics(t *testing.T) {
	t.Parallel()
	pool, _ := saletest.Pool(t)
	m := metrics.New(metrics.Config{})
	eng := engine.New(pool, engine.WithRoomObserver(m))
	m.WatchEngine(eng)
	srv := startServer(t, eng, server.Config{Metrics: m, PollInterval: time.Hour})
	base := "http://" + srv.addr
	c := newHTTPClient(t, 1)
	id := newProduct(t, eng, 2)
	if _, err := eng.SetRoom(testContext(t), id, engine.Room{Rate: 1000}); err != nil {
		t.Fatal(err)
	}
	j := do(t, c, "POST", base+"/v1/queue/join", `{"product_id":"`+id+`","user_id":"alice"}`, nil)
	if j.resp.Status != "WAITING" {
		t.Fatalf("join = %d %s, want WAITING", j.code, j.body)
	}
	status := base + "/v1/queue/status?product_id=" + url.QueryEscape(id) + "&ticket=" + url.QueryEscape(j.resp.Ticket)
	// The first poll reads Redis (alice, alone in an open room, is
	// admitted at once, or WAITING a moment); the next two, within the
	// hour's poll interval, come from the cache.
	first := do(t, c, "GET", status, "", nil).resp.Status
	for range 2 {
		if a := do(t, c, "GET", status, "", nil); a.resp.Status != first {
			t.Fatalf("cached poll = %s, want %s as the first", a.body, first)
		}
	}
	admitted := 0.0
	if first == "ADMITTED" {
		admitted = 1
	}
	s := metricstest.Get(t, m.Handler())
	s.Expect(t, []metricstest.Series{
		{Name: "flashsale_room_joins_total", Want: 1},
		{Name: "flashsale_room_polls_total", Labels: []string{"source", "redis"}, Want: 1},
		{Name: "flashsale_room_polls_total", Labels: []string{"source", "cache"}, Want: 2},
		{Name: "flashsale_room_admitted_total", Want: admitted},
		{Name: "flashsale_room_wait_seconds", Want: admitted},
		{Name: "flashsale_room_waiting_customers", Labels: []string{"product", id}, Want: 1 - admitted},
		{Name: "flashsale_room_admit_rate", Labels: []string{"product", id}, Want: 1000},
	})
	s.Lint(t)
}
