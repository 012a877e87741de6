package loadgen

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
	"github.com/flashsale/flashsale/server"
	"github.com/flashsale/flashsale/wire"
)

// roomServers start n servers on loopback for eng, with a short poll
// interval, until the test ends.
func roomServers(t *testing.T, eng *engine.Engine, n int) []string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make([]string, n)
	done := make(chan error, n)
	for i := range addrs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs[i] = ln.Addr().String()
		srv := server.New(eng, server.Config{Logger: zerolog.Nop(), PollInterval: 20 * time.Millisecond})
		go func() { done <- srv.Serve(ctx, ln) }()
	}
	t.Cleanup(func() {
		cancel()
		for range addrs {
			<-done
		}
	})
	return addrs
}

// TestRunRoom drives a real room on real Redis over two servers: every
// unit is sold once, to an admitted buyer; every other buyer hears
// SOLD_OUT; the aggressive ones (the first to arrive) joined before the
// opening; no probe buys; late joiners are admitted in the order they
// joined, give or take a poll.
func TestRunRoom(t *testing.T) {
	eng, _ := saletest.Engine(t)
	addrs := roomServers(t, eng, 2)
	for _, tc := range []struct {
		name                string
		buyers, early, aggr int
		units               int64
	}{
		{"early contest", 200, 100, 20, 20},
		{"late joiners", 100, 20, 10, 80},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := saletest.Context(t)
			id := saletest.Product(t, eng, tc.units)
			opens := time.Now().Add(500 * time.Millisecond)
			if _, err := eng.SetRoom(ctx, id, engine.Room{OpensAt: opens, Rate: 200}); err != nil {
				t.Fatal(err)
			}
			poll := 100 * time.Millisecond
			res := RunRoom(ctx, RoomConfig{
				Addrs: addrs, Product: id, UserPrefix: "u", Buyers: tc.buyers, Aggressive: tc.aggr, Early: tc.early,
				OpensAt: opens, LateWindow: 500 * time.Millisecond, Poll: poll, Conns: 4, Factor: 10, Quantity: 1,
				ProbeEvery: 50 * time.Millisecond, Deadline: time.Now().Add(15 * time.Second),
			})
			checkRoomRun(t, res, tc.units)
			if n, want := checkLateOrder(t, res, poll+100*time.Millisecond), int(tc.units)-tc.early; n < want {
				t.Errorf("%d late joiners admitted, want at least %d", n, want)
			}
			checkProbes(t, res.Probes)
		})
	}
}

// checkRoomRun: units sold exactly, each to an admitted buyer; every
// other buyer told SOLD_OUT; the aggressive ones early.
func checkRoomRun(t *testing.T, res *RoomResult, units int64) {
	t.Helper()
	if res.Interrupted {
		t.Error("interrupted")
	}
	var sold int64
	for _, b := range res.Buyers {
		switch {
		case b.Err != "":
			t.Errorf("buyer %d: %s", b.User, b.Err)
		case b.Units > 0 && (b.Admitted.IsZero() || b.Bought != wire.StatusSuccess || b.BoughtAt.IsZero()):
			t.Errorf("buyer %d bought %d units without an admission: %+v", b.User, b.Units, b)
		case b.Units == 0 && b.SoldOut.IsZero():
			t.Errorf("buyer %d neither bought nor heard SOLD_OUT: %+v", b.User, b)
		case b.Aggressive && !b.Early:
			t.Errorf("aggressive buyer %d joined after the opening", b.User)
		}
		sold += b.Units
	}
	if sold != units {
		t.Errorf("the buyers bought %d units, want all %d", sold, units)
	}
}

// checkLateOrder: no late joiner is admitted more than slack before one
// who joined before them. It returns how many late joiners were admitted.
func checkLateOrder(t *testing.T, res *RoomResult, slack time.Duration) int {
	t.Helper()
	var late []Buyer
	for _, b := range res.Buyers {
		if !b.Early && !b.Admitted.IsZero() {
			late = append(late, b)
		}
	}
	for i, a := range late {
		for _, b := range late[i+1:] {
			first, second := a, b
			if b.Joined.Before(a.Joined) {
				first, second = b, a
			}
			if first.Admitted.Sub(second.Admitted) > slack {
				t.Errorf("buyer %d joined after buyer %d but was admitted %s before", second.User, first.User, first.Admitted.Sub(second.Admitted))
			}
		}
	}
	return len(late)
}

// checkProbes: probes were sent, of both kinds, and each was refused
// NOT_ADMITTED.
func checkProbes(t *testing.T, probes []ProbeAnswer) {
	t.Helper()
	kinds := map[string]int{}
	for _, p := range probes {
		kinds[p.Kind]++
		if p.Status != wire.StatusError.String() || p.Code != engine.CodeNotAdmitted {
			t.Errorf("probe %s answered %+v, want ERROR NOT_ADMITTED", p.Kind, p)
		}
	}
	if kinds["none"] == 0 || kinds["other"] == 0 {
		t.Errorf("probes by kind %v, want some of each", kinds)
	}
}
