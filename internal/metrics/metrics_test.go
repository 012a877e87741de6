package metrics_test

import (
	"math"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/metrics"
	"github.com/flashsale/flashsale/internal/testkit/metricstest"
	"github.com/flashsale/flashsale/server"
	"github.com/flashsale/flashsale/transport"
)

// Metrics is the server's recorder, with the server's protocol names.
var _ server.Metrics = (*metrics.Metrics)(nil)

func TestProtocolNames(t *testing.T) {
	if metrics.TLV != server.ProtocolTLV || metrics.HTTP != server.ProtocolHTTP {
		t.Fatalf("protocols %q, %q; the server names them %q, %q", metrics.TLV, metrics.HTTP, server.ProtocolTLV, server.ProtocolHTTP)
	}
}

// stats and queue stand in for the engine and the batcher.
type (
	stats engine.Stats
	queue int
)

func (s stats) Stats() engine.Stats { return engine.Stats(s) }
func (q queue) QueueDepth() int     { return int(q) }

// recorded returns Metrics after a known set of calls, with the engine and
// batcher counters given.
func recorded(t *testing.T) *metrics.Metrics {
	t.Helper()
	m := metrics.New(metrics.Config{Version: "v1.2.3", Revision: "abc123"})
	m.WatchEngine(stats{SoldOutHits: 7, ControlReconnects: 2})
	m.WatchBatcher(queue(5))
	for range 3 {
		m.Purchase(metrics.TLV, "SUCCESS", "", time.Millisecond)
	}
	m.Purchase(metrics.TLV, "SOLD_OUT", "", 200*time.Microsecond)
	m.Purchase(metrics.HTTP, "RATE_LIMITED", "", time.Millisecond)
	m.Purchase(metrics.HTTP, "ERROR", engine.CodeUnavailable, 2*time.Second)
	m.Purchase(metrics.TLV, "ERROR", "SOMETHING_NEW", time.Millisecond)
	m.Purchase(metrics.TLV, "NOT_A_STATUS", "", time.Millisecond)
	m.Purchase("carrier-pigeon", "SUCCESS", "", time.Millisecond) // not recorded
	m.ConnOpened(metrics.TLV)
	m.ConnOpened(metrics.TLV)
	m.ConnClosed(metrics.TLV)
	m.ConnOpened(metrics.HTTP)
	m.Batch(64, 300*time.Microsecond)
	m.Batch(1, 100*time.Microsecond)
	m.Merged(64)
	m.Merged(22)
	m.Merged(1)
	for range 3 {
		m.Retried(transport.RetryAsk)
	}
	m.Retried(transport.RetryMoved)
	m.Retried(transport.RetryTryAgain)
	m.Retried(transport.RetryNoScript)
	m.Retried(transport.Retry(-1)) // not recorded
	m.Refused(transport.CauseOOM)
	m.Refused(transport.CauseOOM)
	m.Refused(transport.CauseMaxClients)
	m.Refused(transport.Cause(-1)) // not recorded
	m.SlotMap(3)
	m.SlotMap(2)
	return m
}

