package server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/wire"
)

// conn serves one client with one goroutine, its reader, which decodes
// frames, queues a slot per request in arrival order and starts its work.
// Answers leave in that order, one writer at a time: the goroutine that
// completes the answer at the head of the queue writes every consecutive
// ready answer in one write that does not wait, when nothing else is
// pending and the socket takes it (see flush); otherwise a writer
// goroutine, which exists only while answers are ready at the head of
// the queue, does. The answers to a burst of frames read together go out
// in one write (see take). An idle connection therefore holds one
// goroutine, its read buffer and nothing else.
type conn struct {
	srv *Server
	nc  net.Conn
	in  *bufio.Reader   // nc's read side, buffered since the sniff
	id  uint64          // conn_id in its logs
	raw syscall.RawConn // nc's socket, for writes that must not wait; nil for TLS
	// try is tryWrite's state, used only by the holder of the writer's role
	// (c.writing): writeSome, c.writeSome bound once with raw (a closure
	// per write was an allocation per answer), writes try.p and records
	// what.
	try struct {
		p         []byte
		n         int
		err       error
		writeSome func(fd uintptr) bool
	}
	stopping atomic.Bool
	// readBy and writeBy are the deadlines (Unix ns, 0 for none) of the
	// read or write under way; sweep enforces them.
	readBy  atomic.Int64
	writeBy atomic.Int64
	limiter bucket // ConnRate, used by the reader only

	// credits holds one token per request in flight: the reader stops at
	// MaxInFlight until answers are written.
	credits chan struct{}

	mu      sync.Mutex
	queue   []*slot // requests in arrival order, answered or not
	spare   []*slot // written slots, for reuse
	writing bool    // someone writes answers (flush, or a writer goroutine)
	// deferred: the reader is handling a frame with more already buffered
	// behind it; answers ready meanwhile are left for it to write with
	// theirs, in one write, when it has handled the last (see take).
	deferred  bool
	readDone  bool  // the reader has queued its last request
	werr      error // the first write failure: later answers are dropped
	drained   chan struct{}
	isDrained bool
}

// slot is one request on a connection; slots are reused.
type slot struct {
	purchased func(engine.Result) // completes a purchase: made once per slot
	typ       wire.Type
	payload   []byte // the request's payload; req and query point into it
	req       wire.PurchaseRequest
	query     wire.QueryRequest
	order     wire.OrderRequest
	join      wire.JoinRequest
	status    wire.StatusRequest
	resp      wire.Response
	ready     bool      // resp is set (guarded by conn.mu)
	arrived   time.Time // when the request was read, for the latency metric
}

// bucket is a GCRA limiter for one connection: the same algorithm the
// purchase script applies per customer.
type bucket struct{ tat time.Time }

// take admits one attempt at now under r, or says how long to wait.
func (b *bucket) take(r engine.Rate, now time.Time) time.Duration {
	if r.Interval <= 0 {
		return 0
	}
	tat := b.tat
	if tat.Before(now) {
		tat = now
	}
	if allowAt := tat.Add(r.Interval - time.Duration(r.Burst)*r.Interval); now.Before(allowAt) {
		return allowAt.Sub(now)
	}
	b.tat = tat.Add(r.Interval)
	return 0
}

// stopReading ends the reader at the next frame that is not already
// buffered; requests already read are still answered.
func (c *conn) stopReading() {
	c.stopping.Store(true)
	c.nc.SetReadDeadline(time.Now())
}

// event starts a log entry of the connection at level: nil, which logs
// nothing, when that level is off. The connection keeps no logger of its
// own: a zerolog context takes 500 bytes, 5 MB at 10,000 connections,
// for entries that are rare.
func (c *conn) event(level zerolog.Level) *zerolog.Event {
	e := c.srv.log.WithLevel(level)
	if e == nil {
		return nil
	}
	return e.Str("remote", c.nc.RemoteAddr().String()).Uint64("conn_id", c.id)
}

// readWithin bounds the read under way to d from now (0: no read).
func (c *conn) readWithin(d time.Duration) {
	if d == 0 {
		c.readBy.Store(0)
		return
	}
	c.readBy.Store(c.srv.now.Load() + int64(d))
}

