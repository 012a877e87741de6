package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/metrics"
	"github.com/flashsale/flashsale/internal/testkit/metricstest"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
	"github.com/flashsale/flashsale/wire"
)

// Metrics is the engine's observer of reservations.
var _ engine.HoldObserver = (*metrics.Metrics)(nil)

// held stands in for an engine with products: their status by id, and
// the ids whose status fails.
type held struct {
	stats
	status map[string]engine.ProductStatus
	broken map[string]bool
}

func (h held) Products(context.Context) ([]string, error) {
	var ids []string
	for id := range h.status {
		ids = append(ids, id)
	}
	for id := range h.broken {
		ids = append(ids, id)
	}
	return ids, nil
}

func (h held) Status(_ context.Context, id string) (engine.ProductStatus, error) {
	if h.broken[id] {
		return engine.ProductStatus{}, errors.New("redis down")
	}
	return h.status[id], nil
}

func TestReservationCounters(t *testing.T) {
	tests := []struct {
		name string
		call func(m *metrics.Metrics)
		want map[string]float64 // counter → value; the others stay 0
	}{
		{"reserved", func(m *metrics.Metrics) { m.Reserved(); m.Reserved() },
			map[string]float64{"flashsale_reservations_total": 2}},
		{"confirm paid", func(m *metrics.Metrics) { m.Settled("confirm", wire.StatusPaid) },
			map[string]float64{"flashsale_reservations_confirmed_total": 1}},
		{"confirm found it expired", func(m *metrics.Metrics) { m.Settled("confirm", wire.StatusExpired) },
			map[string]float64{"flashsale_reservations_expired_total": 1}},
		{"cancel released", func(m *metrics.Metrics) { m.Settled("cancel", wire.StatusReleased) },
			map[string]float64{"flashsale_reservations_cancelled_total": 1}},
		{"cancel of a paid one changes nothing", func(m *metrics.Metrics) { m.Settled("cancel", wire.StatusAlreadyPaid) }, nil},
		{"unknown op", func(m *metrics.Metrics) { m.Settled("refund", wire.StatusPaid) }, nil},
		{"sweep", func(m *metrics.Metrics) { m.Expired([]time.Duration{0, 3 * time.Millisecond, 400 * time.Millisecond}) },
			map[string]float64{"flashsale_reservations_expired_total": 3}},
		{"empty sweep", func(m *metrics.Metrics) { m.Expired(nil) }, nil},
	}
	counters := []string{
		"flashsale_reservations_total", "flashsale_reservations_confirmed_total",
		"flashsale_reservations_expired_total", "flashsale_reservations_cancelled_total",
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := metrics.New(metrics.Config{})
			tt.call(m)
			s := metricstest.Get(t, m.Handler())
			var want []metricstest.Series
			for _, name := range counters {
				want = append(want, metricstest.Series{Name: name, Want: tt.want[name]})
			}
			s.Expect(t, want)
		})
	}
}

func TestReleaseLag(t *testing.T) {
	m := metrics.New(metrics.Config{})
	m.Expired([]time.Duration{2 * time.Millisecond, 300 * time.Millisecond})
	m.Expired([]time.Duration{1500 * time.Millisecond})
	s := metricstest.Get(t, m.Handler())
	s.Expect(t, []metricstest.Series{{Name: "flashsale_reservation_release_lag_seconds", Want: 3}})
	if got := s.Sum(t, "flashsale_reservation_release_lag_seconds"); math.Abs(got-1.802) > 1e-9 {
		t.Errorf("release lag sum = %v s, want 1.802", got)
	}
	h := s.Families["flashsale_reservation_release_lag_seconds"].GetMetric()[0].GetHistogram()
	tests := []struct {
		le   float64
		want uint64
	}{{.001, 0}, {.0025, 1}, {.25, 1}, {.5, 2}, {1, 2}, {2, 3}}
	for _, tt := range tests {
		for _, b := range h.GetBucket() {
			if b.GetUpperBound() == tt.le && b.GetCumulativeCount() != tt.want {
				t.Errorf("bucket le=%v holds %d, want %d", tt.le, b.GetCumulativeCount(), tt.want)
			}
		}
	}
}

func TestReservationGauges(t *testing.T) {
	m := metrics.New(metrics.Config{})
	m.WatchEngine(held{
		status: map[string]engine.ProductStatus{
			"tickets": {ID: "tickets", Hold: 10 * time.Minute, Reserved: 7, Paid: 12},
			"old":     {ID: "old", Paid: 3, Expired: 2}, // its hold was lifted
			"plain":   {ID: "plain", Remaining: 5, Initial: 9},
		},
		broken: map[string]bool{"broken": true},
	})
	s := metricstest.Get(t, m.Handler())
	s.Expect(t, []metricstest.Series{
		{Name: "flashsale_reservations_open_units", Labels: []string{"product", "tickets"}, Want: 7},
		{Name: "flashsale_reservations_paid_units", Labels: []string{"product", "tickets"}, Want: 12},
		{Name: "flashsale_reservations_open_units", Labels: []string{"product", "old"}, Want: 0},
		{Name: "flashsale_reservations_paid_units", Labels: []string{"product", "old"}, Want: 3},
	})
	// A product that never had a hold has no series, nor one whose status
	// failed (the scrape still succeeds).
	for _, name := range []string{"flashsale_reservations_open_units", "flashsale_reservations_paid_units"} {
		if n := len(s.Families[name].GetMetric()); n != 2 {
			t.Errorf("%s has %d series, want 2 (tickets, old)", name, n)
		}
	}
	s.Lint(t)
}