func TestScrape(t *testing.T) {
	s := metricstest.Get(t, recorded(t).Handler())
	s.Expect(t, []metricstest.Series{
		{Name: "flashsale_purchases_total", Labels: []string{"protocol", "tlv", "status", "SUCCESS", "code", ""}, Want: 3},
		{Name: "flashsale_purchases_total", Labels: []string{"protocol", "tlv", "status", "SOLD_OUT", "code", ""}, Want: 1},
		{Name: "flashsale_purchases_total", Labels: []string{"protocol", "http", "status", "SUCCESS", "code", ""}, Want: 0},
		{Name: "flashsale_purchases_total", Labels: []string{"protocol", "http", "status", "RATE_LIMITED", "code", ""}, Want: 1},
		{Name: "flashsale_purchases_total", Labels: []string{"protocol", "http", "status", "ERROR", "code", "UNAVAILABLE"}, Want: 1},
		{Name: "flashsale_purchases_total", Labels: []string{"protocol", "tlv", "status", "ERROR", "code", "OTHER"}, Want: 2},
		{Name: "flashsale_purchases_total", Labels: []string{"protocol", "tlv", "status", "ERROR", "code", "INTERNAL"}, Want: 0},
		{Name: "flashsale_purchase_duration_seconds", Labels: []string{"protocol", "tlv"}, Want: 6},
		{Name: "flashsale_purchase_duration_seconds", Labels: []string{"protocol", "http"}, Want: 2},
		{Name: "flashsale_open_connections", Labels: []string{"protocol", "tlv"}, Want: 1},
		{Name: "flashsale_open_connections", Labels: []string{"protocol", "http"}, Want: 1},
		{Name: "flashsale_connections_total", Labels: []string{"protocol", "tlv"}, Want: 2},
		{Name: "flashsale_redis_batch_size", Want: 2},
		{Name: "flashsale_redis_roundtrip_seconds", Want: 2},
		{Name: "flashsale_redis_queue_depth", Want: 5},
		{Name: "flashsale_redis_merge_size", Want: 3},
		{Name: "flashsale_redis_redirects_total", Labels: []string{"kind", "moved"}, Want: 1},
		{Name: "flashsale_redis_redirects_total", Labels: []string{"kind", "ask"}, Want: 3},
		{Name: "flashsale_redis_retries_total", Labels: []string{"reason", "tryagain"}, Want: 1},
		{Name: "flashsale_redis_retries_total", Labels: []string{"reason", "clusterdown"}, Want: 0},
		{Name: "flashsale_redis_retries_total", Labels: []string{"reason", "node_down"}, Want: 0},
		{Name: "flashsale_redis_retries_total", Labels: []string{"reason", "noscript"}, Want: 1},
		{Name: "flashsale_redis_refusals_total", Labels: []string{"cause", "oom"}, Want: 2},
		{Name: "flashsale_redis_refusals_total", Labels: []string{"cause", "maxclients"}, Want: 1},
		{Name: "flashsale_redis_refusals_total", Labels: []string{"cause", "loading"}, Want: 0},
		{Name: "flashsale_redis_slot_refreshes_total", Want: 2},
		{Name: "flashsale_redis_cluster_masters", Want: 2},
		{Name: "flashsale_soldout_cache_hits_total", Want: 7},
		{Name: "flashsale_control_reconnects_total", Want: 2},
		{Name: "flashsale_build_info", Labels: []string{"version", "v1.2.3", "revision", "abc123", "goversion", runtime.Version()}, Want: 1},
	})
	// The standard collectors are there too.
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "promhttp_metric_handler_requests_total"} {
		if _, ok := s.Families[name]; !ok {
			t.Errorf("no %s in the scrape", name)
		}
	}
	for name, f := range s.Families {
		if f.GetHelp() == "" {
			t.Errorf("%s has no HELP", name)
		}
	}
	// Durations are in seconds, batch sizes in scripts.
	sums := []metricstest.Series{
		{Name: "flashsale_purchase_duration_seconds", Labels: []string{"protocol", "http"}, Want: 2.001},
		{Name: "flashsale_redis_batch_size", Want: 65},
		{Name: "flashsale_redis_roundtrip_seconds", Want: 0.0004},
		{Name: "flashsale_redis_merge_size", Want: 87},
	}
	for _, ss := range sums {
		if got := s.Sum(t, ss.Name, ss.Labels...); math.Abs(got-ss.Want) > 1e-9 {
			t.Errorf("%s%v sum = %v, want %v", ss.Name, ss.Labels, got, ss.Want)
		}
	}
}

