package transport

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/defaults"
)

// Batcher is a Redis that coalesces the scripts of every connection into
// pipelined batches on a few dedicated connections to one Redis node. Each
// connection (a lane) has a writer, which takes whatever is queued (up to
// MaxBatch), sends it and flushes at once — there is no timer, so a lone
// request is not delayed — and a reader, which matches the replies to their
// callers in order. While Redis works on one batch the next one is already
// being written, so a handful of connections carry the whole load.
//
// Lanes come in groups, each with its own queue: with a Durability set,
// scripts that may write go to durable lanes, where each batch is followed
// by WAIT (or WAITAOF) on the same connection (the wait covers that
// client's writes) and a lane has one batch in flight at a time, because
// Redis executes nothing a client sends behind a blocked WAIT; read-only
// scripts go to plain lanes and never queue behind a wait. Without
// durability there is one group of plain lanes, pipelining up to
// maxInflightBatches batches each.
//
// Every call has a deadline (its context's, or the pool's timeout; a
// server's request deadline for EvalAsync): a call still queued at its
// deadline fails as not run; the reader waits for a sent call's reply no
// longer than its deadline, then fails it, and everything behind it on the
// connection, as outcome unknown and drops the connection.
//
// A failure touches only the calls it belongs to: an error reply fails its
// own call, NOSCRIPT sends that call through the pool (which reloads the
// script), and a broken connection fails the calls it had sent — as
// "outcome unknown" — while the lane dials again. Calls that provably never
// reached Redis (see writeBatch) are carried to the next connection instead.
// Redis is "down" for a group only when none of its lanes has a connection
// and a dial has failed: then queued calls are refused at once. One lane
// that cannot dial while another serves refuses nothing.
//
// Calls of a script that declares a merge form (engine.Script.Merge) are
// merged as a batch is formed: the calls of one batch whose shared keys and
// arguments are equal (for purchases: of one product) go as one call of
// the merged script, up to the form's Max at a time, and its array reply
// is split back to them in order. Merging takes only what is already
// queued, like batching, so it delays nothing. A merged call fails or
// succeeds as one: an error reply, NOSCRIPT (each call is then retried
// alone through the pool) or a lost connection reaches each of its calls.
//
// Ping, Scan and Subscribe go to the pool. One Batcher serves one Redis
// node; a cluster client keeps one per master.
type Batcher struct {
	pool   *Pool
	cfg    BatcherConfig
	plain  *group // read-only scripts, and every script without durability
	writes *group // scripts that may write: durable when a Durability is set
	stop   chan struct{}
	wg     sync.WaitGroup
	calls  sync.Pool
	// merges and retries are cfg.Observer as a MergeObserver and as a
	// RetryObserver, or nil.
	merges  MergeObserver
	retries RetryObserver
}

// BatcherConfig sizes a Batcher. Zero fields take the defaults.
type BatcherConfig struct {
	// Conns is the number of dedicated pipelined connections (with
	// durability: of durable connections; one more serves read-only
	// scripts).
	Conns int
	// MaxBatch caps the scripts sent in one flush.
	MaxBatch int
	// Queue bounds the calls waiting for a connection. Past it EvalAsync
	// fails at once with engine.ErrUnavailable (nothing ran), and Eval
	// waits for room until its context ends.
	Queue int
	// IdleProbe: a connection that has read no reply for this long is
	// PINGed before it carries a batch, and PINGed every IdleProbe/2 while
	// idle (default DefaultIdleProbe). Keep it below Redis's `timeout`
	// (whole seconds, 1 at the least) and any idle cut-off on the way.
	IdleProbe time.Duration
	// Dial opens the batch connections (nil: the pool's).
	Dial DialFunc
	// Observer, if set, hears of every batch read back (for metrics);
	// if it is a MergeObserver, of every purchase call, and if it is a
	// RetryObserver, of every call sent again after NOSCRIPT.
	Observer Observer
}

// Observer hears what the batcher does, for metrics. Its methods run on the
// batcher's goroutines and must not block.
type Observer interface {
	// Batch is called once per batch whose replies were read: how many
	// calls it carried (each call of a merged one counts), and the time
	// from its flush to its last reply.
	Batch(size int, rtt time.Duration)
}

