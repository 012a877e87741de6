package engine

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// soldOut remembers the products Redis answered SOLD_OUT for, so that the
// flood of attempts after a sell-out is answered without a Redis call.
//
// It can only ever turn an attempt into SOLD_OUT, never into SUCCESS. An
// entry is dropped when the control channel announces the product (every
// script that can bring stock back publishes there), and expires after ttl
// anyway: a lost subscription costs at most ttl of stale SOLD_OUT answers.
type soldOut struct {
	ttl time.Duration
	m   sync.Map // product id → time.Time: answer SOLD_OUT locally until then
}

// is reports whether id is known to be sold out at now.
func (s *soldOut) is(id string, now time.Time) bool {
	v, ok := s.m.Load(id)
	return ok && now.Before(v.(time.Time))
}

// mark records that Redis answered SOLD_OUT for id.
func (s *soldOut) mark(id string, now time.Time) {
	// The id may be a view of a request buffer: the map keeps its own copy.
	s.m.Store(strings.Clone(id), now.Add(s.ttl))
}

func (s *soldOut) forget(id string) { s.m.Delete(id) }

func (s *soldOut) clear() { s.m.Clear() }

// forgetAnnounced drops the cached answers an announcement of id ends:
// id's own and, when id has the form of a shard's (ID#j), its product's.
// A purchase in a shard that releases expired reservations announces the
// shard, the only id its script knows; the cached answer is the product's.
func (s *soldOut) forgetAnnounced(id string) {
	s.forget(id)
	if isShardID(id) {
		s.forget(id[:strings.LastIndexByte(id, '#')])
	}
}

// DefaultSoldOutTTL bounds a cached SOLD_OUT when the control channel is
// silent.
const DefaultSoldOutTTL = time.Second

// WithSoldOutCache lets the engine answer SOLD_OUT without Redis for ttl
// after Redis said so, unless the control channel announces the product
// first (see WatchControl). Zero turns it off.
func WithSoldOutCache(ttl time.Duration) Option {
	return func(e *Engine) {
		if ttl > 0 {
			e.soldOut = &soldOut{ttl: ttl}
		}
	}
}

// WatchControl follows the control channel until ctx ends, dropping cached
// SOLD_OUT answers for the products it announces; it resubscribes after a
// failure, forgetting everything cached, since announcements may have been
// missed meanwhile. Without a sold-out cache it returns at once.
func (e *Engine) WatchControl(ctx context.Context) {
	if e.soldOut == nil {
		return
	}
	backoff := 10 * time.Millisecond
	for ctx.Err() == nil {
		e.soldOut.clear()
		start := time.Now()
		err := e.redis.Subscribe(ctx, ControlChannel, func(id []byte) {
			e.soldOut.forgetAnnounced(string(id))
		})
		if err == nil || ctx.Err() != nil {
			return
		}
		e.stats.controlReconnects.Add(1)
		if time.Since(start) > time.Second {
			backoff = 10 * time.Millisecond
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// Stats are the engine's counters, for metrics.
type Stats struct {
	// SoldOutHits counts purchases answered SOLD_OUT from the cache,
	// without a Redis call.
	SoldOutHits uint64
	// ControlReconnects counts the times the control-channel subscription
	// failed and was made again.
	ControlReconnects uint64
}

// engineStats holds the counters behind Stats.
type engineStats struct {
	soldOutHits       atomic.Uint64
	controlReconnects atomic.Uint64
}

// Stats returns the engine's counters so far.
func (e *Engine) Stats() Stats {
	return Stats{SoldOutHits: e.stats.soldOutHits.Load(), ControlReconnects: e.stats.controlReconnects.Load()}
}
