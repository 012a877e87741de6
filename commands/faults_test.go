//go:build unix

package commands

// The fault suite: what buyers see, and what the books say, when Redis is
// killed, frozen, forgets its scripts or loses a replica, when clients
// misbehave, and when the server is told to stop in the middle of a sale.
// Run it alone with
//
//	go test -race -run TestFault ./commands
//
// Every test uses loopback addresses only, puts a deadline on every socket
// operation, and ends by itself well within a minute. Tests that kill or
// freeze Redis get a redis-server process of their own (see
// redistest.StartTestServer): they skip without one, or fail when
// FLASHSALE_TEST_REDIS=real.
//
// The invariant checked after each test, for each product it sold: admin
// verify is OK, every SUCCESS a client received is in the orders stream
// (by order id, for that user), and
//
//	SUCCESS answers <= units sold <= SUCCESS answers + answers of unknown outcome
//
// where an unknown outcome is a request that got no answer, or got ERROR
// UNAVAILABLE saying "outcome unknown" (the script was sent, Redis did not
// answer). Where no outcome can be unknown, units sold == SUCCESS answers.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/wire"
)

// ---------------------------------------------------------------------------
// Clients with a deadline on everything.

// faultConn is one protocol connection of a fault test; every exchange has
// a deadline, so a server that hangs fails the test instead of hanging it.
type faultConn struct {
	nc net.Conn
	rd *wire.Reader
}

func faultDial(addr string) (*faultConn, error) {
	nc, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	return &faultConn{nc: nc, rd: wire.NewReader(nc, wire.DefaultMaxPayload)}, nil
}

func mustFaultDial(t *testing.T, addr string) *faultConn {
	t.Helper()
	c, err := faultDial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.nc.Close() })
	return c
}

// exchange sends frame and reads one answer frame within d.
func (c *faultConn) exchange(frame []byte, d time.Duration) (wire.Frame, error) {
	c.nc.SetDeadline(time.Now().Add(d))
	if _, err := c.nc.Write(frame); err != nil {
		return wire.Frame{}, err
	}
	return c.rd.Next()
}

// purchase sends req and decodes its answer, timing it.
func (c *faultConn) purchase(req wire.PurchaseRequest, d time.Duration) (wire.Response, time.Duration, error) {
	start := time.Now()
	f, err := c.exchange(purchase(req), d)
	took := time.Since(start)
	if err != nil {
		return wire.Response{}, took, err
	}
	var r wire.Response
	if f.Type != wire.TypePurchaseResponse {
		return r, took, fmt.Errorf("answer of type %v: %s", f.Type, f.Payload)
	}
	if err := wire.DecodeResponse(f.Payload, &r); err != nil {
		return r, took, fmt.Errorf("bad answer %q: %w", f.Payload, err)
	}
	return r, took, nil
}

// pingPayload asks the server at addr for PING on a fresh connection and
// returns the answer's payload.
func pingPayload(addr string) (string, error) {
	c, err := faultDial(addr)
	if err != nil {
		return "", err
	}
	defer c.nc.Close()
	f, err := c.exchange(wire.AppendFrame(nil, wire.TypePing, nil), 2*time.Second)
	if err != nil {
		return "", err
	}
	if f.Type != wire.TypePing.Response() {
		return "", fmt.Errorf("ping answered with type %v: %s", f.Type, f.Payload)
	}
	return string(f.Payload), nil
}

// waitPingSays polls PING until its payload is want, for at most within.
func waitPingSays(t *testing.T, addr, want string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var last string
	var err error
	for time.Since(start) < within {
		if last, err = pingPayload(addr); err == nil && last == want {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("PING did not answer %s within %s: last %q, %v", want, within, last, err)
	return 0
}

const (
	pongUp   = `{"status":"PONG","redis":"up"}`
	pongDown = `{"status":"PONG","redis":"down"}`
)

// ---------------------------------------------------------------------------
// The load: pipelined purchases by unique users, every answer recorded.

// faultAnswer is one purchase attempt and what came of it.
type faultAnswer struct {
	product, user string
	requestID     string    // empty unless the load sends request ids
	sent, recv    time.Time // recv is zero without an answer
	resp          wire.Response
	err           error // why there is no answer
}

// request is the purchase a was the answer to.
func (a faultAnswer) request() wire.PurchaseRequest {
	return wire.PurchaseRequest{ProductID: a.product, UserID: a.user, RequestID: a.requestID}
}

func (a faultAnswer) answered() bool         { return a.err == nil }
func (a faultAnswer) latency() time.Duration { return a.recv.Sub(a.sent) }

// outcomeUnknown reports an answer that leaves the sale's outcome unknown:
// none at all, or UNAVAILABLE after the script was sent.
func (a faultAnswer) outcomeUnknown() bool {
	return !a.answered() || a.resp.Status == "ERROR" && a.resp.Code == engine.CodeUnavailable &&
		strings.Contains(a.resp.Error, "outcome unknown")
}

func (a faultAnswer) String() string {
	if !a.answered() {
		return fmt.Sprintf("%s by %s: no answer: %v", a.product, a.user, a.err)
	}
	return fmt.Sprintf("%s by %s: %s %s %s %s after %s", a.product, a.user, a.resp.Status, a.resp.Code, a.resp.Error,
		a.resp.OrderID, a.latency().Round(time.Millisecond))
}

// faultLoad keeps conns connections busy, each sending batches of batch
// pipelined purchases (unique users) and reading every answer within
// readBound of sending, until finish. With requestIDs, every purchase
// carries a request_id of its own.
type faultLoad struct {
	addr       string
	tag        string
	readBound  time.Duration
	requestIDs bool
	product    atomic.Pointer[string]
	seq        atomic.Int64
	stop       chan struct{}
	once       sync.Once
	wg         sync.WaitGroup

	mu      sync.Mutex
	answers []faultAnswer
}

func startFaultLoad(t *testing.T, addr, product string, conns, batch int, readBound time.Duration) *faultLoad {
	return newFaultLoad(addr, product, readBound).start(t, conns, batch)
}

// newFaultLoad is a load not yet started, for a test to set its fields.
func newFaultLoad(addr, product string, readBound time.Duration) *faultLoad {
	l := &faultLoad{addr: addr, tag: fmt.Sprintf("u%d", time.Now().UnixNano()%1e9), readBound: readBound, stop: make(chan struct{})}
	l.setProduct(product)
	return l
}

// start starts conns connections sending batches of batch purchases.
func (l *faultLoad) start(t *testing.T, conns, batch int) *faultLoad {
	for c := range conns {
		l.wg.Add(1)
		go l.run(c, batch)
	}
	t.Cleanup(func() { l.finish() })
	return l
}

// setProduct makes the next batches buy p.
func (l *faultLoad) setProduct(p string) { l.product.Store(&p) }

// finish stops the load and returns every attempt it made.
func (l *faultLoad) finish() []faultAnswer {
	l.once.Do(func() { close(l.stop) })
	l.wg.Wait()
	return l.snapshot()
}

func (l *faultLoad) snapshot() []faultAnswer {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]faultAnswer(nil), l.answers...)
}

