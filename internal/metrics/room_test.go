package metrics_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/metrics"
	"github.com/flashsale/flashsale/internal/testkit/metricstest"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
	"github.com/flashsale/flashsale/wire"
)

// Metrics is the engine's observer of waiting rooms.
var _ engine.RoomObserver = (*metrics.Metrics)(nil)

func TestRoomCounters(t *testing.T) {
	m := metrics.New(metrics.Config{})
	m.Joined()
	m.Joined()
	m.Polled(false)
	m.Polled(true)
	m.Polled(true)
	m.Admitted(300 * time.Millisecond)
	m.Admitted(90 * time.Second)
	s := metricstest.Get(t, m.Handler())
	s.Expect(t, []metricstest.Series{
		{Name: "flashsale_room_joins_total", Want: 2},
		{Name: "flashsale_room_admitted_total", Want: 2},
		{Name: "flashsale_room_polls_total", Labels: []string{"source", "redis"}, Want: 1},
		{Name: "flashsale_room_polls_total", Labels: []string{"source", "cache"}, Want: 2},
		{Name: "flashsale_room_wait_seconds", Want: 2},
	})
	if got := s.Sum(t, "flashsale_room_wait_seconds"); got != 90.3 {
		t.Errorf("wait sum = %v s, want 90.3", got)
	}
	n, p50, p99 := m.RoomWaits()
	// One wait in (0.25, 0.5], one in (60, 120]: the median is the top of
	// the first, the 99th percentile near the top of the second.
	if n != 2 || p50 != 500*time.Millisecond || p99 < 118*time.Second || p99 > 120*time.Second {
		t.Errorf("RoomWaits = %d, %v, %v; want 2, 500ms, ~119s", n, p50, p99)
	}
	s.Lint(t)
}

func TestRoomWaitsEmpty(t *testing.T) {
	if n, p50, p99 := metrics.New(metrics.Config{}).RoomWaits(); n != 0 || p50 != 0 || p99 != 0 {
		t.Errorf("RoomWaits = %d, %v, %v with no admission, want zeros", n, p50, p99)
	}
}

func TestRoomGauges(t *testing.T) {
	m := metrics.New(metrics.Config{})
	m.WatchEngine(held{status: map[string]engine.ProductStatus{
		"drop":   {ID: "drop", Remaining: 4, Room: engine.RoomStatus{Rate: 50, Joined: 30, Admitted: 12}},
		"gone":   {ID: "gone", Room: engine.RoomStatus{Rate: 5, Joined: 9, Admitted: 9}},
		"plain":  {ID: "plain", Remaining: 5, Initial: 9},
		"hybrid": {ID: "hybrid", Remaining: 1, Hold: time.Minute, Reserved: 2, Room: engine.RoomStatus{Rate: 1, Joined: 3}},
	}})
	s := metricstest.Get(t, m.Handler())
	s.Expect(t, []metricstest.Series{
		{Name: "flashsale_room_waiting_customers", Labels: []string{"product", "drop"}, Want: 18},
		{Name: "flashsale_room_admitted_customers", Labels: []string{"product", "drop"}, Want: 12},
		{Name: "flashsale_room_admit_rate", Labels: []string{"product", "drop"}, Want: 50},
		{Name: "flashsale_room_paused", Labels: []string{"product", "drop"}, Want: 0},
		{Name: "flashsale_room_waiting_customers", Labels: []string{"product", "gone"}, Want: 0},
		{Name: "flashsale_room_paused", Labels: []string{"product", "gone"}, Want: 1},
		{Name: "flashsale_room_waiting_customers", Labels: []string{"product", "hybrid"}, Want: 3},
		{Name: "flashsale_reservations_open_units", Labels: []string{"product", "hybrid"}, Want: 2},
	})
	// A product without a room has no room series.
	if n := len(s.Families["flashsale_room_waiting_customers"].GetMetric()); n != 3 {
		t.Errorf("flashsale_room_waiting_customers has %d series, want 3 (drop, gone, hybrid)", n)
	}
	s.Lint(t)
}

func TestRoomNil(t *testing.T) {
	var m *metrics.Metrics
	m.Joined()
	m.Polled(true)
	m.Admitted(time.Second)
	m.RoomWaits()
}

