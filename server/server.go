package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/defaults"
	"github.com/flashsale/flashsale/wire"
)

// Config tunes a Server. Zero fields take the defaults below.
type Config struct {
	// MaxPayload is the largest payload accepted; a bigger frame is answered
	// with ERROR and its connection closed.
	MaxPayload int
	// MaxInFlight caps the requests one connection may have pipelined and
	// unanswered; past it the server stops reading that connection.
	MaxInFlight int
	// RequestTimeout bounds the Redis work of one request.
	RequestTimeout time.Duration
	// PollInterval: a waiting-room ticket's status is read from Redis at
	// most this often on this server; polls between get the last answer
	// (default DefaultPollInterval).
	PollInterval time.Duration
	// DrainTimeout bounds the shutdown: answering requests already read.
	DrainTimeout time.Duration
	// WriteTimeout drops clients that do not read their answers.
	WriteTimeout time.Duration
	// FrameTimeout bounds the arrival of one frame once its first byte is
	// in: slow or stalled senders are dropped.
	FrameTimeout time.Duration
	// IdleTimeout drops connections with no frame (TLV) or request (HTTP)
	// for this long.
	IdleTimeout time.Duration
	// FirstFrameTimeout bounds the wait for a new connection's first byte
	// (or IdleTimeout, when that is shorter): a connection that never sends
	// is closed by it. The protocol is told by that byte.
	FirstFrameTimeout time.Duration
	// HandshakeTimeout bounds the TLS handshake of a connection accepted
	// from a TLS listener.
	HandshakeTimeout time.Duration
	// MaxConns caps open connections, TLV and HTTP together; past it a new
	// connection gets one ERROR frame (code BUSY) and is closed.
	MaxConns int
	// ConnRate limits the purchase attempts of one connection (zero: no
	// limit); past it they are answered RATE_LIMITED without a Redis call.
	ConnRate engine.Rate
	// Logger receives the server's logs; each connection gets a sub-logger.
	Logger zerolog.Logger
	// Metrics, if set, records requests and connections; its Handler, if
	// not nil, is served at GET /metrics.
	Metrics Metrics
	// Dashboard, if set, is served at /dashboard/ (with that prefix
	// stripped: it sees /, /app.js, …; /dashboard redirects there) and
	// answers browsers' GET / (requests that prefer text/html), so its page
	// must link its files by absolute paths. Its request contexts end when
	// the server starts draining; a streaming handler (server-sent events)
	// must watch them, and lift the write deadline (RequestTimeout +
	// WriteTimeout) with http.ResponseController.
	Dashboard http.Handler
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

	DefaultFirstFrameTimeout = 10 * time.Second
	DefaultHandshakeTimeout  = 10 * time.Second
)

func (c Config) withDefaults() Config {
	defaults.Set(&c.MaxPayload, wire.DefaultMaxPayload)
	defaults.Set(&c.MaxInFlight, DefaultMaxInFlight)
	defaults.Set(&c.RequestTimeout, DefaultRequestTimeout)
	defaults.Set(&c.PollInterval, DefaultPollInterval)
	defaults.Set(&c.DrainTimeout, DefaultDrainTimeout)
	defaults.Set(&c.WriteTimeout, DefaultWriteTimeout)
	defaults.Set(&c.FrameTimeout, DefaultFrameTimeout)
	defaults.Set(&c.IdleTimeout, DefaultIdleTimeout)
	defaults.Set(&c.MaxConns, DefaultMaxConns)
	defaults.Set(&c.FirstFrameTimeout, DefaultFirstFrameTimeout)
	defaults.Set(&c.HandshakeTimeout, DefaultHandshakeTimeout)
	if c.Metrics == nil {
		c.Metrics = noMetrics{}
	}
	return c
}

// Server answers TLV and HTTP requests with an engine.Engine.
type Server struct {
	eng *engine.Engine
	cfg Config
	log zerolog.Logger

	nextID   atomic.Uint64
	redisUp  atomic.Bool  // what PING and /readyz report; see watchRedis
	draining atomic.Bool  // the shutdown has begun
	now      atomic.Int64 // a coarse clock (Unix ns) kept by sweep, for deadlines
	refused  atomic.Int64 // connections refused past MaxConns, not yet logged
	http     *http.Server
	httpLn   *chanListener   // the HTTP connections the accept loops sniffed
	drainCtx context.Context // HTTP requests' base context, ended by drain
	drained  context.CancelFunc
	closer   chan refusedConn
	polls    pollCache // each waiting-room ticket's last answer

	mu       sync.Mutex
	open     int                   // connections counted against MaxConns, both protocols
	conns    map[*conn]struct{}    // TLV connections
	sniffing map[net.Conn]struct{} // connections whose first byte is awaited
	wg       sync.WaitGroup        // connection goroutines, until hand-off or close
}

