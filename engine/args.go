package engine

import (
	"strings"
	"sync"
	"sync/atomic"
)

// A purchase's script call repeats, for every purchase of a product, the
// product's keys and id and the engine's settings. Built per call they
// were most of a purchase's allocations; argsCache builds them once per
// product (or shard) id, boxed as the []any the call takes.

// argsCacheMax bounds the ids argsCache remembers: past it, it starts
// afresh (ids come from clients, so they must not grow memory without
// bound).
const argsCacheMax = 8192

// productArgs are the parts of product id's purchase calls that do not
// change between purchases.
type productArgs struct {
	keys Keys
	// shared are the shared keys (purchaseShared).
	shared []any
	// noRequest and noRate stand for a purchase's own request record and
	// rate limiter keys when it has no request id or no rate limit: the
	// script never touches them then.
	noRequest, noRate any
	id                any
}

func newProductArgs(id string) *productArgs {
	k := KeysFor(id)
	shared := make([]any, len(purchaseShared))
	for i, key := range purchaseShared {
		shared[i] = key.of(k)
	}
	return &productArgs{keys: k, shared: shared, noRequest: k.Request(""), noRate: k.Rate(""), id: id}
}

// argsCache maps ids to their *productArgs. The zero value is ready.
type argsCache struct {
	m atomic.Pointer[sync.Map]
	n atomic.Int64 // ids stored in m, about
}

func (c *argsCache) get(id string) *productArgs {
	m := c.m.Load()
	if m != nil {
		if p, ok := m.Load(id); ok {
			return p.(*productArgs)
		}
	}
	if m == nil || c.n.Add(1) > argsCacheMax {
		m = new(sync.Map)
		c.m.Store(m)
		c.n.Store(1)
	}
	// id may share its bytes with a buffer the caller reuses (the wire
	// decoder's strings do): what is kept must own its own.
	id = strings.Clone(id)
	p, _ := m.LoadOrStore(id, newProductArgs(id))
	return p.(*productArgs)
}

// controlChannel is ControlChannel, boxed once.
var controlChannel any = ControlChannel

// scriptSettings are the engine's settings in the purchase script's
// arguments, boxed once.
type scriptSettings struct {
	ttl, channel    any
	interval, burst any // the per-customer rate limit
}

func newScriptSettings(e *Engine) scriptSettings {
	return scriptSettings{
		ttl: e.requestTTL.Milliseconds(), channel: e.channel,
		interval: e.userRate.Interval.Milliseconds(), burst: e.userRate.Burst,
	}
}

// purchaseArgs are the purchase script's keys and arguments for req on
// product (or shard) id, in the order contract.go declares
// (purchaseShared, purchaseOwnKeys, purchaseSharedArgs, purchaseOwnArgs);
// rated false skips the rate limiter.
func (e *Engine) purchaseArgs(req *Request, id string, rated bool) []any {
	p, s := e.args.get(id), &e.settings
	args := make([]any, 0, purchaseArgCount)
	// Shared by every purchase of the product, or of one of its shards
	// (see purchaseScript.Merge).
	args = append(args, p.shared...)
	// This purchase's own.
	if req.RequestID == "" {
		args = append(args, p.noRequest)
	} else {
		args = append(args, p.keys.Request(req.RequestID))
	}
	interval, burst := s.interval, s.burst
	if !rated || e.userRate.Interval <= 0 {
		interval, burst = int64(0), 0 // boxing small integers allocates nothing
		args = append(args, p.noRate)
	} else {
		args = append(args, p.keys.Rate(req.UserID))
	}
	// Shared, then own.
	return append(args, p.id, s.ttl, s.channel, interval, burst, controlChannel,
		req.UserID, req.Quantity, req.RequestID, req.admission)
}