func TestRoomNoAllocs(t *testing.T) {
	m := metrics.New(metrics.Config{})
	tests := []struct {
		name string
		call func()
	}{
		{"Joined", m.Joined},
		{"Polled", func() { m.Polled(false); m.Polled(true) }},
		{"Admitted", func() { m.Admitted(time.Second) }},
	}
	for _, tt := range tests {
		if n := testing.AllocsPerRun(100, tt.call); n != 0 {
			t.Errorf("%s: %v allocs per call, want 0", tt.name, n)
		}
	}
}

// With a real engine: the observer hears its joins, polls and admissions,
// and the gauges read the room from the product's status.
func TestRoomOfAnEngine(t *testing.T) {
	m := metrics.New(metrics.Config{})
	pool, _ := saletest.Pool(t)
	eng := engine.New(pool, engine.WithRoomObserver(m))
	m.WatchEngine(eng)
	ctx := saletest.Context(t)
	id := saletest.Product(t, eng, 10)
	if _, err := eng.SetRoom(ctx, id, engine.Room{Rate: 1}); err != nil {
		t.Fatal(err)
	}
	var tickets []string
	for _, u := range []string{"u1", "u2", "u2"} {
		a := eng.Join(ctx, engine.JoinRequest{ProductID: id, UserID: u})
		if a.Status != wire.StatusWaiting {
			t.Fatalf("join %s: %v %v", u, a.Status, a.Err)
		}
		tickets = append(tickets, a.Ticket)
	}
	// u1 is admitted first (within a second at rate 1); u2 is polled once.
	polls, admitted := 0, 0
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		polls++
		a := eng.Poll(ctx, id, tickets[0])
		if a.Status == wire.StatusAdmitted {
			admitted++
			break
		}
		if a.Status != wire.StatusWaiting || time.Now().After(deadline) {
			t.Fatalf("poll u1: %v %v, want WAITING then ADMITTED", a.Status, a.Err)
		}
	}
	polls++
	if a := eng.Poll(ctx, id, tickets[1]); a.Status == wire.StatusAdmitted {
		admitted++
	}
	eng.CachedPoll()
	s := metricstest.Get(t, m.Handler())
	s.Expect(t, []metricstest.Series{
		{Name: "flashsale_room_joins_total", Want: 3},
		{Name: "flashsale_room_admitted_total", Want: float64(admitted)},
		{Name: "flashsale_room_polls_total", Labels: []string{"source", "redis"}, Want: float64(polls)},
		{Name: "flashsale_room_polls_total", Labels: []string{"source", "cache"}, Want: 1},
		{Name: "flashsale_room_wait_seconds", Want: float64(admitted)},
		{Name: "flashsale_room_waiting_customers", Labels: []string{"product", id}, Want: float64(2 - admitted)},
		{Name: "flashsale_room_admitted_customers", Labels: []string{"product", id}, Want: float64(admitted)},
		{Name: "flashsale_room_admit_rate", Labels: []string{"product", id}, Want: 1},
		{Name: "flashsale_room_paused", Labels: []string{"product", id}, Want: 0},
	})
	s.Lint(t)
}

// counted counts the status reads of the products held stands in for.
type counted struct {
	held
	reads *atomic.Int64
}

func (c counted) Status(ctx context.Context, id string) (engine.ProductStatus, error) {
	c.reads.Add(1)
	return c.held.Status(ctx, id)
}

// TestOneReadPerProduct: a scrape reads each product's status once, for
// the reservation and the room gauges alike.
func TestOneReadPerProduct(t *testing.T) {
	status := map[string]engine.ProductStatus{}
	for i := range 40 {
		id := fmt.Sprint("p", i)
		status[id] = engine.ProductStatus{ID: id, Remaining: 1, Hold: time.Minute, Room: engine.RoomStatus{Rate: 2, Joined: int64(i)}}
	}
	src := counted{held: held{status: status}, reads: new(atomic.Int64)}
	m := metrics.New(metrics.Config{})
	m.WatchEngine(src)
	s := metricstest.Get(t, m.Handler())
	if n := src.reads.Load(); n != 40 {
		t.Errorf("a scrape read %d statuses of 40 products, want 40", n)
	}
	s.Expect(t, []metricstest.Series{
		{Name: "flashsale_room_waiting_customers", Labels: []string{"product", "p39"}, Want: 39},
		{Name: "flashsale_reservations_open_units", Labels: []string{"product", "p39"}, Want: 0},
	})
}
