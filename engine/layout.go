package engine

import (
	"context"
	"fmt"
	"time"
)

// The product router. A product is laid out plain (its own key set, see
// KeysFor) or spread over shards (a directory in its own keys, the units
// in its shards': see shards.go). Each admin operation resolves the
// layout once (layoutOf) and runs on it; only the layouts know how.
// Purchases route by the shard list this server cached (see purchase.go).

// layout is how one operation reaches a product's keys.
type layout interface {
	status(ctx context.Context) (ProductStatus, error)
	buyers(ctx context.Context, limit int) (total int64, ids []string, err error)
	orders(ctx context.Context, limit int) ([]Order, error)
	verify(ctx context.Context) (Audit, error)
	reset(ctx context.Context) (initial int64, cleared Cleared, err error)
	restock(ctx context.Context, units int64) (remaining, initial int64, err error)
	release(ctx context.Context, orderID, user string) (Release, error)
	window(ctx context.Context, op string) error
	setHold(ctx context.Context, d time.Duration) (was time.Duration, err error)
	// settle confirms or cancels (op) the reservation orderID of
	// customer user.
	settle(ctx context.Context, op, orderID, user string) (settled, error)
	sweep(ctx context.Context) (Swept, error)
	// dropShards removes the shards of a product about to be re-created
	// or deleted (nothing, for a plain one), and returns what they held.
	// Unless force, a shard in use is refused (ErrProductInUse), checked
	// in the call that removes it; the shards before it are removed.
	dropShards(ctx context.Context, force bool) (Cleared, error)
}

// layoutOf resolves the layout of product id. A shard's id (ID#j) is
// plain: an operation on one shard acts on that shard alone. recent lets
// a product this server found plain lately be taken as plain without a
// read of its directory (for Status, which dashboards poll).
func (e *Engine) layoutOf(ctx context.Context, id string, recent bool) (layout, error) {
	if err := ValidateProductID(id); err != nil {
		return nil, err
	}
	if isShardID(id) || recent && e.knownUnsharded(id) {
		return plainProduct{e, id}, nil
	}
	d, err := e.readShardDir(ctx, id)
	switch {
	case err != nil:
		return nil, err
	case d.ids == nil:
		return plainProduct{e, id}, nil
	}
	return shardedProduct{e, id, d}, nil
}

// deleteShards removes the shards of product id, if it has any.
func (e *Engine) deleteShards(ctx context.Context, id string) error {
	l, err := e.layoutOf(ctx, id, false)
	if err != nil {
		return err
	}
	_, err = l.dropShards(ctx, true)
	return err
}

// plainProduct is a product (or shard) of one key set: every operation is
// one script call.
type plainProduct struct {
	e  *Engine
	id string
}

func (p plainProduct) status(ctx context.Context) (ProductStatus, error) {
	return p.e.statusOf(ctx, p.id)
}

func (p plainProduct) buyers(ctx context.Context, limit int) (int64, []string, error) {
	return p.e.buyersOf(ctx, p.id, limit)
}

func (p plainProduct) orders(ctx context.Context, limit int) ([]Order, error) {
	return p.e.ordersOf(ctx, p.id, limit)
}

func (p plainProduct) verify(ctx context.Context) (Audit, error) { return p.e.verifyOf(ctx, p.id) }

func (p plainProduct) reset(ctx context.Context) (int64, Cleared, error) {
	return p.e.resetOf(ctx, p.id, p.id)
}

func (p plainProduct) restock(ctx context.Context, units int64) (int64, int64, error) {
	return p.e.restockOf(ctx, p.id, units)
}

func (p plainProduct) release(ctx context.Context, orderID, _ string) (Release, error) {
	return p.e.releaseOf(ctx, p.id, p.id, orderID)
}

func (p plainProduct) window(ctx context.Context, op string) error {
	return p.e.windowOf(ctx, p.id, op)
}

func (p plainProduct) setHold(ctx context.Context, d time.Duration) (time.Duration, error) {
	return p.e.setHoldOf(ctx, p.id, d)
}

