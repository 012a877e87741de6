package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/mna/redisc"
	"github.com/rs/zerolog"

	"github.com/flashsale/flashsale/engine"
)

// Cluster is a Redis Cluster as one engine.Redis: it keeps a Pool (and,
// for a server, a Batcher on it) per master and routes each script by the
// hash slot of its first key. Every engine script's keys carry the
// product's {ID} hash tag, so they share that slot, and a product's
// scripts all run on the one master that holds it, with the engine's
// single-node semantics unchanged.
//
// The slot map comes from CLUSTER SLOTS, asked by hand rather than through
// redisc.Cluster: redisc takes no context (every call here has a
// deadline), keeps pools of its own beside the Pools and Batchers this
// type needs, and tells the layout only through a callback. From redisc
// this type takes Slot (the key hash) and ParseRedir (MOVED and ASK
// replies).
//
// A redirect means the script did not run: a node answers MOVED or ASK
// for a key it does not serve before executing anything. So a redirected
// call is retried, at the new owner (MOVED, after pointing the slot there
// and refreshing the whole map in the background) or once at the target
// with ASKING (ASK, during a migration). TRYAGAIN (a multi-key call
// caught mid-migration), CLUSTERDOWN (the cluster is failing a master
// over), and failures that provably happened before the script was sent
// (no connection to a dead master) are retried too, with backoff and a
// map refresh, within the call's deadline. A call whose outcome is
// unknown (sent, no reply) is never retried. NOSCRIPT is handled per node
// by that node's Pool and Batcher (it loads the script there).
//
// Inside a batch each call gets its own reply, so a redirect fails over
// only the calls it concerns: EvalAsync wraps each call's callback and
// retries a redirected call on its own goroutine. Purchases the Batcher
// merged into one script call (all of one product or shard, so of one
// slot) share its reply: a redirect of it reaches each of them, and each
// is retried alone, in its own unmerged form (a redirect means the merged
// call did not run).
type Cluster struct {
	cfg   ClusterConfig
	gen   atomic.Uint64 // bumped by every refresh
	stop  chan struct{}
	close sync.Once

	mu     sync.RWMutex
	slots  [redisc.HashSlots]*clusterNode // the master of each slot; nil: unknown
	nodes  map[string]*clusterNode        // every node met, by host:port
	closed bool                           // no batcher starts after Close

	refreshMu     sync.Mutex
	subscriptions atomic.Uint64 // picks the master of the next Subscribe
	stats         struct{ moved, ask, later, refreshes atomic.Uint64 }
	obs           ClusterObserver // nil: none (see ClusterConfig.Batch)
	// refreshLog logs, at most once a second, the slot map refreshes that
	// failed with no caller to tell (see PoolConfig.Logger).
	refreshLog zerolog.Logger
}

// ClusterStats counts what a Cluster followed.
type ClusterStats struct {
	// Moved, Ask and Later count the calls retried after MOVED, after ASK,
	// and after TRYAGAIN, CLUSTERDOWN or a master that could not be reached.
	Moved, Ask, Later uint64
	// Refreshes counts the slot maps read.
	Refreshes uint64
}

// Stats returns the counts so far.
func (c *Cluster) Stats() ClusterStats {
	return ClusterStats{Moved: c.stats.moved.Load(), Ask: c.stats.ask.Load(), Later: c.stats.later.Load(), Refreshes: c.stats.refreshes.Load()}
}

// ClusterConfig says how to reach a cluster.
type ClusterConfig struct {
	// Seeds are host:port addresses of some of the cluster's nodes (one is
	// enough); the first that answers tells the rest.
	Seeds []string
	// Pool configures each node's Pool. Its Addr, if a redis:// URL, lends
	// its user, password and options to every node; its host is replaced.
	Pool PoolConfig
	// Batch, when set, gives every master a Batcher with this config. If
	// its Observer is a ClusterObserver, the Cluster reports its retries
	// and slot maps to it too.
	Batch *BatcherConfig
}

