package commands

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/loadgen"
	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/wire"
)

var t0 = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// late is a late joiner who joined at join ms and was admitted at adm ms.
func late(join, adm int) loadgen.Buyer {
	return loadgen.Buyer{Joined: at(join), Admitted: at(adm)}
}

func TestLateOrder(t *testing.T) {
	for _, tc := range []struct {
		name         string
		buyers       []loadgen.Buyer
		pairs        int64
		inOrder, tau float64
		outOfOrder   int
	}{
		{"none", nil, 0, 1, 1, 0},
		{"in order", []loadgen.Buyer{late(0, 100), late(10, 110), late(20, 120)}, 3, 1, 1, 0},
		{"swapped within a poll", []loadgen.Buyer{late(0, 300), late(10, 110), late(20, 320)}, 3, 2.0 / 3, 1.0 / 3, 0},
		{"reversed", []loadgen.Buyer{late(0, 5000), late(10, 2000), late(20, 100)}, 3, 0, -1, 2},
		{"early ones ignored", []loadgen.Buyer{{Early: true, Joined: at(50), Admitted: at(0)}, late(0, 100)}, 0, 1, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := lateOrder(tc.buyers, time.Second)
			if o.Pairs != tc.pairs || math.Abs(o.InOrder-tc.inOrder) > 1e-9 || math.Abs(o.Tau-tc.tau) > 1e-9 || o.OutOfOrder != tc.outOfOrder {
				t.Errorf("lateOrder = %+v, want %d pairs, %.3f in order, tau %.3f, %d out of order", o, tc.pairs, tc.inOrder, tc.tau, tc.outOfOrder)
			}
		})
	}
}

// crowd is n early buyers (the first fifth aggressive), a unit won by
// each of won, and the others told SOLD_OUT lag ms after the last sale.
func crowd(n int, won []int, lag int) *loadgen.RoomResult {
	res := &loadgen.RoomResult{}
	for i := range n {
		res.Buyers = append(res.Buyers, loadgen.Buyer{User: int64(i), Aggressive: i < n/5, Early: true, Joined: at(i)})
	}
	for _, i := range won {
		b := &res.Buyers[i]
		b.Admitted, b.Units, b.Bought, b.BoughtAt = at(1000+i), 1, wire.StatusSuccess, at(1001+i)
	}
	for i := range res.Buyers {
		if res.Buyers[i].Units == 0 {
			res.Buyers[i].SoldOut = at(1010 + lag)
		}
	}
	return res
}

func TestRoomMetrics(t *testing.T) {
	cfg := loadgen.RoomConfig{Aggressive: 2, Factor: 10, Poll: time.Second}
	for _, tc := range []struct {
		name     string
		res      *loadgen.RoomResult
		fairness float64
		pass     bool
		fails    string
	}{
		{"fair", crowd(10, []int{0, 3, 4, 5, 6}, 500), 1, true, ""},
		// 2 of 10 winning both units: a fair draw does that once in 45.
		{"aggressive lucky", crowd(10, []int{0, 1}, 500), 5, true, "Fairness:          ✓ PASS"},
		{"aggressive win all", crowd(50, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, 500), 5, false, "Fairness:          ✗ FAIL"},
		{"sold out told late", crowd(10, []int{0, 3, 4, 5, 6}, 2500), 1, false, "Sold Out Seen:     ✗ FAIL"},
		{"a probe sold", func() *loadgen.RoomResult {
			r := crowd(10, []int{0, 3, 4, 5, 6}, 500)
			r.Probes = []loadgen.ProbeAnswer{{Kind: "none", Status: "ERROR", Code: engine.CodeNotAdmitted}, {Kind: "other", Status: "SUCCESS"}}
			return r
		}(), 1, false, "Probes:            ✗ FAIL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newRoomMetrics(tc.res, cfg, 100)
			if got := m.EarlyOnly[0].Figure; math.Abs(got-tc.fairness) > 1e-9 || !m.Judged || !m.Contest {
				t.Errorf("fairness %.3f (judged %v, contest %v), want %.3f judged in a contest", got, m.Judged, m.Contest, tc.fairness)
			}
			if m.Pass != tc.pass {
				t.Errorf("Pass = %v, want %v", m.Pass, tc.pass)
			}
			var b strings.Builder
			m.writeText(&b)
			if tc.fails != "" && !strings.Contains(b.String(), tc.fails) {
				t.Errorf("report lacks %q:\n%s", tc.fails, b.String())
			}
		})
	}
}

