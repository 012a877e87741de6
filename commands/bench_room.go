package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/loadgen"
	"github.com/flashsale/flashsale/wire"
)

// Bench against a waiting room (bench --room): with --init, bench gives
// the product a room opening --room-opens from now at --room-admit a
// second, and a crowd of --room-buyers joins it: the first
// --room-early of them before the opening, the rest over --room-late
// after it; the first --room-aggressive of them poll --room-factor times
// as often over as many connections of their own. Each buys once when
// admitted. The report says who won (the fairness figure), in what order
// the late joiners were admitted, how fast the room admitted, how soon
// the waiters heard SOLD_OUT, and that no purchase without an admission
// sold (probes); see RoomMetrics.

// ErrRoomFailed: a waiting room's check (RoomMetrics.Pass) failed.
var ErrRoomFailed = errors.New("waiting room check FAILED")

// benchRoomFlags are bench's flags for a run against a waiting room.
func benchRoomFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "room", Usage: "drive a waiting room: with --init, give the product a room and send a crowd of buyers who join, poll and buy once admitted (see --room-*)"},
		&cli.IntFlag{Name: "room-buyers", Usage: "with --room: `N` buyers in the crowd", Value: 500},
		&cli.StringFlag{Name: "room-early", Usage: "with --room: share `P%` of the buyers who join before the opening (their places are drawn at it)", Value: "50%"},
		&cli.StringFlag{Name: "room-aggressive", Usage: "with --room: share `P%` of the buyers who are aggressive (the first to arrive)", Value: "10%"},
		&cli.IntFlag{Name: "room-factor", Usage: "with --room: an aggressive buyer opens `N` connections of its own and polls N times as often", Value: 10},
		&cli.DurationFlag{Name: "room-poll", Usage: "with --room: an ordinary buyer polls every `D` (over the -c connections the ordinary buyers share)", Value: time.Second},
		&cli.Int64Flag{Name: "room-admit", Usage: "with --room: the room admits `N` buyers a second", Value: 100},
		&cli.DurationFlag{Name: "room-opens", Usage: "with --room: the room opens `D` from the start (the early buyers join meanwhile)", Value: 2 * time.Second},
		&cli.DurationFlag{Name: "room-late", Usage: "with --room: the late buyers join over `D` after the opening", Value: 5 * time.Second},
		&cli.DurationFlag{Name: "room-wait", Usage: "with --room: after the late buyers joined, wait up to `D` for the last of them to buy or hear SOLD_OUT", Value: 30 * time.Second},
	}
}

// roomBench is what the room flags ask for.
type roomBench struct {
	buyers, factor         int
	early, aggressive      float64
	poll, opens, late, max time.Duration
	admit                  int64
}

// notWithRoom are the flags of a purchase load that --room does not take.
var notWithRoom = []string{"requests", "pipeline", "rate", "duration", "users", "output", "request-ids", "hold", "pay", "cancel"}

// roomBenchFrom reads and checks the room flags.
func roomBenchFrom(c *cli.Context) (roomBench, error) {
	rb := roomBench{buyers: c.Int("room-buyers"), factor: c.Int("room-factor"), poll: c.Duration("room-poll"),
		opens: c.Duration("room-opens"), late: c.Duration("room-late"), max: c.Duration("room-wait"), admit: c.Int64("room-admit")}
	var err error
	if rb.early, err = parseShare(c, "room-early"); err != nil {
		return rb, err
	}
	if rb.aggressive, err = parseShare(c, "room-aggressive"); err != nil {
		return rb, err
	}
	for _, name := range notWithRoom {
		if c.IsSet(name) {
			return rb, usageErrorf(c, "--%s does not apply with --room (its buyers buy once each, when admitted)", name)
		}
	}
	switch {
	case !c.IsSet("init"):
		return rb, usageErrorf(c, "--room needs --init N: bench sets up the product and its room itself")
	case rb.buyers < 1 || rb.factor < 1:
		return rb, usageErrorf(c, "--room-buyers and --room-factor must be at least 1")
	case rb.admit < 1 || rb.admit > engine.MaxRoomRate:
		return rb, usageErrorf(c, "--room-admit must be between 1 and %d", engine.MaxRoomRate)
	case rb.poll <= 0 || rb.opens < 0 || rb.late < 0 || rb.max < 0:
		return rb, usageErrorf(c, "--room-poll must be positive, --room-opens, --room-late and --room-wait not negative")
	}
	return rb, nil
}

