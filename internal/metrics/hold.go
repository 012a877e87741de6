package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/wire"
)

// releaseLagBuckets span 1 ms to 2 s: a sweep is due to release a
// reservation within 1 s of its expiry.
var releaseLagBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, .75, 1, 1.5, 2}

// holdMetrics are the collectors of reservations (engine.HoldObserver).
type holdMetrics struct {
	reserved, confirmed, expired, cancelled prometheus.Counter
	releaseLag                              prometheus.Histogram
}

var _ engine.HoldObserver = (*Metrics)(nil)

// newHoldMetrics makes the collectors of reservations and registers them
// on reg.
func newHoldMetrics(reg prometheus.Registerer) holdMetrics {
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
		reg.MustRegister(c)
		return c
	}
	h := holdMetrics{
		reserved:  counter("flashsale_reservations_total", "Purchases answered RESERVED (a request_id replay included): reservations made."),
		confirmed: counter("flashsale_reservations_confirmed_total", "Reservations this server's confirms marked paid."),
		expired:   counter("flashsale_reservations_expired_total", "Reservations this server released on expiry: by its sweeps, and by confirms that found them expired."),
		cancelled: counter("flashsale_reservations_cancelled_total", "Reservations this server's cancels released."),
		releaseLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "flashsale_reservation_release_lag_seconds",
			Help:    "Time from a reservation's expiry to its release by this server's sweeps (Redis's clock).",
			Buckets: releaseLagBuckets,
		}),
	}
	reg.MustRegister(h.releaseLag)
	return h
}

// Reserved records a purchase answered RESERVED: it implements
// engine.HoldObserver.
func (m *Metrics) Reserved() {
	if m == nil {
		return
	}
	m.hold.reserved.Inc()
}

// Settled records a confirm or cancel that changed a reservation: it
// implements engine.HoldObserver. A confirm answered EXPIRED released the
// reservation on expiry; any other outcome is not recorded.
func (m *Metrics) Settled(op string, status wire.Status) {
	if m == nil {
		return
	}
	switch {
	case op == "confirm" && status == wire.StatusPaid:
		m.hold.confirmed.Inc()
	case op == "confirm" && status == wire.StatusExpired:
		m.hold.expired.Inc()
	case op == "cancel" && status == wire.StatusReleased:
		m.hold.cancelled.Inc()
	}
}

// Expired records the reservations a sweep released, with how late each
// was: it implements engine.HoldObserver.
func (m *Metrics) Expired(lags []time.Duration) {
	if m == nil {
		return
	}
	m.hold.expired.Add(float64(len(lags)))
	for _, lag := range lags {
		m.hold.releaseLag.Observe(lag.Seconds())
	}
}

// reservationGauges export, per product that sells with a hold (or did),
// the units reserved and paid now, read from its status at each scrape.
type reservationGauges struct{ open, paid *prometheus.Desc }

func newReservationGauges() reservationGauges {
	return reservationGauges{
		open: prometheus.NewDesc("flashsale_reservations_open_units",
			"Units reserved now and neither paid nor released, by product (products with a hold, or that had one).", []string{"product"}, nil),
		paid: prometheus.NewDesc("flashsale_reservations_paid_units",
			"Units of the product's reservations paid since it was initialised, by product.", []string{"product"}, nil),
	}
}

func (g reservationGauges) describe(ch chan<- *prometheus.Desc) {
	ch <- g.open
	ch <- g.paid
}

func (g reservationGauges) collect(ch chan<- prometheus.Metric, s engine.ProductStatus) {
	if s.Hold == 0 && s.Reserved == 0 && s.Paid == 0 && s.Expired == 0 && s.Cancelled == 0 {
		return
	}
	ch <- prometheus.MustNewConstMetric(g.open, prometheus.GaugeValue, float64(s.Reserved), s.ID)
	ch <- prometheus.MustNewConstMetric(g.paid, prometheus.GaugeValue, float64(s.Paid), s.ID)
}