// expire ends a read or a write that outlived its deadline: a read by a
// deadline in the past (the reader then stops as for any timeout), a write
// by closing the connection.
func (c *conn) expire(now int64) {
	if by := c.readBy.Load(); by != 0 && now > by && c.readBy.CompareAndSwap(by, 0) {
		c.event(zerolog.DebugLevel).Msg("read timed out (idle, or a frame too slow)")
		c.nc.SetReadDeadline(time.Unix(0, 1))
	}
	if by := c.writeBy.Load(); by != 0 && now > by {
		c.event(zerolog.DebugLevel).Msg("write timed out: the client does not read its answers")
		c.nc.Close()
	}
}

func (c *conn) serve() {
	c.srv.cfg.Metrics.ConnOpened(ProtocolTLV)
	defer c.srv.cfg.Metrics.ConnClosed(ProtocolTLV)
	c.credits = make(chan struct{}, c.srv.cfg.MaxInFlight)
	c.drained = make(chan struct{})
	c.read()
	c.undefer() // in case the reader stopped in a burst
	c.mu.Lock()
	c.readDone = true
	c.checkDrained()
	c.mu.Unlock()
	// Every request read is answered (or its answer dropped after a write
	// failure) before the connection closes, so no work outlives it.
	<-c.drained
	c.mu.Lock()
	werr := c.werr
	c.mu.Unlock()
	if werr == nil {
		linger(c.nc)
	} else {
		c.event(zerolog.DebugLevel).Err(werr).Msg("write failed, closing")
		c.nc.Close()
	}
}

// checkDrained closes drained once the reader is done and every request
// has been answered and written. c.mu must be held.
func (c *conn) checkDrained() {
	if c.readDone && len(c.queue) == 0 && !c.writing && !c.isDrained {
		c.isDrained = true
		close(c.drained)
	}
}

// lingerTimeout bounds how long a closing connection waits for its client
// to stop sending.
const lingerTimeout = 500 * time.Millisecond

// linger closes nc after its answers were written without losing them:
// closing a socket that still has unread input makes the kernel send a
// reset, which can destroy answers the client has not read yet. So it
// sends FIN first and discards what the client still sends, for a short
// while.
func linger(nc net.Conn) {
	if cw, ok := nc.(interface{ CloseWrite() error }); ok {
		if cw.CloseWrite() == nil {
			nc.SetReadDeadline(time.Now().Add(lingerTimeout))
			io.Copy(io.Discard, io.LimitReader(nc, 1<<20))
		}
	}
	nc.Close()
}

// readBufferSize is the read buffer of a connection: enough for dozens of
// pipelined requests, small enough for tens of thousands of connections.
const readBufferSize = 2 << 10

// Memory kept between requests (the way nats-server shrinks its buffers):
// a slot's payload buffer, or the reader's, grown past keptBuffer for a
// large frame is dropped once that frame is done, and a connection keeps
// at most keptSlots spare slots while nothing is queued. So an idle
// connection holds its read buffer, at most keptBuffer of frame buffer and
// keptSlots slots of at most keptBuffer each, whatever it carried before.
const (
	keptBuffer = 1 << 10
	keptSlots  = 8
)

// read serves requests until the client closes, a read fails or times
// out, or a shutdown stops it.
func (c *conn) read() {
	// c.in is big enough: the wire reader takes it as its buffer.
	rd := wire.NewReaderSize(c.in, readBufferSize, c.srv.cfg.MaxPayload)
	cfg := &c.srv.cfg
	for {
		// Between frames the idle timeout applies; once a frame has started,
		// all of it must arrive within the frame timeout. A shutdown sets
		// the deadline to now: frames already buffered are still served.
		if rd.Buffered() == 0 {
			// The last frame was copied into its slot: a payload buffer
			// grown for a large frame is not kept while the client idles.
			rd.Shrink(keptBuffer)
			c.readWithin(cfg.IdleTimeout)
			if err := rd.Wait(); err != nil {
				c.readFailed(err)
				return
			}
		}
		if !rd.Complete() {
			c.readWithin(cfg.FrameTimeout)
		}
		f, err := rd.Next()
		c.readWithin(0)
		if err != nil {
			c.readFailed(err)
			return
		}
		// Answers to frames already buffered behind this one go out in the
		// same write as theirs: the last frame of a burst writes them (its
		// own answer, or after handle when its answer is not there yet).
		more := rd.Complete()
		c.handle(f, more)
		if !more {
			c.undefer()
		}
	}
}