func (p plainProduct) settle(ctx context.Context, op, orderID, user string) (settled, error) {
	return p.e.settleOf(ctx, p.id, p.id, op, orderID, user)
}

func (p plainProduct) sweep(ctx context.Context) (Swept, error) {
	return p.e.sweepOf(ctx, p.id, p.id)
}

func (p plainProduct) dropShards(context.Context, bool) (Cleared, error) {
	p.e.forgetShards(p.id)
	return Cleared{}, nil
}

// shardedProduct is a product spread over shards, as its directory dir
// said when the operation began.
type shardedProduct struct {
	e   *Engine
	id  string
	dir shardDir
}

func (s shardedProduct) status(ctx context.Context) (ProductStatus, error) {
	return s.e.shardedStatus(ctx, s.id, s.dir)
}

func (s shardedProduct) buyers(ctx context.Context, limit int) (int64, []string, error) {
	return s.e.shardedBuyers(ctx, s.dir, limit)
}

func (s shardedProduct) orders(ctx context.Context, limit int) ([]Order, error) {
	return s.e.shardedOrders(ctx, s.dir.ids, limit)
}

func (s shardedProduct) verify(ctx context.Context) (Audit, error) {
	return s.e.shardedVerify(ctx, s.id, s.dir)
}

func (s shardedProduct) reset(ctx context.Context) (int64, Cleared, error) {
	return s.e.shardedReset(ctx, s.id, s.dir)
}

func (s shardedProduct) restock(ctx context.Context, units int64) (int64, int64, error) {
	return s.e.shardedRestock(ctx, s.id, s.dir, units)
}

func (s shardedProduct) release(ctx context.Context, orderID, user string) (Release, error) {
	return s.e.shardedRelease(ctx, s.id, s.dir, orderID, user)
}

// window opens or closes every shard; the directory's window is the one
// init gave it.
func (s shardedProduct) window(ctx context.Context, op string) error {
	for _, sid := range s.dir.ids {
		if err := s.e.windowOf(ctx, sid, op); err != nil {
			return err
		}
	}
	return nil
}

// setHold sets the hold of every shard, where the reservations live.
func (s shardedProduct) setHold(ctx context.Context, d time.Duration) (was time.Duration, err error) {
	for _, sid := range s.dir.ids {
		if was, err = s.e.setHoldOf(ctx, sid, d); err != nil {
			return 0, err
		}
	}
	return was, nil
}

// settle settles the reservation in its customer's home shard, where
// their purchases reserve.
func (s shardedProduct) settle(ctx context.Context, op, orderID, user string) (settled, error) {
	return s.e.settleOf(ctx, s.dir.ids[HomeShard(user, len(s.dir.ids))], s.id, op, orderID, user)
}

func (s shardedProduct) sweep(ctx context.Context) (Swept, error) {
	var all Swept
	for _, sid := range s.dir.ids {
		sw, err := s.e.sweepOf(ctx, sid, s.id)
		if err != nil {
			return Swept{}, err
		}
		all = all.plus(sw)
	}
	return all, nil
}

func (s shardedProduct) dropShards(ctx context.Context, force bool) (Cleared, error) {
	defer s.e.forgetShards(s.id)
	var cleared Cleared
	for _, sid := range s.dir.ids {
		c, err := s.e.evalChecked(ctx, shardDropScript, sid, ControlChannel, s.id, forceArg(force))
		if err != nil {
			return cleared, fmt.Errorf("delete shard %s: %w", sid, err)
		}
		cleared = cleared.plus(c)
	}
	// The restock parts a crash left in the directory.
	if _, err := s.e.eval(ctx, shardClearScript, KeysFor(s.id)); err != nil {
		return cleared, fmt.Errorf("delete %s: %w", s.id, err)
	}
	return cleared, nil
}

// forgetShards drops what this server cached of product id's shards.
func (e *Engine) forgetShards(id string) {
	e.shards.m.Delete(id)
	e.stocks.m.Delete(id)
}