// clusterNode is one master's connections.
type clusterNode struct {
	addr    string
	pool    *Pool
	batcher *Batcher // nil without ClusterConfig.Batch
}

// redis is what runs the node's scripts: its batcher, or its pool.
func (n *clusterNode) redis() engine.Redis {
	if n.batcher != nil {
		return n.batcher
	}
	return n.pool
}

var _ engine.AsyncRedis = (*Cluster)(nil)

// Errors of the cluster client.
var (
	// ErrNoSlotMap: no seed answered CLUSTER SLOTS.
	ErrNoSlotMap = errors.New("no cluster node gave its slot map")
	// ErrSlotUnserved: no master serves a key's slot.
	ErrSlotUnserved = errors.New("no cluster master serves the slot")
)

// NewCluster reads the slot map from the first seed that answers. Close
// stops every node's connections.
func NewCluster(ctx context.Context, cfg ClusterConfig) (*Cluster, error) {
	c := &Cluster{cfg: cfg, nodes: map[string]*clusterNode{}, stop: make(chan struct{}), refreshLog: everySecond(cfg.Pool.Logger)}
	if cfg.Batch != nil {
		c.obs, _ = cfg.Batch.Observer.(ClusterObserver)
	}
	if err := c.refresh(ctx, c.gen.Load()); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// IsCluster reports whether the Redis behind p is a cluster node (INFO
// cluster says cluster_enabled:1). A Redis that cannot say (an old or
// embedded one without that section) is not a cluster.
func IsCluster(ctx context.Context, p *Pool) (bool, error) {
	v, err := p.do(ctx, func(c redis.Conn, d time.Duration) (any, error) {
		return redis.String(redis.DoWithTimeout(c, d, "INFO", "cluster"))
	})
	if err != nil {
		if errors.Is(err, engine.ErrUnavailable) {
			return false, err
		}
		return false, nil
	}
	return strings.Contains(v.(string), "cluster_enabled:1"), nil
}

// Close stops every node's batcher and pool. Nodes that left the map (a
// master demoted, killed or emptied) keep their connections until then:
// a call routed with an older map may still be using them.
func (c *Cluster) Close() error {
	c.close.Do(func() {
		close(c.stop)
		c.mu.Lock()
		defer c.mu.Unlock()
		c.closed = true
		for _, n := range c.nodes {
			if n.batcher != nil {
				n.batcher.Close()
			}
			n.pool.Close()
		}
	})
	return nil
}

// nodeAt returns the node for addr (host:port), making it on first use.
func (c *Cluster) nodeAt(addr string) *clusterNode {
	c.mu.RLock()
	n := c.nodes[addr]
	c.mu.RUnlock()
	if n != nil {
		return n
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodeLocked(addr)
}

func (c *Cluster) nodeLocked(addr string) *clusterNode {
	if n := c.nodes[addr]; n != nil {
		return n
	}
	cfg := c.cfg.Pool
	cfg.Addr = nodeAddr(cfg.Addr, addr)
	cfg.Sentinel = SentinelConfig{} // a cluster finds its masters itself
	n := &clusterNode{addr: addr, pool: NewPool(cfg)}
	if c.cfg.Batch != nil && !c.closed {
		n.batcher = NewBatcher(n.pool, *c.cfg.Batch)
	}
	c.nodes[addr] = n
	return n
}

// nodeAddr is the address of the node at hostport with the user, password
// and options of base when base is a redis:// URL.
func nodeAddr(base, hostport string) string {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
		return hostport
	}
	u.Host = hostport
	return u.String()
}

// masters returns the distinct masters of the slot map.
func (c *Cluster) masters() []*clusterNode {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var ms []*clusterNode
	seen := map[*clusterNode]bool{}
	for _, n := range c.slots {
		if n != nil && !seen[n] {
			seen[n] = true
			ms = append(ms, n)
		}
	}
	return ms
}

// refresh reads the slot map with CLUSTER SLOTS from a known master or a
// seed. seen is the generation the caller routed with: if another refresh
// ran since, this one does nothing.
func (c *Cluster) refresh(ctx context.Context, seen uint64) error {
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	if c.gen.Load() != seen {
		return nil
	}
	var candidates []string
	for _, n := range c.masters() {
		candidates = append(candidates, n.addr)
	}
	candidates = append(candidates, c.cfg.Seeds...)
	errs := []error{ErrNoSlotMap}
	for _, addr := range candidates {
		// One node that drops packets must not use up the whole deadline.
		nctx, cancel := context.WithTimeout(ctx, laneDialTimeout)
		ranges, err := c.clusterSlots(nctx, addr)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", addr, err))
			if ctx.Err() != nil {
				break
			}
			continue
		}
		c.mu.Lock()
		var slots [redisc.HashSlots]*clusterNode
		masters := map[*clusterNode]bool{}
		for _, r := range ranges {
			n := c.nodeLocked(r.master)
			masters[n] = true
			for s := r.from; s <= r.to && s < redisc.HashSlots; s++ {
				slots[s] = n
			}
		}
		c.slots = slots
		c.mu.Unlock()
		c.gen.Add(1)
		c.stats.refreshes.Add(1)
		if c.obs != nil {
			c.obs.SlotMap(len(masters))
		}
		return nil
	}
	return fmt.Errorf("%w: %w", engine.ErrUnavailable, errors.Join(errs...))
}

