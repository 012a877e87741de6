package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flashsale/flashsale/client"
	"github.com/flashsale/flashsale/wire"
)

// ErrRunCapped fails the requests still unanswered when a run with
// Duration reaches its safety cap.
var ErrRunCapped = errors.New("no answer before the run's time limit (--duration + --timeout)")

// Config is one load run.
type Config struct {
	// Addrs are the servers; connection i goes to Addrs[i % len(Addrs)].
	Addrs      []string
	Product    string
	Requests   int // in all; 0 = unlimited (only with Duration)
	Conns      int
	Pipeline   int           // requests in flight per connection (1 when 0)
	Rate       float64       // open loop: requests per second in all; 0 = closed loop
	Duration   time.Duration // send for this long; 0 = until Requests
	UserPrefix string
	Users      int   // draw user numbers from this many customers; 0 = a new one per request
	Quantity   int64 // units per purchase
	Timeout    time.Duration
	// Options dial each connection: TLS, dial timeout.
	Options client.Options
	// Sign, when set, signs each purchase (a customer token for user).
	Sign func(req *wire.PurchaseRequest, user int64)
	// Timeline keeps a sample of the answers (time, latency, status) for
	// a plot; memory stays bounded by MaxSamples.
	Timeline bool
	// OnReserved, when set, is called with every purchase answered
	// RESERVED, from the connection's reader: it must not block.
	OnReserved func(Reservation)
}

// Reservation is a purchase answered RESERVED, as OnReserved hears it.
type Reservation struct {
	User      int64  // the customer number (user id UserPrefix_User)
	OrderID   string // the reservation's order id
	Quantity  int64
	ExpiresAt int64     // Unix ms, Redis's clock
	At        time.Time // when the answer came, bench's clock
}

// Result is what a load run counted.
type Result struct {
	Duration     time.Duration
	Total        int64                 // requests taken: sent, or failed before
	RateAchieved float64               // requests written per second, first write to last
	Statuses     map[wire.Status]int64 // answers by status; ERROR is counted in Errors
	Units        int64                 // units in SUCCESS answers
	Errors       int64                 // ERROR answers and requests with no answer
	ErrorSet     map[string]int64      // error text → count
	Latency      Latencies
	OrderIDs     []string // the order ids of the SUCCESS answers
	Samples      []Sample // with Config.Timeline, sorted by time
	Interrupted  bool     // the context ended the run before its end
	GaveUp       int      // connections that stopped: their server stayed unreachable for Timeout
}

// Count is how many answers had status s.
func (r *Result) Count(s wire.Status) int64 { return r.Statuses[s] }

// Throughput is requests per second.
func (r *Result) Throughput() float64 {
	if r.Duration <= 0 {
		return 0
	}
	return float64(r.Total) / r.Duration.Seconds()
}

// ErrText names a network error without the addresses that make every
// occurrence unique.
func ErrText(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Op + ": " + op.Err.Error()
	}
	return err.Error()
}

// Generator is one load run, shared by its workers (one per connection).
//
// Closed loop (no --rate): each connection keeps up to Pipeline requests
// outstanding and writes new ones as answers free slots; a request's latency
// runs from when it was written to its answer.
//
// Open loop (--rate R): request k is due at start + k/R, whatever the
// server does. A connection with a free slot takes the next request, waits
// until it is due, and writes it; when every slot of every connection is
// busy the request waits, and its latency still runs from when it was due,
// so a stalled server shows in the latency instead of slowing the load
// (no coordinated omission).
type Generator struct {
	cfg      Config
	enc      *client.PurchaseEncoder
	start    time.Time
	_        [64]byte     // next has a cache line of its own: every writer takes from it
	next     atomic.Int64 // the next request number to take
	_        [56]byte
	limit    int64   // requests in all
	end      int64   // stop sending at this time since start (ns); 0 = none
	interval float64 // ns between due times with --rate; 0 = closed loop
	timeout  int64   // ns, cfg.Timeout

	stopped  atomic.Bool   // no new requests: Ctrl-C, or the safety cap
	stopCh   chan struct{} // closed with stopped
	stopOnce sync.Once
	hardCtx  context.Context // done at the safety cap: sessions fail at once

	hists   []histShard
	workers []*worker
	started atomic.Pointer[time.Time] // set when the run starts
}

