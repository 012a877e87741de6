package transport

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/defaults"
)

// Batcher is a Redis that coalesces the scripts of every connection into
// pipelined batches on a few dedicated Redis connections. Each connection
// has a writer, which takes whatever is queued (up to MaxBatch), sends it
// and flushes at once — there is no timer, so a lone request is not
// delayed — and a reader, which matches the replies to their callers in
// order. While Redis works on one batch the next one is already being
// written, so a handful of connections carry the whole load.
//
// A failure touches only the calls it belongs to: an error reply fails its
// own call, NOSCRIPT sends that call through the pool (which reloads the
// script), and a broken connection fails the calls it had taken — as
// "outcome unknown" once they were sent — while the connection is dialled
// again. Ping, Scan and Subscribe go to the pool.
type Batcher struct {
	pool *Pool
	cfg  BatcherConfig

	queue chan *call
	stop  chan struct{}
	wg    sync.WaitGroup
	calls sync.Pool
}

// BatcherConfig sizes a Batcher. Zero fields take the defaults.
type BatcherConfig struct {
	// Conns is the number of dedicated pipelined connections.
	Conns int
	// MaxBatch caps the scripts sent in one flush.
	MaxBatch int
	// Queue bounds the calls waiting for a connection; past it callers wait
	// (until their context ends).
	Queue int
	// Observer, if set, hears of every batch read back (for metrics).
	Observer Observer
}

// Observer hears what the batcher does, for metrics. Its methods run on the
// batcher's goroutines and must not block.
type Observer interface {
	// Batch is called once per batch whose replies were read: how many
	// scripts it carried, and the time from its flush to its last reply.
	Batch(size int, rtt time.Duration)
}

// QueueDepth returns how many calls wait for a connection now.
func (b *Batcher) QueueDepth() int { return len(b.queue) }

// Batcher defaults.
const (
	DefaultBatchConns = 2
	DefaultMaxBatch   = 512
	DefaultBatchQueue = 8192
	// maxInflightBatches bounds the batches a connection has sent and not
	// yet read: the pipeline's depth.
	maxInflightBatches = 64
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
	// cb, for EvalAsync, receives the reply instead of done; the call must
	// leave unsent by deadline (Unix ns).
	cb       func(any, error)
	deadline int64
}

const (
	callQueued int32 = iota
	callSent
	callAbandoned
)

// NewBatcher starts a Batcher on the pool's address, durability and
// timeout. Close stops it.
func NewBatcher(pool *Pool, cfg BatcherConfig) *Batcher {
	defaults.Set(&cfg.Conns, DefaultBatchConns)
	defaults.Set(&cfg.MaxBatch, DefaultMaxBatch)
	defaults.Set(&cfg.Queue, DefaultBatchQueue)
	b := &Batcher{
		pool:  pool,
		cfg:   cfg,
		queue: make(chan *call, cfg.Queue),
		stop:  make(chan struct{}),
	}
	b.calls.New = func() any { return &call{done: make(chan struct{}, 1)} }
	for range cfg.Conns {
		b.wg.Add(1)
		go b.run()
	}
	return b
}