// slotRange is one line of CLUSTER SLOTS: slots from..to served by master.
type slotRange struct {
	from, to int
	master   string
}

// clusterSlots asks the node at addr for the slot map.
func (c *Cluster) clusterSlots(ctx context.Context, addr string) ([]slotRange, error) {
	v, err := c.nodeAt(addr).pool.do(ctx, func(conn redis.Conn, d time.Duration) (any, error) {
		return redis.Values(redis.DoWithTimeout(conn, d, "CLUSTER", "SLOTS"))
	})
	if err != nil {
		return nil, err
	}
	host, _, _ := net.SplitHostPort(addr)
	var ranges []slotRange
	for _, line := range v.([]any) {
		f, err := redis.Values(line, nil)
		if err != nil || len(f) < 3 {
			return nil, fmt.Errorf("CLUSTER SLOTS: unexpected line %v", line)
		}
		from, err1 := redis.Int(f[0], nil)
		to, err2 := redis.Int(f[1], nil)
		m, err3 := redis.Values(f[2], nil)
		if err1 != nil || err2 != nil || err3 != nil || len(m) < 2 {
			return nil, fmt.Errorf("CLUSTER SLOTS: unexpected line %v", line)
		}
		mhost, _ := redis.String(m[0], nil)
		port, err := redis.Int(m[1], nil)
		if err != nil {
			return nil, fmt.Errorf("CLUSTER SLOTS: unexpected port %v", m[1])
		}
		if mhost == "" || mhost == "?" { // "the node I was asked on"
			mhost = host
		}
		ranges = append(ranges, slotRange{from: from, to: to, master: net.JoinHostPort(mhost, fmt.Sprint(port))})
	}
	if len(ranges) == 0 {
		return nil, errors.New("CLUSTER SLOTS: no slot assigned")
	}
	return ranges, nil
}

// owner returns the master of slot and the map's generation, refreshing
// the map when it knows none.
func (c *Cluster) owner(ctx context.Context, slot int) (*clusterNode, uint64, error) {
	for range 2 {
		gen := c.gen.Load()
		c.mu.RLock()
		n := c.slots[slot]
		c.mu.RUnlock()
		if n != nil {
			return n, gen, nil
		}
		if err := c.refresh(ctx, gen); err != nil {
			return nil, gen, err
		}
	}
	return nil, 0, fmt.Errorf("%w: %w: slot %d", engine.ErrUnavailable, ErrSlotUnserved, slot)
}

// slotOf is the slot of a call: its first key's.
func slotOf(keysAndArgs []any) int {
	if len(keysAndArgs) == 0 {
		return 0
	}
	switch k := keysAndArgs[0].(type) {
	case string:
		return redisc.Slot(k)
	case []byte:
		return redisc.Slot(string(k))
	default:
		return redisc.Slot(fmt.Sprint(k))
	}
}