func (g *Generator) stop() {
	g.stopOnce.Do(func() {
		g.stopped.Store(true)
		close(g.stopCh)
	})
}

// since is the time since the start in ns, on the monotonic clock.
func (g *Generator) since() int64 { return int64(time.Since(g.start)) }

// claim takes up to n requests for a closed loop; it returns the first
// number and how many, 0 when the run is over.
func (g *Generator) claim(n int) (k0 int64, got int) {
	if g.stopped.Load() || (g.end > 0 && g.since() >= g.end) {
		return 0, 0
	}
	k0 = g.next.Add(int64(n)) - int64(n)
	return k0, int(min(int64(n), max(g.limit-k0, 0)))
}

// claimAt takes the next request of an open loop and the time it is due.
func (g *Generator) claimAt() (k, due int64, ok bool) {
	if g.stopped.Load() {
		return 0, 0, false
	}
	k = g.next.Add(1) - 1
	due = int64(float64(k) * g.interval)
	if k >= g.limit || (g.end > 0 && due >= g.end) {
		return 0, 0, false
	}
	return k, due, true
}

// sleepUntil waits on s until the time due since the start; false if the
// run was stopped meanwhile.
func (g *Generator) sleepUntil(due int64, s *sleeper) bool {
	return s.until(g, due, g.stopCh) && !g.stopped.Load()
}

// user is the customer number of request k.
func (w *worker) user(k int64) int64 {
	if w.users > 0 {
		return k % w.users
	}
	return k
}

// Done is how many requests have an outcome so far, for a progress line.
func (g *Generator) Done() int64 {
	var n int64
	for _, w := range g.workers {
		n += w.done.Load()
	}
	return n
}

// New prepares the run of cfg's load.
func New(cfg Config) *Generator {
	cfg.Pipeline = max(cfg.Pipeline, 1)
	cfg.Conns = max(cfg.Conns, 1)
	g := &Generator{
		cfg:     cfg,
		enc:     client.NewPurchaseEncoder(cfg.Product, cfg.UserPrefix, cfg.Quantity, cfg.Sign),
		limit:   int64(cfg.Requests),
		end:     int64(cfg.Duration),
		timeout: int64(cfg.Timeout),
		stopCh:  make(chan struct{}),
		hists:   make([]histShard, min(cfg.Conns, maxHistograms)),
		workers: make([]*worker, cfg.Conns),
	}
	if g.limit <= 0 {
		g.limit = math.MaxInt64
	}
	if cfg.Rate > 0 {
		g.interval = 1e9 / cfg.Rate
	}
	for i := range g.hists {
		g.hists[i].h = newHistogram()
	}
	for i := range g.workers {
		g.workers[i] = newWorker(g, &g.hists[i%len(g.hists)], cfg.Addrs[i%len(cfg.Addrs)])
	}
	return g
}

// Elapsed is the time since the run started.
func (g *Generator) Elapsed() time.Duration {
	if start := g.started.Load(); start != nil {
		return time.Since(*start)
	}
	return 0
}

// Run runs the load and reports on it. It stops taking new requests when
// ctx is done, and waits (each connection up to Timeout) for the answers
// to those already sent. A Generator runs once.
func (g *Generator) Run(ctx context.Context) *Result {
	cfg := g.cfg
	// runCtx ends dials, hardCtx sessions, at the safety cap.
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	hardCtx, hardStop := context.WithCancel(context.Background())
	defer hardStop()
	g.hardCtx = hardCtx
	defer context.AfterFunc(runCtx, g.stop)()

	var wg sync.WaitGroup
	g.start = time.Now()
	g.started.Store(&g.start)
	if cfg.Duration > 0 {
		// Whatever happens, the run ends: requests stop at --duration and
		// every answer has had --timeout to come back.
		capTimer := time.AfterFunc(cfg.Duration+cfg.Timeout, func() { g.stop(); hardStop(); cancelRun() })
		defer capTimer.Stop()
	}
	for _, w := range g.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(runCtx)
		}()
	}
	wg.Wait()
	res := g.result(time.Since(g.start))
	res.Interrupted = ctx.Err() != nil
	return res
}