// MergeObserver is an Observer that also hears how much merging happens.
type MergeObserver interface {
	Observer
	// Merged is called once per script call sent of a script with a merged
	// form (engine.Script.Merge: a purchase) whose reply was read: how
	// many calls it carried, 1 for a call that went alone, up to the
	// form's Max for a merged one.
	Merged(calls int)
}

// QueueDepth returns how many calls wait for a connection now.
func (b *Batcher) QueueDepth() int {
	n := len(b.writes.queue)
	if b.plain != b.writes {
		n += len(b.plain.queue)
	}
	return n
}

// Batcher defaults.
const (
	DefaultBatchConns = 2
	DefaultMaxBatch   = 512
	DefaultBatchQueue = 32768
	// DefaultIdleProbe is half of Redis's smallest idle `timeout` (1 s).
	DefaultIdleProbe = 500 * time.Millisecond
	// maxInflightBatches bounds the batches a plain connection has sent
	// and not yet read: the pipeline's depth. Redis runs one script at a
	// time, so a deeper pipeline only makes calls wait inside Redis;
	// waiting here instead, they join the next batch and merge into
	// fewer, larger script calls. Measured with bench -c 100 on one
	// product (success heavy): at -P 1, depth 2 sells about twice what
	// depth 64 did at half the Redis CPU per sale (16 against 34 µs);
	// at -P 16 slightly more, at 11 against 13 µs.
	maxInflightBatches = 2
	// waitSlack is how much longer than its own timeout the reader waits
	// for a WAIT's reply (the network, and Redis's 100 ms timer wheel for
	// blocked clients).
	waitSlack = 200 * time.Millisecond
)

var _ engine.AsyncRedis = (*Batcher)(nil)

// call is one script waiting for its batch.
type call struct {
	s     *engine.Script
	args  []any
	state atomic.Int32 // callQueued → callSent, or callQueued → callAbandoned
	v     any
	err   error
	done  chan struct{} // receives once v and err are set (Eval)
	// cb, for EvalAsync, receives the reply instead of done.
	cb func(any, error)
	// deadline (Unix ns) bounds the whole call: queued, sent, and read.
	deadline int64
}

const (
	callQueued int32 = iota
	callSent         // taken by a lane: the lane finishes it
	callAbandoned
)

// NewBatcher starts a Batcher on the pool's address, durability and
// timeout. Close stops it.
func NewBatcher(pool *Pool, cfg BatcherConfig) *Batcher {
	defaults.Set(&cfg.Conns, DefaultBatchConns)
	defaults.Set(&cfg.MaxBatch, DefaultMaxBatch)
	defaults.Set(&cfg.Queue, DefaultBatchQueue)
	defaults.Set(&cfg.IdleProbe, DefaultIdleProbe)
	if cfg.Dial == nil {
		cfg.Dial = pool.netDial
	}
	b := &Batcher{pool: pool, cfg: cfg, stop: make(chan struct{})}
	b.merges, _ = cfg.Observer.(MergeObserver)
	b.retries, _ = cfg.Observer.(RetryObserver)
	b.calls.New = func() any { return &call{done: make(chan struct{}, 1)} }
	if pool.durability.Enabled() {
		b.writes = b.newGroup(cfg.Conns, true)
		b.plain = b.newGroup(1, false)
	} else {
		b.writes = b.newGroup(cfg.Conns, false)
		b.plain = b.writes
	}
	return b
}

// Close stops the batcher's connections; calls still queued fail. It does
// not close the pool.
func (b *Batcher) Close() error {
	close(b.stop)
	b.wg.Wait()
	b.writes.drain()
	b.plain.drain()
	return nil
}

// Ping implements Redis through the pool.
func (b *Batcher) Ping(ctx context.Context) error { return b.pool.Ping(ctx) }

// Scan implements Redis through the pool.
func (b *Batcher) Scan(ctx context.Context, match string, fn func(string) error) error {
	return b.pool.Scan(ctx, match, fn)
}

// Subscribe implements Redis through the pool.
func (b *Batcher) Subscribe(ctx context.Context, channel string, fn func([]byte)) error {
	return b.pool.Subscribe(ctx, channel, fn)
}