// handle queues the request in f and starts its work. It is a frame of its
// own, not inlined, so that the reader parked between frames keeps none of
// its locals on the stack (see serveConn).
//
//go:noinline
func (c *conn) handle(f wire.Frame, more bool) {
	sl := c.take(f.Type, time.Now(), more)
	switch f.Type {
	case wire.TypePurchase:
		// The decoded strings are views of the slot's copy of the payload,
		// which stays put until the slot is written and reused.
		sl.payload = append(sl.payload[:0], f.Payload...)
		if err := wire.DecodePurchase(sl.payload, &sl.req); err != nil {
			c.invalid(sl, err)
		} else if wait := c.limiter.take(c.srv.cfg.ConnRate, time.Now()); wait > 0 {
			c.answer(sl, engine.Result{Status: wire.StatusRateLimited, RetryAfter: wait})
		} else {
			c.purchase(sl)
		}
	case wire.TypeQuery:
		sl.payload = append(sl.payload[:0], f.Payload...)
		if err := wire.DecodeQuery(sl.payload, &sl.query); err != nil {
			c.invalid(sl, err)
		} else {
			go c.queryStock(sl)
		}
	case wire.TypeConfirm, wire.TypeCancel:
		sl.payload = append(sl.payload[:0], f.Payload...)
		if err := wire.DecodeOrder(sl.payload, &sl.order); err != nil {
			c.invalid(sl, err)
		} else {
			go c.settleOrder(sl)
		}
	case wire.TypeJoin:
		sl.payload = append(sl.payload[:0], f.Payload...)
		if err := wire.DecodeJoin(sl.payload, &sl.join); err != nil {
			c.invalid(sl, err)
		} else {
			go c.joinQueue(sl)
		}
	case wire.TypeStatus:
		sl.payload = append(sl.payload[:0], f.Payload...)
		if err := wire.DecodeStatus(sl.payload, &sl.status); err != nil {
			c.invalid(sl, err)
		} else {
			go c.queueStatus(sl)
		}
	case wire.TypePing:
		sl.resp = wire.Response{Status: wire.StatusPong.String(), Redis: "down"}
		if c.srv.redisUp.Load() {
			sl.resp.Redis = "up"
		}
		c.ready(sl)
	default:
		c.answer(sl, engine.Result{Status: wire.StatusError, Code: engine.CodeUnknownType, Message: "unknown message type " + f.Type.String()})
	}
}

// invalid answers a request whose payload does not decode.
func (c *conn) invalid(sl *slot, err error) {
	c.answer(sl, engine.Result{Status: wire.StatusError, Code: engine.CodeInvalidRequest, Message: err.Error()})
}

