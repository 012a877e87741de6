package engine

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/flashsale/flashsale/wire"
)

// ServerConfig tunes a Server. Zero fields take the defaults below.
type ServerConfig struct {
	// MaxPayload is the largest payload accepted; a bigger frame is answered
	// with ERROR and its connection closed.
	MaxPayload int
	// MaxInFlight caps the requests one connection may have pipelined and
	// unanswered; past it the server stops reading that connection.
	MaxInFlight int
	// RequestTimeout bounds the Redis work of one request.
	RequestTimeout time.Duration
	// DrainTimeout bounds the shutdown: answering requests already read.
	DrainTimeout time.Duration
	// WriteTimeout drops clients that do not read their answers.
	WriteTimeout time.Duration
	// FrameTimeout bounds the arrival of one frame once its first byte is
	// in: slow or stalled senders are dropped.
	FrameTimeout time.Duration
	// IdleTimeout drops connections with no frame for this long.
	IdleTimeout time.Duration
	// MaxConns caps open connections; past it a new connection gets one
	// ERROR frame (code BUSY) and is closed.
	MaxConns int
	// ConnRate limits the purchase attempts of one connection (zero: no
	// limit); past it they are answered RATE_LIMITED without a Redis call.
	ConnRate Rate
	// Logger receives the server's logs; each connection gets a sub-logger.
	Logger zerolog.Logger
}

// Server defaults.
const (
	DefaultMaxInFlight    = 128
	DefaultRequestTimeout = 2 * time.Second
	DefaultDrainTimeout   = 10 * time.Second
	DefaultWriteTimeout   = 10 * time.Second
	DefaultFrameTimeout   = 10 * time.Second
	DefaultIdleTimeout    = 5 * time.Minute
	DefaultMaxConns       = 20000
)

func (c ServerConfig) withDefaults() ServerConfig {
	if c.MaxPayload <= 0 {
		c.MaxPayload = wire.DefaultMaxPayload
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.FrameTimeout <= 0 {
		c.FrameTimeout = DefaultFrameTimeout
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.MaxConns <= 0 {
		c.MaxConns = DefaultMaxConns
	}
	return c
}

// Server answers wire protocol requests with an Engine.
type Server struct {
	eng *Engine
	cfg ServerConfig
	log zerolog.Logger

	nextID  atomic.Uint64
	redisUp atomic.Bool  // what PING reports; see watchRedis
	now     atomic.Int64 // a coarse clock (Unix ns) kept by sweep, for deadlines
	mu      sync.Mutex
	conns   map[*conn]struct{}
	wg      sync.WaitGroup
}

// NewServer returns a Server for eng.
func NewServer(eng *Engine, cfg ServerConfig) *Server {
	cfg = cfg.withDefaults()
	return &Server{eng: eng, cfg: cfg, log: cfg.Logger, conns: make(map[*conn]struct{})}
}

// Serve accepts connections on ln until ctx is done, then shuts down: it
// stops accepting, answers every request already read, and closes each
// connection, waiting at most DrainTimeout before cutting the rest. It
// closes ln. It returns nil after a shutdown, or the listener's error.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	s.redisUp.Store(s.eng.redis.Ping(ctx) == nil)
	s.now.Store(time.Now().UnixNano())
	sweepCtx, stopSweep := context.WithCancel(context.Background())
	defer stopSweep()
	go s.sweep(sweepCtx)
	go s.watchRedis(ctx)
	go s.eng.WatchControl(ctx)
	var err error
	backoff := 5 * time.Millisecond
	for {
		var nc net.Conn
		nc, err = ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				err = nil
				break
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) || isTemporary(err) {
				s.log.Warn().Err(err).Dur("retry_in", backoff).Msg("accept failed")
				time.Sleep(backoff)
				backoff = min(2*backoff, time.Second)
				continue
			}
			break
		}
		backoff = 5 * time.Millisecond
		if !s.start(nc) {
			go s.refuse(nc)
		}
	}
	ln.Close()
	s.drain()
	return err
}

// sweepInterval is the resolution of the connection timeouts.
const sweepInterval = 50 * time.Millisecond

// sweep enforces the read and write timeouts of every connection, and
// keeps the coarse clock. Doing it here, rather than with a socket deadline
// per frame, keeps timers off the per-request path.
func (s *Server) sweep(ctx context.Context) {
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case tick := <-t.C:
			now := tick.UnixNano()
			s.now.Store(now)
			s.mu.Lock()
			for c := range s.conns {
				c.expire(now)
			}
			s.mu.Unlock()
		}
	}
}

// healthInterval is how often the server checks that Redis answers.
const healthInterval = time.Second

