package metrics

import (
	"net/http"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/transport"
	"github.com/flashsale/flashsale/wire"
)

// Protocols, for the protocol label.
const (
	TLV  = "tlv"
	HTTP = "http"
)

// protocols lists the protocol label values; a protocol's index here picks
// its pre-resolved series.
var protocols = [...]string{TLV, HTTP}

// OtherCode is the code label of an ERROR whose code this package does
// not know, so an unforeseen code cannot grow the number of series.
const OtherCode = "OTHER"

// errorCodes are the code label values of ERROR purchases, pre-resolved.
var errorCodes = [...]string{
	engine.CodeInvalidRequest, engine.CodeUnknownProduct, engine.CodeUnknownType,
	engine.CodeFrameTooLarge, engine.CodeRequestReused, engine.CodeUnknownOrder,
	engine.CodeBusy, engine.CodeNotDurable, engine.CodeUnavailable, engine.CodeStoreFull,
	engine.CodeInternal, OtherCode,
}

// Histogram buckets, in seconds or scripts.
var (
	// purchaseBuckets span 0.1 ms (a pipelined sold-out cache hit) to 2 s
	// (the default request timeout).
	purchaseBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2}
	// rttBuckets span 50 µs (a small batch on loopback) to 1 s.
	rttBuckets = []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}
	// batchBuckets are powers of two up to the default batch cap, 512.
	batchBuckets = prometheus.ExponentialBuckets(1, 2, 10)
	// mergeBuckets are powers of two up to engine.MaxMergedPurchases, 64.
	mergeBuckets = prometheus.ExponentialBuckets(1, 2, 7)
)

// Config describes the binary for flashsale_build_info. Its zero value
// works.
type Config struct {
	// Version is the release version ("" reads as "unknown").
	Version string
	// Revision is the source commit; "" takes the VCS revision the Go
	// toolchain stamped into the binary, if any.
	Revision string
}

// Metrics holds the collectors of one server. A nil *Metrics is valid and
// records nothing.
//
// The per-request methods index pre-resolved series (no label lookup, no
// allocation), so they cost a few atomic adds.
type Metrics struct {
	reg *prometheus.Registry

	// statusIndex maps a purchase status to its index in purchases[p];
	// ERROR is absent: its series are in errors[p], by code.
	statusIndex map[string]int
	codeIndex   map[string]int
	purchases   [len(protocols)][]prometheus.Counter
	errors      [len(protocols)][len(errorCodes)]prometheus.Counter
	latency     [len(protocols)]prometheus.Observer
	openConns   [len(protocols)]prometheus.Gauge
	conns       [len(protocols)]prometheus.Counter
	batchSize   prometheus.Histogram
	redisRTT    prometheus.Histogram
	mergeSize   prometheus.Histogram
	// retries[r] counts transport.Retry r: the redirects family for
	// MOVED and ASK, the retries family for the rest.
	retries []prometheus.Counter
	// refusals[c] counts transport.Cause c.
	refusals      []prometheus.Counter
	slotRefreshes prometheus.Counter
	masters       prometheus.Gauge
	hold          holdMetrics
	room          roomMetrics
	handler       http.Handler
}

var (
	_ transport.MergeObserver   = (*Metrics)(nil)
	_ transport.ClusterObserver = (*Metrics)(nil)
	_ transport.RefusalObserver = (*Metrics)(nil)
)