func (g *Generator) result(elapsed time.Duration) *Result {
	res := &Result{
		Duration: elapsed,
		Statuses: map[wire.Status]int64{},
		ErrorSet: map[string]int64{},
	}
	var sent int64
	first, last := int64(math.MaxInt64), int64(0)
	for _, w := range g.workers {
		res.Total += w.total
		res.Units += w.units
		sent += w.sent
		if w.sent > 0 {
			first, last = min(first, w.firstSend), max(last, w.lastSend)
		}
		for i, n := range w.statuses {
			if n > 0 {
				res.Statuses[wire.Status(i)] += n
			}
		}
		for msg, n := range w.errors {
			res.Errors += n
			res.ErrorSet[msg] += n
		}
		res.OrderIDs = append(res.OrderIDs, w.orderIDs...)
		if w.gaveUp {
			res.GaveUp++
		}
	}
	if sent > 1 && last > first {
		res.RateAchieved = float64(sent-1) / time.Duration(last-first).Seconds()
	}
	res.Latency = summarise(mergeHistograms(g.hists))
	if g.cfg.Timeline {
		res.Samples = mergeSamples(g.workers)
	}
	return res
}

// redialPause separates the dials of a connection whose server refuses
// them.
const redialPause = 10 * time.Millisecond

// pauser is the worker's sleeper for pauses (its open loop's, if any).
func (w *worker) pauser() *sleeper {
	if w.sleep == nil {
		w.sleep = newSleeper(false)
	}
	return w.sleep
}

// latencyBatch is how many latencies a worker keeps before it records them
// in its histogram.
const latencyBatch = 256

// worker drives one connection, reconnecting after a failure. Its writer
// (the worker's goroutine) and its reader (one goroutine per connection)
// share only the session's ring of send times.
type worker struct {
	g    *Generator
	addr string
	hist *histShard
	ring []slot // the outstanding requests

	// The writer's.
	enc        *client.PurchaseEncoder
	users      int64  // Config.Users
	stage      []slot // the batch being written
	wbuf       []byte
	sleep      *sleeper // the open loop's, or for pauses; nil until needed
	pending    int64    // an open loop's request taken but not yet due
	pendingDue int64
	hasPending bool
	total      int64 // requests taken: sent, or failed before
	gaveUp     bool  // its server stayed unreachable for a timeout
	sent       int64
	firstSend  int64
	lastSend   int64
	errors     map[string]int64 // the reader's while a session runs

	_    [64]byte // keep the reader's counters off the writer's cache line
	done atomic.Int64

	// The reader's.
	units    int64
	statuses []int64 // by wire.Status
	lat      []int64 // µs, not yet in the histogram
	resp     wire.Response
	timeline bool // Config.Timeline
	orderIDs []string
	samples  sampler
}

func newWorker(g *Generator, h *histShard, addr string) *worker {
	w := &worker{
		g:        g,
		addr:     addr,
		hist:     h,
		enc:      g.enc,
		users:    int64(g.cfg.Users),
		timeline: g.cfg.Timeline,
		statuses: make([]int64, len(wire.Statuses())),
		ring:     make([]slot, g.cfg.Pipeline),
		stage:    make([]slot, 0, g.cfg.Pipeline),
		lat:      make([]int64, 0, latencyBatch),
	}
	if g.interval > 0 {
		w.sleep = newSleeper(true)
	}
	return w
}

// count counts n requests that failed with msg.
func (w *worker) count(msg string, n int64) {
	if n <= 0 {
		return
	}
	if w.errors == nil {
		w.errors = map[string]int64{}
	}
	w.errors[msg] += n
}