// Eval implements engine.Redis on the master of the slot of s's first key,
// following redirects (see Cluster) until ctx ends.
func (c *Cluster) Eval(ctx context.Context, s *engine.Script, keysAndArgs ...any) (any, error) {
	slot := slotOf(keysAndArgs)
	n, gen, err := c.owner(ctx, slot)
	if err != nil {
		return nil, err
	}
	v, err := n.redis().Eval(ctx, s, keysAndArgs...)
	return c.follow(ctx, s, keysAndArgs, slot, gen, v, err)
}

// EvalAsync implements engine.AsyncRedis on the owner's Batcher. A reply
// that asks for a retry (a redirect, TRYAGAIN, CLUSTERDOWN, a dead
// master) is followed on a goroutine of its own, since done must not
// block the batcher's reader; every other reply reaches done as it came.
func (c *Cluster) EvalAsync(deadline time.Time, s *engine.Script, done func(any, error), keysAndArgs ...any) {
	slot := slotOf(keysAndArgs)
	c.mu.RLock()
	n := c.slots[slot]
	c.mu.RUnlock()
	gen := c.gen.Load()
	if n == nil || n.batcher == nil {
		go func() {
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			defer cancel()
			done(c.Eval(ctx, s, keysAndArgs...))
		}()
		return
	}
	n.batcher.EvalAsync(deadline, s, func(v any, err error) {
		if _, ok := retryable(err); !ok {
			done(v, err)
			return
		}
		go func() {
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			defer cancel()
			done(c.follow(ctx, s, keysAndArgs, slot, gen, v, err))
		}()
	}, keysAndArgs...)
}

// laterReplies are the error replies retried after a backoff and a map
// refresh, and why.
var laterReplies = []struct {
	prefix string
	why    Retry
}{
	{"TRYAGAIN", RetryTryAgain},
	{"CLUSTERDOWN", RetryClusterDown},
	{"MASTERDOWN", RetryNodeDown},
	{"READONLY", RetryNodeDown},
	{"LOADING", RetryNodeDown},
}

// retryable classifies a call's error: whether it is retried, and why.
// Only errors that prove the script did not run are retried: MOVED and
// ASK are followed at once, every other reason after a backoff and a map
// refresh.
func retryable(err error) (why Retry, ok bool) {
	if err == nil {
		return 0, false
	}
	var re redis.Error
	if errors.As(err, &re) {
		if r := redisc.ParseRedir(re); r != nil {
			if r.Type == "ASK" {
				return RetryAsk, true
			}
			return RetryMoved, true
		}
		for _, l := range laterReplies {
			if strings.HasPrefix(string(re), l.prefix) {
				return l.why, true
			}
		}
		return 0, false
	}
	// Never sent (a dead master refuses connections, the batcher could
	// not dial in time): it did not run. A context that ended is the
	// caller's own deadline: no time for another try.
	if errors.Is(err, engine.ErrUnavailable) && !errors.Is(err, engine.ErrOutcomeUnknown) &&
		!errors.Is(err, engine.ErrNotDurable) && !errors.Is(err, context.DeadlineExceeded) &&
		!errors.Is(err, context.Canceled) {
		return RetryNodeDown, true
	}
	return 0, false
}

// retried counts a call sent again, and tells the observer.
func (c *Cluster) retried(why Retry) {
	switch why {
	case RetryMoved:
		c.stats.moved.Add(1)
	case RetryAsk:
		c.stats.ask.Add(1)
	case RetryNoScript:
	default:
		c.stats.later.Add(1)
	}
	if c.obs != nil {
		c.obs.Retried(why)
	}
}

// clusterBackoff bounds the wait between two tries of a call that met
// TRYAGAIN, CLUSTERDOWN or a dead master.
const (
	clusterBackoffMin = 10 * time.Millisecond
	clusterBackoffMax = 200 * time.Millisecond
)

