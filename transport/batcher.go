package transport

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

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
	// merges, retries and refusals are cfg.Observer as a MergeObserver,
	// a RetryObserver and a RefusalObserver, or nil.
	merges   MergeObserver
	retries  RetryObserver
	refusals RefusalObserver
	// dialLog and lostLog log, each at most once a second, the lanes that
	// could not dial and the connections lost (see PoolConfig.Logger).
	dialLog, lostLog zerolog.Logger
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
	// RetryObserver, of every call sent again after NOSCRIPT; if it is a
	// RefusalObserver, of every refusal (see Cause).
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
	// expiry, for EvalAsync, fails the call at its deadline if it is
	// still queued then (see expire).
	expiry *time.Timer
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
	b := &Batcher{pool: pool, cfg: cfg, stop: make(chan struct{}), dialLog: everySecond(pool.log), lostLog: everySecond(pool.log)}
	b.merges, _ = cfg.Observer.(MergeObserver)
	b.retries, _ = cfg.Observer.(RetryObserver)
	b.refusals, _ = cfg.Observer.(RefusalObserver)
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

// Ping implements Redis through the pool (see Pool.Ping), and fails too
// while every lane that runs writes is out.
func (b *Batcher) Ping(ctx context.Context) error {
	if err := b.writes.out(); err != nil {
		return err
	}
	return b.pool.Ping(ctx)
}

// refused counts and logs r.
func (b *Batcher) refused(r *Refusal) {
	b.pool.refused(r)
	if b.refusals != nil {
		b.refusals.Refused(r.Cause)
	}
}

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
// wait), or is still unsent at deadline, fails with engine.ErrUnavailable
// (at the deadline, whatever the lanes are doing): it did not run. A call sent whose reply has not come by deadline fails
// with engine.ErrOutcomeUnknown.
func (b *Batcher) EvalAsync(deadline time.Time, s *engine.Script, done func(any, error), keysAndArgs ...any) {
	c := &call{s: s, args: keysAndArgs, cb: done, deadline: deadline.UnixNano()}
	c.expiry = time.AfterFunc(time.Until(deadline), c.expire)
	select {
	case b.route(s).queue <- c:
	default:
		if c.state.CompareAndSwap(callQueued, callSent) {
			c.finish(nil, fmt.Errorf("%w: too many requests waiting for Redis", engine.ErrUnavailable))
		}
	}
}

// expire fails an EvalAsync call that no lane has taken by its deadline,
// as not run. The lanes check deadlines only as they take calls, and
// while every lane is stuck (a connection that stopped answering, then a
// dial that hangs in the handshake) none takes any: without this a call
// queued behind a hung batch is answered late, when the dial fails.
func (c *call) expire() {
	if c.state.CompareAndSwap(callQueued, callAbandoned) {
		c.cb(nil, errUnsent)
	}
}

func (c *call) finish(v any, err error) {
	if c.expiry != nil {
		c.expiry.Stop()
	}
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
	// errBroken: the writer found the connection broken, as the reader
	// had (and logged).
	errBroken = errors.New("connection lost")
)

// connLost logs that a lane lost its connection for err (it dials again),
// unless the batcher is closing.
func (b *Batcher) connLost(err error) {
	select {
	case <-b.stop:
	default:
		b.lostLog.Warn().Err(err).Msg("redis: batch connection lost; dialling again")
	}
}