// route is the group that runs s.
func (b *Batcher) route(s *engine.Script) *group {
	if s.ReadOnly {
		return b.plain
	}
	return b.writes
}

// Eval implements Redis: the script joins the next batch. If ctx ends
// first, a call that was never sent fails with engine.ErrUnavailable (it
// did not run); one already sent fails with engine.ErrOutcomeUnknown.
// Without a deadline on ctx the call is bounded by the pool's timeout.
func (b *Batcher) Eval(ctx context.Context, s *engine.Script, keysAndArgs ...any) (any, error) {
	c := b.calls.Get().(*call)
	c.s, c.args = s, keysAndArgs
	c.deadline = time.Now().Add(b.pool.timeout).UnixNano()
	if dl, ok := ctx.Deadline(); ok {
		c.deadline = dl.UnixNano()
	}
	c.state.Store(callQueued)
	select {
	case b.route(s).queue <- c:
	case <-ctx.Done():
		b.calls.Put(c)
		return nil, fmt.Errorf("%w: %w", engine.ErrUnavailable, ctx.Err())
	}
	select {
	case <-c.done:
		v, err := c.v, c.err
		c.s, c.args, c.v, c.err = nil, nil, nil, nil
		b.calls.Put(c)
		return v, err
	case <-ctx.Done():
		// The call stays with the batcher: it is not reused.
		if c.state.CompareAndSwap(callQueued, callAbandoned) {
			return nil, fmt.Errorf("%w: %w", engine.ErrUnavailable, ctx.Err())
		}
		return nil, fmt.Errorf("%w: %w: %w", engine.ErrUnavailable, engine.ErrOutcomeUnknown, ctx.Err())
	}
}

// EvalAsync implements engine.AsyncRedis: the script joins the next batch
// and done gets its reply from the batcher by deadline. A call that cannot
// be queued (the queue is full: it fails at once, the caller does not
// wait), or is still unsent at deadline, fails with engine.ErrUnavailable:
// it did not run. A call sent whose reply has not come by deadline fails
// with engine.ErrOutcomeUnknown.
func (b *Batcher) EvalAsync(deadline time.Time, s *engine.Script, done func(any, error), keysAndArgs ...any) {
	c := &call{s: s, args: keysAndArgs, cb: done, deadline: deadline.UnixNano()}
	select {
	case b.route(s).queue <- c:
	default:
		c.finish(nil, fmt.Errorf("%w: too many requests waiting for Redis", engine.ErrUnavailable))
	}
}

func (c *call) finish(v any, err error) {
	if c.cb != nil {
		c.cb(v, err)
		return
	}
	c.v, c.err = v, err
	c.done <- struct{}{}
}

// Errors the batcher fails calls with.
var (
	// errUnsent: the call never left; it did not run.
	errUnsent = fmt.Errorf("%w: no Redis connection in time", engine.ErrUnavailable)
	// errReplyLate: the call was sent and its reply had not come by its
	// deadline.
	errReplyLate = errors.New("no reply by the request deadline")
)

// group is a set of lanes that share a queue and one up/down state.
type group struct {
	b       *Batcher
	queue   chan *call
	durable bool // a wait follows each batch; one batch in flight per lane

	lanes    int
	mu       sync.Mutex
	up       int           // lanes with a connection
	failing  int           // lanes whose last dial failed
	refusing chan struct{} // non-nil while refuse runs: no lane is up, every lane's last dial failed
}

func (b *Batcher) newGroup(lanes int, durable bool) *group {
	g := &group{b: b, queue: make(chan *call, b.cfg.Queue), durable: durable, lanes: lanes}
	for range lanes {
		l := &lane{g: g}
		b.wg.Go(l.run)
	}
	return g
}

// drain fails every call still queued (after Close).
func (g *group) drain() {
	for {
		select {
		case c := <-g.queue:
			if c.state.CompareAndSwap(callQueued, callSent) {
				c.finish(nil, fmt.Errorf("%w: batcher closed", engine.ErrUnavailable))
			}
		default:
			return
		}
	}
}