// follow takes the reply (v, err) of s on slot's master, routed with map
// generation gen, and retries it while its error proves it did not run
// and ctx allows.
func (c *Cluster) follow(ctx context.Context, s *engine.Script, keysAndArgs []any, slot int, gen uint64, v any, err error) (any, error) {
	backoff := clusterBackoffMin
	for hops := 0; ; hops++ {
		var re redis.Error
		errors.As(err, &re)
		why, ok := retryable(err)
		if !ok {
			return v, err
		}
		if hops == maxRedirects {
			return v, fmt.Errorf("%w: %d redirects: %w", engine.ErrUnavailable, hops, err)
		}
		c.retried(why)
		switch why {
		case RetryMoved:
			// The slot has a new master: route there now, and have the
			// whole map read again (a reshard or failover moves more).
			r := redisc.ParseRedir(re)
			to := c.nodeAt(r.Addr)
			c.mu.Lock()
			c.slots[slot] = to
			c.mu.Unlock()
			go c.refreshBackground(gen)
			gen = c.gen.Load()
			v, err = to.redis().Eval(ctx, s, keysAndArgs...)
		case RetryAsk:
			// The slot is migrating and this key is already at the
			// target: one call there, after ASKING, on one connection.
			v, err = c.asking(ctx, c.nodeAt(redisc.ParseRedir(re).Addr), s, keysAndArgs)
		default: // TRYAGAIN, CLUSTERDOWN, a master down or not reached
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return v, err
			case <-c.stop:
				t.Stop()
				return v, err
			case <-t.C:
			}
			backoff = min(2*backoff, clusterBackoffMax)
			if rerr := c.refresh(ctx, gen); rerr != nil {
				if ctx.Err() != nil {
					return v, err
				}
				c.refreshFailed(ctx, rerr, "retry")
			}
			var n *clusterNode
			n, gen, err = c.owner(ctx, slot)
			if err != nil {
				return nil, err
			}
			v, err = n.redis().Eval(ctx, s, keysAndArgs...)
		}
	}
}

// maxRedirects bounds the tries of one call: nodes that disagree about
// a slot for longer are a cluster being rebuilt, not a migration.
const maxRedirects = 32

// refreshTimeout bounds a refresh started by a MOVED.
const refreshTimeout = 2 * time.Second

func (c *Cluster) refreshBackground(gen uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), refreshTimeout)
	defer cancel()
	c.refreshFailed(context.Background(), c.refresh(ctx, gen), "MOVED")
}

// refreshFailed logs err, a failed refresh that no caller hears of, with
// after naming what started it (a MOVED, a retry, a failed ping or
// subscription). It logs nothing when err is nil, when the caller's ctx
// ended (that is the caller's deadline, not Redis) or when the Cluster
// is closing.
func (c *Cluster) refreshFailed(ctx context.Context, err error, after string) {
	if err == nil || ctx.Err() != nil {
		return
	}
	select {
	case <-c.stop:
	default:
		c.refreshLog.Warn().Err(err).Str("after", after).Msg("redis cluster: slot map refresh failed; routing by the old map")
	}
}

// asking runs s on n right after ASKING, on one pooled connection (ASKING
// holds for the next command only, so a NOSCRIPT reload needs its own).
// The durability wait follows as on any write.
func (c *Cluster) asking(ctx context.Context, n *clusterNode, s *engine.Script, keysAndArgs []any) (any, error) {
	p := n.pool
	return p.do(ctx, func(conn redis.Conn, d time.Duration) (any, error) {
		wait := p.durability.Enabled() && !s.ReadOnly
		run := func(send scriptSender, s *engine.Script, keysAndArgs []any) (any, error) {
			if _, err := redis.DoWithTimeout(conn, d, "ASKING"); err != nil {
				return nil, err
			}
			return p.evalSHA(conn, d, send, s, keysAndArgs, wait)
		}
		v, err := run(sendScript, s, keysAndArgs)
		if isNoScript(err) {
			c.retried(RetryNoScript)
			v, err = run(sendScriptText, s, keysAndArgs)
		}
		if loneRefused(s, err) {
			ms, margs := asMergedOne(s, keysAndArgs)
			v, err = run(sendScript, ms, margs)
		}
		return v, err
	})
}

