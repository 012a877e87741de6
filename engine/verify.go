package engine

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// VerifyTimeout bounds one product's audit when the caller set no deadline:
// it reads every order, about a second per million.
const VerifyTimeout = 2 * time.Minute

// Audit is the result of verifying one product's books.
type Audit struct {
	ID        string   `json:"product_id"`
	Problems  []string `json:"problems"` // empty when the books balance
	Initial   int64    `json:"initial"`
	Remaining int64    `json:"remaining"`
	Held      int64    `json:"held"`                 // units held by customers
	Sold      int64    `json:"sold"`                 // units in sale and reserved entries of the orders stream
	Released  int64    `json:"released"`             // units in release and released entries
	Orders    int64    `json:"orders"`               // sales not released
	Customers int64    `json:"customers"`            // customers holding units
	Reserved  int64    `json:"reserved"`             // units of reservations not yet paid or released
	Paid      int64    `json:"paid"`                 // units of reservations paid
	Shards    int      `json:"shards,omitempty"`     // shards of a sharded product
	InTransit int64    `json:"in_transit,omitempty"` // units debited from a shard, not yet credited
}

// OK reports whether the books balance.
func (a Audit) OK() bool { return len(a.Problems) == 0 }

// Verify audits product id from Redis, atomically: initial == remaining +
// units held; units held == sales − releases in the orders stream, per
// customer; the buyers list holds one entry per order not released; stock
// is not negative; no customer is above the limit. It reads every order,
// so it blocks Redis for O(orders): run it when the sale is quiet.
func (e *Engine) Verify(ctx context.Context, id string) (Audit, error) {
	if err := ValidateProductID(id); err != nil {
		return Audit{}, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, VerifyTimeout)
		defer cancel()
	}
	l, err := e.layoutOf(ctx, id, false)
	if err != nil {
		return Audit{}, err
	}
	return l.verify(ctx)
}

// verifyOf audits product (or shard) id, atomically.
func (e *Engine) verifyOf(ctx context.Context, id string) (Audit, error) {
	v, err := e.eval(ctx, verifyScript, KeysFor(id))
	if err != nil {
		return Audit{}, fmt.Errorf("verify %s: %w", id, err)
	}
	if replyKind(v) == replyUnknownProduct {
		return Audit{}, fmt.Errorf("%s: %w", id, ErrUnknownProduct)
	}
	var kind int64
	var sums []int64
	a := Audit{ID: id}
	if err := scanReply(v, &kind, &a.Problems, &sums); err != nil {
		return Audit{}, fmt.Errorf("verify %s: unexpected reply: %w", id, err)
	}
	if len(sums) != 9 {
		return Audit{}, fmt.Errorf("verify %s: unexpected reply %v", id, v)
	}
	a.Initial, a.Remaining, a.Held, a.Sold, a.Released, a.Orders, a.Customers, a.Reserved, a.Paid =
		sums[0], sums[1], sums[2], sums[3], sums[4], sums[5], sums[6], sums[7], sums[8]
	return a, nil
}

// Products lists every product in Redis, sorted.
func (e *Engine) Products(ctx context.Context) ([]string, error) {
	var ids []string
	err := e.redis.Scan(ctx, metaPattern, func(key string) error {
		if id := productOfMeta(key); id != "" {
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list products: %w", err)
	}
	sort.Strings(ids)
	return hideShards(ids), nil
}
