package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/rs/zerolog"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/defaults"
)

// PoolConfig sizes the connection pool of a Pool.
type PoolConfig struct {
	// Addr is host:port, or a redis:// URL (with user, password, database).
	Addr string
	// MaxActive caps open connections; callers wait for one when all are busy.
	MaxActive int
	// MaxIdle is how many idle connections stay open and warm.
	MaxIdle int
	// DialTimeout bounds connecting to Redis.
	DialTimeout time.Duration
	// Timeout bounds one command when the caller's context has no
	// deadline.
	Timeout time.Duration
	// Durability is what a write waits for before it is acknowledged.
	Durability Durability
	// Sentinel, when it names sentinels, finds the primary through them
	// and follows its failovers (see SentinelConfig); Addr then gives only
	// the credentials of a redis:// URL.
	Sentinel SentinelConfig
	// Dial opens the TCP connections (nil: a net.Dialer with DialTimeout
	// and TCP keep-alive every KeepAlive). Tests inject failures with it.
	Dial DialFunc
	// Logger hears of the failures no caller is told of (a batch
	// connection that cannot dial or is lost, a cluster slot map that
	// could not be read again), each cause at most once a second. A
	// Batcher on the pool and a Cluster configured with it log there too.
	// The zero Logger logs nothing.
	Logger zerolog.Logger
}

// DialFunc opens a network connection, as net.Dialer.DialContext does.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// KeepAlive is the TCP keep-alive period of every connection to Redis: an
// idle connection sends a probe this often, so a NAT or load balancer does
// not forget it, and a peer that vanished without a FIN or RST (a machine
// lost, a cable cut) is noticed by the kernel instead of being written to.
// It does not keep Redis's own idle `timeout` away: that counts commands,
// not TCP segments, and the batcher's PING handles it.
const KeepAlive = 15 * time.Second

// Defaults for PoolConfig fields left at zero.
const (
	DefaultMaxActive   = 128
	DefaultMaxIdle     = 64
	DefaultDialTimeout = 2 * time.Second
	DefaultTimeout     = 2 * time.Second
)

// Pool is a Redis reached through a redigo connection pool.
type Pool struct {
	// pool is the connections to the current target; a move to another
	// primary replaces it (see dropConns).
	pool        atomic.Pointer[redis.Pool]
	newPool     func() *redis.Pool
	timeout     time.Duration
	dialTimeout time.Duration
	durability  Durability
	addr        string // PoolConfig.Addr
	target      atomic.Pointer[target]
	sentinel    *sentinel // nil without sentinels
	lastDrop    atomic.Int64
	netDial     DialFunc
	log         zerolog.Logger // PoolConfig.Logger, with the address
	refusalLog  *refusalLogs
	// lastRefusal is the node's last refusal, until a call succeeds.
	lastRefusal atomic.Pointer[refusalSeen]
	// maxClientsLogging is set while logMaxClients runs.
	maxClientsLogging atomic.Bool
}

var _ engine.Redis = (*Pool)(nil)

// NewPool returns a Pool for cfg. It does not connect; call Ping or Load to
// find out whether Redis answers.
func NewPool(cfg PoolConfig) *Pool {
	cfg = cfg.withDefaults()
	p := &Pool{
		timeout:     cfg.Timeout,
		dialTimeout: cfg.DialTimeout,
		durability:  cfg.Durability,
		addr:        cfg.Addr,
		netDial:     cfg.Dial,
		log:         cfg.Logger.With().Str("redis_addr", logAddr(cfg.logAddr())).Logger(),
	}
	p.refusalLog = newRefusalLogs(p.log)
	if p.netDial == nil {
		p.netDial = (&net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: KeepAlive}).DialContext
	}
	p.newPool = func() *redis.Pool { return p.redisPool(cfg) }
	p.pool.Store(p.newPool())
	p.target.Store(&target{addr: cfg.Addr})
	if cfg.Sentinel.Enabled() {
		p.target.Store(&target{moved: make(chan struct{})}) // no primary named yet
		p.sentinel = newSentinel(cfg.Sentinel, p.netDial, p.log, p.moveTo)
	}
	return p
}

