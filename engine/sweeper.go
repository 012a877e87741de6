package engine

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flashsale/flashsale/internal/defaults"
)

// SweeperConfig tunes a Sweeper. Zero fields take the defaults.
type SweeperConfig struct {
	// Idle is how often a product with no reservation this server knows
	// of is swept: that is how soon it learns of reservations other
	// servers made (default DefaultSweepIdle). Once it knows a product's
	// next expiry, it sweeps then.
	Idle time.Duration
	// Discover is how often Redis is scanned for products (default
	// DefaultSweepDiscover).
	Discover time.Duration
	// OnError hears of every sweep or scan that failed (nil: no one).
	// It runs on the sweeper's goroutine and must not block.
	OnError func(error)
}

// Sweeper defaults.
const (
	DefaultSweepIdle     = time.Second
	DefaultSweepDiscover = 5 * time.Second
	// sweepGap is the least time between two sweeps of one product: a
	// sweep a little early (the clocks of this server and Redis differ
	// by a millisecond) finds nothing due and comes back this soon.
	sweepGap = 2 * time.Millisecond
)

// Sweeper releases expired reservations on time: it keeps, for every
// product, when its next reservation expires (learnt from each sweep's
// answer and from this server's purchases) and sweeps the product then.
// Every server runs one; they may sweep the same product at once, and each
// reservation is still released once (see Engine.Sweep). With no server
// running, purchases release what expired (see lua/purchase.lua).
type Sweeper struct {
	e    *Engine
	cfg  SweeperConfig
	wake chan struct{}
	// offset is Redis's clock minus this server's (ns), from the last
	// sweep's answer: expiries are on Redis's clock.
	offset atomic.Int64

	mu  sync.Mutex           // protects the following fields
	due map[string]time.Time // product id -> when to sweep it next (this server's clock)
}

// NewSweeper returns e's sweeper, which e tells of every reservation its
// purchases make. Run it.
func (e *Engine) NewSweeper(cfg SweeperConfig) *Sweeper {
	defaults.Set(&cfg.Idle, DefaultSweepIdle)
	defaults.Set(&cfg.Discover, DefaultSweepDiscover)
	s := &Sweeper{e: e, cfg: cfg, wake: make(chan struct{}, 1), due: map[string]time.Time{}}
	e.sweeper.Store(s)
	return s
}

// reserved tells the sweeper, if any, of a reservation of product id that
// expires at (Redis's clock).
func (e *Engine) reserved(id string, at time.Time) {
	if e.holdObserver != nil {
		e.holdObserver.Reserved()
	}
	if s := e.sweeper.Load(); s != nil {
		s.note(id, at.Add(-time.Duration(s.offset.Load())))
	}
}

// note makes product id due at the latest at (this server's clock).
func (s *Sweeper) note(id string, at time.Time) {
	s.mu.Lock()
	cur, ok := s.due[id]
	if !ok || at.Before(cur) {
		s.due[id] = at
	}
	s.mu.Unlock()
	if !ok || at.Before(cur) {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// Run sweeps until ctx ends, and returns nil then.
func (s *Sweeper) Run(ctx context.Context) error {
	discover := time.NewTicker(s.cfg.Discover)
	defer discover.Stop()
	s.discover(ctx)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		next := s.sweepDue(ctx)
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			return nil
		case <-discover.C:
			s.discover(ctx)
		case <-s.wake:
		case <-timer.C:
		}
	}
}

// discover adds every product in Redis the sweeper does not know yet, due
// now.
func (s *Sweeper) discover(ctx context.Context) {
	ids, err := s.e.Products(ctx)
	if err != nil {
		s.failed(err)
		return
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if _, ok := s.due[id]; !ok {
			s.due[id] = now
		}
	}
}

// sweepDue sweeps every product due, and returns when the next one is.
func (s *Sweeper) sweepDue(ctx context.Context) time.Time {
	now := time.Now()
	next := now.Add(s.cfg.Idle)
	for _, id := range s.dueAt(now) {
		if ctx.Err() != nil {
			return next
		}
		at := s.sweepOne(ctx, id)
		if at.Before(next) {
			next = at
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, at := range s.due {
		if at.Before(next) {
			next = at
		}
	}
	return next
}

// dueAt lists the products due at now.
func (s *Sweeper) dueAt(now time.Time) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for id, at := range s.due {
		if !at.After(now) {
			ids = append(ids, id)
		}
	}
	return ids
}

// sweepOne sweeps product id and returns when it is due next.
func (s *Sweeper) sweepOne(ctx context.Context, id string) time.Time {
	sw, err := s.e.Sweep(ctx, id)
	now := time.Now()
	next := now.Add(s.cfg.Idle)
	switch {
	case errors.Is(err, ErrUnknownProduct):
		s.mu.Lock()
		delete(s.due, id)
		s.mu.Unlock()
		return next
	case err != nil:
		s.failed(err) // and try again after Idle
	case sw.More:
		next = now
	case !sw.Next.IsZero():
		s.offset.Store(int64(sw.Now.Sub(now)))
		if at := sw.Next.Add(-sw.Now.Sub(now)); at.Before(next) {
			next = at
		}
		if gap := now.Add(sweepGap); next.Before(gap) {
			next = gap
		}
	}
	s.mu.Lock()
	// A purchase may have noted an earlier expiry meanwhile.
	if cur := s.due[id]; cur.After(now) && cur.Before(next) {
		next = cur
	}
	s.due[id] = next
	s.mu.Unlock()
	return next
}

func (s *Sweeper) failed(err error) {
	if s.cfg.OnError != nil {
		s.cfg.OnError(err)
	}
}