// connected notes that lane l has a connection: Redis is up, nothing is
// refused.
func (g *group) connected(l *lane) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.up++
	if l.failing {
		l.failing = false
		g.failing--
	}
	if g.refusing != nil {
		close(g.refusing)
		g.refusing = nil
	}
}

// disconnected notes that a lane lost its connection. It refuses nothing
// yet: the lane dials again at once, and only a failed dial says Redis is
// down.
func (g *group) disconnected() {
	g.mu.Lock()
	g.up--
	g.mu.Unlock()
}

// dialFailed notes that lane l could not connect. When no lane of the
// group is up and every lane's last dial failed, Redis is down: callers
// hear so at once rather than waiting out dials and backoffs. While one
// lane is up, or still dialling, it serves them and nothing is refused.
func (g *group) dialFailed(l *lane) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !l.failing {
		l.failing = true
		g.failing++
	}
	if g.up == 0 && g.failing == g.lanes && g.refusing == nil {
		g.refusing = make(chan struct{})
		go g.refuse(g.refusing)
	}
}

// refuse fails every call that arrives until done closes or the batcher
// stops. The calls did not run.
func (g *group) refuse(done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		case <-g.b.stop:
			return
		case c := <-g.queue:
			if c.state.CompareAndSwap(callQueued, callSent) {
				c.finish(nil, errUnsent)
			}
		}
	}
}

// lane is one connection of a group, dialled again whenever it breaks.
type lane struct {
	g *group
	// lastReply is when the reader last read a reply (Unix ns): the last
	// time Redis was known to hold this connection open.
	lastReply atomic.Int64
	// inflight counts batches written and not yet read to the end. While
	// it is 0 the reader does not touch the connection, so the writer may
	// use it for a PING round trip.
	inflight atomic.Int32
	failing  bool // its last dial failed (guarded by g.mu)
}

// run keeps the lane's connection going until Close.
func (l *lane) run() {
	b := l.g.b
	backoff := 10 * time.Millisecond
	var carry []*call // taken, provably never sent: for the next connection
	for {
		select {
		case <-b.stop:
			failAll(carry, fmt.Errorf("%w: batcher closed", engine.ErrUnavailable))
			return
		default:
		}
		nc := &countingConn{}
		ctx, cancel := context.WithTimeout(context.Background(), min(b.pool.dialTimeout, laneDialTimeout))
		conn, err := b.pool.dial(ctx, nc.dialWith(b.cfg.Dial), redis.DialWriteTimeout(b.pool.timeout))
		cancel()
		if err != nil {
			failAll(carry, errUnsent)
			carry = nil
			l.g.dialFailed(l)
			select {
			case <-b.stop:
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 10 * time.Millisecond
		l.g.connected(l)
		carry = l.serve(conn, nc, carry)
		conn.Close()
		l.g.disconnected()
	}
}

func failAll(calls []*call, err error) {
	for _, c := range calls {
		c.finish(nil, err)
	}
}

// countingConn counts the bytes the kernel accepted on a connection: the
// proof that a batch did or did not leave (see writeBatch). Only the
// lane's writer writes, so the count needs no lock.
type countingConn struct {
	net.Conn
	written int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.written += int64(n)
	return n, err
}

// dialWith returns a dial function that wraps what dial opens in c.
func (c *countingConn) dialWith(dial DialFunc) DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		c.Conn = nc
		return c, nil
	}
}

// batch is what one flush sent: its calls, how they went out, and whether
// a durability wait follows them.
type batch struct {
	calls []*call
	// sends[i] is how many calls the i-th script call sent carries, in
	// order: 1 for a call sent as it is, more for a merged one.
	sends  []int
	wait   bool
	sent   time.Time // when it was flushed
	waitBy int64     // Unix ns: the reader's deadline for the wait's reply
}