// Ping implements engine.Redis: every master answers. After a failure the
// map is read again (a dead master may have been replaced) and the
// masters pinged once more.
func (c *Cluster) Ping(ctx context.Context) error {
	ping := func(n *clusterNode) error { return n.pool.Ping(ctx) }
	gen := c.gen.Load()
	err := c.eachMaster(ctx, ping)
	if err == nil {
		return nil
	}
	if rerr := c.refresh(ctx, gen); rerr != nil {
		c.refreshFailed(ctx, rerr, "ping")
		return err
	}
	return c.eachMaster(ctx, ping)
}

// eachMaster calls fn for each master of the map, stopping at the first
// error.
func (c *Cluster) eachMaster(ctx context.Context, fn func(*clusterNode) error) error {
	ms := c.masters()
	if len(ms) == 0 {
		if err := c.refresh(ctx, c.gen.Load()); err != nil {
			return err
		}
		ms = c.masters()
	}
	for _, n := range ms {
		if err := fn(n); err != nil {
			return fmt.Errorf("cluster node %s: %w", n.addr, err)
		}
	}
	return nil
}

// Scan implements engine.Redis with SCAN on every master (a node's SCAN
// sees its own keys only; no command spans slots, so nothing meets
// CROSSSLOT). A key seen on two masters (mid-migration) is reported once.
func (c *Cluster) Scan(ctx context.Context, match string, fn func(string) error) error {
	seen := map[string]bool{}
	return c.eachMaster(ctx, func(n *clusterNode) error {
		return n.pool.Scan(ctx, match, func(key string) error {
			if seen[key] {
				return nil
			}
			seen[key] = true
			return fn(key)
		})
	})
}

// Subscribe implements engine.Redis on one master. The scripts PUBLISH
// (not SPUBLISH): in a cluster a PUBLISH on any node is broadcast to
// every node over the cluster bus, so one subscription on any node hears
// every product's events and the control channel, wherever the product
// lives and after any reshard. SPUBLISH would reach only the nodes of
// the channel's own slot, whose master need not be the product's: the
// scripts would then publish to a key of another slot, which a cluster
// refuses inside a script. The broadcast costs cluster-bus traffic per
// message, which is fine for the control channel and the event stream.
// When the subscription fails (its node died), the caller subscribes
// again and this picks the next master of a fresh map.
func (c *Cluster) Subscribe(ctx context.Context, channel string, fn func([]byte)) error {
	ms := c.masters()
	if len(ms) == 0 {
		return fmt.Errorf("%w: %w", engine.ErrUnavailable, ErrNoSlotMap)
	}
	n := ms[c.subscriptions.Add(1)%uint64(len(ms))] // a dead one is not tried twice in a row
	err := n.pool.Subscribe(ctx, channel, fn)
	if err != nil {
		rctx, cancel := context.WithTimeout(ctx, refreshTimeout)
		c.refreshFailed(ctx, c.refresh(rctx, c.gen.Load()), "subscribe")
		cancel()
	}
	return err
}

// Load runs SCRIPT LOAD on every master (each node has its own script
// cache; NOSCRIPT on a node that lacks one is handled anyway).
func (c *Cluster) Load(ctx context.Context, scripts ...*engine.Script) error {
	return c.eachMaster(ctx, func(n *clusterNode) error { return n.pool.Load(ctx, scripts...) })
}

// CheckDurability checks every master (see Pool.CheckDurability).
func (c *Cluster) CheckDurability(ctx context.Context) error {
	return c.eachMaster(ctx, func(n *clusterNode) error { return n.pool.CheckDurability(ctx) })
}

// QueueDepth sums the masters' batcher queues.
func (c *Cluster) QueueDepth() int {
	d := 0
	for _, n := range c.masters() {
		if n.batcher != nil {
			d += n.batcher.QueueDepth()
		}
	}
	return d
}
