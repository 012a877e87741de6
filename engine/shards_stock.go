package engine

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flashsale/flashsale/wire"
)

// The remaining_stock of a sharded SUCCESS (or RESERVED) is the product's,
// not its home shard's, at no extra round trip in the common case: the home shard's
// stock just after the sale (the purchase script's reply, exact) plus the
// other shards' stock as this server last read it, updated by its own
// later sales there and the units its transfers took out. A server reads every
// shard (one parallel round trip) in a refill, and in the background when
// a purchase finds its last reading older than stockTTL (or none yet), so
// while purchases come the other shards' part is at most about stockTTL
// old: it lags the other servers' sales and units moved meanwhile, in
// either direction. Until a server's first reading the other shards count
// as empty (a lower bound). A figure that would be 0 is never answered from
// the cache: the server then reads every shard first (completing transfers
// in flight, so that units in transit count), so remaining_stock 0 means
// every shard was empty at that reading. Only if that reading fails is the
// home shard's 0 answered.

// stockTTL is how long a server trusts its reading of the shards' stock
// for the remaining_stock of a sale.
const stockTTL = time.Second

// stockReading is one reading of every shard's stock.
type stockReading struct {
	stocks []atomic.Int64 // by shard index; updated by later sales
	at     time.Time
}

// stockEntry is a product's latest reading.
type stockEntry struct {
	reading    atomic.Pointer[stockReading]
	refreshing atomic.Bool // one background reading at a time
}

// stockCache holds the latest reading of the shards of each sharded
// product, by product id.
type stockCache struct{ m sync.Map }

func (c *stockCache) entry(id string) *stockEntry {
	if v, ok := c.m.Load(id); ok {
		return v.(*stockEntry)
	}
	// The id may be a view of a request buffer: the map keeps its own copy.
	v, _ := c.m.LoadOrStore(strings.Clone(id), &stockEntry{})
	return v.(*stockEntry)
}

// note records peeks (one per shard, in shard order) of product id.
func (c *stockCache) note(id string, peeks []peek, now time.Time) {
	r := &stockReading{stocks: make([]atomic.Int64, len(peeks)), at: now}
	for i, p := range peeks {
		r.stocks[i].Store(max(p.stock, 0))
	}
	c.entry(id).reading.Store(r)
}

// took lowers the stock last read of shard src of product id by units a
// transfer took out of it.
func (c *stockCache) took(id string, src int, units int64) {
	if v, ok := c.m.Load(id); ok && units > 0 {
		if r := v.(*stockEntry).reading.Load(); r != nil && src < len(r.stocks) {
			r.stocks[src].Add(-units)
		}
	}
}

// quickRemaining adds to res, a SUCCESS (or RESERVED) of product id in
// shard home of ids, the other shards' stock as last read, and reports false, leaving
// res alone, when the figure would be 0 (only a reading can tell). A
// reading older than stockTTL, or none, starts one in the background.
func (e *Engine) quickRemaining(id string, ids []string, home int, res *Result) bool {
	if res.Status != wire.StatusSuccess && res.Status != wire.StatusReserved {
		return true
	}
	ent := e.stocks.entry(id)
	r := ent.reading.Load()
	if (r == nil || e.now().Sub(r.at) > stockTTL) && ent.refreshing.CompareAndSwap(false, true) {
		go e.refreshStocks(id, ids, ent)
	}
	var others int64
	if r != nil && len(r.stocks) == len(ids) {
		for i := range r.stocks {
			if i != home {
				others += r.stocks[i].Load()
			}
		}
		// The sale's figure is newer than the reading (a replayed SUCCESS
		// reports its original one: wrong until the next reading).
		r.stocks[home].Store(res.Remaining)
	}
	if res.Remaining+others <= 0 {
		return false
	}
	res.Remaining += others
	return true
}

// wideRemaining makes res, an answer of shard home of ids, carry the
// product's remaining stock (see quickRemaining), reading every shard when
// the figure would be 0.
func (e *Engine) wideRemaining(ctx context.Context, id string, ids []string, home int, res Result) Result {
	if e.quickRemaining(id, ids, home, &res) {
		return res
	}
	if n, err := e.readRemaining(ctx, id, ids); err == nil {
		res.Remaining = n
	}
	return res
}

// refreshStocks reads the shards' stock of product id into ent.
func (e *Engine) refreshStocks(id string, ids []string, ent *stockEntry) {
	defer ent.refreshing.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), shardCacheTTL)
	defer cancel()
	if peeks, err := e.peekAll(ctx, ids); err == nil {
		e.stocks.note(id, peeks, e.now())
	}
}

// readRemaining reads the units the shards ids of product id hold. When
// they hold none while transfers (or restock parts) are in flight, it
// completes those and reads again, so that units in transit are counted.
func (e *Engine) readRemaining(ctx context.Context, id string, ids []string) (int64, error) {
	all := append(ids[:len(ids):len(ids)], id)
	var total int64
	for range 3 {
		peeks, err := e.peekAll(ctx, all)
		if err != nil {
			return 0, err
		}
		e.stocks.note(id, peeks[:len(ids)], e.now())
		var pending int64
		total = 0
		for _, p := range peeks {
			total += max(p.stock, 0)
			pending += p.pending
		}
		if total > 0 || pending == 0 {
			return total, nil
		}
		if _, err := e.finishTransfers(ctx, id, ids); err != nil {
			return 0, err
		}
	}
	return total, nil
}