// New returns the collectors of one server on a registry of their own,
// with the Go runtime and process collectors beside them. Attach the
// engine with WatchEngine and the batcher with WatchBatcher (and pass the
// Metrics as the batcher's Observer; on a cluster, as the Observer of
// transport.ClusterConfig.Batch, which reports merges, retries and slot
// maps too), and give it to the engine as its HoldObserver
// (engine.WithHoldObserver) for the reservation counters and as its
// RoomObserver (engine.WithRoomObserver) for the waiting-room ones.
func New(cfg Config) *Metrics {
	m := &Metrics{
		reg:         prometheus.NewRegistry(),
		statusIndex: make(map[string]int),
		codeIndex:   make(map[string]int, len(errorCodes)),
	}
	purchases := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flashsale_purchases_total",
		Help: "Purchase attempts answered, by protocol and status; code is the error code of ERROR answers (OTHER for a code not known to this build), empty otherwise.",
	}, []string{"protocol", "status", "code"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "flashsale_purchase_duration_seconds",
		Help:    "Time from reading a purchase request to its answer being ready, by protocol.",
		Buckets: purchaseBuckets,
	}, []string{"protocol"})
	openConns := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "flashsale_open_connections",
		Help: "Client connections open now, by protocol.",
	}, []string{"protocol"})
	conns := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flashsale_connections_total",
		Help: "Client connections accepted, by protocol.",
	}, []string{"protocol"})
	m.batchSize = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "flashsale_redis_batch_size",
		Help:    "Lua script calls per pipelined batch sent to Redis (purchases, and queries and admin calls made through the batcher).",
		Buckets: batchBuckets,
	})
	m.redisRTT = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "flashsale_redis_roundtrip_seconds",
		Help:    "Time from flushing a batch to Redis to reading its last reply.",
		Buckets: rttBuckets,
	})
	m.mergeSize = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "flashsale_redis_merge_size",
		Help:    "Purchases per purchase script call sent to Redis: 1 for a purchase that went alone, more for purchases of one product merged into one call.",
		Buckets: mergeBuckets,
	})
	redirects := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flashsale_redis_redirects_total",
		Help: "Script calls a Redis Cluster redirected and that were sent again, by kind: moved (the slot has a new master), ask (the slot is migrating).",
	}, []string{"kind"})
	retries := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flashsale_redis_retries_total",
		Help: "Script calls sent again because the reply proved they had not run, by reason: tryagain, clusterdown, node_down (a master not reached, or not serving yet), noscript (the node had to load the script).",
	}, []string{"reason"})
	refusals := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flashsale_redis_refusals_total",
		Help: "Error replies from Redis that proved a call did not run, by cause: maxclients (a connection refused), loading, readonly (the node is a replica), masterdown, oom (maxmemory reached), misconf (Redis cannot persist), busy (a script is busy), noscript.",
	}, []string{"cause"})
	for _, c := range transport.Causes() {
		m.refusals = append(m.refusals, refusals.WithLabelValues(c.String()))
	}
	m.slotRefreshes = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "flashsale_redis_slot_refreshes_total",
		Help: "Redis Cluster slot maps read (CLUSTER SLOTS): at start, after MOVED, after a failure. 0 when not on a cluster.",
	})
	m.masters = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "flashsale_redis_cluster_masters",
		Help: "Masters serving slots in the last Redis Cluster slot map read. 0 when not on a cluster.",
	})
	for _, r := range transport.Retries() {
		if r.Redirect() {
			m.retries = append(m.retries, redirects.WithLabelValues(r.String()))
		} else {
			m.retries = append(m.retries, retries.WithLabelValues(r.String()))
		}
	}

	for _, s := range wire.Statuses() {
		switch s {
		case wire.StatusError, wire.StatusOK, wire.StatusPong:
			// ERROR is counted by code; OK and PONG answer no purchase.
		default:
			m.statusIndex[s.String()] = len(m.statusIndex)
		}
	}
	for i, code := range errorCodes {
		m.codeIndex[code] = i
	}
	for p, proto := range protocols {
		m.purchases[p] = make([]prometheus.Counter, len(m.statusIndex))
		for status, i := range m.statusIndex {
			m.purchases[p][i] = purchases.WithLabelValues(proto, status, "")
		}
		for i, code := range errorCodes {
			m.errors[p][i] = purchases.WithLabelValues(proto, wire.StatusError.String(), code)
		}
		m.latency[p] = latency.WithLabelValues(proto)
		m.openConns[p] = openConns.WithLabelValues(proto)
		m.conns[p] = conns.WithLabelValues(proto)
	}

	version, revision := cfg.Version, cfg.Revision
	if version == "" {
		version = "unknown"
	}
	if revision == "" {
		revision = vcsRevision()
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "flashsale_build_info",
		Help:        "Always 1; its labels say which build runs.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "goversion": runtime.Version()},
	})
	build.Set(1)

	m.reg.MustRegister(
		purchases, latency, openConns, conns, m.batchSize, m.redisRTT, build,
		m.mergeSize, redirects, retries, refusals, m.slotRefreshes, m.masters,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	m.hold = newHoldMetrics(m.reg)
	m.room = newRoomMetrics(m.reg)
	// promhttp registers its own counters (scrapes served, encoding
	// errors) on reg, so the handler is made once.
	m.handler = promhttp.InstrumentMetricHandler(m.reg, promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry:            m.reg,
		MaxRequestsInFlight: maxScrapes,
		Timeout:             scrapeTimeout,
	}))
	return m
}

// vcsRevision is the commit the Go toolchain stamped into the binary
// ("" when built outside a checkout, as in tests).
func vcsRevision() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" {
			return s.Value
		}
	}
	return ""
}

// StatsSource is what WatchEngine reads: engine.Engine's counters.
type StatsSource interface{ Stats() engine.Stats }

// QueueSource is what WatchBatcher reads: transport.Batcher's queue.
type QueueSource interface{ QueueDepth() int }