// watchRedis keeps redisUp current for PING: a PING to Redis every
// healthInterval, and the outcome of every request in between.
func (s *Server) watchRedis(ctx context.Context) {
	t := time.NewTicker(healthInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, healthInterval)
			up := s.eng.redis.Ping(pctx) == nil
			cancel()
			if s.redisUp.Swap(up) != up {
				s.log.Warn().Bool("redis_up", up).Msg("redis state changed")
			}
		}
	}
}

// isTemporary reports accept errors worth retrying, such as running out of
// file descriptors.
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// start serves nc on its own goroutines, unless the server already has
// MaxConns connections.
func (s *Server) start(nc net.Conn) bool {
	id := s.nextID.Add(1)
	c := &conn{
		srv: s,
		nc:  nc,
		log: s.log.With().Str("remote", nc.RemoteAddr().String()).Uint64("conn_id", id).Logger(),
	}
	s.mu.Lock()
	if len(s.conns) >= s.cfg.MaxConns {
		s.mu.Unlock()
		return false
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		c.serve()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	return true
}

// busyFrame is what a connection past MaxConns gets before it is closed:
// an ERROR in a frame of type 0x80, the answer to no request.
var busyFrame = wire.AppendFrame(nil, wire.ResponseBit, wire.AppendResponse(nil,
	&wire.Response{Status: StatusError.String(), Code: CodeBusy, Error: "server busy"}))

// refuse tells a connection over the cap that the server is busy.
func (s *Server) refuse(nc net.Conn) {
	s.log.Warn().Str("remote", nc.RemoteAddr().String()).Int("max_conns", s.cfg.MaxConns).Msg("server busy: connection refused")
	nc.SetDeadline(time.Now().Add(time.Second))
	nc.Write(busyFrame)
	(&conn{nc: nc}).linger()
}

// drain makes every connection stop reading, waits for their answers to be
// written, and cuts whatever is left after DrainTimeout.
func (s *Server) drain() {
	s.mu.Lock()
	n := len(s.conns)
	for c := range s.conns {
		c.stopReading()
	}
	s.mu.Unlock()
	s.log.Info().Int("connections", n).Dur("timeout", s.cfg.DrainTimeout).Msg("draining")

	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(s.cfg.DrainTimeout):
	}
	s.mu.Lock()
	s.log.Warn().Int("connections", len(s.conns)).Msg("drain timeout: closing connections with answers pending")
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	<-done
}

// bucket is a GCRA limiter for one connection: the same algorithm the
// purchase script applies per customer.
type bucket struct{ tat time.Time }

// take admits one attempt at now under r, or says how long to wait.
func (b *bucket) take(r Rate, now time.Time) time.Duration {
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

// slot is one request in flight on a connection; slots are reused.
type slot struct {
	purchased func(Result) // completes a purchase: made once per slot
	typ       wire.Type
	payload   []byte // the request's payload; req and query point into it
	req       wire.PurchaseRequest
	query     wire.QueryRequest
	resp      wire.Response
	last      bool          // close the connection after this answer
	ready     chan struct{} // receives once resp is set
}

// conn serves one client. A reader goroutine decodes frames and starts
// their work; the writer (the serve goroutine) answers them strictly in
// order and flushes whenever it would otherwise wait, so the answers to a
// pipelined burst leave in one write.
type conn struct {
	srv      *Server
	nc       net.Conn
	log      zerolog.Logger
	stopping atomic.Bool
	// readBy and writeBy are the deadlines (Unix ns, 0 for none) of the
	// read or write under way; sweep enforces them.
	readBy  atomic.Int64
	writeBy atomic.Int64
	limiter bucket // ConnRate, used by the reader goroutine only
}

// stopReading ends the reader at the next frame that is not already
// buffered; requests already read are still answered.
func (c *conn) stopReading() {
	c.stopping.Store(true)
	c.nc.SetReadDeadline(time.Now())
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
		c.log.Debug().Msg("read timed out (idle, or a frame too slow)")
		c.nc.SetReadDeadline(time.Unix(0, 1))
	}
	if by := c.writeBy.Load(); by != 0 && now > by {
		c.log.Debug().Msg("write timed out: the client does not read its answers")
		c.nc.Close()
	}
}

func (c *conn) serve() {
	defer c.nc.Close()
	n := c.srv.cfg.MaxInFlight
	slots := make([]slot, n)
	free := make(chan int, n)
	order := make(chan int, n)
	for i := range slots {
		slots[i].ready = make(chan struct{}, 1)
		free <- i
	}
	writerGone := make(chan struct{})
	go c.read(slots, free, order, writerGone)
	answered := c.write(slots, free, order)
	close(writerGone)
	if answered {
		c.linger()
	} else {
		c.nc.Close()
	}
	// Let the reader finish and every started request complete, so no
	// goroutine outlives the connection.
	for i := range order {
		<-slots[i].ready
	}
}

