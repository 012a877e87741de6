package metrics

import (
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/flashsale/flashsale/engine"
)

// roomWaitBuckets span 100 ms (a customer who joined an open room with no
// line) to 30 min (a long line at a low rate).
var roomWaitBuckets = []float64{.1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800}

// Poll sources, for the source label of flashsale_room_polls_total.
const (
	pollRedis = "redis"
	pollCache = "cache"
)

// roomMetrics are the collectors of waiting rooms (engine.RoomObserver).
type roomMetrics struct {
	joins, admitted prometheus.Counter
	// polls are by source: [0] redis, [1] cache.
	polls [2]prometheus.Counter
	wait  prometheus.Histogram
}

var _ engine.RoomObserver = (*Metrics)(nil)

// newRoomMetrics makes the collectors of waiting rooms and registers them
// on reg.
func newRoomMetrics(reg prometheus.Registerer) roomMetrics {
	r := roomMetrics{
		joins: prometheus.NewCounter(prometheus.CounterOpts{Name: "flashsale_room_joins_total",
			Help: "Joins of a waiting room this server answered WAITING (a customer joining again, who keeps their place, included)."}),
		admitted: prometheus.NewCounter(prometheus.CounterOpts{Name: "flashsale_room_admitted_total",
			Help: "Customers this server's polls admitted from a waiting room (each once)."}),
		wait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "flashsale_room_wait_seconds",
			Help:    "Time from a customer's join to their admission, of the admissions this server's polls made (Redis's clock).",
			Buckets: roomWaitBuckets,
		}),
	}
	polls := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flashsale_room_polls_total",
		Help: "Waiting-room polls this server answered, by source: redis (the poll script ran), cache (the ticket's last answer, polled again within the poll interval, or admitted)."},
		[]string{"source"})
	r.polls = [2]prometheus.Counter{polls.WithLabelValues(pollRedis), polls.WithLabelValues(pollCache)}
	reg.MustRegister(r.joins, r.admitted, polls, r.wait)
	return r
}

// Joined records a join answered WAITING: it implements
// engine.RoomObserver.
func (m *Metrics) Joined() {
	if m == nil {
		return
	}
	m.room.joins.Inc()
}

// Admitted records an admission, with the time its customer waited: it
// implements engine.RoomObserver.
func (m *Metrics) Admitted(waited time.Duration) {
	if m == nil {
		return
	}
	m.room.admitted.Inc()
	m.room.wait.Observe(waited.Seconds())
}

// Polled records a poll answered, from the cache or from Redis: it
// implements engine.RoomObserver.
func (m *Metrics) Polled(fromCache bool) {
	if m == nil {
		return
	}
	if fromCache {
		m.room.polls[1].Inc()
		return
	}
	m.room.polls[0].Inc()
}

// RoomWaits summarises flashsale_room_wait_seconds for the dashboard: the
// admissions this server made, and the median and 99th percentile of their
// waits, estimated from the buckets as Prometheus's histogram_quantile
// does (0 with no admission).
func (m *Metrics) RoomWaits() (admissions uint64, p50, p99 time.Duration) {
	if m == nil {
		return 0, 0, 0
	}
	var d dto.Metric
	if m.room.wait.Write(&d) != nil {
		return 0, 0, 0
	}
	h := d.GetHistogram()
	return h.GetSampleCount(), bucketQuantile(.5, h), bucketQuantile(.99, h)
}

// bucketQuantile is the q-quantile of h, interpolated linearly within the
// bucket it falls in (the first from 0); past the last bound, that bound.
func bucketQuantile(q float64, h *dto.Histogram) time.Duration {
	n := float64(h.GetSampleCount())
	if n == 0 {
		return 0
	}
	rank, lower, below := q*n, 0.0, 0.0
	for _, b := range h.GetBucket() {
		upper, count := b.GetUpperBound(), float64(b.GetCumulativeCount())
		if count >= rank {
			s := lower + (upper-lower)*(rank-below)/math.Max(count-below, 1)
			return time.Duration(s * float64(time.Second))
		}
		lower, below = upper, count
	}
	return time.Duration(lower * float64(time.Second))
}

// roomGauges export, per product with a waiting room, its line read from
// its status at each scrape: for all servers, unlike the counters.
type roomGauges struct{ waiting, admitted, rate, paused *prometheus.Desc }

func newRoomGauges() roomGauges {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, []string{"product"}, nil)
	}
	return roomGauges{
		waiting:  desc("flashsale_room_waiting_customers", "Customers in the product's waiting room not yet admitted (joined - admitted), by product."),
		admitted: desc("flashsale_room_admitted_customers", "Customers the product's waiting room admitted so far, by all servers, by product."),
		rate:     desc("flashsale_room_admit_rate", "Places the product's waiting room admits a second, as set, by product."),
		paused: desc("flashsale_room_paused", "1 while the product of a waiting room has no unit left (reserved units count as gone): the room answers SOLD_OUT "+
			"and admits no one until units come back; else 0, by product."),
	}
}

func (g roomGauges) describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{g.waiting, g.admitted, g.rate, g.paused} {
		ch <- d
	}
}

func (g roomGauges) collect(ch chan<- prometheus.Metric, s engine.ProductStatus) {
	r := s.Room
	if r.Rate == 0 {
		return
	}
	paused := 0.0
	if s.Remaining <= 0 {
		paused = 1
	}
	for _, v := range []struct {
		d *prometheus.Desc
		v float64
	}{{g.waiting, float64(r.Waiting())}, {g.admitted, float64(r.Admitted)}, {g.rate, float64(r.Rate)}, {g.paused, paused}} {
		ch <- prometheus.MustNewConstMetric(v.d, prometheus.GaugeValue, v.v, s.ID)
	}
}