// Close stops the batcher's connections; calls still queued fail. It does
// not close the pool.
func (b *Batcher) Close() error {
	close(b.stop)
	b.wg.Wait()
	for {
		select {
		case c := <-b.queue:
			if c.state.CompareAndSwap(callQueued, callSent) {
				c.finish(nil, fmt.Errorf("%w: batcher closed", engine.ErrUnavailable))
			}
		default:
			return nil
		}
	}
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

// Eval implements Redis: the script joins the next batch. If ctx ends
// first, a call that was never sent fails with engine.ErrUnavailable (it did not
// run); one already sent fails with engine.ErrOutcomeUnknown.
func (b *Batcher) Eval(ctx context.Context, s *engine.Script, keysAndArgs ...any) (any, error) {
	c := b.calls.Get().(*call)
	c.s, c.args = s, keysAndArgs
	c.state.Store(callQueued)
	select {
	case b.queue <- c:
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

// EvalAsync implements engine.AsyncRedis: the script joins the next batch and done
// gets its reply from the batcher's reader. A call that cannot be queued
// (the queue is full), or is still unsent at deadline, fails with
// engine.ErrUnavailable: it did not run.
func (b *Batcher) EvalAsync(deadline time.Time, s *engine.Script, done func(any, error), keysAndArgs ...any) {
	c := &call{s: s, args: keysAndArgs, cb: done, deadline: deadline.UnixNano()}
	select {
	case b.queue <- c:
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

// errUnsent fails calls that never left.
var errUnsent = fmt.Errorf("%w: no Redis connection in time", engine.ErrUnavailable)

// run keeps one pipelined connection going until Close.
func (b *Batcher) run() {
	defer b.wg.Done()
	backoff := 10 * time.Millisecond
	down := false // the last dial failed: Redis is unreachable
	for {
		select {
		case <-b.stop:
			return
		default:
		}
		// While Redis is unreachable, callers hear so at once rather than
		// waiting out a dial or a backoff.
		dialled := make(chan struct{})
		if down {
			go b.refuseUntil(dialled)
		}
		ctx, cancel := context.WithTimeout(context.Background(), b.pool.dialTimeout)
		conn, err := b.pool.dial(ctx, redis.DialWriteTimeout(b.pool.timeout))
		cancel()
		if err != nil {
			if !down {
				down = true
				go b.refuseUntil(dialled)
			}
			select {
			case <-b.stop:
			case <-time.After(backoff):
			}
			close(dialled)
			backoff = min(2*backoff, time.Second)
			continue
		}
		close(dialled)
		down, backoff = false, 10*time.Millisecond
		b.serve(conn)
		conn.Close()
	}
}

// refuseUntil fails every call that arrives until done closes: it runs
// while no connection to Redis can be made. The calls did not run.
func (b *Batcher) refuseUntil(done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		case c := <-b.queue:
			if c.state.CompareAndSwap(callQueued, callSent) {
				c.finish(nil, errUnsent)
			}
		}
	}
}

// batch is what one flush sent: its calls, and whether a durability wait
// follows them.
type batch struct {
	calls []*call
	wait  bool
	sent  time.Time // when it was flushed
}

// serve writes batches on conn until Close or until the connection fails.
func (b *Batcher) serve(conn redis.Conn) {
	inflight := make(chan batch, maxInflightBatches)
	broken := make(chan struct{})
	go b.read(conn, inflight, broken)
	defer close(inflight)
	for {
		var first *call
		select {
		case first = <-b.queue:
		case <-broken:
			return
		case <-b.stop:
			return
		}
		bt := batch{calls: make([]*call, 0, 16)}
		now := time.Now().UnixNano()
		bt.add(first, now)
	drain:
		for len(bt.calls) < b.cfg.MaxBatch {
			select {
			case c := <-b.queue:
				bt.add(c, now)
			default:
				break drain
			}
		}
		if len(bt.calls) == 0 {
			continue
		}
		var err error
		for _, c := range bt.calls {
			if err = c.s.SendHash(conn, c.args...); err != nil {
				break
			}
			bt.wait = bt.wait || !c.s.ReadOnly
		}
		bt.wait = bt.wait && b.pool.durability.Enabled()
		if err == nil && bt.wait {
			err = b.pool.durability.send(conn)
		}
		if err == nil {
			err = conn.Flush()
			bt.sent = time.Now()
		}
		if err != nil {
			// Part of the batch may have left: none of it is certain.
			bt.fail(fmt.Errorf("%w: %w: %w", engine.ErrUnavailable, engine.ErrOutcomeUnknown, err))
			return
		}
		select {
		case inflight <- bt:
		case <-broken:
			bt.fail(fmt.Errorf("%w: %w: connection lost", engine.ErrUnavailable, engine.ErrOutcomeUnknown))
			return
		}
	}
}

// add takes c into the batch unless its caller gave up first or its
// deadline passed while it waited.
func (bt *batch) add(c *call, now int64) {
	if !c.state.CompareAndSwap(callQueued, callSent) {
		return
	}
	if c.deadline != 0 && now > c.deadline {
		c.finish(nil, errUnsent)
		return
	}
	bt.calls = append(bt.calls, c)
}

func (bt batch) fail(err error) {
	for _, c := range bt.calls {
		c.finish(nil, err)
	}
}

// read matches replies to calls, batch by batch. On a broken connection it
// fails what is in flight and closes broken; the writer then stops.
func (b *Batcher) read(conn redis.Conn, inflight <-chan batch, broken chan<- struct{}) {
	replies := make([]any, 0, 16)
	errs := make([]error, 0, 16)
	var lost error
	for bt := range inflight {
		if lost != nil {
			bt.fail(lost)
			continue
		}
		replies, errs = replies[:0], errs[:0]
		for range bt.calls {
			v, err := redis.ReceiveWithTimeout(conn, b.pool.timeout)
			if err != nil && !isReply(err) {
				lost = fmt.Errorf("%w: %w: %w", engine.ErrUnavailable, engine.ErrOutcomeUnknown, err)
				break
			}
			replies, errs = append(replies, v), append(errs, err)
		}
		var waitErr error
		if lost == nil && bt.wait {
			w, err := redis.ReceiveWithTimeout(conn, b.pool.timeout)
			switch {
			case err != nil && !isReply(err):
				lost = fmt.Errorf("%w: %w: %w", engine.ErrUnavailable, engine.ErrOutcomeUnknown, err)
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
		}
		for i, c := range bt.calls {
			switch {
			case i >= len(replies):
				c.finish(nil, lost)
			case isNoScript(errs[i]):
				// Redis forgot the script (restart, SCRIPT FLUSH): the pool
				// loads it again and runs this call once more. NOSCRIPT means
				// it did not run, so that cannot sell twice.
				go b.retry(c)
			case errs[i] != nil:
				c.finish(nil, classify(errs[i]))
			case waitErr != nil && !c.s.ReadOnly:
				c.finish(replies[i], waitErr)
			default:
				c.finish(replies[i], nil)
			}
		}
		if lost != nil {
			close(broken)
			conn.Close()
		}
	}
}

func (b *Batcher) retry(c *call) {
	ctx, cancel := context.WithTimeout(context.Background(), b.pool.timeout)
	defer cancel()
	c.finish(b.pool.Eval(ctx, c.s, c.args...))
}

// isReply reports whether err is an error reply from Redis (the connection
// is fine) rather than a network failure.
func isReply(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
}