// lingerTimeout bounds how long a closing connection waits for its client
// to stop sending.
const lingerTimeout = 500 * time.Millisecond

// linger closes the connection after its answers were written without
// losing them: closing a socket that still has unread input makes the
// kernel send a reset, which can destroy answers the client has not read
// yet. So it sends FIN first and discards what the client still sends, for
// a short while.
func (c *conn) linger() {
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		if cw.CloseWrite() == nil {
			c.nc.SetReadDeadline(time.Now().Add(lingerTimeout))
			io.Copy(io.Discard, io.LimitReader(c.nc, 1<<20))
		}
	}
	c.nc.Close()
}

func (c *conn) read(slots []slot, free chan int, order chan<- int, writerGone <-chan struct{}) {
	defer close(order)
	rd := wire.NewReader(c.nc, c.srv.cfg.MaxPayload)
	cfg := &c.srv.cfg
	for {
		// Between frames the idle timeout applies; once a frame has started,
		// all of it must arrive within the frame timeout. A shutdown sets
		// the deadline to now: frames already buffered are still served.
		if rd.Buffered() == 0 {
			c.readWithin(cfg.IdleTimeout)
			if err := rd.Wait(); err != nil {
				c.readFailed(err, slots, free, order, writerGone)
				return
			}
		}
		if !rd.Complete() {
			c.readWithin(cfg.FrameTimeout)
		}
		f, err := rd.Next()
		c.readWithin(0)
		if err != nil {
			c.readFailed(err, slots, free, order, writerGone)
			return
		}
		var i int
		select {
		case i = <-free:
		case <-writerGone:
			return
		}
		sl := &slots[i]
		sl.typ, sl.last = f.Type, false
		switch f.Type {
		case wire.TypePurchase:
			// The decoded strings are views of the slot's copy of the payload,
			// which stays put until the slot is answered and reused.
			sl.payload = append(sl.payload[:0], f.Payload...)
			if err := wire.DecodePurchase(sl.payload, &sl.req); err != nil {
				sl.answer(Result{Status: StatusError, Code: CodeInvalidRequest, Message: err.Error()})
			} else if wait := c.limiter.take(cfg.ConnRate, time.Now()); wait > 0 {
				sl.answer(Result{Status: StatusRateLimited, RetryAfter: wait})
			} else {
				c.purchase(sl)
			}
		case wire.TypeQuery:
			sl.payload = append(sl.payload[:0], f.Payload...)
			if err := wire.DecodeQuery(sl.payload, &sl.query); err != nil {
				sl.answer(Result{Status: StatusError, Code: CodeInvalidRequest, Message: err.Error()})
			} else {
				go c.queryStock(sl)
			}
		case wire.TypePing:
			sl.answer(Result{Status: StatusPong})
			sl.resp.Redis = "down"
			if c.srv.redisUp.Load() {
				sl.resp.Redis = "up"
			}
		default:
			sl.answer(Result{Status: StatusError, Code: CodeUnknownType, Message: "unknown message type " + f.Type.String()})
		}
		order <- i
	}
}

// readFailed handles the end of the reader: a clean close, a shutdown, a
// broken client, or an oversized frame that gets one last ERROR.
func (c *conn) readFailed(err error, slots []slot, free chan int, order chan<- int, writerGone <-chan struct{}) {
	var tooLarge *wire.FrameTooLargeError
	switch {
	case errors.As(err, &tooLarge):
		c.log.Warn().Uint32("length", tooLarge.Length).Int("max", tooLarge.Max).Msg("frame too large, closing")
		select {
		case i := <-free:
			sl := &slots[i]
			sl.typ, sl.last = tooLarge.Type, true
			sl.answer(Result{Status: StatusError, Code: CodeFrameTooLarge, Message: tooLarge.Error()})
			order <- i
		case <-writerGone:
		}
	case errors.Is(err, io.EOF), c.stopping.Load() && errors.Is(err, os.ErrDeadlineExceeded):
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.log.Debug().Msg("read timed out (idle, or a frame too slow), closing")
	case errors.Is(err, net.ErrClosed):
	default:
		c.log.Debug().Err(err).Msg("read failed")
	}
}