// TestRedisSeriesFromStart: the merge, redirect, retry and slot map
// series exist at 0 before anything happened, on one Redis as on a
// cluster, so rate() and alerts on them work from the start.
func TestRedisSeriesFromStart(t *testing.T) {
	s := metricstest.Get(t, metrics.New(metrics.Config{}).Handler())
	want := []metricstest.Series{
		{Name: "flashsale_redis_merge_size"},
		{Name: "flashsale_redis_slot_refreshes_total"},
		{Name: "flashsale_redis_cluster_masters"},
	}
	for _, r := range transport.Retries() {
		if r.Redirect() {
			want = append(want, metricstest.Series{Name: "flashsale_redis_redirects_total", Labels: []string{"kind", r.String()}})
		} else {
			want = append(want, metricstest.Series{Name: "flashsale_redis_retries_total", Labels: []string{"reason", r.String()}})
		}
	}
	s.Expect(t, want)
	if n := len(s.Families["flashsale_redis_redirects_total"].GetMetric()) + len(s.Families["flashsale_redis_retries_total"].GetMetric()); n != len(transport.Retries()) {
		t.Errorf("%d redirect and retry series, want %d", n, len(transport.Retries()))
	}
	// Merge sizes are counted in purchases, up to engine.MaxMergedPurchases.
	var bounds []float64
	for _, b := range s.Families["flashsale_redis_merge_size"].GetMetric()[0].GetHistogram().GetBucket() {
		bounds = append(bounds, b.GetUpperBound())
	}
	if want := []float64{1, 2, 4, 8, 16, 32, engine.MaxMergedPurchases, math.Inf(1)}; !slices.Equal(bounds, want) {
		t.Errorf("flashsale_redis_merge_size buckets %v, want %v", bounds, want)
	}
}

func TestPromtool(t *testing.T) {
	metricstest.Get(t, recorded(t).Handler()).Lint(t)
}

// TestNil checks that a nil Metrics records nothing and serves 404.
func TestNil(t *testing.T) {
	var m *metrics.Metrics
	m.Purchase(metrics.TLV, "SUCCESS", "", time.Millisecond)
	m.ConnOpened(metrics.TLV)
	m.ConnClosed(metrics.TLV)
	m.Batch(1, time.Millisecond)
	m.Merged(2)
	m.Retried(transport.RetryMoved)
	m.Refused(transport.CauseOOM)
	m.SlotMap(3)
	m.WatchEngine(stats{})
	m.WatchBatcher(queue(0))
	if m.Handler() == nil {
		t.Fatal("nil Handler")
	}
}

// TestNoAllocs checks that the per-request methods allocate nothing: they
// run on every request of a server doing 100k+ requests a second.
func TestNoAllocs(t *testing.T) {
	m := metrics.New(metrics.Config{})
	tests := []struct {
		name string
		call func()
	}{
		{"Purchase SUCCESS", func() { m.Purchase(metrics.TLV, "SUCCESS", "", time.Millisecond) }},
		{"Purchase ERROR", func() { m.Purchase(metrics.HTTP, "ERROR", engine.CodeUnavailable, time.Millisecond) }},
		{"Conn", func() { m.ConnOpened(metrics.TLV); m.ConnClosed(metrics.TLV) }},
		{"Batch", func() { m.Batch(64, time.Millisecond) }},
		{"Merged", func() { m.Merged(64) }},
		{"Retried", func() { m.Retried(transport.RetryAsk) }},
		{"Refused", func() { m.Refused(transport.CauseOOM) }},
		{"SlotMap", func() { m.SlotMap(3) }},
	}
	for _, tt := range tests {
		if n := testing.AllocsPerRun(100, tt.call); n != 0 {
			t.Errorf("%s: %v allocs per call, want 0", tt.name, n)
		}
	}
}

func BenchmarkPurchase(b *testing.B) {
	m := metrics.New(metrics.Config{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Purchase(metrics.TLV, "SOLD_OUT", "", 300*time.Microsecond)
		}
	})
}