// serve writes batches on conn until Close or until the connection fails.
// It returns the calls it took that provably never reached Redis, for the
// next connection.
func (l *lane) serve(conn redis.Conn, nc *countingConn, carry []*call) []*call {
	b, g := l.g.b, l.g
	depth := maxInflightBatches
	if g.durable {
		depth = 1
	}
	// free holds a token per batch the lane may still have in flight.
	free := make(chan struct{}, depth)
	for range depth {
		free <- struct{}{}
	}
	inflight := make(chan batch, depth)
	broken := make(chan struct{})
	l.lastReply.Store(time.Now().UnixNano()) // the dial's handshake just succeeded
	l.inflight.Store(0)
	go l.read(conn, inflight, broken, free)
	defer close(inflight)
	idle := time.NewTimer(b.cfg.IdleProbe / 2)
	defer idle.Stop()
	for {
		// A durable lane waits here for its last wait to end, and calls
		// gather in the queue meanwhile: the next batch takes them all.
		select {
		case <-free:
		case <-broken:
			return carry
		case <-b.stop:
			failAll(carry, fmt.Errorf("%w: batcher closed", engine.ErrUnavailable))
			return nil
		}
		bt := batch{calls: make([]*call, 0, 16)}
		now := time.Now().UnixNano()
		for _, c := range carry {
			bt.addTaken(c, now)
		}
		carry = nil
		if len(bt.calls) == 0 {
			var first *call
			select {
			case first = <-g.queue:
			case <-broken:
				return nil
			case <-b.stop:
				return nil
			case <-idle.C:
				// Keep an idle connection known alive (and Redis's idle
				// timeout away); a dead one is dialled again now, before a
				// buyer needs it.
				idle.Reset(b.cfg.IdleProbe / 2)
				free <- struct{}{}
				if l.inflight.Load() == 0 && l.idleFor() >= b.cfg.IdleProbe/2 && l.probe(conn) != nil {
					return nil
				}
				continue
			}
			now = time.Now().UnixNano()
			bt.add(first, now)
		}
	drain:
		for len(bt.calls) < b.cfg.MaxBatch {
			select {
			case c := <-g.queue:
				bt.add(c, now)
			default:
				break drain
			}
		}
		if len(bt.calls) == 0 {
			free <- struct{}{}
			continue
		}
		bt.merge()
		if unsent, err := l.writeBatch(conn, nc, &bt, broken); err != nil {
			if unsent {
				return bt.calls
			}
			// Part of the batch may have left: none of it is certain.
			bt.fail(fmt.Errorf("%w: %w: %w", engine.ErrUnavailable, engine.ErrOutcomeUnknown, err))
			return nil
		}
		l.inflight.Add(1)
		inflight <- bt // room is certain: a free token was taken for it
		idle.Reset(b.cfg.IdleProbe / 2)
	}
}

func (l *lane) idleFor() time.Duration {
	return time.Duration(time.Now().UnixNano() - l.lastReply.Load())
}

// probeTimeout bounds the PING round trip of a connection known idle.
const probeTimeout = time.Second

// laneDialTimeout bounds a lane's dial. While no lane is up and one is
// still dialling, calls wait in the queue (Redis is not known down yet), so
// this keeps them within a request timeout above it: a Redis that drops
// packets rather than refusing them is declared down after this long.
const laneDialTimeout = time.Second

// probe runs PING on conn, which has nothing in flight, and fails when the
// connection is dead. Only the writer calls it, while inflight is 0.
func (l *lane) probe(conn redis.Conn) error {
	if _, err := redis.DoWithTimeout(conn, probeTimeout, "PING"); err != nil {
		return err
	}
	l.lastReply.Store(time.Now().UnixNano())
	return nil
}

