package engine

import (
	"context"
	"errors"
	"fmt"
)

// Re-initialising a product wipes its orders. Init refuses a product in
// use unless forced (WithForce), and says what it would have cleared.
// Every wipe is checked in the call that makes it, so no sale that lands
// before it is cleared: init.lua for a plain product (or one shard),
// shard_drop.lua for each old shard of a sharded product, shard_base.lua
// for a plain product's own keys turned into a sharded one's directory.
// A sharded product's shards are on distinct slots, which no one script
// can check together: see prepareInit for what that leaves.

// ErrProductInUse: Init was asked to re-create a product that has orders,
// units held, customers or orders-stream entries, without WithForce. The
// error is a *ProductInUseError, which carries the counts.
var ErrProductInUse = errors.New("product in use")

// replyInUse is init.lua's refusal of a product in use.
const replyInUse = -3

// Cleared is what re-initialising or resetting a product cleared (or,
// refused, would have cleared).
type Cleared struct {
	Orders    int64 `json:"orders"`         // orders not released (the buyers list)
	Held      int64 `json:"units_held"`     // units customers held
	Customers int64 `json:"customers"`      // customers holding units
	Entries   int64 `json:"stream_entries"` // entries of the orders stream
}

// Any reports whether anything was (or would be) cleared.
func (c Cleared) Any() bool { return c != Cleared{} }

func (c Cleared) String() string {
	return fmt.Sprintf("%s (%s held by %s, %s)", count(c.Orders, "order", "orders"),
		count(c.Held, "unit", "units"), count(c.Customers, "customer", "customers"),
		count(c.Entries, "stream entry", "stream entries"))
}

// count is n with the noun of its number.
func count(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func (c Cleared) plus(d Cleared) Cleared {
	return Cleared{c.Orders + d.Orders, c.Held + d.Held, c.Customers + d.Customers, c.Entries + d.Entries}
}

// clearedOf reads the counts of a script's reply after its first element.
func clearedOf(n []int64) (Cleared, error) {
	if len(n) != 5 {
		return Cleared{}, fmt.Errorf("want 5 integers, got %d", len(n))
	}
	return Cleared{n[1], n[2], n[3], n[4]}, nil
}

// usage is what re-initialising a product of status s would clear.
func (s ProductStatus) usage() Cleared {
	return Cleared{s.Buyers, s.Held, s.Customers, s.Orders}
}

// ProductInUseError is the refusal ErrProductInUse, with what a forced
// init would clear.
type ProductInUseError struct {
	ID string
	Cleared
}

func (e *ProductInUseError) Error() string {
	return fmt.Sprintf("product %s has %s; re-initialising would clear them", e.ID, e.Cleared)
}

// Is makes errors.Is(err, ErrProductInUse) true.
func (e *ProductInUseError) Is(target error) bool { return target == ErrProductInUse }

// WithForce lets Init and InitSharded re-create a product in use, clearing
// its orders; without it they refuse one with a *ProductInUseError.
func WithForce() InitOption { return func(s *Settings) { s.Force = true } }

// WithCleared has Init and InitSharded store in *c what they cleared.
func WithCleared(c *Cleared) InitOption { return func(s *Settings) { s.cleared = c } }

// forceArg is init.lua's force argument.
func forceArg(force bool) string {
	if force {
		return "1"
	}
	return "0"
}

// prepareInit readies product id to be (re)initialised with s: it drops
// the product's shards, if it has any, and returns what they held.
//
// Unless s.Force, it first refuses a product in use, reading its status,
// when more than one call will wipe it: when it is sharded, or when
// precheck (it is about to be sharded). That read changes nothing, so the
// usual refusal leaves the product as it was. The wipes check again, each
// in its own call (see dropShards and shard_base.lua), so a sale that
// lands after the read is never cleared. What remains: such a sale's
// shard refuses its drop and init fails with ErrProductInUse, but the
// shards dropped before it (which held no sale) are gone, and the
// product sells only on the shards left until it is initialised again.
func (e *Engine) prepareInit(ctx context.Context, id string, s Settings, precheck bool) (Cleared, error) {
	l, err := e.layoutOf(ctx, id, false)
	if err != nil {
		return Cleared{}, err
	}
	if _, sharded := l.(shardedProduct); (sharded || precheck) && !s.Force {
		st, err := l.status(ctx)
		switch {
		case errors.Is(err, ErrUnknownProduct):
		case err != nil:
			return Cleared{}, fmt.Errorf("init %s: %w", id, err)
		case st.usage().Any():
			return Cleared{}, &ProductInUseError{ID: id, Cleared: st.usage()}
		}
	}
	used, err := l.dropShards(ctx, s.Force)
	if errors.Is(err, ErrProductInUse) {
		err = fmt.Errorf("init %s: a sale landed while it was checked; it is kept, but the shards before it were removed: initialise %s again: %w", id, id, err)
	}
	return used, err
}

// evalChecked runs s, a script that refuses a key set in use unless
// forced (init, shard_base, shard_drop), on the keys of sid and reads
// its reply: what it cleared, or a *ProductInUseError naming sid.
func (e *Engine) evalChecked(ctx context.Context, s *spec, sid string, args ...any) (Cleared, error) {
	n, err := e.evalInts(ctx, s, KeysFor(sid), args...)
	if err != nil {
		return Cleared{}, err
	}
	c, err := clearedOf(n)
	switch {
	case err != nil:
		return Cleared{}, fmt.Errorf("unexpected reply: %w", err)
	case n[0] == replyInUse:
		return Cleared{}, &ProductInUseError{ID: sid, Cleared: c}
	}
	return c, nil
}

// report stores c where WithCleared asked.
func (s Settings) report(c Cleared) {
	if s.cleared != nil {
		*s.cleared = c
	}
}