// waitFor polls the answers so far until cond holds, for at most within.
func (l *faultLoad) waitFor(t *testing.T, what string, within time.Duration, cond func(faultAnswer) bool) {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		l.mu.Lock()
		for _, a := range l.answers {
			if cond(a) {
				l.mu.Unlock()
				return
			}
		}
		l.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %s within %s", what, within)
}

func (l *faultLoad) run(c, batch int) {
	defer l.wg.Done()
	var fc *faultConn
	defer func() {
		if fc != nil {
			fc.nc.Close()
		}
	}()
	var frames []byte
	for {
		select {
		case <-l.stop:
			return
		default:
		}
		if fc == nil {
			var err error
			if fc, err = faultDial(l.addr); err != nil {
				time.Sleep(20 * time.Millisecond)
				continue
			}
		}
		p := *l.product.Load()
		out := make([]faultAnswer, batch)
		frames = frames[:0]
		for i := range out {
			a := &out[i]
			*a = faultAnswer{product: p, user: fmt.Sprintf("%s-c%d-%d", l.tag, c, l.seq.Add(1))}
			if l.requestIDs {
				a.requestID = "rid-" + a.user
			}
			frames = wire.AppendFrame(frames, wire.TypePurchase, wire.AppendPurchase(nil, a.request()))
		}
		sent := time.Now()
		fc.nc.SetDeadline(sent.Add(l.readBound))
		_, err := fc.nc.Write(frames)
		errs := 0
		for i := range out {
			a := &out[i]
			a.sent = sent
			if err != nil {
				a.err = err
				continue
			}
			var f wire.Frame
			if f, err = fc.rd.Next(); err != nil {
				a.err = err
				continue
			}
			a.recv = time.Now()
			if f.Type != wire.TypePurchaseResponse {
				a.resp = wire.Response{Status: "ERROR", Code: "TEST", Error: fmt.Sprintf("answer of type %v: %s", f.Type, f.Payload)}
			} else if derr := wire.DecodeResponse(f.Payload, &a.resp); derr != nil {
				a.resp = wire.Response{Status: "ERROR", Code: "TEST", Error: fmt.Sprintf("bad answer %q", f.Payload)}
			}
			if a.resp.Status == "ERROR" {
				errs++
			}
		}
		if err != nil {
			fc.nc.Close()
			fc = nil
		}
		l.mu.Lock()
		l.answers = append(l.answers, out...)
		l.mu.Unlock()
		if errs > 0 || err != nil {
			// Redis is out: no need to spin. Stays well below any timeout.
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// ---------------------------------------------------------------------------
// The books.

// faultSold is how many units product has sold, read from Redis.
func faultSold(t *testing.T, raddr, product string) int64 {
	t.Helper()
	rc := redistest.Conn(t, raddr)
	k := engine.KeysFor(product)
	initial, err := redis.Int64(rc.Do("HGET", k.Meta, "initial"))
	if err != nil {
		t.Fatalf("%s: initial: %v", product, err)
	}
	stock, err := redis.Int64(rc.Do("GET", k.Stock))
	if err != nil {
		t.Fatalf("%s: stock: %v", product, err)
	}
	return initial - stock
}

// checkBooks checks the invariant of the suite for product against the
// answers clients received (answers of other products are ignored): admin
// verify OK, every SUCCESS in the orders stream, and units sold between
// the SUCCESS answers and those plus the unknown outcomes (NOT_DURABLE
// answers among them); exactly the
// SUCCESS answers when exact. It returns the number of SUCCESS answers.
func checkBooks(t *testing.T, raddr, product string, answers []faultAnswer, exact bool) int {
	t.Helper()
	verifyOK(t, raddr, product)
	sales := streamSales(t, raddr, product)
	success, unknown := 0, 0
	seen := map[string]bool{}
	for _, a := range answers {
		if a.product != product {
			continue
		}
		if a.outcomeUnknown() || a.answered() && a.resp.Code == engine.CodeNotDurable {
			unknown++ // (a sale answered NOT_DURABLE ran, and may or may not survive a failover)
		}
		if !a.answered() || a.resp.Status != "SUCCESS" {
			continue
		}
		success++
		if seen[a.resp.OrderID] {
			t.Errorf("order id %s acknowledged twice", a.resp.OrderID)
		}
		seen[a.resp.OrderID] = true
		if user, ok := sales[a.resp.OrderID]; !ok {
			t.Errorf("acknowledged SUCCESS lost: order %s of %s is not in the orders stream", a.resp.OrderID, a.user)
		} else if user != a.user {
			t.Errorf("order %s was acknowledged to %s but the stream says %s", a.resp.OrderID, a.user, user)
		}
	}
	sold := faultSold(t, raddr, product)
	switch {
	case sold < int64(success):
		t.Errorf("%s: %d units sold but %d SUCCESS answers", product, sold, success)
	case exact && sold != int64(success):
		t.Errorf("%s: %d units sold for %d SUCCESS answers, want equal", product, sold, success)
	case sold-int64(success) > int64(unknown):
		t.Errorf("%s: %d units sold for %d SUCCESS answers and only %d of unknown outcome", product, sold, success, unknown)
	}
	if int64(len(sales)) != sold {
		t.Errorf("%s: %d sales in the stream, %d units sold", product, len(sales), sold)
	}
	t.Logf("%s: %d units sold, %d SUCCESS answers, %d of unknown outcome", product, sold, success, unknown)
	return success
}

// summary counts answers by status and code, for logs and failures.
func summary(answers []faultAnswer) string {
	n := map[string]int{}
	for _, a := range answers {
		switch {
		case !a.answered():
			n["no answer"]++
		case a.outcomeUnknown():
			n["UNAVAILABLE (outcome unknown)"]++
		case a.resp.Code != "":
			n[a.resp.Status+" "+a.resp.Code]++
		default:
			n[a.resp.Status]++
		}
	}
	return fmt.Sprint(n)
}

// checkAnswered fails for every attempt that got no answer or took longer
// than bound, showing the first few.
func checkAnswered(t *testing.T, answers []faultAnswer, bound time.Duration) {
	t.Helper()
	var slowest time.Duration
	bad := 0
	for _, a := range answers {
		if a.answered() {
			slowest = max(slowest, a.latency())
		}
		if !a.answered() || a.latency() > bound {
			if bad++; bad <= 5 {
				t.Errorf("want an answer within %s: %s", bound, a)
			}
		}
	}
	if bad > 5 {
		t.Errorf("… %d attempts in all without an answer within %s", bad, bound)
	}
	t.Logf("%d attempts, slowest answer %s: %s", len(answers), slowest.Round(time.Millisecond), summary(answers))
}

// schedSlack is what the bounds on answer times allow for scheduling,
// under -race on a small machine.
const schedSlack = 200 * time.Millisecond

// initProduct creates a product of the test with plenty of stock and no
// per-user limit.
func initProduct(t *testing.T, raddr string, units int) string {
	t.Helper()
	p := redistest.Product(t)
	mustRun(t, "admin", "init", "--redis-addr", raddr, "--per-user-limit", "0", p, strconv.Itoa(units))
	return p
}

// ---------------------------------------------------------------------------
// Redis faults.

// TestFaultRedisKilledMidLoad: Redis crashes (SIGKILL, no persistence) in
// the middle of a sale and comes back empty. While it is down every answer
// is a prompt UNAVAILABLE, never a SUCCESS, and PING says so; once it is
// back the server sells again by itself.
func TestFaultRedisKilledMidLoad(t *testing.T) {
	rs := redistest.StartTestServer(t)
	const rt = 500 * time.Millisecond
	addr := startServe(t, rs.Addr, "--request-timeout", "500ms", "--redis-timeout", "500ms", "--log-level", "fatal")
	before := initProduct(t, rs.Addr, 1_000_000)
	waitPingSays(t, addr, pongUp, 3*time.Second)

	load := startFaultLoad(t, addr, before, 4, 16, 2*rt+time.Second)
	load.waitFor(t, "SUCCESS before the crash", 3*time.Second, func(a faultAnswer) bool { return a.resp.Status == "SUCCESS" })
	time.Sleep(300 * time.Millisecond)

	if err := rs.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	down := waitPingSays(t, addr, pongDown, 3*time.Second)
	t.Logf("PING said redis down %s after the crash", down.Round(time.Millisecond))
	time.Sleep(time.Until(killed.Add(1500 * time.Millisecond)))

	restarting := time.Now()
	if err := rs.Restart(); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	// The data died with Redis: a fresh product for the rest of the sale.
	after := initProduct(t, rs.Addr, 1_000_000)
	load.setProduct(after)
	load.waitFor(t, "SUCCESS after the restart", 5*time.Second, func(a faultAnswer) bool {
		return a.product == after && a.resp.Status == "SUCCESS"
	})
	t.Logf("selling again %s after the restart", time.Since(restarted).Round(time.Millisecond))
	up := waitPingSays(t, addr, pongUp, 5*time.Second)
	t.Logf("PING said redis up %s later", up.Round(time.Millisecond))
	time.Sleep(300 * time.Millisecond)
	answers := load.finish()

	checkAnswered(t, answers, 2*rt+schedSlack)
	outage := 0
	var outageSlowest time.Duration
	for _, a := range answers {
		switch {
		case !a.answered():
		case !a.sent.Before(killed) && a.recv.Before(restarting):
			outage++
			outageSlowest = max(outageSlowest, a.latency())
			if a.resp.Status != "ERROR" || a.resp.Code != engine.CodeUnavailable {
				t.Errorf("while Redis was down: %s, want ERROR UNAVAILABLE", a)
			}
		case a.resp.Status == "SUCCESS", a.resp.Code == engine.CodeUnavailable:
		case a.resp.Code == engine.CodeUnknownProduct && a.product == before && !a.recv.Before(restarting):
			// The old product died with Redis's memory.
		default:
			t.Errorf("unexpected answer %s", a)
		}
	}
	if outage == 0 {
		t.Error("no purchase was attempted while Redis was down")
	}
	t.Logf("%d attempts while Redis was down, slowest answer %s", outage, outageSlowest.Round(time.Millisecond))
	if checkBooks(t, rs.Addr, after, answers, false) == 0 {
		t.Error("no SUCCESS after the restart")
	}
}

// TestFaultRedisFrozen: Redis stops answering (SIGSTOP) for 3 s in the
// middle of a sale. Every attempt is answered in bounded time (about the
// request timeout), the server recovers by itself after SIGCONT, and the
// purchases Redis ran late are among those answered "outcome unknown".
func TestFaultRedisFrozen(t *testing.T) {
	rs := redistest.StartTestServer(t)
	const rt = 500 * time.Millisecond
	addr := startServe(t, rs.Addr, "--request-timeout", "500ms", "--redis-timeout", "500ms", "--log-level", "fatal")
	t.Cleanup(func() { rs.Signal(syscall.SIGCONT) })
	p := initProduct(t, rs.Addr, 1_000_000)

	load := startFaultLoad(t, addr, p, 4, 16, 2*rt+time.Second)
	load.waitFor(t, "SUCCESS before the freeze", 3*time.Second, func(a faultAnswer) bool { return a.resp.Status == "SUCCESS" })
	time.Sleep(300 * time.Millisecond)

	if err := rs.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozen := time.Now()
	time.Sleep(3 * time.Second)
	thawing := time.Now()
	if err := rs.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	load.waitFor(t, "SUCCESS after SIGCONT", 5*time.Second, func(a faultAnswer) bool {
		return a.resp.Status == "SUCCESS" && a.sent.After(thawing)
	})
	t.Logf("selling again %s after SIGCONT", time.Since(thawing).Round(time.Millisecond))
	time.Sleep(300 * time.Millisecond)
	answers := load.finish()

	checkAnswered(t, answers, 2*rt+schedSlack)
	during := 0
	for _, a := range answers {
		if !a.answered() {
			continue
		}
		if a.sent.After(frozen) && a.recv.Before(thawing) {
			during++
			if a.resp.Status != "ERROR" || a.resp.Code != engine.CodeUnavailable {
				t.Errorf("while Redis was frozen: %s, want ERROR UNAVAILABLE", a)
			}
		} else if a.resp.Status != "SUCCESS" && a.resp.Code != engine.CodeUnavailable {
			t.Errorf("unexpected answer %s", a)
		}
	}
	if during == 0 {
		t.Error("no purchase was answered while Redis was frozen")
	}
	// Scripts queued in the frozen Redis run after SIGCONT: let them land.
	time.Sleep(200 * time.Millisecond)
	checkBooks(t, rs.Addr, p, answers, false)
}

// TestFaultScriptFlushMidLoad: SCRIPT FLUSH every 50 ms under concurrent
// load is invisible to buyers: no ERROR at all, and exact books.
func TestFaultScriptFlushMidLoad(t *testing.T) {
	raddr := redistest.Addr(t)
	redistest.SkipUnlessReal(t, "SCRIPT FLUSH needs a real Redis")
	addr := startServe(t, raddr)
	p := initProduct(t, raddr, 1_000_000)
	flusher := redistest.Conn(t, raddr)

	load := startFaultLoad(t, addr, p, 8, 16, 5*time.Second)
	flushes := 0
	for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); flushes++ {
		if _, err := redis.DoWithTimeout(flusher, 2*time.Second, "SCRIPT", "FLUSH"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	answers := load.finish()
	t.Logf("%d SCRIPT FLUSH during the load", flushes)

	checkAnswered(t, answers, 5*time.Second)
	for i, a := range answers {
		if a.answered() && a.resp.Status != "SUCCESS" {
			t.Errorf("attempt %d: %s, want SUCCESS", i, a)
		}
	}
	checkBooks(t, raddr, p, answers, true)
}

// TestFaultAOFKill: with appendfsync always, a Redis crash loses no sale
// that a buyer was told about: after the restart (which reloads the AOF)
// every acknowledged order is in the stream.
func TestFaultAOFKill(t *testing.T) {
	rs := redistest.StartTestServer(t, "--appendonly", "yes", "--appendfsync", "always")
	addr := startServe(t, rs.Addr, "--request-timeout", "1s", "--redis-timeout", "1s", "--log-level", "fatal")
	p := initProduct(t, rs.Addr, 1_000_000)

	load := startFaultLoad(t, addr, p, 4, 16, 3*time.Second)
	load.waitFor(t, "SUCCESS before the crash", 3*time.Second, func(a faultAnswer) bool { return a.resp.Status == "SUCCESS" })
	time.Sleep(300 * time.Millisecond)
	if err := rs.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	time.Sleep(200 * time.Millisecond)
	if err := rs.Restart(); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	load.waitFor(t, "SUCCESS after the restart", 5*time.Second, func(a faultAnswer) bool {
		return a.resp.Status == "SUCCESS" && a.sent.After(restarted)
	})
	time.Sleep(200 * time.Millisecond)
	answers := load.finish()

	checkAnswered(t, answers, 3*time.Second)
	acked := 0
	for _, a := range answers {
		if a.answered() && a.resp.Status == "SUCCESS" && a.recv.Before(killed) {
			acked++
		}
		if a.answered() && a.resp.Status != "SUCCESS" && a.resp.Code != engine.CodeUnavailable {
			t.Errorf("unexpected answer %s", a)
		}
	}
	if acked == 0 {
		t.Fatal("no SUCCESS before the crash")
	}
	t.Logf("%d SUCCESS acknowledged before the crash", acked)
	checkBooks(t, rs.Addr, p, answers, false)
}

// waitReplicas waits until the master at addr has n replicas online.
func waitReplicas(t *testing.T, addr string, n int) {
	t.Helper()
	rc := redistest.Conn(t, addr)
	want := fmt.Sprintf("connected_slaves:%d\r\n", n)
	var info string
	for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(50 * time.Millisecond) {
		var err error
		info, err = redis.String(redis.DoWithTimeout(rc, 2*time.Second, "INFO", "replication"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(info, want) || strings.Count(info, "state=online") != n {
			continue
		}
		// Online is not enough: a replica fresh from a full sync gets the
		// stream only after its first ACK, up to a second later. Until
		// then WAIT counts it out.
		if _, err := redis.DoWithTimeout(rc, 2*time.Second, "SET", "redistest:probe", time.Now().UnixNano()); err != nil {
			t.Fatal(err)
		}
		if acked, err := redis.Int(redis.DoWithTimeout(rc, 2*time.Second, "WAIT", n, 200)); err == nil && acked >= n {
			return
		}
	}
	t.Fatalf("master %s: no %d replica(s) online and acknowledging writes within 10s:\n%s", addr, n, info)
}

var redisVersionRE = regexp.MustCompile(`v=(\d+)\.(\d+)`)

// TestFaultReplicaDurability: with --durability replicas:1 a sale is
// acknowledged only once a replica has it. With the replica gone, buyers get
// NOT_DURABLE in bounded time; the sale is recorded, a retry with its
// request_id never sells twice, and once the replica is back the retry
// replays the SUCCESS with the original order id.
func TestFaultReplicaDurability(t *testing.T) {
	master := redistest.StartTestServer(t, "--repl-diskless-sync-delay", "0")
	replica := redistest.StartTestServer(t, "--replicaof", "127.0.0.1", master.Port())
	waitReplicas(t, master.Addr, 1)
	addr := startServe(t, master.Addr, "--durability", "replicas:1", "--durability-timeout", "300ms")
	p := initProduct(t, master.Addr, 100)
	cl := mustFaultDial(t, addr)
	buy := func(user, rid string) (wire.Response, time.Duration) {
		t.Helper()
		r, took, err := cl.purchase(wire.PurchaseRequest{ProductID: p, UserID: user, RequestID: rid}, 5*time.Second)
		if err != nil {
			t.Fatalf("%s/%s: %v", user, rid, err)
		}
		return r, took
	}

	var first wire.Response
	for i := range 5 {
		r, _ := buy(fmt.Sprint("ann", i), fmt.Sprint("rid-", i))
		if r.Status != "SUCCESS" {
			t.Fatalf("purchase %d with the replica up: %+v", i, r)
		}
		if i == 0 {
			first = r
		}
	}
	if r, _ := buy("ann0", "rid-0"); r != first {
		t.Errorf("retry of a durable sale: %+v, want %+v", r, first)
	}

	if err := replica.Kill(); err != nil {
		t.Fatal(err)
	}
	r, took := buy("bob", "rid-bob")
	if r.Status != "ERROR" || r.Code != engine.CodeNotDurable || !strings.Contains(r.Error, "request_id") {
		t.Fatalf("with the replica dead: %+v, want ERROR NOT_DURABLE", r)
	}
	if took > time.Second {
		t.Errorf("NOT_DURABLE took %s, want about the 300ms durability timeout", took)
	}
	t.Logf("NOT_DURABLE after %s", took.Round(time.Millisecond))
	var bobOrder string
	for oid, user := range streamSales(t, master.Addr, p) {
		if user == "bob" {
			bobOrder = oid
		}
	}
	if bobOrder == "" {
		t.Fatal("the NOT_DURABLE sale is not in the orders stream")
	}
	if sold := faultSold(t, master.Addr, p); sold != 6 {
		t.Errorf("%d units sold, want 6 (5 SUCCESS, 1 NOT_DURABLE)", sold)
	}
	// While no replica has it the retry cannot claim SUCCESS, and it never
	// sells a second unit.
	if r, _ := buy("bob", "rid-bob"); r.Status != "ERROR" || r.Code != engine.CodeNotDurable {
		t.Errorf("retry with the replica still dead: %+v, want NOT_DURABLE again", r)
	}
	if sold := faultSold(t, master.Addr, p); sold != 6 {
		t.Errorf("after the retry: %d units sold, want still 6", sold)
	}

	if err := replica.Restart(); err != nil {
		t.Fatal(err)
	}
	waitReplicas(t, master.Addr, 1)
	r, _ = buy("bob", "rid-bob")
	if r.Status != "SUCCESS" || r.OrderID != bobOrder {
		t.Errorf("retry once the replica is back: %+v, want the SUCCESS of order %s", r, bobOrder)
	}
	if r, _ := buy("cat", "rid-cat"); r.Status != "SUCCESS" {
		t.Errorf("new purchase once the replica is back: %+v", r)
	}
	if sold := faultSold(t, master.Addr, p); sold != 7 {
		t.Errorf("%d units sold, want 7", sold)
	}
	verifyOK(t, master.Addr, p)

	// --durability aof needs WAITAOF (Redis 7.2).
	out, err := exec.Command(redistest.ServerBin(t), "--version").Output()
	m := redisVersionRE.FindSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("redis-server --version: %q %v", out, err)
	}
	major, _ := strconv.Atoi(string(m[1]))
	minor, _ := strconv.Atoi(string(m[2]))
	if major < 7 || major == 7 && minor < 2 {
		out, err := runApp(t, "serve", "--listen", "127.0.0.1:0", "--redis-addr", master.Addr, "--durability", "aof", "--log-level", "error")
		if err == nil || !strings.Contains(err.Error(), "7.2") || ExitCode(err) != 1 {
			t.Errorf("serve --durability aof on Redis %s.%s: %v (exit %d), want a start-up error naming 7.2\n%s", m[1], m[2], err, ExitCode(err), out)
		}
		return
	}
	aof := redistest.StartTestServer(t, "--appendonly", "yes")
	addr = startServe(t, aof.Addr, "--durability", "aof", "--durability-timeout", "1s")
	p = initProduct(t, aof.Addr, 10)
	cl = mustFaultDial(t, addr)
	if r, _ := buy("dan", "rid-dan"); r.Status != "SUCCESS" {
		t.Errorf("--durability aof on Redis %s.%s: %+v, want SUCCESS", m[1], m[2], r)
	}
	verifyOK(t, aof.Addr, p)
}

// ---------------------------------------------------------------------------
// Client faults.

// readEnd reads what the server sends until it closes, within d, and says
// how the stream ended; a timeout means the server did not close.
func readEnd(c *faultConn, d time.Duration) (frames int, err error) {
	c.nc.SetReadDeadline(time.Now().Add(d))
	for {
		if _, err := c.rd.Next(); err != nil {
			return frames, err
		}
		frames++
	}
}

// closedByServer reports an end of stream the server caused (FIN or RST),
// as opposed to our own deadline.
func closedByServer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// TestFaultSlowClients: clients that stall mid-frame, idle, or never read
// their answers are dropped after their timeout without hurting anyone
// else, and past --max-conns new connections are told BUSY.
func TestFaultSlowClients(t *testing.T) {
	raddr := redistest.Addr(t)
	p := initProduct(t, raddr, 1_000_000)
	var sold atomic.Int64
	buyOn := func(t *testing.T, c *faultConn, user string) {
		t.Helper()
		r, took, err := c.purchase(wire.PurchaseRequest{ProductID: p, UserID: user}, 2*time.Second)
		if err != nil || r.Status != "SUCCESS" {
			t.Fatalf("purchase by %s: %+v %v", user, r, err)
		}
		if took > time.Second {
			t.Errorf("purchase by %s took %s", user, took)
		}
		sold.Add(1)
	}

	t.Run("frame timeout", func(t *testing.T) {
		addr := startServe(t, raddr, "--frame-timeout", "300ms")
		c := mustFaultDial(t, addr)
		c.nc.SetWriteDeadline(time.Now().Add(time.Second))
		header := wire.AppendHeader(nil, wire.TypePurchase, 40)
		if _, err := c.nc.Write(header[:2]); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		n, err := readEnd(c, 3*time.Second)
		took := time.Since(start)
		if !closedByServer(err) || n != 0 {
			t.Fatalf("half a header, then nothing: %d frames, %v; want the server to close", n, err)
		}
		if took < 200*time.Millisecond || took > 2*time.Second {
			t.Errorf("closed after %s, want about the 300ms frame timeout", took)
		}
		buyOn(t, mustFaultDial(t, addr), "frame-other")
	})

	t.Run("idle timeout", func(t *testing.T) {
		addr := startServe(t, raddr, "--idle-timeout", "1s")
		busy := mustFaultDial(t, addr)
		// A frame every 100ms keeps a connection open well past the timeout
		// (ten times the interval, so a loaded machine's late wake-ups and
		// the sweeper's coarse clock cannot make a busy client look idle).
		for i := range 15 {
			if f, err := busy.exchange(wire.AppendFrame(nil, wire.TypePing, nil), 2*time.Second); err != nil || string(f.Payload) != pongUp {
				t.Fatalf("ping %d of an active client: %s %v", i, f.Payload, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		idle := mustFaultDial(t, addr)
		start := time.Now()
		n, err := readEnd(idle, 5*time.Second)
		took := time.Since(start)
		if !closedByServer(err) || n != 0 {
			t.Fatalf("idle client: %d frames, %v; want the server to close", n, err)
		}
		if took < 800*time.Millisecond || took > 3*time.Second {
			t.Errorf("idle client closed after %s, want about the 1s idle timeout", took)
		}
		if n, err := readEnd(busy, 5*time.Second); !closedByServer(err) || n != 0 {
			t.Errorf("the once active client, now idle: %d frames, %v; want closed", n, err)
		}
	})

	t.Run("write timeout", func(t *testing.T) {
		addr := startServe(t, raddr, "--write-timeout", "300ms")
		other := mustFaultDial(t, addr)
		buyOn(t, other, "write-other-0")

		// A small receive buffer so that the answers the client never
		// reads soon fill the connection.
		d := net.Dialer{Timeout: 2 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
			return serr
		}}
		nc, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		deaf := &faultConn{nc: nc, rd: wire.NewReader(nc, wire.DefaultMaxPayload)}
		pings := bytes.Repeat(wire.AppendFrame(nil, wire.TypePing, nil), 2000)
		start := time.Now()
		deaf.nc.SetWriteDeadline(start.Add(5 * time.Second))
		var werr error
		sent := 0
		for werr == nil {
			_, werr = deaf.nc.Write(pings)
			sent += 2000
			if sent%20000 == 0 {
				// Meanwhile, everyone else is served as usual.
				buyOn(t, other, fmt.Sprint("write-other-", sent))
			}
		}
		took := time.Since(start)
		if !closedByServer(werr) {
			t.Fatalf("a client that never reads, after %d pipelined pings in %s: %v; want the server to drop it", sent, took, werr)
		}
		t.Logf("client that never reads dropped after %s and %d pings", took.Round(time.Millisecond), sent)
		if took > 3*time.Second {
			t.Errorf("dropped after %s, want about the 300ms write timeout", took)
		}
		if n, err := readEnd(deaf, 3*time.Second); !closedByServer(err) {
			t.Errorf("reading the dropped connection: %d answers, then %v; want it closed", n, err)
		}
		buyOn(t, other, "write-other-after")
		buyOn(t, mustFaultDial(t, addr), "write-new-after")
	})

	t.Run("max conns", func(t *testing.T) {
		addr := startServe(t, raddr, "--max-conns", "3")
		var conns []*faultConn
		for i := range 3 {
			// An answer proves the server took the connection in. startServe's
			// readiness probe (a dial, then close) holds a place until the
			// server reads its EOF, so a BUSY here is retried for a while.
			for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
				c := mustFaultDial(t, addr)
				f, err := c.exchange(wire.AppendFrame(nil, wire.TypePing, nil), 2*time.Second)
				if err == nil && string(f.Payload) == pongUp {
					conns = append(conns, c)
					break
				}
				c.nc.Close()
				if f.Type != 0x80 || time.Since(start) > 2*time.Second {
					t.Fatalf("connection %d: %s %v", i, f.Payload, err)
				}
			}
		}
		fourth := mustFaultDial(t, addr)
		fourth.nc.SetReadDeadline(time.Now().Add(2 * time.Second))
		f, err := fourth.rd.Next()
		if err != nil || f.Type != 0x80 || string(f.Payload) != `{"status":"ERROR","code":"BUSY","error":"server busy"}` {
			t.Fatalf("4th connection: type 0x%02x %s %v, want a BUSY frame of type 0x80", byte(f.Type), f.Payload, err)
		}
		if n, err := readEnd(fourth, 2*time.Second); !closedByServer(err) || n != 0 {
			t.Errorf("4th connection after BUSY: %d frames, %v; want closed", n, err)
		}
		for i, c := range conns {
			buyOn(t, c, fmt.Sprint("maxconns-", i))
		}
		conns[0].nc.Close()
		// The server notices the close and frees the place.
		for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
			c, err := faultDial(addr)
			if err != nil {
				t.Fatal(err)
			}
			f, err := c.exchange(wire.AppendFrame(nil, wire.TypePing, nil), 2*time.Second)
			if err == nil && string(f.Payload) == pongUp {
				t.Cleanup(func() { c.nc.Close() })
				buyOn(t, c, "maxconns-new")
				break
			}
			c.nc.Close()
			if err == nil && f.Type != 0x80 {
				t.Fatalf("new connection: type 0x%02x %s", byte(f.Type), f.Payload)
			}
			if time.Since(start) > 3*time.Second {
				t.Fatalf("no connection accepted within 3s of one closing: %s %v", f.Payload, err)
			}
		}
		for i, c := range conns[1:] {
			buyOn(t, c, fmt.Sprint("maxconns-again-", i))
		}
	})

	if got := faultSold(t, raddr, p); got != sold.Load() {
		t.Errorf("%d units sold, %d SUCCESS answers", got, sold.Load())
	}
	if n := int64(len(streamSales(t, raddr, p))); n != sold.Load() {
		t.Errorf("%d sales in the stream, %d SUCCESS answers", n, sold.Load())
	}
	verifyOK(t, raddr, p)
}

// TestFaultRateLimits: customers and connections over their rate are told
// RATE_LIMITED with a useful retry_after_ms, and nothing of theirs reaches
// the books.
func TestFaultRateLimits(t *testing.T) {
	raddr := redistest.Addr(t)

	t.Run("per customer", func(t *testing.T) {
		addr := startServe(t, raddr, "--user-rate", "5/s", "--user-burst", "2")
		p := initProduct(t, raddr, 100)
		c := mustFaultDial(t, addr)
		success := 0
		buy := func(user string) wire.Response {
			t.Helper()
			r, _, err := c.purchase(wire.PurchaseRequest{ProductID: p, UserID: user}, 2*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status == "SUCCESS" {
				success++
			}
			return r
		}
		for i := range 2 {
			if r := buy("ann"); r.Status != "SUCCESS" {
				t.Fatalf("ann's attempt %d within the burst: %+v", i+1, r)
			}
		}
		r := buy("ann")
		if r.Status != "RATE_LIMITED" || r.Has&wire.FieldRetryAfter == 0 || r.RetryAfterMS <= 0 || r.RetryAfterMS > 400 {
			t.Fatalf("ann's 3rd immediate attempt: %+v, want RATE_LIMITED with 0 < retry_after_ms <= 400", r)
		}
		if r := buy("bob"); r.Status != "SUCCESS" {
			t.Errorf("bob, while ann is limited: %+v", r)
		}
		time.Sleep(time.Duration(r.RetryAfterMS) * time.Millisecond)
		if r := buy("ann"); r.Status != "SUCCESS" {
			t.Errorf("ann after waiting retry_after_ms: %+v", r)
		}
		if sold := faultSold(t, raddr, p); sold != int64(success) || success != 4 {
			t.Errorf("%d units sold, %d SUCCESS answers; want 4 and 4", sold, success)
		}
		if n := len(streamSales(t, raddr, p)); n != success {
			t.Errorf("%d sales in the stream, %d SUCCESS answers", n, success)
		}
		verifyOK(t, raddr, p)
	})

	t.Run("per connection", func(t *testing.T) {
		addr := startServe(t, raddr, "--conn-rate", "10/s", "--conn-burst", "3")
		p := initProduct(t, raddr, 100)
		c := mustFaultDial(t, addr)
		var frames []byte
		for i := range 10 {
			frames = append(frames, purchaseFrame(p, fmt.Sprint("conn-", i))...)
		}
		c.nc.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := c.nc.Write(frames); err != nil {
			t.Fatal(err)
		}
		var answers []wire.Response
		for i := range 10 {
			f, err := c.rd.Next()
			if err != nil {
				t.Fatalf("answer %d: %v", i, err)
			}
			var r wire.Response
			if err := wire.DecodeResponse(f.Payload, &r); err != nil {
				t.Fatal(err)
			}
			answers = append(answers, r)
		}
		var wait int64
		for i, r := range answers {
			switch {
			case i < 3 && r.Status != "SUCCESS":
				t.Errorf("attempt %d within the burst: %+v", i, r)
			case i >= 3 && (r.Status != "RATE_LIMITED" || r.Has&wire.FieldRetryAfter == 0 || r.RetryAfterMS <= 0 || r.RetryAfterMS > 1000):
				t.Errorf("attempt %d past the burst: %+v, want RATE_LIMITED with retry_after_ms", i, r)
			}
			wait = max(wait, r.RetryAfterMS)
		}
		if sold := faultSold(t, raddr, p); sold != 3 {
			t.Errorf("%d units sold, want 3", sold)
		}
		time.Sleep(time.Duration(wait) * time.Millisecond)
		if r, _, err := c.purchase(wire.PurchaseRequest{ProductID: p, UserID: "conn-later"}, 2*time.Second); err != nil || r.Status != "SUCCESS" {
			t.Errorf("after retry_after_ms: %+v %v", r, err)
		}
		if n := len(streamSales(t, raddr, p)); n != 4 || faultSold(t, raddr, p) != 4 {
			t.Errorf("%d sales in the stream, want 4", n)
		}
		verifyOK(t, raddr, p)
	})
}

// ---------------------------------------------------------------------------
// Shutdown.

// buildFlashsale builds the real binary into a temporary directory. The
// bound is generous: on a fresh machine the build cache is cold and the
// other packages' tests compete for the cores (45 s was once too short).
func buildFlashsale(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build flashsale: %v", err)
	}
	gomod, err := exec.Command(gobin, "env", "GOMOD").Output()
	if err != nil || len(bytes.TrimSpace(gomod)) == 0 {
		t.Fatalf("go env GOMOD: %q %v", gomod, err)
	}
	bin := filepath.Join(t.TempDir(), "flashsale")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, gobin, "build", "-o", bin, ".")
	cmd.Dir = filepath.Dir(string(bytes.TrimSpace(gomod)))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// sigtermConn is one client of TestFaultSIGTERMUnderLoad: it keeps
// inFlight purchases pipelined and records every answer, in order.
type sigtermConn struct {
	users   chan string // users of the requests sent and not yet answered, in order
	sem     chan struct{}
	done    chan struct{} // closed when the reader ends
	answers []faultAnswer
	end     error // how the reader ended
}

// TestFaultSIGTERMUnderLoad: the real binary, told SIGTERM in the middle of
// a pipelined sale, exits 0 within its drain timeout, and every unit sold
// was answered to its buyer: requests it had read were answered, requests
// it had not read were not run.
func TestFaultSIGTERMUnderLoad(t *testing.T) {
	raddr := redistest.Addr(t)
	bin := buildFlashsale(t)
	p := initProduct(t, raddr, 1_000_000)

	addr := freeAddr(t)
	const drain = 3 * time.Second
	cmd := exec.Command(bin, "serve", "--listen", addr, "--log-format", "json", "--log-level", "info",
		"--drain-timeout", drain.String())
	cmd.Env = append(os.Environ(), "REDIS_ADDR="+raddr)
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		if s, err := pingPayload(addr); err == nil && s == pongUp {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("flashsale serve exited at start: %v\n%s", err, stderr.String())
		default:
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("flashsale serve did not answer PING within 10s\n%s", stderr.String())
		}
	}

	const conns, inFlight = 8, 64
	clients := make([]*sigtermConn, conns)
	var total atomic.Int64
	for i := range clients {
		nc, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		sc := &sigtermConn{users: make(chan string, inFlight), sem: make(chan struct{}, inFlight), done: make(chan struct{})}
		clients[i] = sc
		go func() { // reader
			defer close(sc.done)
			rd := wire.NewReader(nc, wire.DefaultMaxPayload)
			for {
				nc.SetReadDeadline(time.Now().Add(10 * time.Second))
				f, err := rd.Next()
				if err != nil {
					sc.end = err
					return
				}
				a := faultAnswer{product: p, user: <-sc.users, recv: time.Now()}
				if derr := wire.DecodeResponse(f.Payload, &a.resp); derr != nil || f.Type != wire.TypePurchaseResponse {
					a.resp = wire.Response{Status: "ERROR", Code: "TEST", Error: fmt.Sprintf("answer of type %v: %s", f.Type, f.Payload)}
				}
				sc.answers = append(sc.answers, a)
				total.Add(1)
				<-sc.sem
			}
		}()
		go func() { // writer: as many requests as the window allows, in one write
			var buf []byte
			for n := 0; ; {
				select {
				case sc.sem <- struct{}{}:
				case <-sc.done:
					return
				}
				buf = buf[:0]
				for more := true; more; {
					user := fmt.Sprintf("sigterm-%d-%d", i, n)
					n++
					sc.users <- user
					buf = append(buf, purchaseFrame(p, user)...)
					select {
					case sc.sem <- struct{}{}:
					default:
						more = false
					}
				}
				nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if _, err := nc.Write(buf); err != nil {
					return // the server is gone
				}
			}
		}()
	}
	for start := time.Now(); total.Load() < 2000 && time.Since(start) < 5*time.Second; {
		time.Sleep(10 * time.Millisecond)
	}
	if total.Load() == 0 {
		t.Fatal("no answer before SIGTERM")
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	termAt := time.Now()
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Errorf("flashsale serve after SIGTERM: %v, want exit 0\n%s", err, stderr.String())
		}
	case <-time.After(drain + 3*time.Second):
		t.Fatalf("flashsale serve still running %s after SIGTERM (drain timeout %s)", drain+3*time.Second, drain)
	}
	t.Logf("exited %s after SIGTERM", time.Since(termAt).Round(time.Millisecond))

	var answers []faultAnswer
	for i, sc := range clients {
		select {
		case <-sc.done:
		case <-time.After(15 * time.Second):
			t.Fatalf("client %d still reading 15s after the server exited", i)
		}
		if !closedByServer(sc.end) {
			t.Errorf("client %d: the stream ended with %v, want the server's close", i, sc.end)
		}
		answers = append(answers, sc.answers...)
	}
	for _, a := range answers {
		if a.resp.Status != "SUCCESS" {
			t.Errorf("unexpected answer %s", a)
		}
	}
	late := 0
	for _, a := range answers {
		if a.recv.After(termAt) {
			late++
		}
	}
	t.Logf("%d answers, %d of them after SIGTERM: %s", len(answers), late, summary(answers))
	checkBooks(t, raddr, p, answers, true)

	// The log is JSON, one object a line, and ends with the stop.
	sc := bufio.NewScanner(strings.NewReader(stderr.String()))
	stopped := false
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Errorf("log line is not JSON: %q", sc.Text())
		}
		stopped = stopped || line["message"] == "flashsale stopped"
	}
	if !stopped {
		t.Errorf("no \"flashsale stopped\" in the log:\n%s", stderr.String())
	}
}