// redisPool is a redigo pool of connections to the pool's target.
func (p *Pool) redisPool(cfg PoolConfig) *redis.Pool {
	return &redis.Pool{
		MaxActive:   cfg.MaxActive,
		MaxIdle:     cfg.MaxIdle,
		IdleTimeout: 4 * time.Minute,
		Wait:        true,
		DialContext: func(ctx context.Context) (redis.Conn, error) {
			c, _, err := p.dial(ctx, p.netDial, redis.DialWriteTimeout(cfg.Timeout), redis.DialReadTimeout(cfg.Timeout))
			return c, err
		},
		TestOnBorrow: func(c redis.Conn, idleSince time.Time) error {
			// Redis's `timeout` (1 s at the least) may have closed a
			// connection idle longer than that.
			if time.Since(idleSince) < DefaultIdleProbe {
				return nil
			}
			_, err := c.Do("PING")
			return err
		},
	}
}

// dropConns closes the pooled connections: idle ones now, those in use
// when their call returns them. New calls dial the current target.
func (p *Pool) dropConns() { p.pool.Swap(p.newPool()).Close() }

// dial opens one Redis connection to the current target through netDial
// (AUTH and SELECT of a redis:// address included) and checks it with
// hello and, with sentinels, checkPrimary. It returns the target dialled.
func (p *Pool) dial(ctx context.Context, netDial DialFunc, extra ...redis.DialOption) (redis.Conn, *target, error) {
	t, err := p.currentTarget(ctx)
	if err != nil {
		return nil, nil, err
	}
	opts := append([]redis.DialOption{redis.DialConnectTimeout(p.dialTimeout), redis.DialContextFunc(netDial)}, extra...)
	var c redis.Conn
	if strings.HasPrefix(t.addr, "redis://") || strings.HasPrefix(t.addr, "rediss://") {
		c, err = redis.DialURLContext(ctx, t.addr, opts...)
	} else {
		c, err = redis.DialContext(ctx, "tcp", t.addr, opts...)
	}
	if err != nil {
		if p.sentinel != nil {
			p.sentinel.again() // a primary that died may have been replaced
		}
		return nil, nil, err
	}
	// The check is bounded like a command, and by the dial's deadline: a
	// frozen Redis whose kernel still accepts connections must not hold
	// a lane longer than a failed dial would.
	d := p.timeout
	if dl, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(dl))
	}
	d = max(d, time.Millisecond)
	err = hello(c, d)
	if err == nil && p.sentinel != nil {
		if err = checkPrimary(c, d, t.addr); err != nil {
			p.sentinel.again()
		}
	}
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, t, nil
}

// logAddr is the address the pool's logs name: Addr, or the sentinels'
// master.
func (c PoolConfig) logAddr() string {
	if c.Sentinel.Enabled() {
		return "sentinel:" + c.Sentinel.Master
	}
	return c.Addr
}

func (c PoolConfig) withDefaults() PoolConfig {
	defaults.Set(&c.MaxActive, DefaultMaxActive)
	defaults.Set(&c.MaxIdle, min(DefaultMaxIdle, c.MaxActive))
	defaults.Set(&c.DialTimeout, DefaultDialTimeout)
	defaults.Set(&c.Timeout, DefaultTimeout)
	return c
}

// Close closes the pool's connections, and stops following the
// sentinels.
func (p *Pool) Close() error {
	if p.sentinel != nil {
		p.sentinel.close()
	}
	return p.pool.Load().Close()
}

// Ping checks that Redis answers within the pool's timeout, and that it
// has refused no script call of late (see refusalMemory): a node out of
// memory, or a replica, answers PING but serves no purchase.
func (p *Pool) Ping(ctx context.Context) error {
	_, err := p.do(ctx, func(c redis.Conn, d time.Duration) (any, error) {
		return redis.DoWithTimeout(c, d, "PING")
	})
	if err != nil {
		return err
	}
	return p.recentRefusal()
}