// purchase starts the slot's purchase; the answer arrives through
// sl.purchased, without a goroutine waiting for it.
func (c *conn) purchase(sl *slot) {
	if sl.purchased == nil {
		sl.purchased = func(res Result) {
			c.logFailure(res, sl.req.ProductID)
			sl.answer(res)
		}
	}
	c.srv.eng.PurchaseAsync(Request{
		ProductID: sl.req.ProductID, UserID: sl.req.UserID,
		Quantity: sl.req.Quantity, RequestID: sl.req.RequestID,
		Token: sl.req.Token, Expires: sl.req.Expires,
	}, time.Now().Add(c.srv.cfg.RequestTimeout), sl.purchased)
}

func (c *conn) queryStock(sl *slot) {
	ctx, cancel := context.WithTimeout(context.Background(), c.srv.cfg.RequestTimeout)
	defer cancel()
	st, err := c.srv.eng.Status(ctx, sl.query.ProductID)
	if err != nil {
		res := Fail(err)
		c.logFailure(res, sl.query.ProductID)
		sl.answer(res)
		return
	}
	sl.resp = wire.Response{
		Status:         StatusOK.String(),
		Has:            wire.FieldRemaining | wire.FieldInitial | wire.FieldLimit,
		RemainingStock: st.Remaining, Initial: st.Initial, Limit: st.Limit,
		State: string(st.State()), Start: formatTime(st.Start), End: formatTime(st.End),
	}
	sl.ready <- struct{}{}
}

// logFailure logs the errors that are the server's problem, not the
// client's, and notes whether Redis answered.
func (c *conn) logFailure(res Result, product string) {
	if res.Code == CodeUnavailable {
		c.srv.redisUp.Store(false)
	}
	if res.Err != nil && res.Code != CodeInvalidRequest && res.Code != CodeUnknownProduct && res.Code != CodeRequestReused {
		c.log.Error().Err(res.Err).Str("code", res.Code).Str("product_id", product).Msg("request failed")
	}
}

// answer sets the slot's response from res and marks it ready.
func (sl *slot) answer(res Result) {
	sl.resp = wire.Response{Status: res.Status.String()}
	switch res.Status {
	case StatusSuccess:
		sl.resp.Has = wire.FieldRemaining | wire.FieldQuantity
		sl.resp.RemainingStock, sl.resp.Quantity, sl.resp.OrderID = res.Remaining, res.Quantity, res.OrderID
	case StatusInsufficientStock:
		sl.resp.Has, sl.resp.RemainingStock = wire.FieldRemaining, res.Remaining
	case StatusAlreadyPurchased:
		sl.resp.Has = wire.FieldHeld | wire.FieldLimit
		sl.resp.Held, sl.resp.Limit = res.Held, res.Limit
	case StatusNotStarted:
		sl.resp.Start = formatTime(res.Start)
	case StatusEnded:
		sl.resp.End = formatTime(res.End)
	case StatusError:
		sl.resp.Code, sl.resp.Error = res.Code, res.Message
	case StatusUnauthorized:
		sl.resp.Error = res.Message
	case StatusRateLimited:
		sl.resp.Has, sl.resp.RetryAfterMS = wire.FieldRetryAfter, max(res.RetryAfter.Milliseconds(), 1)
	}
	sl.ready <- struct{}{}
}

// formatTime is the wire form of a time: RFC 3339 in UTC, "" for zero.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// write answers requests in order until the reader is done or an answer
// closes the connection. It reports whether every answer was written.
func (c *conn) write(slots []slot, free chan<- int, order <-chan int) bool {
	w := wire.NewWriter(c.nc)
	var buf []byte
	var werr error
	flush := func() {
		if werr == nil && w.Buffered() > 0 {
			c.writeBy.Store(c.srv.now.Load() + int64(c.srv.cfg.WriteTimeout))
			werr = w.Flush()
			c.writeBy.Store(0)
		}
	}
	for {
		var i int
		var ok bool
		select {
		case i, ok = <-order:
		default:
			flush()
			i, ok = <-order
		}
		if !ok {
			break
		}
		sl := &slots[i]
		select {
		case <-sl.ready:
		default:
			flush()
			<-sl.ready
		}
		buf = wire.AppendResponse(buf[:0], &sl.resp)
		if werr == nil {
			// WriteFrame writes to the socket itself whenever the buffer
			// fills, so a client that pipelines without end and never
			// reads blocks it here, not in flush: it needs the deadline too.
			c.writeBy.Store(c.srv.now.Load() + int64(c.srv.cfg.WriteTimeout))
			werr = w.WriteFrame(sl.typ.Response(), buf)
			c.writeBy.Store(0)
		}
		last := sl.last
		free <- i
		if werr != nil || last {
			break
		}
	}
	flush()
	if werr != nil {
		c.log.Debug().Err(werr).Msg("write failed, closing")
	}
	return werr == nil
}