// take waits for a credit (backpressure at MaxInFlight), then queues a
// slot for a request of type t read at arrived, in arrival order. With
// more, another whole frame is buffered behind this one: answers that are
// ready meanwhile wait for it (see deferred).
func (c *conn) take(t wire.Type, arrived time.Time, more bool) *slot {
	select {
	case c.credits <- struct{}{}:
	default:
		// Answers held back for coalescing may be what frees a credit.
		c.undefer()
		c.credits <- struct{}{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deferred = more
	var sl *slot
	if n := len(c.spare); n > 0 {
		sl, c.spare = c.spare[n-1], c.spare[:n-1]
	} else {
		sl = &slot{}
	}
	sl.typ, sl.ready, sl.arrived = t, false, arrived
	c.queue = append(c.queue, sl)
	return sl
}

// readFailed handles the end of the reader: a clean close, a shutdown, a
// broken client, or an oversized frame that gets one last ERROR.
func (c *conn) readFailed(err error) {
	var tooLarge *wire.FrameTooLargeError
	switch {
	case errors.As(err, &tooLarge):
		c.event(zerolog.WarnLevel).Uint32("length", tooLarge.Length).Int("max", tooLarge.Max).Msg("frame too large, closing")
		// The reader stops here, so the connection closes once this last
		// answer is written.
		c.answer(c.take(tooLarge.Type, time.Now(), false), engine.Result{Status: wire.StatusError, Code: engine.CodeFrameTooLarge, Message: tooLarge.Error()})
	case errors.Is(err, io.EOF), c.stopping.Load() && errors.Is(err, os.ErrDeadlineExceeded):
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.event(zerolog.DebugLevel).Msg("read timed out (idle, or a frame too slow), closing")
	case errors.Is(err, net.ErrClosed):
	default:
		c.event(zerolog.DebugLevel).Err(err).Msg("read failed")
	}
}

// purchase starts the slot's purchase; the answer arrives through
// sl.purchased, without a goroutine waiting for it.
func (c *conn) purchase(sl *slot) {
	if sl.purchased == nil {
		sl.purchased = func(res engine.Result) {
			c.srv.logFailure(c.event, res, sl.req.ProductID)
			c.answer(sl, res)
		}
	}
	c.srv.eng.PurchaseAsync(engineRequest(&sl.req), sl.arrived.Add(c.srv.cfg.RequestTimeout), sl.purchased)
}

// engineRequest is the engine's request for a decoded ATTEMPT_PURCHASE
// payload, whichever protocol carried it.
func engineRequest(req *wire.PurchaseRequest) engine.Request {
	return engine.Request{
		ProductID: req.ProductID, UserID: req.UserID,
		Quantity: req.Quantity, RequestID: req.RequestID,
		Token: req.Token, Expires: req.Expires, JWT: req.JWT, Admission: req.Admission,
	}
}

func (c *conn) queryStock(sl *slot) {
	ctx, cancel := context.WithTimeout(context.Background(), c.srv.cfg.RequestTimeout)
	defer cancel()
	st, err := c.srv.eng.Status(ctx, sl.query.ProductID)
	if err != nil {
		res := engine.Fail(err)
		c.srv.logFailure(c.event, res, sl.query.ProductID)
		c.answer(sl, res)
		return
	}
	stockResponse(&sl.resp, st)
	c.ready(sl)
}

// stockResponse sets r to the answer to a stock query: the one mapping
// for TLV frames and HTTP bodies alike.
func stockResponse(r *wire.Response, st engine.ProductStatus) {
	*r = wire.Response{
		Status:         wire.StatusOK.String(),
		Has:            wire.FieldRemaining | wire.FieldInitial | wire.FieldLimit,
		RemainingStock: st.Remaining, Initial: st.Initial, Limit: st.Limit,
		State: string(st.State()), Start: formatTime(st.Start), End: formatTime(st.End),
	}
	if st.Hold > 0 || st.Reserved+st.Paid+st.Expired+st.Cancelled > 0 {
		r.Has |= wire.FieldReserved | wire.FieldPaid | wire.FieldReleased
		r.Reserved, r.Paid, r.Released = st.Reserved, st.Paid, st.Expired+st.Cancelled
	}
}

// logFailure logs the errors that are the server's problem, not the
// client's, to an event that event starts, and notes whether Redis
// answered.
func (s *Server) logFailure(event func(zerolog.Level) *zerolog.Event, res engine.Result, product string) {
	if res.Code == engine.CodeUnavailable || res.Code == engine.CodeStoreFull {
		s.redisUp.Store(false)
	}
	if res.Err != nil && res.Code != engine.CodeInvalidRequest && res.Code != engine.CodeUnknownProduct && res.Code != engine.CodeRequestReused {
		event(zerolog.ErrorLevel).Err(res.Err).Str("code", res.Code).Str("product_id", product).Msg("request failed")
	}
}

// resultResponse sets r to the answer for res: the one mapping from engine
// results to answers, for TLV frames and HTTP bodies alike.
func resultResponse(r *wire.Response, res engine.Result) {
	*r = wire.Response{Status: res.Status.String()}
	switch res.Status {
	case wire.StatusSuccess, wire.StatusPaid, wire.StatusExpired, wire.StatusReleased, wire.StatusAlreadyPaid:
		r.Has = wire.FieldRemaining | wire.FieldQuantity
		r.RemainingStock, r.Quantity, r.OrderID = res.Remaining, res.Quantity, res.OrderID
	case wire.StatusReserved:
		r.Has = wire.FieldRemaining | wire.FieldQuantity | wire.FieldExpiresAt
		r.RemainingStock, r.Quantity, r.OrderID = res.Remaining, res.Quantity, res.OrderID
		r.ExpiresAt = res.ExpiresAt.UnixMilli()
	case wire.StatusInsufficientStock:
		r.Has, r.RemainingStock = wire.FieldRemaining, res.Remaining
	case wire.StatusAlreadyPurchased:
		r.Has = wire.FieldHeld | wire.FieldLimit
		r.Held, r.Limit = res.Held, res.Limit
	case wire.StatusNotStarted:
		r.Start = formatTime(res.Start)
	case wire.StatusEnded:
		r.End = formatTime(res.End)
	case wire.StatusError:
		r.Code, r.Error = res.Code, res.Message
	case wire.StatusUnauthorized:
		r.Error = res.Message
	case wire.StatusRateLimited:
		r.Has, r.RetryAfterMS = wire.FieldRetryAfter, max(res.RetryAfter.Milliseconds(), 1)
	}
}

// answer sets the slot's response from res, records a purchase's, and
// marks it ready.
func (c *conn) answer(sl *slot, res engine.Result) {
	resultResponse(&sl.resp, res)
	c.recordPurchase(sl)
	c.ready(sl)
}

// recordPurchase records a purchase's answer in the metrics.
func (c *conn) recordPurchase(sl *slot) {
	if sl.typ == wire.TypePurchase {
		c.srv.cfg.Metrics.Purchase(ProtocolTLV, sl.resp.Status, sl.resp.Code, time.Since(sl.arrived))
	}
}

// formatTime is the wire form of a time: RFC 3339 in UTC, "" for zero.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// ready marks sl answered and, when the head of the queue can be written
// and nobody writes (nor defers writing, see take), writes it (see flush).
func (c *conn) ready(sl *slot) {
	c.mu.Lock()
	sl.ready = true
	start := c.startWriting()
	c.mu.Unlock()
	if start {
		c.flush()
	}
}

// startWriting takes the writer's role, and reports so, when the head of
// the queue is ready and nobody writes or defers writing. c.mu must be
// held.
func (c *conn) startWriting() bool {
	start := !c.writing && !c.deferred && len(c.queue) > 0 && c.queue[0].ready
	c.writing = c.writing || start
	return start
}

// undefer ends a deferral (see take) and writes what it held back.
func (c *conn) undefer() {
	c.mu.Lock()
	c.deferred = false
	start := c.startWriting()
	c.mu.Unlock()
	if start {
		c.flush()
	}
}

// outBatch is answers on their way out: their frames and their slots.
type outBatch struct {
	out     []byte
	written []*slot // the slots whose answers out holds (or dropped)
}

// outBatches holds the write buffers between writes, so an idle
// connection keeps none.
var outBatches = sync.Pool{New: func() any { return &outBatch{out: make([]byte, 0, 4<<10)} }}

// putBatch gives b back to outBatches, unless it grew past maxOutBuffer.
func putBatch(b *outBatch) {
	if cap(b.out) <= maxOutBuffer {
		b.out = b.out[:0]
		outBatches.Put(b)
	}
}

// Write buffer bounds: a burst is sent in pieces of about flushAt bytes,
// and a buffer grown past maxOutBuffer is dropped rather than pooled.
const (
	flushAt      = 16 << 10
	maxOutBuffer = 64 << 10
)

// flush is the writer's work done where an answer completes, on the
// goroutine that completed it (the reader for SOLD_OUT, PING and errors,
// the transport's for answers from Redis, a query's), so an answer costs
// no goroutine and no wake-up: when every answer queued is ready (at -P 1,
// the one), it writes them with a write that does not wait, as long as
// the socket takes them at once. Otherwise a writer goroutine does, and
// waits under the write deadline: when the socket is full (the client
// reads slowly), on TLS (no raw socket), and when answers are still to
// come, so that the ones completing together (a pipelined batch from
// Redis) share its writes instead of costing one each. The caller holds
// the writer's role (c.writing).
func (c *conn) flush() {
	if c.raw == nil {
		go c.write(nil)
		return
	}
	b := outBatches.Get().(*outBatch)
	for {
		ok, werr := c.collect(b, true)
		if !ok {
			putBatch(b)
			return
		}
		if len(b.written) == 0 { // answers are still to come
			putBatch(b)
			go c.write(nil)
			return
		}
		if werr == nil && len(b.out) > 0 {
			var n int
			n, werr = c.tryWrite(b.out)
			if werr == nil && n < len(b.out) {
				b.out = b.out[:copy(b.out, b.out[n:])]
				go c.write(b)
				return
			}
		}
		c.settle(b, werr)
	}
}

// tryWrite writes what of p the socket takes without waiting. The caller
// holds the writer's role (c.writing).
func (c *conn) tryWrite(p []byte) (int, error) {
	t := &c.try
	t.p, t.n, t.err = p, 0, nil
	rerr := c.raw.Write(t.writeSome)
	n, err := t.n, t.err
	t.p, t.err = nil, nil
	if rerr != nil {
		return n, rerr
	}
	return n, err
}

// writeSome is tryWrite's callback: it writes c.try.p on fd until the
// socket would block.
func (c *conn) writeSome(fd uintptr) bool {
	t := &c.try
	for t.n < len(t.p) {
		m, werr := writeFD(fd, t.p[t.n:])
		if werr == syscall.EINTR {
			continue
		}
		if werr != nil {
			if werr != syscall.EAGAIN {
				t.err = os.NewSyscallError("write", werr)
			}
			break
		}
		t.n += m
	}
	return true // never wait: the writer goroutine does
}

// write is the writer goroutine: it sends b's answers if any, then every
// consecutive ready answer at the head of the queue, in order, a burst per
// write, until the head is not ready; then it exits. After a write failure
// it drops answers instead, so the connection still drains.
func (c *conn) write(b *outBatch) {
	if b == nil {
		b = outBatches.Get().(*outBatch)
	}
	defer putBatch(b)
	for {
		var werr error
		if len(b.written) == 0 {
			var ok bool
			if ok, werr = c.collect(b, false); !ok {
				return
			}
		}
		if werr == nil && len(b.out) > 0 {
			c.writeBy.Store(c.srv.now.Load() + int64(c.srv.cfg.WriteTimeout))
			_, werr = c.nc.Write(b.out)
			c.writeBy.Store(0)
		}
		c.settle(b, werr)
	}
}

// collect moves the consecutive ready answers at the head of the queue
// into b, in order, up to about flushAt bytes, and returns the first
// write failure so far (their answers are then dropped, not encoded). With
// no answer ready it gives up the writer's role and reports false. With
// whole, it moves nothing, and keeps the role, unless every answer queued
// is ready.
func (c *conn) collect(b *outBatch, whole bool) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := 0; whole && i < len(c.queue); i++ {
		if !c.queue[i].ready {
			return true, nil
		}
	}
	k := 0
	for k < len(c.queue) && c.queue[k].ready && len(b.out) < flushAt {
		sl := c.queue[k]
		k++
		if c.werr == nil {
			b.out = wire.AppendResponseFrame(b.out, sl.typ.Response(), &sl.resp)
		}
		b.written = append(b.written, sl)
	}
	if k > 0 {
		// The rest moves to the front: the queue keeps its backing array
		// (slicing off the front would shrink it, and take's append
		// allocate anew), which keeps no written slot alive. Plain loops,
		// not copy and clear: their runtime calls for pointers
		// (typedslicecopy, memclrHasPointers) deepen the stack of every
		// connection's goroutine past its first size, which doubled the
		// stacks of 10,000 connections under load (42 -> 79 MB).
		n := len(c.queue) - k
		for i := 0; i < n; i++ {
			c.queue[i] = c.queue[k+i]
		}
		for i := n; i < len(c.queue); i++ {
			c.queue[i] = nil
		}
		c.queue = c.queue[:n]
	}
	if len(b.written) == 0 {
		c.writing = false
		c.checkDrained()
		return false, nil
	}
	return true, c.werr
}

// settle ends the write of b's answers, which failed with werr if not
// nil: it recycles their slots, gives their credits back and empties b.
func (c *conn) settle(b *outBatch, werr error) {
	c.mu.Lock()
	if werr != nil && c.werr == nil {
		c.werr = werr
		c.nc.Close() // ends the reader too
	}
	for _, sl := range b.written {
		if cap(sl.payload) > keptBuffer {
			// req and query are views of the payload: they go with it.
			sl.payload, sl.req, sl.query = nil, wire.PurchaseRequest{}, wire.QueryRequest{}
		}
	}
	c.spare = append(c.spare, b.written...)
	if len(c.queue) == 0 && len(c.spare) > keptSlots {
		clear(c.spare[keptSlots:])
		c.spare = c.spare[:keptSlots]
	}
	c.mu.Unlock()
	for range b.written {
		<-c.credits
	}
	clear(b.written)
	b.written = b.written[:0]
	b.out = b.out[:0]
}