// Scan implements Redis with SCAN MATCH, one page per pooled call.
func (p *Pool) Scan(ctx context.Context, match string, fn func(key string) error) error {
	cursor := "0"
	for {
		var keys []string
		_, err := p.do(ctx, func(c redis.Conn, d time.Duration) (any, error) {
			v, err := redis.Values(redis.DoWithTimeout(c, d, "SCAN", cursor, "MATCH", match, "COUNT", 1000))
			if err == nil {
				_, err = redis.Scan(v, &cursor, &keys)
			}
			return nil, err
		})
		if err != nil {
			return err
		}
		for _, k := range keys {
			if err := fn(k); err != nil {
				return err
			}
		}
		if cursor == "0" {
			return nil
		}
	}
}

// subscribeHealth is how often a subscription pings Redis, and how long
// it waits for any traffic before it declares the connection dead.
const subscribeHealth = 15 * time.Second

// Subscribe implements Redis on a dedicated connection (a subscribed
// connection cannot go back to the pool). It pings Redis periodically, so
// a dead connection is noticed within a few health intervals; with
// sentinels it ends when the primary moves.
func (p *Pool) Subscribe(ctx context.Context, channel string, fn func(payload []byte)) error {
	c, t, err := p.dial(ctx, p.netDial, redis.DialWriteTimeout(p.timeout))
	if err != nil {
		return fmt.Errorf("%w: %w", engine.ErrUnavailable, err)
	}
	return subscribe(ctx, c, channel, t.moved, fn)
}

// subscribe receives the messages of channel on c and hands them to fn
// until ctx ends (nil), moved closes or c fails. It closes c.
func subscribe(ctx context.Context, c redis.Conn, channel string, moved <-chan struct{}, fn func(payload []byte)) error {
	psc := redis.PubSubConn{Conn: c}
	defer psc.Close()
	if err := psc.Subscribe(channel); err != nil {
		return fmt.Errorf("%w: %w", engine.ErrUnavailable, err)
	}
	// This goroutine is the connection's only writer after Subscribe, as
	// redigo requires: it pings, and closes the connection when ctx ends,
	// which ends the receive loop below.
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(subscribeHealth)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				c.Close()
				return
			case <-moved:
				c.Close()
				return
			case <-t.C:
				if psc.Ping("") != nil {
					return
				}
			}
		}
	}()
	for {
		switch m := psc.ReceiveWithTimeout(3 * subscribeHealth).(type) {
		case redis.Message:
			fn(m.Data)
		case redis.Subscription:
			if m.Count == 0 {
				return nil
			}
		case error:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("%w: subscription to %s: %w", engine.ErrUnavailable, channel, m)
		}
	}
}

// Load runs SCRIPT LOAD for each script, so the first purchases need no
// reload. It is also the start-up check that Redis answers and runs Lua.
func (p *Pool) Load(ctx context.Context, scripts ...*engine.Script) error {
	_, err := p.do(ctx, func(c redis.Conn, d time.Duration) (any, error) {
		for _, s := range scripts {
			if err := loadScript(c, s); err != nil {
				return nil, err
			}
		}
		return nil, nil
	})
	return err
}

// Eval implements Redis: EVALSHA, and on NOSCRIPT one EVAL of the script's
// text on the same connection, which also caches it again. NOSCRIPT means
// the script did not run, so the retry cannot apply a purchase twice. With a Durability set,
// a script that may write is followed, in the same round trip and on the
// same connection, by WAIT (or WAITAOF); when that falls short the script's
// reply is returned with an error wrapping engine.ErrNotDurable.
func (p *Pool) Eval(ctx context.Context, s *engine.Script, keysAndArgs ...any) (any, error) {
	v, err := p.eval(ctx, s, keysAndArgs)
	if err == nil {
		p.served()
	}
	return v, err
}