// New returns a Server for eng.
func New(eng *engine.Engine, cfg Config) *Server {
	cfg = cfg.withDefaults()
	s := &Server{
		eng: eng, cfg: cfg, log: cfg.Logger,
		conns:    make(map[*conn]struct{}),
		sniffing: make(map[net.Conn]struct{}),
		closer:   make(chan refusedConn, maxLingering),
	}
	s.httpLn = newChanListener()
	s.drainCtx, s.drained = context.WithCancel(context.Background())
	s.http = s.newHTTPServer()
	return s
}

// Serve accepts connections on ln until ctx is done, serving TLV and HTTP
// on it alike (the first byte of each connection tells which), then shuts
// down: it stops accepting, answers every request already read, and
// closes each connection, waiting at most DrainTimeout before cutting the
// rest. It closes ln. It returns nil after a shutdown, or the listener's
// error.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return s.ServeListeners(ctx, ln, nil)
}

// ServeListeners is Serve with, when httpOnly is not nil, a second
// listener that serves HTTP only. Both count against MaxConns together.
// A Server serves once: call Serve or ServeListeners one time.
func (s *Server) ServeListeners(ctx context.Context, ln, httpOnly net.Listener) error {
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		if httpOnly != nil {
			httpOnly.Close()
		}
	})
	defer stop()
	s.redisUp.Store(s.eng.Ping(ctx) == nil)
	s.now.Store(time.Now().UnixNano())
	sweepCtx, stopSweep := context.WithCancel(context.Background())
	defer stopSweep()
	go s.sweep(sweepCtx)
	go s.watchRedis(ctx)
	go s.eng.WatchControl(ctx)
	closerDone := make(chan struct{})
	go func() { s.closeRefused(); close(closerDone) }()
	httpDone := make(chan struct{})
	go func() { s.http.Serve(s.httpLn); close(httpDone) }()

	httpErr := make(chan error, 1)
	if httpOnly != nil {
		go func() {
			err := s.accept(ctx, httpOnly, true)
			if err != nil {
				s.log.Error().Err(err).Str("http_listen", httpOnly.Addr().String()).Msg("HTTP-only listener failed; the main one goes on")
			}
			httpErr <- err
		}()
	}
	err := s.accept(ctx, ln, false)
	ln.Close()
	if httpOnly != nil {
		httpOnly.Close()
		err = errors.Join(err, <-httpErr)
	}
	s.drain()
	<-httpDone
	close(s.closer)
	<-closerDone
	s.logRefused()
	return err
}

// accept takes connections from ln until it fails; after ctx is done that
// is the end of a shutdown, not an error.
func (s *Server) accept(ctx context.Context, ln net.Listener, httpOnly bool) error {
	backoff := 5 * time.Millisecond
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) || isTemporary(err) {
				s.log.Warn().Err(err).Dur("retry_in", backoff).Msg("accept failed")
				time.Sleep(backoff)
				backoff = min(2*backoff, time.Second)
				continue
			}
			return err
		}
		backoff = 5 * time.Millisecond
		if !s.start(nc, httpOnly) {
			s.refuse(nc, httpOnly)
		}
	}
}

// sweepInterval is the resolution of the connection timeouts.
const sweepInterval = 50 * time.Millisecond