// run takes requests until the run is over, connecting as needed. The
// first request of a connection is taken before it is dialled, so a server
// that refuses connections costs one error per request.
func (w *worker) run(ctx context.Context) {
	g := w.g
	defer w.flushLatencies()
	defer func() {
		if w.sleep != nil {
			w.sleep.close()
		}
	}()
	var unreachableSince int64 // ns since the start; 0 while the server answers dials
	for {
		var k, due int64
		if g.interval > 0 {
			ok := true
			if w.hasPending {
				// Left over from a connection that failed.
				k, due, w.hasPending = w.pending, w.pendingDue, false
			} else {
				k, due, ok = g.claimAt()
			}
			if !ok || !g.sleepUntil(due, w.sleep) {
				return
			}
		} else {
			var n int
			if k, n = g.claim(1); n == 0 {
				return
			}
		}
		st, err := client.DialStream(ctx, w.addr, g.cfg.Options)
		if err != nil {
			w.total++
			w.count(ErrText(err), 1)
			w.done.Add(1)
			// A server that stays unreachable for a timeout is gone: this
			// connection gives up rather than spend the run's requests on
			// failed dials. Until then it retries, a little apart.
			if unreachableSince == 0 {
				unreachableSince = g.since()
			} else if g.since()-unreachableSince >= g.timeout {
				w.gaveUp = true
				return
			}
			if !g.sleepUntil(g.since()+int64(redialPause), w.pauser()) {
				return
			}
			continue
		}
		unreachableSince = 0
		failed := w.session(st, k, due)
		st.Close()
		if !failed {
			return
		}
	}
}

// session is one connection's life. Requests outstanding on it are the
// ring entries [head, tail).
type session struct {
	w  *worker
	st *client.Stream

	mu            sync.Mutex
	head, tail    int
	err           error // the first failure; the connection is closed
	writerDone    bool  // no more requests will be written
	writerWaiting bool  // the writer waits for a free slot on space
	readerWaiting bool  // the reader waits for a request on data
	space, data   chan struct{}
	readerDone    chan struct{}
}

func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// fail ends the session with its first error.
func (s *session) fail(err error) {
	s.mu.Lock()
	first := s.err == nil
	if first {
		s.err = err
	}
	s.mu.Unlock()
	if first {
		s.st.Close()
		wake(s.space)
		wake(s.data)
	}
}

// session writes requests on st, starting with request k (due then, in an
// open loop), until the run is over or the connection fails. Requests left
// without an answer count as errors. It reports whether the connection
// failed.
func (w *worker) session(st *client.Stream, k, due int64) (failed bool) {
	s := &session{
		w: w, st: st,
		space:      make(chan struct{}, 1),
		data:       make(chan struct{}, 1),
		readerDone: make(chan struct{}),
	}
	defer context.AfterFunc(w.g.hardCtx, func() { s.fail(ErrRunCapped) })()
	go s.read()
	w.write(s, k, due)
	s.mu.Lock()
	s.writerDone = true
	s.mu.Unlock()
	wake(s.data)
	<-s.readerDone
	s.mu.Lock() // the safety cap may still fail the session
	err, n := s.err, int64(s.tail-s.head)
	s.mu.Unlock()
	if err == nil {
		return false
	}
	w.count(ErrText(err), n)
	w.done.Add(n)
	return true
}

// free waits for a free slot and returns how many there are: 0 when the
// session failed.
func (s *session) free() int {
	p := len(s.w.ring)
	s.mu.Lock()
	for s.tail-s.head == p && s.err == nil {
		s.writerWaiting = true
		s.mu.Unlock()
		<-s.space
		s.mu.Lock()
	}
	n := p - (s.tail - s.head)
	if s.err != nil {
		n = 0
	}
	s.mu.Unlock()
	return n
}

