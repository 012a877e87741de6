package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/flashsale/flashsale/engine"
)

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
		moved := b.pool.target.Load().moved // a new primary ends the backoff
		ctx, cancel := context.WithTimeout(context.Background(), min(b.pool.dialTimeout, laneDialTimeout))
		conn, t, err := b.pool.dial(ctx, nc.dialWith(b.cfg.Dial), redis.DialWriteTimeout(b.pool.timeout))
		cancel()
		if err != nil {
			failAll(carry, errUnsent)
			carry = nil
			l.g.dialFailed(l, err)
			if r, ok := err.(*Refusal); ok {
				b.refused(r) // (logged as its cause)
			} else {
				b.dialLog.Warn().Err(err).Msg("redis: batch connection could not dial")
			}
			select {
			case <-b.stop:
			case <-moved:
				backoff = 10 * time.Millisecond
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 10 * time.Millisecond
		l.g.connected(l)
		carry = l.serve(conn, nc, t.moved, carry)
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

// serve writes batches on conn until Close, until the connection fails,
// or, with sentinels, until the primary moves (moved closes: what is in
// flight fails as outcome unknown, as on a lost connection) or the node
// refuses a call as a replica (once what is in flight is read). It
// returns the calls it took that provably never reached Redis, for the
// next connection.
func (l *lane) serve(conn redis.Conn, nc *countingConn, moved <-chan struct{}, carry []*call) []*call {
	b := l.g.b
	p := l.open(conn, nc, moved)
	defer p.close()
	for {
		// A durable lane waits here for its last wait to end, and calls
		// gather in the queue meanwhile: the next batch takes them all.
		select {
		case <-p.free:
		case <-p.broken:
			return carry
		case <-p.moved:
			return carry
		case <-p.stale:
			p.settle()
			return carry
		case <-b.stop:
			failAll(carry, fmt.Errorf("%w: batcher closed", engine.ErrUnavailable))
			return nil
		}
		bt, ok := p.next(carry)
		carry = nil
		if !ok {
			return nil
		}
		if len(bt.calls) == 0 {
			continue // (next gave the token back)
		}
		if carry, ok = p.send(&bt); !ok {
			return carry
		}
	}
}

// pipe is a lane's connection while the lane serves it: the writer's side
// of its pipeline.
type pipe struct {
	l    *lane
	conn redis.Conn
	nc   *countingConn
	// free holds a token per batch the lane may still have in flight.
	free     chan struct{}
	inflight chan batch // to the reader
	broken   chan struct{}
	moved    <-chan struct{} // the target's: the primary moved away
	// stale is closed by the reader when the node refused a call as a
	// replica (with sentinels): the lane dials the primary again.
	stale chan struct{}
	idle  *time.Timer // when to probe the connection, if idle
}

// open starts serving conn: its reader, and its idle timer.
func (l *lane) open(conn redis.Conn, nc *countingConn, moved <-chan struct{}) *pipe {
	depth := maxInflightBatches
	if l.g.durable {
		depth = 1
	}
	p := &pipe{
		l: l, conn: conn, nc: nc,
		free:     make(chan struct{}, depth),
		inflight: make(chan batch, depth),
		broken:   make(chan struct{}),
		moved:    moved,
		stale:    make(chan struct{}),
	}
	for range depth {
		p.free <- struct{}{}
	}
	l.lastReply.Store(time.Now().UnixNano()) // the dial's handshake just succeeded
	l.inflight.Store(0)
	go l.read(conn, p)
	p.idle = time.NewTimer(l.g.b.cfg.IdleProbe / 2)
	return p
}

// settle waits until the reader has read every batch in flight (it holds
// every token), or found the connection broken. The writer holds no token.
func (p *pipe) settle() {
	for range cap(p.free) {
		select {
		case <-p.free:
		case <-p.broken:
			return
		case <-p.l.g.b.stop:
			return
		}
	}
}

// close stops the idle timer and, once what is in flight is read, the
// reader.
func (p *pipe) close() {
	p.idle.Stop()
	close(p.inflight)
}

// next takes the calls of the next batch, holding a free token: carry, or
// else the first call to come and what is queued behind it, up to
// MaxBatch. With no calls to send (the connection was idle, or the calls
// taken had expired) it gives the token back. It reports false when the
// lane is to stop serving the connection.
func (p *pipe) next(carry []*call) (batch, bool) {
	b := p.l.g.b
	bt := batch{calls: make([]*call, 0, 16)}
	now := time.Now().UnixNano()
	for _, c := range carry {
		bt.addTaken(c, now)
	}
	if len(bt.calls) == 0 {
		first, ok := p.first()
		if first == nil {
			return bt, ok
		}
		now = time.Now().UnixNano()
		bt.add(first, now)
	}
drain:
	for len(bt.calls) < b.cfg.MaxBatch {
		select {
		case c := <-p.l.g.queue:
			bt.add(c, now)
		default:
			break drain
		}
	}
	if len(bt.calls) == 0 {
		p.free <- struct{}{}
	}
	return bt, true
}

// first waits for the first call of a batch. Meanwhile it probes the
// connection when it has been idle, and then returns no call (having
// given the token back). It reports false when the lane is to stop
// serving the connection.
func (p *pipe) first() (*call, bool) {
	l, b := p.l, p.l.g.b
	select {
	case c := <-l.g.queue:
		return c, true
	case <-p.broken:
		return nil, false
	case <-b.stop:
		return nil, false
	case <-p.moved:
		return nil, false
	case <-p.stale:
		p.free <- struct{}{}
		p.settle()
		return nil, false
	case <-p.idle.C:
		// Keep an idle connection known alive (and Redis's idle
		// timeout away); a dead one is dialled again now, before a
		// buyer needs it.
		p.idle.Reset(b.cfg.IdleProbe / 2)
		p.free <- struct{}{}
		if l.inflight.Load() == 0 && l.idleFor() >= b.cfg.IdleProbe/2 {
			if err := l.probe(p.conn); err != nil {
				b.connLost(fmt.Errorf("idle connection dead: %w", err))
				return nil, false
			}
		}
		return nil, true
	}
}

// send writes bt and hands it to the reader. When the write fails it
// reports false, with the calls to carry to the next connection (those
// provably never sent).
func (p *pipe) send(bt *batch) (carry []*call, ok bool) {
	bt.merge()
	if unsent, err := p.l.writeBatch(p.conn, p.nc, bt, p.broken); err != nil {
		if !errors.Is(err, errBroken) {
			p.l.g.b.connLost(err)
		}
		if unsent {
			return bt.calls, false
		}
		// Part of the batch may have left: none of it is certain.
		bt.fail(fmt.Errorf("%w: %w: %w", engine.ErrUnavailable, engine.ErrOutcomeUnknown, err))
		return nil, false
	}
	p.l.inflight.Add(1)
	p.inflight <- *bt // room is certain: a free token was taken for it
	p.idle.Reset(p.l.g.b.cfg.IdleProbe / 2)
	return nil, true
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
		return true, errBroken
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
		return sendScript(conn, c.s, c.args...)
	}
	m := c.s.Merge
	args := m.Args(len(calls), func(i int) []any { return calls[i].args })
	return sendScript(conn, m.Script, args...)
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
