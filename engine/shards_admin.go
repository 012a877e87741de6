package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// The admin operations of a product spread over shards: restock, release,
// reset and buyers act on the product as one product.

// ErrAmbiguousOrder: an order id names a sale in more than one shard of a
// product (each shard's stream makes its own ids); the customer tells them
// apart.
var ErrAmbiguousOrder = errors.New("order id found in more than one shard")

// ReleaseOption changes what Release does.
type ReleaseOption func(*releaseOptions)

type releaseOptions struct{ user string }

// ReleaseOfUser says whose order is released: on a sharded product the
// order is then looked for in user's home shard only, and must be theirs.
// Without it, every shard is searched. On other products it changes
// nothing.
func ReleaseOfUser(user string) ReleaseOption {
	return func(o *releaseOptions) { o.user = user }
}

// refuseShard fails when id is a shard listed in its product's directory,
// for a restock: one there would not count in the units the product was
// given, and verify would find the product's books broken.
func (e *Engine) refuseShard(ctx context.Context, id string) error {
	if !isShardID(id) {
		return nil
	}
	product := id[:strings.LastIndexByte(id, '#')]
	if ValidateProductID(product) != nil {
		return nil
	}
	d, err := e.readShardDir(ctx, product)
	if err != nil {
		return err
	}
	for _, sid := range d.ids {
		if sid == id {
			return invalidError(fmt.Sprintf("%s is a shard of %s: restock the product", id, product))
		}
	}
	return nil
}

// shardedRestock adds units to sharded product id (directory d). The units
// go to the emptiest shards (fillLowest), in two steps that reuse the
// transfers between shards: shard_restock.lua grows the units the product
// was given and records each shard's part as a transfer out of the
// directory, in one script; then each part is credited to its shard
// (transfer_credit.lua, once per part, announcing the product on the
// control channel) and settled. A crash between the steps leaves parts in
// transit: admin verify counts them so the conservation invariant holds,
// and reports each until admin verify --repair, or any server that finds
// every shard empty, credits it. It returns the units the shards hold
// after the restock and the product's initial + restocks.
func (e *Engine) shardedRestock(ctx context.Context, id string, d shardDir, units int64) (remaining, initial int64, err error) {
	peeks, err := e.peekAll(ctx, d.ids)
	if err != nil {
		return 0, 0, fmt.Errorf("restock %s: %w", id, err)
	}
	stocks := make([]int64, len(peeks))
	for i, p := range peeks {
		stocks[i] = max(p.stock, 0)
	}
	args := []any{units}
	var parts []pendingTransfer
	for i, n := range fillLowest(stocks, units) {
		if n > 0 {
			p := pendingTransfer{src: id, dst: d.ids[i], tid: newTransferID(), units: n, restock: true}
			parts = append(parts, p)
			args = append(args, p.tid, p.dst+" "+strconv.FormatInt(n, 10))
		}
	}
	reply, err := e.evalInts(ctx, shardRestockScript, KeysFor(id), args...)
	switch {
	case err != nil:
		return 0, 0, fmt.Errorf("restock %s: %w", id, err)
	case len(reply) != 1:
		return 0, 0, fmt.Errorf("restock %s: unexpected reply %v", id, reply)
	case reply[0] == replyUnknownProduct: // re-created unsharded meanwhile
		return 0, 0, fmt.Errorf("restock %s: %w", id, ErrUnknownProduct)
	}
	for _, p := range parts {
		if err := e.crashPoint(p.tid); err != nil {
			return 0, 0, fmt.Errorf("restock %s: %w", id, err)
		}
		if err := e.completeTransfer(ctx, p); err != nil {
			return 0, 0, fmt.Errorf("restock %s: %w (admin verify --repair completes it)", id, err)
		}
	}
	after, err := e.peekAll(ctx, d.ids)
	if err != nil {
		return 0, 0, fmt.Errorf("restock %s: %w", id, err)
	}
	e.stocks.note(id, after, e.now())
	for _, p := range after {
		remaining += max(p.stock, 0)
	}
	return remaining, reply[0], nil
}

// fillLowest splits units over shards holding stocks: it raises the
// emptiest shards to one level, as evenly as whole units allow (the first
// shards of a tie get one more), and leaves the fuller ones alone. The
// parts sum to units.
func fillLowest(stocks []int64, units int64) []int64 {
	order := make([]int, len(stocks))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return stocks[order[a]] < stocks[order[b]] })
	// n: how many of the emptiest shards the units raise; sum: their stock.
	n, sum := 1, stocks[order[0]]
	for ; n < len(order); n++ {
		next := stocks[order[n]]
		if next*int64(n)-sum > units { // raising n shards to the next costs more
			break
		}
		sum += next
	}
	level, extra := (units+sum)/int64(n), (units+sum)%int64(n)
	parts := make([]int64, len(stocks))
	for j, i := range order[:n] {
		parts[i] = level - stocks[i]
		if int64(j) < extra {
			parts[i]++
		}
	}
	return parts
}