func TestReservationPromtool(t *testing.T) {
	m := recorded(t)
	m.Reserved()
	m.Settled("confirm", wire.StatusPaid)
	m.Settled("cancel", wire.StatusReleased)
	m.Expired([]time.Duration{20 * time.Millisecond})
	metricstest.Get(t, m.Handler()).Lint(t)
}

func TestReservationNil(t *testing.T) {
	var m *metrics.Metrics
	m.Reserved()
	m.Settled("confirm", wire.StatusPaid)
	m.Expired([]time.Duration{time.Millisecond})
	m.WatchEngine(held{})
}

func TestReservationNoAllocs(t *testing.T) {
	m := metrics.New(metrics.Config{})
	lags := []time.Duration{time.Millisecond, 2 * time.Millisecond}
	tests := []struct {
		name string
		call func()
	}{
		{"Reserved", m.Reserved},
		{"Settled", func() { m.Settled("confirm", wire.StatusPaid) }},
		{"Expired", func() { m.Expired(lags) }},
	}
	for _, tt := range tests {
		if n := testing.AllocsPerRun(100, tt.call); n != 0 {
			t.Errorf("%s: %v allocs per call, want 0", tt.name, n)
		}
	}
}

// engine.Engine is what WatchEngine reads the reservation gauges from.
var _ metrics.ProductSource = (*engine.Engine)(nil)

// With a real engine: the observer hears its reservations, confirms,
// cancels and sweeps, and the gauges read its products' status.
func TestReservationsOfAnEngine(t *testing.T) {
	m := metrics.New(metrics.Config{})
	pool, _ := saletest.Pool(t)
	eng := engine.New(pool, engine.WithHoldObserver(m))
	m.WatchEngine(eng)
	ctx := saletest.Context(t)
	const hold = 50 * time.Millisecond
	id := saletest.Product(t, eng, 10, engine.WithHold(hold))
	orders := make([]string, 4)
	for i := range orders {
		r := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: fmt.Sprint("u", i)})
		if r.Status != wire.StatusReserved {
			t.Fatalf("purchase %d: %v %v", i, r.Status, r.Err)
		}
		orders[i] = r.OrderID
	}
	settle := []struct {
		op   func(context.Context, engine.OrderRequest) engine.Result
		want wire.Status
	}{{eng.Confirm, wire.StatusPaid}, {eng.Cancel, wire.StatusReleased}}
	for i, s := range settle {
		if r := s.op(ctx, engine.OrderRequest{ProductID: id, UserID: fmt.Sprint("u", i), OrderID: orders[i]}); r.Status != s.want {
			t.Fatalf("order %d: %v %v, want %v", i, r.Status, r.Err, s.want)
		}
	}
	open := metricstest.Get(t, m.Handler())
	open.Expect(t, []metricstest.Series{
		{Name: "flashsale_reservations_total", Want: 4},
		{Name: "flashsale_reservations_confirmed_total", Want: 1},
		{Name: "flashsale_reservations_cancelled_total", Want: 1},
		{Name: "flashsale_reservations_open_units", Labels: []string{"product", id}, Want: 2},
		{Name: "flashsale_reservations_paid_units", Labels: []string{"product", id}, Want: 1},
	})
	time.Sleep(2 * hold)
	if r := eng.Confirm(ctx, engine.OrderRequest{ProductID: id, UserID: "u2", OrderID: orders[2]}); r.Status != wire.StatusExpired {
		t.Fatalf("late confirm: %v %v, want EXPIRED", r.Status, r.Err)
	}
	if sw, err := eng.Sweep(ctx, id); err != nil || len(sw.Lags) != 1 {
		t.Fatalf("sweep: %+v %v, want one released", sw, err)
	}
	done := metricstest.Get(t, m.Handler())
	done.Expect(t, []metricstest.Series{
		{Name: "flashsale_reservations_expired_total", Want: 2},
		{Name: "flashsale_reservation_release_lag_seconds", Want: 1},
		{Name: "flashsale_reservations_open_units", Labels: []string{"product", id}, Want: 0},
		{Name: "flashsale_reservations_paid_units", Labels: []string{"product", id}, Want: 1},
	})
	done.Lint(t)
}