// push makes the staged requests outstanding; false when the session
// failed (they then count as its errors).
func (s *session) push(slots []slot) bool {
	ring := s.w.ring
	s.mu.Lock()
	if s.err != nil {
		// Counted, not stored: the reader may still be reading the ring.
		s.tail += len(slots)
		s.mu.Unlock()
		return false
	}
	for _, t := range slots {
		ring[s.tail%len(ring)] = t
		s.tail++
	}
	wakeReader := s.readerWaiting
	s.readerWaiting = false
	s.mu.Unlock()
	if wakeReader {
		wake(s.data)
	}
	return true
}

// slot is an outstanding request: when it was sent (closed loop) or due
// (open loop), in ns since the start, and its customer number.
type slot struct{ at, user int64 }

// appendRequest appends the frame of request k, due then, to buf and its
// slot to stage.
func (w *worker) appendRequest(buf []byte, stage []slot, k, due int64) ([]byte, []slot) {
	u := w.user(k)
	return w.enc.AppendFrame(buf, u), append(stage, slot{at: due, user: u})
}

// write is the writer: it fills free slots with requests and writes each
// batch with one Write.
func (w *worker) write(s *session, k, due int64) {
	g := w.g
	buf, stage := w.wbuf[:0], w.stage[:0]
	var deadline int64
	defer func() { w.wbuf = buf[:0] }()
	// The request taken before the connection was dialled.
	buf, stage = w.appendRequest(buf, stage, k, due)
	for {
		free := s.free()
		if free == 0 {
			// Failed: what was staged counts among the session's errors.
			w.total += int64(len(stage))
			s.push(stage)
			return
		}
		over := false
		if g.interval == 0 {
			if len(stage) < free {
				k0, n := g.claim(free - len(stage))
				for i := range n {
					buf, stage = w.appendRequest(buf, stage, k0+int64(i), 0)
				}
				over = n == 0
			}
		} else {
			for len(stage) < free {
				if w.hasPending {
					k, due, w.hasPending = w.pending, w.pendingDue, false
				} else {
					var ok bool
					if k, due, ok = g.claimAt(); !ok {
						over = true
						break
					}
				}
				if due > g.since() {
					if len(stage) > 0 {
						// Send what is due now; this one waits for the next round
						// (or the next connection, if this one fails).
						w.pending, w.pendingDue, w.hasPending = k, due, true
						break
					}
					if !g.sleepUntil(due, w.sleep) {
						over = true
						break
					}
				}
				buf, stage = w.appendRequest(buf, stage, k, due)
			}
		}
		if len(stage) == 0 {
			return
		}
		now := g.since()
		if g.interval == 0 {
			for i := range stage {
				stage[i].at = now
			}
		}
		w.total += int64(len(stage))
		if !s.push(stage) {
			return
		}
		if w.sent == 0 {
			w.firstSend = now
		}
		w.sent += int64(len(stage))
		w.lastSend = now
		if deadline < now+g.timeout {
			// Deadlines move in steps of a quarter timeout, not per write.
			deadline = now + g.timeout + g.timeout/4
			s.st.SetWriteDeadline(g.start.Add(time.Duration(deadline)))
		}
		if err := s.st.Write(buf); err != nil {
			s.fail(err)
			return
		}
		buf, stage = buf[:0], stage[:0]
		if over {
			return
		}
	}
}