// eval is Eval without the note of a call served.
func (p *Pool) eval(ctx context.Context, s *engine.Script, keysAndArgs []any) (any, error) {
	return p.do(ctx, func(c redis.Conn, d time.Duration) (any, error) {
		wait := p.durability.Enabled() && !s.ReadOnly
		run := func(s *engine.Script, keysAndArgs []any) (any, error) {
			v, err := p.evalSHA(c, d, sendScript, s, keysAndArgs, wait)
			if isNoScript(err) {
				// EVAL (the script's text) loads and runs it in one step: a
				// SCRIPT FLUSH landing between a SCRIPT LOAD and a second
				// EVALSHA would fail the retry with NOSCRIPT again.
				v, err = p.evalSHA(c, d, sendScriptText, s, keysAndArgs, wait)
			}
			return v, err
		}
		v, err := run(s, keysAndArgs)
		if loneRefused(s, err) {
			v, err = run(asMergedOne(s, keysAndArgs))
		}
		return v, err
	})
}

// evalSHA sends s with send (sendScript, or sendScriptText for the retry) and
// the durability wait, and waits at most d for the replies. A failure
// after the script was sent is an engine.ErrOutcomeUnknown: Redis may have run it.
func (p *Pool) evalSHA(c redis.Conn, d time.Duration, send scriptSender, s *engine.Script, keysAndArgs []any, wait bool) (any, error) {
	if err := send(c, s, keysAndArgs...); err != nil {
		return nil, err
	}
	if wait {
		if err := p.durability.send(c, p.durability.Timeout); err != nil {
			return nil, err
		}
	}
	if err := c.Flush(); err != nil {
		// Part of it may have left whole and run.
		return nil, fmt.Errorf("%w: %w", engine.ErrOutcomeUnknown, err)
	}
	v, err := redis.ReceiveWithTimeout(c, d)
	if err != nil && !isReply(err) {
		return nil, fmt.Errorf("%w: %w", engine.ErrOutcomeUnknown, err)
	}
	if wait {
		w, werr := redis.ReceiveWithTimeout(c, d)
		if werr == nil {
			werr = p.durability.check(w)
		}
		if werr != nil && err == nil {
			return v, fmt.Errorf("%w: %w", engine.ErrNotDurable, werr)
		}
	}
	return v, err
}

// do runs fn on a pooled connection with a timeout taken from ctx (or the
// pool's default), and classifies its error.
func (p *Pool) do(ctx context.Context, fn func(redis.Conn, time.Duration) (any, error)) (any, error) {
	d := p.timeout
	if dl, ok := ctx.Deadline(); ok {
		d = time.Until(dl) // the caller knows best: verify may need longer
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", engine.ErrUnavailable, err)
	}
	if d <= 0 {
		return nil, fmt.Errorf("%w: %w", engine.ErrUnavailable, context.DeadlineExceeded)
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	rp := p.pool.Load()
	c, err := rp.GetContext(ctx)
	if err != nil && p.pool.Load() != rp {
		c, err = p.pool.Load().GetContext(ctx) // the primary moved meanwhile
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", engine.ErrUnavailable, err)
	}
	defer c.Close()
	v, err := fn(c, max(time.Until(deadlineOf(ctx)), time.Millisecond))
	err = classify(err)
	if r, ok := err.(*Refusal); ok {
		p.refused(r)
	}
	return v, err
}

func deadlineOf(ctx context.Context) time.Time {
	dl, _ := ctx.Deadline()
	return dl
}

// isNoScript reports whether err is the NOSCRIPT refusal (see refusals).
func isNoScript(err error) bool {
	if err == nil { // (before re, which escapes: no allocation for success)
		return false
	}
	var re redis.Error
	if !errors.As(err, &re) {
		return false
	}
	c, ok := causeOf(string(re))
	return ok && c == CauseNoScript
}

// classify wraps errors that mean "Redis could not answer" in
// engine.ErrUnavailable, and a refusal (see refusalOf) in a *Refusal; an
// error reply from a script that ran stays as it is.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if r, ok := refusalOf(err); ok {
		return r
	}
	var re redis.Error
	if errors.As(err, &re) {
		for _, p := range []string{"TRYAGAIN", "CLUSTERDOWN"} {
			if strings.HasPrefix(string(re), p) {
				return fmt.Errorf("%w: %w", engine.ErrUnavailable, err)
			}
		}
		return err
	}
	return fmt.Errorf("%w: %w", engine.ErrUnavailable, err)
}