// shardedRelease releases order orderID of sharded product id in the
// shard whose stream holds its sale: user's home shard when user is given
// (the sale must be theirs), else the one shard whose stream has a sale of
// that id (an id found in several shards is ErrAmbiguousOrder: each
// shard's stream makes its own ids).
func (e *Engine) shardedRelease(ctx context.Context, id string, d shardDir, orderID, user string) (Release, error) {
	candidates := d.ids
	if user != "" {
		if err := ValidateUserID(user); err != nil {
			return Release{}, err
		}
		candidates = []string{d.ids[HomeShard(user, len(d.ids))]}
	}
	var found, owners []string
	for _, sid := range candidates {
		v, err := e.eval(ctx, orderUserScript, KeysFor(sid), orderID)
		var owner string
		if err == nil {
			owner, err = replyString(v)
		}
		if err != nil {
			return Release{}, fmt.Errorf("release %s %s: shard %s: %w", id, orderID, sid, err)
		}
		if owner != "" && (user == "" || owner == user) {
			found, owners = append(found, sid), append(owners, owner)
		}
	}
	switch len(found) {
	case 0:
		return Release{}, fmt.Errorf("%s: order %s: %w", id, orderID, ErrUnknownOrder)
	case 1:
		return e.releaseOf(ctx, found[0], id, orderID)
	}
	return Release{}, fmt.Errorf("%s: order %s: %w (%s, of customers %s): name the customer",
		id, orderID, ErrAmbiguousOrder, strings.Join(found, ", "), strings.Join(owners, ", "))
}

// shardedReset resets sharded product id (directory d): it first completes
// the transfers in flight (as Repair does), then resets every shard to its
// own initial stock, each atomically, announcing the product. A shard's
// initial moves with the units moved into and out of it, so the shards
// then hold all the units the product was given (initial + restocks), and
// each shard's books balance at every step: a crash halfway leaves some
// shards reset and some not, which verify finds consistent, and a second
// reset finishes. Last, transfers spread the units evenly again, as init
// does (a crash among them leaves a transfer verify --repair completes).
// It returns the product's initial + restocks.
func (e *Engine) shardedReset(ctx context.Context, id string, d shardDir) (int64, Cleared, error) {
	if _, err := e.Repair(ctx, id); err != nil {
		return 0, Cleared{}, fmt.Errorf("reset %s: %w", id, err)
	}
	var cleared Cleared
	for _, sid := range d.ids {
		_, c, err := e.resetOf(ctx, sid, id)
		if err != nil {
			return 0, Cleared{}, fmt.Errorf("reset %s: %w", id, err)
		}
		cleared = cleared.plus(c)
	}
	total := d.initial + d.restocked
	if err := e.rebalance(ctx, id, d.ids, total); err != nil {
		return 0, Cleared{}, fmt.Errorf("reset %s: %w", id, err)
	}
	return total, cleared, nil
}

// rebalance moves units between the shards ids of product id, by exact
// transfers, towards the even spread of total that init makes.
func (e *Engine) rebalance(ctx context.Context, id string, ids []string, total int64) error {
	peeks, err := e.peekAll(ctx, ids)
	if err != nil {
		return err
	}
	over := make([]int64, len(ids)) // units above the shard's share (below: negative)
	for i, p := range peeks {
		over[i] = max(p.stock, 0) - shareOf(total, len(ids), i)
	}
	for src, dst := 0, 0; src < len(ids) && dst < len(ids); {
		switch {
		case over[src] <= 0:
			src++
		case over[dst] >= 0:
			dst++
		default:
			n := min(over[src], -over[dst])
			if _, err := e.transfer(ctx, ids[src], ids[dst], n, true); err != nil {
				return err
			}
			over[src] -= n
			over[dst] += n
		}
	}
	e.stocks.m.Delete(id) // the next purchase reads the shards again
	return nil
}

// shardedBuyers lists the buyers of every shard of d, shard by shard (each
// shard's in purchase order), the first limit of them (all for 0), and
// their total. A customer's orders are all in their home shard, so the
// lists do not overlap.
func (e *Engine) shardedBuyers(ctx context.Context, d shardDir, limit int) (total int64, ids []string, err error) {
	for _, sid := range d.ids {
		want := 0 // all
		if limit > 0 {
			want = limit - len(ids)
			if want == 0 {
				want = -1 // the total only
			}
		}
		n, got, err := e.buyersOf(ctx, sid, want)
		if err != nil {
			return 0, nil, err
		}
		total += n
		ids = append(ids, got...)
	}
	return total, ids, nil
}