// writeBatch sends bt on conn. A failure reports whether the batch
// provably never reached Redis (unsent): then its calls are carried to a
// fresh connection, for they did not run.
//
// What proves it, and what does not:
//
//   - A write that the kernel accepted proves nothing: when Redis (its
//     `timeout`, a restart) or a NAT has closed the connection, the write
//     still succeeds locally, Redis never runs the script, and the reader
//     then meets EOF or a reset — with no way to tell that from a Redis
//     that ran the script and died before answering. So that failure is
//     "outcome unknown", and the way to avoid it is not to write on a
//     connection that may be dead: a connection with nothing in flight
//     that has read no reply for IdleProbe gets a PING round trip first.
//     A PONG read just now means Redis held the connection open and had
//     just heard from it (which restarts its idle timer), so Redis's
//     `timeout` cannot close it in the moment that follows; a failed PING
//     means the batch was never written.
//   - A connection the reader found broken is never written to.
//   - A write that failed with the kernel having accepted none of the
//     batch's bytes (countingConn) cannot have reached Redis.
func (l *lane) writeBatch(conn redis.Conn, nc *countingConn, bt *batch, broken <-chan struct{}) (unsent bool, err error) {
	b := l.g.b
	select {
	case <-broken:
		return true, errors.New("connection lost")
	default:
	}
	if l.inflight.Load() == 0 && l.idleFor() >= b.cfg.IdleProbe {
		if err := l.probe(conn); err != nil {
			return true, fmt.Errorf("idle connection dead: %w", err)
		}
	}
	before := nc.written
	i := 0
	for _, n := range bt.sends {
		if err = send(conn, bt.calls[i:i+n]); err != nil {
			break
		}
		i += n
	}
	for _, c := range bt.calls {
		bt.wait = bt.wait || !c.s.ReadOnly
	}
	bt.wait = bt.wait && l.g.durable
	if err == nil && bt.wait {
		// The wait ends before the earliest deadline of the batch, and its
		// reply is waited for until that deadline at the latest, so that a
		// NOT_DURABLE answer comes on time.
		now, earliest := time.Now().UnixNano(), bt.earliest()
		timeout := min(b.pool.durability.Timeout, time.Duration(earliest-now)-waitSlack)
		err = b.pool.durability.send(conn, timeout)
		bt.waitBy = min(now+int64(max(timeout, time.Millisecond)+waitSlack), earliest)
	}
	if err == nil {
		err = conn.Flush()
		bt.sent = time.Now()
	}
	if err != nil {
		return nc.written == before, err
	}
	return false, nil
}

// send writes one script call for calls: the call itself if it is alone,
// else one call of their script's merged form.
func send(conn redis.Conn, calls []*call) error {
	c := calls[0]
	if len(calls) == 1 {
		return sendScript(conn, c.s, false, c.args)
	}
	m := c.s.Merge
	args := m.Args(len(calls), func(i int) []any { return calls[i].args })
	return sendScript(conn, m.Script, false, args)
}

// mergeable reports whether c may merge with others: its script has a
// merged form and c has the shape that form describes.
func mergeable(c *call) bool {
	m := c.s.Merge
	return m != nil && m.Script != nil && m.Max > 1 && m.SharedKeys <= m.Keys && m.Stride > 0 &&
		len(c.args) >= m.Keys+m.SharedArgs
}

// mergeKey names what calls must share to merge: their script, and (by a
// hash of them) their shared keys and arguments.
type mergeKey struct {
	s      *engine.Script
	shared uint64
}

func keyOf(c *call) mergeKey {
	m := c.s.Merge
	h := uint64(14695981039346656037) // FNV-1a
	add := func(vs []any) {
		var num [20]byte
		for _, v := range vs {
			var one []byte
			switch v := v.(type) {
			case string:
				for i := 0; i < len(v); i++ {
					h = (h ^ uint64(v[i])) * 1099511628211
				}
			case []byte:
				one = v
			case int64:
				one = strconv.AppendInt(num[:0], v, 10)
			case int:
				one = strconv.AppendInt(num[:0], int64(v), 10)
			default:
				one = []byte(argText(v))
			}
			for _, b := range one {
				h = (h ^ uint64(b)) * 1099511628211
			}
			// A separator no argument's text changes, so that no two
			// lists hash alike by shifting bytes between arguments.
			h = (h ^ 0x100) * 1099511628211
		}
	}
	add(c.args[:m.SharedKeys])
	add(c.args[m.Keys : m.Keys+m.SharedArgs])
	return mergeKey{s: c.s, shared: h}
}

