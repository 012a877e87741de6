//go:build unix

package commands

// The network faults between the server and Redis, injected by a fault
// proxy (internal/testkit/faultproxy) while buyers keep purchasing. Run it
// alone with
//
//	go test -race -run TestFaultNetwork ./commands

import (
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/testkit/faultproxy"
	"github.com/flashsale/flashsale/internal/testkit/redistest"
)

// netFault is one fault between the server and Redis: toxics held for hold.
type netFault struct {
	name   string
	toxics []faultproxy.Toxic
	hold   time.Duration
}

var netFaults = []netFault{
	{"latency 50ms±20ms", []faultproxy.Toxic{faultproxy.Latency(faultproxy.Downstream, 50*time.Millisecond, 20*time.Millisecond)}, time.Second},
	{"bandwidth 1KB/s", []faultproxy.Toxic{faultproxy.Bandwidth(faultproxy.Upstream, 1), faultproxy.Bandwidth(faultproxy.Downstream, 1)}, 1500 * time.Millisecond},
	// Redis ran the batch; its replies are dropped and the connection reset.
	{"reset mid-batch, replies lost", []faultproxy.Toxic{faultproxy.ResetPeer(faultproxy.Downstream, 0)}, 500 * time.Millisecond},
	// The connection is cut in the middle of sending a batch.
	{"cut mid-batch, batch half sent", []faultproxy.Toxic{faultproxy.LimitData(faultproxy.Upstream, 1500)}, 500 * time.Millisecond},
	{"blackhole 3s", []faultproxy.Toxic{faultproxy.Blackhole(faultproxy.Upstream), faultproxy.Blackhole(faultproxy.Downstream)}, 3 * time.Second},
}

// recoveryBound is how soon after a fault ends the server must sell again.
const recoveryBound = 2 * time.Second

// TestFaultNetwork: for each network fault, under concurrent purchases
// with request ids, every answer comes within the request timeout, the
// server sells again within 2 s of the fault ending, every "outcome
// unknown" is settled by a retry with its request_id, and then the books
// are exact: every SUCCESS in the orders stream, units sold == SUCCESS
// answers, admin verify OK.
func TestFaultNetwork(t *testing.T) {
	raddr := redistest.Addr(t)
	redistest.SkipUnlessReal(t, "a fault proxy in front of Redis needs a real Redis")
	for _, f := range netFaults {
		t.Run(strings.ReplaceAll(f.name, " ", "_"), func(t *testing.T) { testNetFault(t, raddr, f) })
	}
}

func testNetFault(t *testing.T, raddr string, f netFault) {
	const rt = time.Second
	proxy := faultproxy.Start(t, raddr)
	addr := startServe(t, proxy.Addr, "--request-timeout", rt.String(), "--redis-timeout", "500ms", "--log-level", "fatal")
	p := initProduct(t, raddr, 1_000_000)
	load := newFaultLoad(addr, p, rt+time.Second)
	load.requestIDs = true
	load.start(t, 4, 16)
	load.waitFor(t, "SUCCESS before the fault", 3*time.Second, func(a faultAnswer) bool { return a.resp.Status == "SUCCESS" })
	time.Sleep(200 * time.Millisecond)

	faulty := time.Now()
	proxy.Add(t, f.toxics...)
	time.Sleep(f.hold)
	proxy.Remove(t, f.toxics...)
	healed := time.Now()
	load.waitFor(t, "SUCCESS after the fault", recoveryBound, func(a faultAnswer) bool {
		return a.resp.Status == "SUCCESS" && a.sent.After(healed)
	})
	time.Sleep(200 * time.Millisecond)
	answers := load.finish()

	checkAnswered(t, answers, rt+schedSlack)
	during, back := summary(between(answers, faulty, healed)), recovery(answers, healed)
	unknown, ran := settleUnknown(t, addr, raddr, p, answers)
	checkBooks(t, raddr, p, answers, true)
	// A row of the table in docs/operations.md, "Network faults".
	t.Logf("| %s | %s | %d (%d had run) | %s |", f.name, during, unknown, ran, back.Round(time.Millisecond))
}

// between is the answers to attempts sent from from to to.
func between(answers []faultAnswer, from, to time.Time) []faultAnswer {
	var in []faultAnswer
	for _, a := range answers {
		if !a.sent.Before(from) && a.sent.Before(to) {
			in = append(in, a)
		}
	}
	return in
}

// recovery is how long after healed the first SUCCESS of an attempt sent
// after it came.
func recovery(answers []faultAnswer, healed time.Time) time.Duration {
	first := time.Duration(1<<63 - 1)
	for _, a := range answers {
		if a.answered() && a.resp.Status == "SUCCESS" && a.sent.After(healed) {
			first = min(first, a.recv.Sub(healed))
		}
	}
	return first
}

// settleUnknown retries every attempt of unknown outcome with its
// request_id, and puts the retry's answer in its place. The retry must be
// a SUCCESS (every product of the test has stock, no per-user limit), and
// of the original order when the attempt had run: its user already holds
// an order in the stream. It returns how many it retried and how many of
// those had run.
func settleUnknown(t *testing.T, addr, raddr, product string, answers []faultAnswer) (unknown, ran int) {
	t.Helper()
	orderOf := map[string]string{}
	for order, user := range streamSales(t, raddr, product) {
		orderOf[user] = order
	}
	cl := mustFaultDial(t, addr)
	for i := range answers {
		a := &answers[i]
		if a.product != product || !a.outcomeUnknown() {
			continue
		}
		unknown++
		r, took, err := cl.purchase(a.request(), 5*time.Second)
		if err != nil {
			t.Fatalf("retry of %s: %v", a, err)
		}
		a.resp, a.err, a.recv = r, nil, a.sent.Add(took)
		order, had := orderOf[a.user]
		switch {
		case r.Status != "SUCCESS":
			t.Errorf("retry after the fault: %s, want SUCCESS", a)
		case had && r.OrderID != order:
			t.Errorf("retry after the fault: %s, want the order %s the attempt made", a, order)
		case had:
			ran++
		}
	}
	return unknown, ran
}
