package commands

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/loadgen"
	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/wire"
)

// holdRun is a run of 2 s with a hold of 300 ms on 100 units: 50% pay.
func holdRun() (*Report, engine.ProductStatus, engine.ProductStatus, []engine.Order) {
	rep := &Report{
		Target: "localhost:8080", Product: "iphone15", Connections: 20,
		Pipeline: 1, DurationLimit: 2 * time.Second, Quantity: 1,
	}
	rep.Result = loadgen.Result{
		Duration: 2001 * time.Millisecond,
		Total:    160000,
		Statuses: map[wire.Status]int64{wire.StatusReserved: 198, wire.StatusSoldOut: 159802},
		Latency: loadgen.Latencies{
			Count: 160000,
			Min:   14 * time.Microsecond, Mean: 238 * time.Microsecond, P50: 162 * time.Microsecond,
			P90: 390 * time.Microsecond, P95: 517 * time.Microsecond, P99: 1793 * time.Microsecond,
			P999: 4595 * time.Microsecond, Max: 16151 * time.Microsecond,
		},
		ErrorSet: map[string]int64{},
	}
	rep.Hold = &HoldReport{
		Hold: 300 * time.Millisecond, Pay: 0.5, Delay: 100 * time.Millisecond,
		Reservations: 198, ReservedUnits: 198, Stock: 100, Resold: 98,
		Paid: 99, PaidUnits: 99, Abandoned: 99, Releases: 99, SettleErrorSet: map[string]int64{},
		Lag:    LagSummary{Count: 99, P50: 1100 * time.Microsecond, P99: 5900 * time.Microsecond, Max: 5900 * time.Microsecond},
		Waited: 122 * time.Millisecond,
		Orders: []string{"1-0", "2-0"}, PaidIDs: []string{"1-0"},
	}
	before := engine.ProductStatus{Initial: 100, Remaining: 100, Hold: 300 * time.Millisecond}
	after := engine.ProductStatus{Initial: 100, Remaining: 1, Held: 99, Buyers: 99, Hold: 300 * time.Millisecond, Paid: 99, Expired: 99}
	orders := []engine.Order{
		{ID: "1-0", Type: "reserved"}, {ID: "2-0", Type: "reserved"},
		{ID: "3-0", Type: "paid", OrderID: "1-0"}, {ID: "4-0", Type: "released", OrderID: "2-0"},
	}
	return rep, before, after, orders
}

// TestReportTextHold: the report of a run with payers, text and JSON.
func TestReportTextHold(t *testing.T) {
	rep, before, after, orders := holdRun()
	rep.Check = newCheck(rep, before, after, engine.Audit{}, nil)
	rep.Check.addHold(rep.Hold, before, after, orders)
	var b bytes.Buffer
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, filepath.Join("bench", "report-hold.golden"), b.Bytes())
	b.Reset()
	if err := rep.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, filepath.Join("bench", "report-hold.json.golden"), b.Bytes())
	if rep.Err() != nil {
		t.Errorf("Err = %v, want a pass", rep.Err())
	}
}

func TestHoldCheck(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(h *HoldReport, after *engine.ProductStatus, orders *[]engine.Order)
		pass   bool
	}{
		{"balanced", func(*HoldReport, *engine.ProductStatus, *[]engine.Order) {}, true},
		{"paid above stock", func(h *HoldReport, _ *engine.ProductStatus, _ *[]engine.Order) { h.PaidUnits = 101 }, false},
		{"an expired unit lost", func(_ *HoldReport, a *engine.ProductStatus, _ *[]engine.Order) { a.Remaining = 0 }, false},
		{"still reserved", func(_ *HoldReport, a *engine.ProductStatus, _ *[]engine.Order) { a.Remaining, a.Reserved = 0, 1 }, true},
		{"paid and released", func(_ *HoldReport, _ *engine.ProductStatus, o *[]engine.Order) {
			*o = append(*o, engine.Order{ID: "5-0", Type: "released", OrderID: "1-0"})
		}, false},
		{"reservation not recorded", func(h *HoldReport, _ *engine.ProductStatus, _ *[]engine.Order) {
			h.Orders = append(h.Orders, "9-0")
		}, false},
		{"payment not recorded", func(h *HoldReport, _ *engine.ProductStatus, _ *[]engine.Order) {
			h.PaidIDs = append(h.PaidIDs, "2-0")
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, before, after, orders := holdRun()
			tc.change(rep.Hold, &after, &orders)
			if got := newHoldCheck(rep.Hold, before, after, orders).Pass; got != tc.pass {
				t.Errorf("Pass = %v, want %v", got, tc.pass)
			}
		})
	}
}

func TestSummariseLags(t *testing.T) {
	var lags []time.Duration
	for i := 100; i >= 1; i-- {
		lags = append(lags, time.Duration(i)*time.Millisecond)
	}
	got := summariseLags(lags)
	want := LagSummary{Count: 100, P50: 51 * time.Millisecond, P99: 100 * time.Millisecond, Max: 100 * time.Millisecond}
	if got != want {
		t.Errorf("summariseLags = %+v, want %+v", got, want)
	}
	if (summariseLags(nil) != LagSummary{}) {
		t.Error("no lags: want the zero summary")
	}
}

func TestBenchHoldFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--pay", "120%"}, "--pay must be a share"},
		{[]string{"--cancel", "x"}, "--cancel must be a share"},
		{[]string{"--pay", "70%", "--cancel", "40%"}, "more than 100%"},
		{[]string{"--hold", "1s"}, "--hold only applies with --init"},
		{[]string{"--init", "5", "--hold", "-1s"}, "--hold"},
		{[]string{"--pay-delay", "-1s"}, "must not be negative"},
		{[]string{"--settle-wait", "-1s"}, "must not be negative"},
	} {
		_, err := runApp(t, append([]string{"bench"}, tc.args...)...)
		if ExitCode(err) != 2 || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("bench %v: %v (exit %d), want exit 2 saying %q", tc.args, err, ExitCode(err), tc.want)
		}
	}
}

// TestBenchPayNeedsHold: --pay on a product without a hold is a mistake.
func TestBenchPayNeedsHold(t *testing.T) {
	raddr := redistest.Addr(t)
	addr := startServe(t, raddr)
	_, err := runApp(t, "bench", "--addr", addr, "--redis-addr", raddr, "--product", redistest.Product(t),
		"--init", "10", "-n", "10", "--pay", "50%")
	if ExitCode(err) != 2 || !strings.Contains(err.Error(), "has no hold") {
		t.Errorf("bench --pay without a hold: %v (exit %d)", err, ExitCode(err))
	}
}

// benchHoldJSON is what the test reads of bench --json on a product with a
// hold.
type benchHoldJSON struct {
	Statuses map[string]int64 `json:"statuses"`
	Errors   int64            `json:"errors"`
	Pass     bool             `json:"pass"`
	Hold     jsonHold         `json:"reservations"`
	Check    struct {
		Pass bool          `json:"pass"`
		Hold jsonHoldCheck `json:"reservations"`
	} `json:"oversell_check"`
}

// TestBenchPayers runs bench with payers against a served product with a
// short hold: half the winners pay, the others' units expire and are
// re-sold, and the figures agree with each other and with Redis.
func TestBenchPayers(t *testing.T) {
	raddr := redistest.Addr(t)
	addr := startServe(t, raddr)
	product := redistest.Product(t)
	out := mustRun(t, "bench", "--addr", addr, "--redis-addr", raddr, "--product", product, "--json",
		"--init", "20", "--hold", "300ms", "--pay", "50%", "--pay-delay", "100ms", "--duration", "2s", "-c", "4")
	var r benchHoldJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	h, hc := r.Hold, r.Check.Hold
	switch {
	case !r.Pass || !r.Check.Pass || !hc.Pass || r.Errors != 0 || h.SettleErrors != 0:
		t.Errorf("the run did not pass:\n%s", out)
	case h.Reservations != r.Statuses["RESERVED"] || h.ReservedUnits != h.Reservations:
		t.Errorf("%d reservations for %d RESERVED answers:\n%s", h.Reservations, r.Statuses["RESERVED"], out)
	case h.Paid+h.ConfirmsExpired+h.Abandoned != h.Reservations:
		t.Errorf("paid + expired confirms + abandoned != reservations:\n%s", out)
	case h.Paid == 0 || h.Abandoned == 0 || h.PaidUnits != hc.Paid || hc.Paid > hc.Initial:
		t.Errorf("paid %d, abandoned %d, paid in Redis %d of %d:\n%s", h.Paid, h.Abandoned, hc.Paid, hc.Initial, out)
	case h.Resold == 0 || h.Resold != h.ReservedUnits-h.Stock:
		t.Errorf("re-sold %d of %d reserved units, %d at the start:\n%s", h.Resold, h.ReservedUnits, h.Stock, out)
	case hc.ExpiredUnits == 0 || h.Releases > hc.ExpiredUnits || h.LagMS.Count != int(h.Releases):
		t.Errorf("%d units expired, %d releases seen, %d lags:\n%s", hc.ExpiredUnits, h.Releases, h.LagMS.Count, out)
	case hc.Available+hc.Reserved+hc.Paid != hc.Initial || hc.Reserved != 0:
		t.Errorf("available %d + reserved %d + paid %d != initial %d:\n%s", hc.Available, hc.Reserved, hc.Paid, hc.Initial, out)
	}
	// Every expired unit was seen coming back, the last ones after the load.
	if h.Releases < h.Abandoned {
		t.Errorf("%d releases seen for %d abandoned reservations:\n%s", h.Releases, h.Abandoned, out)
	}
}

func TestWatchAfter(t *testing.T) {
	for _, tc := range []struct {
		cancel float64
		hold   time.Duration
		want   time.Duration
	}{
		{0, 10 * time.Minute, 10*time.Minute - time.Second},
		{0, 300 * time.Millisecond, 0},
		{0.5, 10 * time.Minute, 0}, // a cancel releases at once
	} {
		if got := (holdConfig{cancel: tc.cancel}).watchAfter(tc.hold); got != tc.want {
			t.Errorf("cancel %v, hold %v: watchAfter = %v, want %v", tc.cancel, tc.hold, got, tc.want)
		}
	}
}