func TestTailChance(t *testing.T) {
	for _, tc := range []struct {
		people, group, n, k int
		want                float64
	}{
		{30, 6, 9, 4, 0.04916003536693192}, // the CI run that failed on a fixed bound
		{10, 2, 2, 2, 1.0 / 45},
		{10, 2, 2, 0, 1},
		{1000, 100, 100, 20, 0.001069633001485991},
		{10, 2, 2, 3, 0}, // more winners than the group has
	} {
		if got := tailChance(tc.people, tc.group, tc.n, tc.k); math.Abs(got-tc.want) > 1e-9*max(1, tc.want) {
			t.Errorf("tailChance(%d, %d, %d, %d) = %g, want %g", tc.people, tc.group, tc.n, tc.k, got, tc.want)
		}
	}
}

func TestAdmitRate(t *testing.T) {
	var buyers []loadgen.Buyer
	for i := range 201 { // 20/s for 10 s, then a stall of 5 s
		buyers = append(buyers, loadgen.Buyer{Admitted: at(i * 50)})
	}
	buyers = append(buyers, loadgen.Buyer{Admitted: at(15000)})
	a := admitRate(buyers, 20)
	if a.Admitted != 202 || a.Window != 15*time.Second || math.Abs(a.Rate-201.0/15) > 1e-9 || a.Worst >= 10 {
		t.Errorf("admitRate = %+v, want 202 over 15s, rate %.2f, a worst 5 s under 10/s", a, 201.0/15)
	}
}

// TestBenchRoom runs bench --room against a server on real Redis: a small
// crowd, its JSON report passing.
func TestBenchRoom(t *testing.T) {
	raddr := redistest.Addr(t)
	t.Setenv("REDIS_ADDR", raddr)
	id := redistest.Product(t)
	out := mustRun(t, "bench", "--addr", startServe(t, raddr), "--product", id, "--room", "--init", "10",
		"--room-buyers", "60", "--room-early", "50%", "--room-opens", "500ms", "--room-late", "300ms",
		"--room-poll", "200ms", "--room-admit", "200", "-c", "4", "--json")
	var rep struct {
		Pass bool `json:"pass"`
		Room struct {
			Buyers     int  `json:"buyers"`
			Aggressive int  `json:"aggressive"`
			Judged     bool `json:"fairness_judged"`
			Probes     int  `json:"probes"`
			ProbesSold int  `json:"probes_sold"`
		} `json:"room"`
		Check struct {
			UnitsSold int64 `json:"units_sold"`
		} `json:"oversell_check"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	r := rep.Room
	if !rep.Pass || r.Buyers != 60 || r.Aggressive != 6 || !r.Judged || r.Probes == 0 || r.ProbesSold != 0 || rep.Check.UnitsSold != 10 {
		t.Errorf("report %s", out)
	}
}

func TestBenchRoomUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--room"}, {"--room", "--init", "1", "-n", "5"}, {"--room", "--init", "1", "--room-poll", "0s"},
		{"--room", "--init", "1", "--room-early", "120%"}, {"--room", "--init", "1", "--room-admit", "0"},
	} {
		if _, err := runApp(t, append([]string{"bench"}, args...)...); ExitCode(err) != 2 {
			t.Errorf("bench %v: %v, exit code %d", args, err, ExitCode(err))
		}
	}
}