// benchRoom sets up the product and its room, runs the crowd, checks for
// oversell and reports.
func benchRoom(c *cli.Context, st *store, cfg loadgen.Config, rb roomBench) error {
	ctx, eng := c.Context, st.Engine
	if err := reachServers(ctx, cfg); err != nil {
		return err
	}
	cleared, before, err := initBenchProduct(c, eng, cfg.Product, 0)
	if err != nil {
		return err
	}
	opens := time.Now().Add(rb.opens)
	if _, err := eng.SetRoom(ctx, cfg.Product, engine.Room{OpensAt: opens, Rate: rb.admit}); err != nil {
		return err
	}
	rc := loadgen.RoomConfig{
		Addrs: cfg.Addrs, Product: cfg.Product, UserPrefix: cfg.UserPrefix, Buyers: rb.buyers,
		Aggressive: int(rb.aggressive * float64(rb.buyers)), Early: int(rb.early * float64(rb.buyers)),
		OpensAt: opens, LateWindow: rb.late, Poll: rb.poll, Conns: cfg.Conns, Factor: rb.factor,
		Quantity: cfg.Quantity, Options: cfg.Options, Sign: cfg.Sign, ProbeEvery: 100 * time.Millisecond,
		Deadline: opens.Add(rb.late + rb.max),
	}
	res := loadgen.RunRoom(ctx, rc)
	rep := newReport(cfg, roomResult(res), c.Bool("allow-errors"))
	rep.Connections, rep.RequestLimit, rep.Cleared = cfg.Conns, 0, cleared
	rep.Room = newRoomMetrics(res, rc, rb.admit)
	checkCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if rep.Check, err = check(checkCtx, eng, cfg.Product, rep, before); err != nil {
		return fmt.Errorf("oversell check: %w", err)
	}
	if c.Bool("json") {
		err = rep.WriteJSON(c.App.Writer)
	} else {
		err = rep.WriteText(c.App.Writer)
	}
	if err != nil {
		return err
	}
	return rep.Err()
}

// roomResult is a room run's purchases as a load's result: their
// statuses, units, order ids and latencies, and the requests that failed.
func roomResult(res *loadgen.RoomResult) *loadgen.Result {
	r := &loadgen.Result{Duration: res.Duration, Statuses: map[wire.Status]int64{}, ErrorSet: map[string]int64{}, Interrupted: res.Interrupted}
	var lats []time.Duration
	for _, b := range res.Buyers {
		switch {
		case b.Err != "":
			r.Errors++
			r.ErrorSet[b.Err]++
		case b.Admitted.IsZero():
			continue
		case b.Bought == wire.StatusError:
			r.Errors++
			r.ErrorSet["purchase ERROR "+b.Code]++
		default:
			r.Statuses[b.Bought]++
		}
		if !b.Admitted.IsZero() {
			r.Total++
			lats = append(lats, b.BuyLat)
		}
		if b.Units > 0 {
			r.Units += b.Units
			r.OrderIDs = append(r.OrderIDs, b.OrderID)
		}
	}
	r.Latency = latenciesOf(lats)
	return r
}

// latenciesOf summarises ds.
func latenciesOf(ds []time.Duration) loadgen.Latencies {
	s := summariseLags(ds)
	if s.Count == 0 {
		return loadgen.Latencies{}
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	at := func(q float64) time.Duration { return ds[min(int(q*float64(len(ds))), len(ds)-1)] }
	return loadgen.Latencies{Count: int64(s.Count), Min: ds[0], Mean: sum / time.Duration(len(ds)), P50: s.P50,
		P90: at(0.9), P95: at(0.95), P99: s.P99, P999: at(0.999), Max: s.Max}
}