// sameShared reports whether a and b, of one script, have equal shared
// keys and arguments (as Redis receives them: int64(1), 1 and "1" alike).
func sameShared(a, b *call) bool {
	m := a.s.Merge
	eq := func(x, y []any) bool {
		for i := range x {
			if !equalArg(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	return eq(a.args[:m.SharedKeys], b.args[:m.SharedKeys]) &&
		eq(a.args[m.Keys:m.Keys+m.SharedArgs], b.args[m.Keys:m.Keys+m.SharedArgs])
}

// equalArg reports whether Redis receives x and y alike.
func equalArg(x, y any) bool {
	if xs, ok := x.(string); ok {
		if ys, ok := y.(string); ok {
			return xs == ys
		}
	}
	return argText(x) == argText(y)
}

// argText is an argument as Redis receives it.
func argText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case int:
		return strconv.Itoa(v)
	}
	return fmt.Sprint(v)
}

// merge orders bt's calls so that the calls that merge are adjacent, each
// run starting where its first call was, and sets bt.sends.
func (bt *batch) merge() {
	bt.sends = bt.sends[:0]
	mergeables := 0
	for _, c := range bt.calls {
		if mergeable(c) {
			mergeables++
		}
	}
	if mergeables < 2 {
		for range bt.calls {
			bt.sends = append(bt.sends, 1)
		}
		return
	}
	var (
		groups [][]*call
		open   = map[mergeKey]int{} // the group still taking calls of a key
	)
	for _, c := range bt.calls {
		if !mergeable(c) {
			groups = append(groups, []*call{c})
			continue
		}
		k := keyOf(c)
		g, ok := open[k]
		if ok && len(groups[g]) < c.s.Merge.Max && sameShared(groups[g][0], c) {
			groups[g] = append(groups[g], c)
			continue
		}
		if !ok || len(groups[g]) >= c.s.Merge.Max {
			// (A call whose hash met another's keeps a group of its own.)
			open[k] = len(groups)
		}
		groups = append(groups, []*call{c})
	}
	calls := bt.calls[:0]
	for _, g := range groups {
		calls = append(calls, g...)
		bt.sends = append(bt.sends, len(g))
	}
	bt.calls = calls
}

// earliest is the earliest deadline of bt's calls (Unix ns).
func (bt *batch) earliest() int64 {
	e := bt.calls[0].deadline
	for _, c := range bt.calls[1:] {
		e = min(e, c.deadline)
	}
	return e
}

// add takes c into the batch unless its caller gave up first or its
// deadline passed while it waited.
func (bt *batch) add(c *call, now int64) {
	if !c.state.CompareAndSwap(callQueued, callSent) {
		return
	}
	bt.addTaken(c, now)
}

// addTaken is add for a call the lane already holds.
func (bt *batch) addTaken(c *call, now int64) {
	if now > c.deadline {
		c.finish(nil, errUnsent)
		return
	}
	bt.calls = append(bt.calls, c)
}

func (bt batch) fail(err error) { failAll(bt.calls, err) }

// read matches replies to calls, batch by batch. On a broken connection,
// or a reply not in by its call's deadline, it fails what is in flight,
// closes broken and the connection; the writer then stops and the lane
// dials again.
func (l *lane) read(conn redis.Conn, inflight <-chan batch, broken chan<- struct{}, free chan<- struct{}) {
	r := reader{lane: l, conn: conn}
	var lost error
	for bt := range inflight {
		if lost == nil {
			lost = r.batch(bt)
			if lost != nil {
				close(broken)
				conn.Close()
			}
		} else {
			bt.fail(lost)
		}
		l.inflight.Add(-1)
		free <- struct{}{}
	}
}

// reader holds the buffers of a lane's reader.
type reader struct {
	lane    *lane
	conn    redis.Conn
	replies []any
	errs    []error
	by      []int64 // by[i]: the earliest deadline of calls i and after
}

// receive reads one reply, waiting until by (Unix ns) at most. A
// network failure or a reply not in by then is returned as lost.
func (r *reader) receive(by int64) (v any, err error, lost error) {
	d := time.Duration(by - time.Now().UnixNano())
	if d <= 0 {
		return nil, nil, errReplyLate
	}
	v, err = redis.ReceiveWithTimeout(r.conn, d)
	if err != nil && !isReply(err) {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, nil, errReplyLate
		}
		return nil, nil, err
	}
	r.lane.lastReply.Store(time.Now().UnixNano())
	return v, err, nil
}