// read is the reader: it takes the answers in order and matches each with
// the oldest outstanding request. It takes every answer already buffered
// before it frees their slots, so the writer refills them in one batch.
func (s *session) read() {
	defer close(s.readerDone)
	w, g := s.w, s.w.g
	var (
		deadline int64
		popped   int
		now      int64
	)
	for {
		s.mu.Lock()
		s.head += popped
		wakeWriter := popped > 0 && s.writerWaiting
		if wakeWriter {
			s.writerWaiting = false
		}
		if popped > 0 {
			w.done.Add(int64(popped))
			popped = 0
		}
		for s.head == s.tail && s.err == nil && !s.writerDone {
			s.readerWaiting = true
			s.mu.Unlock()
			if wakeWriter {
				wake(s.space)
				wakeWriter = false
			}
			<-s.data
			now = 0
			s.mu.Lock()
		}
		head, n, failed := s.head, s.tail-s.head, s.err != nil
		s.mu.Unlock()
		if wakeWriter {
			wake(s.space)
		}
		if failed || n == 0 {
			return
		}
		for popped < n {
			if now == 0 {
				now = g.since()
			}
			if deadline < now+g.timeout {
				// A connection fails when no answer comes for a timeout
				// while requests are outstanding. The deadline moves in
				// steps of a quarter timeout, not per answer.
				deadline = now + g.timeout + g.timeout/4
				s.st.SetReadDeadline(g.start.Add(time.Duration(deadline)))
			}
			f, err := s.st.Next()
			now = g.since()
			if err == nil {
				sent := w.ring[(head+popped)%len(w.ring)]
				err = w.answer(f, time.Duration(now-sent.at), sent.user)
			}
			if err != nil {
				// This request and those after it count as the session's errors.
				s.mu.Lock()
				s.head += popped
				s.mu.Unlock()
				w.done.Add(int64(popped))
				s.fail(err)
				return
			}
			popped++
			if s.st.Buffered() == 0 {
				break
			}
		}
	}
}

// answer counts one answer that took lat.
func (w *worker) answer(f wire.Frame, lat time.Duration, user int64) error {
	if f.Type != wire.TypePurchaseResponse {
		return fmt.Errorf("answer of type %s", f.Type)
	}
	a, ok := client.ScanAnswer(f.Payload)
	s, known := statusOf(a.Status)
	if !ok || !known || s == wire.StatusError {
		r := &w.resp
		if err := wire.DecodeResponse(f.Payload, r); err != nil {
			return err
		}
		s, known = wire.ParseStatus(r.Status)
		if !known || s == wire.StatusError {
			w.recordLatency(lat, wire.StatusError)
			w.count(strings.TrimSpace(r.Status+" "+r.Code+": "+r.Error), 1)
			return nil
		}
		a = client.Answer{Quantity: r.Quantity}
		if r.OrderID != "" {
			a.OrderID = []byte(r.OrderID)
		}
	}
	w.recordLatency(lat, s)
	switch {
	case s == wire.StatusSuccess:
		w.units += a.Quantity
		if len(a.OrderID) > 0 {
			w.orderIDs = append(w.orderIDs, string(a.OrderID))
		}
	case s == wire.StatusReserved && w.g.cfg.OnReserved != nil:
		if err := w.reserved(f.Payload, user); err != nil {
			return err
		}
	}
	w.statuses[s]++
	return nil
}

// reserved hands a RESERVED answer of customer user to OnReserved. It
// decodes the whole answer (expires_at is not among what ScanAnswer
// keeps): an allocation per reservation, and there are no more
// reservations than units.
func (w *worker) reserved(payload []byte, user int64) error {
	r := &w.resp
	if err := wire.DecodeResponse(payload, r); err != nil {
		return err
	}
	w.g.cfg.OnReserved(Reservation{User: user, OrderID: r.OrderID, Quantity: max(r.Quantity, 1), ExpiresAt: r.ExpiresAt, At: time.Now()})
	return nil
}

// statusNames are the wire strings of the statuses, by Status.
var statusNames = func() []string {
	all := wire.Statuses()
	names := make([]string, len(all))
	for i, s := range all {
		names[i] = s.String()
	}
	return names
}()

// statusOf is the status named b, without allocating.
func statusOf(b []byte) (wire.Status, bool) {
	for s, name := range statusNames {
		if string(b) == name {
			return wire.Status(s), true
		}
	}
	return 0, false
}

func (w *worker) recordLatency(d time.Duration, s wire.Status) {
	us := latencyUS(d)
	if w.timeline {
		w.samples.add(Sample{At: time.Duration(w.g.since()), LatencyUS: us, Status: s})
	}
	w.lat = append(w.lat, us)
	if len(w.lat) == cap(w.lat) {
		w.flushLatencies()
	}
}

func (w *worker) flushLatencies() {
	w.hist.record(w.lat)
	w.lat = w.lat[:0]
}
