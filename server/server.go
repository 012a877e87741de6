package server

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/defaults"
	"github.com/flashsale/flashsale/internal/metrics"
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
	ConnRate engine.Rate
	// Logger receives the server's logs; each connection gets a sub-logger.
	Logger zerolog.Logger
	// Metrics, if set, records requests and connections.
	Metrics *metrics.Metrics
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

func (c Config) withDefaults() Config {
	defaults.Set(&c.MaxPayload, wire.DefaultMaxPayload)
	defaults.Set(&c.MaxInFlight, DefaultMaxInFlight)
	defaults.Set(&c.RequestTimeout, DefaultRequestTimeout)
	defaults.Set(&c.DrainTimeout, DefaultDrainTimeout)
	defaults.Set(&c.WriteTimeout, DefaultWriteTimeout)
	defaults.Set(&c.FrameTimeout, DefaultFrameTimeout)
	defaults.Set(&c.IdleTimeout, DefaultIdleTimeout)
	defaults.Set(&c.MaxConns, DefaultMaxConns)
	return c
}

// Server answers wire protocol requests with an engine.Engine.
type Server struct {
	eng *engine.Engine
	cfg Config
	log zerolog.Logger

	nextID  atomic.Uint64
	redisUp atomic.Bool  // what PING reports; see watchRedis
	now     atomic.Int64 // a coarse clock (Unix ns) kept by sweep, for deadlines
	mu      sync.Mutex
	conns   map[*conn]struct{}
	wg      sync.WaitGroup
}

// New returns a Server for eng.
func New(eng *engine.Engine, cfg Config) *Server {
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
	s.redisUp.Store(s.eng.Redis().Ping(ctx) == nil)
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
			up := s.eng.Redis().Ping(pctx) == nil
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
	&wire.Response{Status: engine.StatusError.String(), Code: engine.CodeBusy, Error: "server busy"}))

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