// WatchEngine exports the engine's counters (sold-out cache hits,
// control-channel reconnects), read at each scrape, and, when e is also a
// ProductSource (engine.Engine is), the units reserved and paid of each
// product with a hold and the line of each product with a waiting room,
// read from its status (one read a product) at each scrape. Call it at
// most once, with a non-nil engine (a nil interface is ignored; a typed
// nil pointer would panic at the scrape).
func (m *Metrics) WatchEngine(e StatsSource) {
	if m == nil || e == nil {
		return
	}
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "flashsale_soldout_cache_hits_total",
			Help: "Purchases answered SOLD_OUT from the sold-out cache, without a Redis call.",
		}, func() float64 { return float64(e.Stats().SoldOutHits) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "flashsale_control_reconnects_total",
			Help: "Times the control-channel subscription (admin changes, sold-out cache invalidation) failed and was made again.",
		}, func() float64 { return float64(e.Stats().ControlReconnects) }),
	)
	if src, ok := e.(ProductSource); ok {
		m.reg.MustRegister(&statusCollector{src: src, gauges: []productGauges{newReservationGauges(), newRoomGauges()}})
	}
}

// WatchBatcher exports the batcher's queue depth, read at each scrape.
// Call it at most once, with a non-nil batcher, as for WatchEngine.
func (m *Metrics) WatchBatcher(b QueueSource) {
	if m == nil || b == nil {
		return
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "flashsale_redis_queue_depth",
		Help: "Lua script calls waiting for a Redis connection now.",
	}, func() float64 { return float64(b.QueueDepth()) }))
}

// protocolIndex returns the index of protocol in protocols, or -1.
func protocolIndex(protocol string) int {
	switch protocol {
	case TLV:
		return 0
	case HTTP:
		return 1
	}
	return -1
}

// Purchase records one purchase answered over protocol with status (the
// wire status string, e.g. "SUCCESS", "SOLD_OUT", "ERROR") and, for ERROR,
// its code; elapsed is from the request's arrival to its answer. A status
// that is not a purchase outcome counts as ERROR with code OTHER; an
// unknown protocol is not recorded.
func (m *Metrics) Purchase(protocol, status, code string, elapsed time.Duration) {
	if m == nil {
		return
	}
	p := protocolIndex(protocol)
	if p < 0 {
		return
	}
	m.latency[p].Observe(elapsed.Seconds())
	if i, ok := m.statusIndex[status]; ok {
		m.purchases[p][i].Inc()
		return
	}
	i, ok := m.codeIndex[code]
	if !ok || status != wire.StatusError.String() {
		i = len(errorCodes) - 1 // OtherCode
	}
	m.errors[p][i].Inc()
}

// ConnOpened records a client connection accepted over protocol.
func (m *Metrics) ConnOpened(protocol string) {
	if m == nil {
		return
	}
	if p := protocolIndex(protocol); p >= 0 {
		m.conns[p].Inc()
		m.openConns[p].Inc()
	}
}

// ConnClosed records a client connection over protocol that closed.
func (m *Metrics) ConnClosed(protocol string) {
	if m == nil {
		return
	}
	if p := protocolIndex(protocol); p >= 0 {
		m.openConns[p].Dec()
	}
}

// Batch records one batch the batcher read back: it implements
// transport.Observer.
func (m *Metrics) Batch(size int, rtt time.Duration) {
	if m == nil {
		return
	}
	m.batchSize.Observe(float64(size))
	m.redisRTT.Observe(rtt.Seconds())
}

// Merged records one purchase script call the batcher sent, carrying calls
// purchases: it implements transport.MergeObserver.
func (m *Metrics) Merged(calls int) {
	if m == nil {
		return
	}
	m.mergeSize.Observe(float64(calls))
}

// Retried records one script call sent again: it implements
// transport.RetryObserver. An unknown reason is not recorded.
func (m *Metrics) Retried(why transport.Retry) {
	if m == nil || why < 0 || int(why) >= len(m.retries) {
		return
	}
	m.retries[why].Inc()
}

// Refused records one refusal by Redis: it implements
// transport.RefusalObserver. An unknown cause is not recorded.
func (m *Metrics) Refused(cause transport.Cause) {
	if m == nil || cause < 0 || int(cause) >= len(m.refusals) {
		return
	}
	m.refusals[cause].Inc()
}

// SlotMap records one Redis Cluster slot map read, with its masters: it
// implements transport.ClusterObserver.
func (m *Metrics) SlotMap(masters int) {
	if m == nil {
		return
	}
	m.slotRefreshes.Inc()
	m.masters.Set(float64(masters))
}

// Scrape limits: Prometheus sends one scrape at a time, and a gather takes
// milliseconds.
const (
	maxScrapes    = 4
	scrapeTimeout = 10 * time.Second
)

// Handler serves the Prometheus exposition: the text format, or protobuf
// when the scraper asks for it. A nil Metrics serves 404.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return m.handler
}