// sweep enforces the read and write timeouts of every connection, keeps
// the coarse clock, and logs refused connections at most once a second.
// Doing it here, rather than with a socket deadline per frame, keeps
// timers off the per-request path.
func (s *Server) sweep(ctx context.Context) {
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	var logged time.Time
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
			if tick.Sub(logged) >= refusalLogInterval && s.logRefused() {
				logged = tick
			}
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
			up := s.eng.Ping(pctx) == nil
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

// start counts nc against MaxConns and serves it on a goroutine of its
// own, unless the server already has MaxConns connections.
func (s *Server) start(nc net.Conn, httpOnly bool) bool {
	s.mu.Lock()
	if s.open >= s.cfg.MaxConns {
		s.mu.Unlock()
		return false
	}
	s.open++
	s.sniffing[nc] = struct{}{}
	s.mu.Unlock()
	s.wg.Add(1)
	go s.serveConn(nc, httpOnly)
	return true
}

// serveConn serves nc, a connection counted by start, until it closes.
//
// Its goroutine's stack matters more than its code: an idle TLV
// connection is parked in a read at the bottom of serveConn → serveTLV →
// conn.serve → conn.read, for minutes, and Go keeps the stack size the
// busiest moment of that goroutine needed. So the frames below a request
// stay small: the sniff returns before the connection is served, and the
// handling of a frame is a call of its own. A parked reader then uses about 1.2 KiB of stack, and the
// deepest request path fits in 4 KiB; with the sniff and the set-up still
// on the stack it used 2.4 KiB, every purchase grew the stack to 8 KiB,
// and the garbage collector could not shrink it back (it halves a stack
// only when under a quarter of it is used). TestIdleConnStack keeps this.
func (s *Server) serveConn(nc net.Conn, httpOnly bool) {
	defer s.wg.Done()
	pc := s.sniff(nc)
	if pc == nil {
		return
	}
	if httpOnly || isHTTPMethodByte(pc.first) {
		s.serveHTTP(pc)
		return
	}
	s.serveTLV(pc)
	s.release()
}

// release gives back the place of a connection that closed.
func (s *Server) release() {
	s.mu.Lock()
	s.open--
	s.mu.Unlock()
}

// sniff waits for the connection's first byte (after the TLS handshake,
// if any), each within its own deadline, and returns the connection with
// that byte to be read again, which tells the protocol: a TLV request
// type, or an HTTP method. When no byte comes it closes the connection,
// gives back its place and returns nil. It is not inlined: its frame must
// not stay under the connection's (see serveConn).
//
//go:noinline
func (s *Server) sniff(nc net.Conn) *sniffedConn {
	pc, err := s.firstBytes(nc)
	s.mu.Lock()
	delete(s.sniffing, nc)
	s.mu.Unlock()
	if err == nil {
		return pc
	}
	if s.draining.Load() {
		// Cut short by the shutdown: the client may be sending, and a
		// reset could hide the clean close from it.
		linger(nc)
	} else {
		s.log.Debug().Err(err).Str("remote", nc.RemoteAddr().String()).Msg("closed before its first request")
		nc.Close()
	}
	s.release()
	return nil
}

// firstBytes reads what nc sent first, at least one byte, after the TLS
// handshake if nc is a TLS connection, and returns nc with those bytes to
// be read again. The handshake has HandshakeTimeout; the first byte
// FirstFrameTimeout, or IdleTimeout when that is shorter: a connection
// that opens early and waits for the sale must send PINGs. It reads as
// much as one read gives (the first request, usually) into the buffer a
// TLV connection then reads through, so sniffing costs no system call of
// its own and no buffer of its own.
func (s *Server) firstBytes(nc net.Conn) (*sniffedConn, error) {
	if tc, ok := nc.(*tls.Conn); ok {
		tc.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
		if err := tc.Handshake(); err != nil {
			return nil, fmt.Errorf("tls handshake: %w", err)
		}
		tc.SetWriteDeadline(time.Time{})
	}
	nc.SetReadDeadline(time.Now().Add(min(s.cfg.FirstFrameTimeout, s.cfg.IdleTimeout)))
	in := bufio.NewReaderSize(nc, readBufferSize)
	first, err := in.Peek(1)
	if err != nil {
		return nil, fmt.Errorf("first byte: %w", err)
	}
	// A deadline set by a shutdown meanwhile must stay.
	if !s.draining.Load() {
		nc.SetReadDeadline(time.Time{})
	}
	return &sniffedConn{Conn: nc, in: in, first: first[0]}, nil
}

// isHTTPMethodByte reports whether b can start an HTTP/1 request line:
// every method is an upper-case token (GET, POST, …). TLV request types
// are 0x01 to 0x03, far from it.
func isHTTPMethodByte(b byte) bool { return 'A' <= b && b <= 'Z' }

// sniffedConn is a connection whose first bytes were read to tell its
// protocol; Read gives them back first. A TLV connection takes its
// buffer over instead (see takeReader).
type sniffedConn struct {
	net.Conn
	in     *bufio.Reader // holds what was read while sniffing, until given back
	first  byte          // the first byte the client sent
	closed func()        // if set, called once on the first Close
	once   sync.Once
}

func (c *sniffedConn) Read(p []byte) (int, error) {
	if c.in != nil {
		if c.in.Buffered() > 0 {
			return c.in.Read(p)
		}
		c.in = nil // all given back: the buffer goes
	}
	return c.Conn.Read(p)
}

// takeReader returns the buffered reader of the connection, holding what
// was read while sniffing, for the caller to read the connection through
// from now on; Read then reads the connection directly.
func (c *sniffedConn) takeReader() *bufio.Reader {
	in := c.in
	c.in = nil
	return in
}

// CloseWrite half-closes the connection when the one below can.
func (c *sniffedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

func (c *sniffedConn) Close() error {
	err := c.Conn.Close()
	if c.closed != nil {
		c.once.Do(c.closed)
	}
	return err
}

// serveTLV serves a TLV connection until it closes.
func (s *Server) serveTLV(pc *sniffedConn) {
	c := s.newConn(pc)
	s.mu.Lock()
	s.conns[c] = struct{}{}
	if s.draining.Load() {
		// drain has already stopped the others: this one answers what it
		// has read, if anything, and closes the same way.
		c.stopReading()
	}
	s.mu.Unlock()
	c.serve()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// newConn sets up a TLV connection.
func (s *Server) newConn(pc *sniffedConn) *conn {
	c := &conn{srv: s, nc: pc, in: pc.takeReader(), id: s.nextID.Add(1)}
	if sc, ok := pc.Conn.(syscall.Conn); ok && rawWrites {
		c.raw, _ = sc.SyscallConn() // nil on error: writes go through nc
		c.try.writeSome = c.writeSome
	}
	return c
}

// busyResponse is the answer of a connection past MaxConns.
var busyResponse = wire.Response{Status: wire.StatusError.String(), Code: engine.CodeBusy, Error: "server busy"}

// What a connection past MaxConns gets before it is closed: on a TLV (or
// shared) port an ERROR in a frame of type 0x80, the answer to no request,
// since its protocol is not known yet; on an HTTP-only port a 503.
var (
	busyFrame = wire.AppendFrame(nil, wire.ResponseBit, wire.AppendResponse(nil, &busyResponse))
	busyHTTP  = appendHTTPRefusal(nil, &busyResponse)
)

// Refusal bounds: how long the BUSY frame may take to be written, how many
// refused connections linger at once before they close, and how often a
// refusal is logged.
const (
	refuseWriteTimeout = 50 * time.Millisecond
	maxLingering       = 1024
	refusalLogInterval = time.Second
)

// refusedConn is a refused connection waiting to be closed.
type refusedConn struct {
	nc net.Conn
	at time.Time // when to close it
}

// refuse tells a connection over the cap that the server is busy, on the
// accept loop itself: the frame fits any fresh socket's buffer, so the
// write does not wait. The connection is half-closed at once and closed by
// closeRefused a little later, so the frame is not lost to a reset. A TLS
// connection is closed without an answer: a handshake for a refusal would
// cost what the cap is there to save. Refusals are logged by sweep, at
// most once a second, with their count.
func (s *Server) refuse(nc net.Conn, httpOnly bool) {
	s.refused.Add(1)
	if _, ok := nc.(*tls.Conn); ok {
		nc.Close()
		return
	}
	answer := busyFrame
	if httpOnly {
		answer = busyHTTP
	}
	nc.SetWriteDeadline(time.Now().Add(refuseWriteTimeout))
	if _, err := nc.Write(answer); err != nil {
		nc.Close()
		return
	}
	if cw, ok := nc.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	select {
	case s.closer <- refusedConn{nc: nc, at: time.Now().Add(lingerTimeout)}:
	default:
		nc.Close()
	}
}

// closeRefused closes refused connections once their linger is over, in
// the order they were refused, until the closer channel is closed; then it
// closes the rest at once.
func (s *Server) closeRefused() {
	for rc := range s.closer {
		if !s.draining.Load() {
			time.Sleep(time.Until(rc.at))
		}
		rc.nc.Close()
	}
}

// logRefused logs the connections refused since the last call, if any,
// and reports whether it did.
func (s *Server) logRefused() bool {
	n := s.refused.Swap(0)
	if n == 0 {
		return false
	}
	s.log.Warn().Int64("refused", n).Int("max_conns", s.cfg.MaxConns).Msg("server busy: connections refused")
	return true
}

// drain makes every connection stop reading, waits for their answers to be
// written, and cuts whatever is left after DrainTimeout.
func (s *Server) drain() {
	s.draining.Store(true)
	s.drained()
	s.httpLn.Close() // in case http.Server.Serve never ran
	s.mu.Lock()
	n := len(s.conns)
	for c := range s.conns {
		c.stopReading()
	}
	for nc := range s.sniffing {
		nc.SetReadDeadline(time.Now())
	}
	s.mu.Unlock()
	s.log.Info().Int("connections", n).Dur("timeout", s.cfg.DrainTimeout).Msg("draining")

	timeout, cancel := context.WithTimeout(context.Background(), s.cfg.DrainTimeout)
	defer cancel()
	httpDone := make(chan error, 1)
	go func() { httpDone <- s.http.Shutdown(timeout) }()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-timeout.Done():
		s.mu.Lock()
		s.log.Warn().Int("connections", len(s.conns)).Msg("drain timeout: closing connections with answers pending")
		for c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
		<-done
	}
	if err := <-httpDone; err != nil {
		s.log.Warn().Err(err).Msg("drain timeout: closing HTTP connections with answers pending")
		s.http.Close()
	}
}