// batch reads bt's replies and finishes its calls; it returns why the
// connection is lost, if it is.
func (r *reader) batch(bt batch) error {
	b := r.lane.g.b
	n := len(bt.sends)
	r.replies, r.errs = r.replies[:0], r.errs[:0]
	// A reply is waited for no longer than the earliest deadline of its
	// calls and the calls behind them in the batch: they cannot be
	// answered before it. (Later batches hold later calls, whose deadlines
	// are later too when their timeouts are alike, as a server's are.)
	if cap(r.by) < n {
		r.by = make([]int64, n)
	}
	r.by = r.by[:n]
	next, end := int64(math.MaxInt64), len(bt.calls)
	for i := n - 1; i >= 0; i-- {
		for _, c := range bt.calls[end-bt.sends[i] : end] {
			next = min(next, c.deadline)
		}
		r.by[i], end = next, end-bt.sends[i]
	}
	var lost error
	for i := range bt.sends {
		v, err, l := r.receive(r.by[i])
		if l != nil {
			lost = l
			break
		}
		r.replies, r.errs = append(r.replies, v), append(r.errs, err)
	}
	var waitErr error
	if lost == nil && bt.wait {
		w, err, l := r.receive(bt.waitBy)
		switch {
		case l != nil:
			// The scripts ran (their replies are in) but the wait did not
			// answer in time: not durable, and the connection, still
			// blocked in it, is of no further use.
			waitErr, lost = fmt.Errorf("%w: %w", engine.ErrNotDurable, l), l
		case err == nil:
			err = b.pool.durability.check(w)
			fallthrough
		default:
			if err != nil {
				waitErr = fmt.Errorf("%w: %w", engine.ErrNotDurable, err)
			}
		}
	}
	if lost == nil && b.cfg.Observer != nil {
		b.cfg.Observer.Batch(len(bt.calls), time.Since(bt.sent))
		if b.merges != nil {
			first := 0
			for _, k := range bt.sends {
				if bt.calls[first].s.Merge != nil {
					b.merges.Merged(k)
				}
				first += k
			}
		}
	}
	var lostErr error
	if lost != nil {
		lostErr = fmt.Errorf("%w: %w: %w", engine.ErrUnavailable, engine.ErrOutcomeUnknown, lost)
	}
	first := 0
	for i, k := range bt.sends {
		calls := bt.calls[first : first+k]
		first += k
		if i >= len(r.replies) {
			failAll(calls, lostErr)
			continue
		}
		v, err := r.replies[i], r.errs[i]
		var parts []any
		var bad error // the merged call ran, but its reply is not Stride elements per call
		stride := 0
		if err == nil && k > 1 {
			stride = calls[0].s.Merge.Stride
			if parts, bad = redis.Values(v, nil); bad == nil && len(parts) != k*stride {
				bad = fmt.Errorf("%d elements for %d answers of %d", len(parts), k, stride)
			}
		}
		for j, c := range calls {
			if parts != nil && bad == nil {
				v = parts[j*stride : (j+1)*stride : (j+1)*stride]
			}
			switch {
			case bad != nil:
				c.finish(nil, fmt.Errorf("%w: %w: a merged call of %d: unexpected reply: %w",
					engine.ErrUnavailable, engine.ErrOutcomeUnknown, k, bad))
			case isNoScript(err):
				// Redis forgot the script (restart, SCRIPT FLUSH): the pool
				// loads it again and runs this call once more. NOSCRIPT
				// means it did not run, so that cannot sell twice.
				if b.retries != nil {
					b.retries.Retried(RetryNoScript)
				}
				go b.retry(c)
			case err != nil:
				c.finish(nil, classify(err))
			case waitErr != nil && !c.s.ReadOnly:
				c.finish(v, waitErr)
			default:
				c.finish(v, nil)
			}
		}
	}
	clear(r.replies)
	return lostErr
}

func (b *Batcher) retry(c *call) {
	ctx, cancel := context.WithDeadline(context.Background(), time.Unix(0, c.deadline))
	defer cancel()
	c.finish(b.pool.Eval(ctx, c.s, c.args...))
}

// isReply reports whether err is an error reply from Redis (the connection
// is fine) rather than a network failure.
func isReply(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
}
