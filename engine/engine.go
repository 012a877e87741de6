package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/gomodule/redigo/redis"

	"github.com/flashsale/flashsale/lua"
)

// The scripts, hashed once. Every product operation is one of them, so each
// is atomic and touches one product's keys only.
var (
	purchaseScript = redis.NewScript(2, lua.Purchase)
	initScript     = redis.NewScript(3, lua.Init)
	resetScript    = redis.NewScript(3, lua.Reset)
	statusScript   = redis.NewScript(3, lua.Status)
	buyersScript   = redis.NewScript(2, lua.Buyers)
	deleteScript   = redis.NewScript(3, lua.Delete)
)

// Scripts lists every script the engine runs, for SCRIPT LOAD at start.
func Scripts() []*redis.Script {
	return []*redis.Script{purchaseScript, initScript, resetScript, statusScript, buyersScript, deleteScript}
}

// ErrUnknownProduct is returned for a product that was never initialised.
var ErrUnknownProduct = errors.New("unknown product")

// ErrInvalidStock is returned by Init for a negative number of units.
var ErrInvalidStock = errors.New("stock must be zero or more units")

// Engine runs purchases and admin operations against Redis.
type Engine struct {
	redis   Redis
	channel string
}

// New returns an Engine on r that announces sales on EventChannel.
func New(r Redis) *Engine {
	return &Engine{redis: r, channel: EventChannel}
}

// Redis returns the engine's Redis, for health checks.
func (e *Engine) Redis() Redis { return e.redis }

// Request is one purchase attempt.
type Request struct {
	ProductID string
	UserID    string
}

// Result is the outcome of a purchase attempt.
type Result struct {
	Status    Status
	Remaining int64  // units left after a sale (StatusSuccess only)
	Code      string // one of the Code* values (StatusError only)
	Message   string // what the client is told (StatusError only)
	Err       error  // what the operator is told (StatusError only)
}

// Fail returns the ERROR result for err: its client message and code come
// from the error's kind, and Redis internals stay in Err.
func Fail(err error) Result {
	r := Result{Status: StatusError, Err: err, Message: err.Error()}
	switch {
	case errors.Is(err, ErrInvalidRequest):
		r.Code = CodeInvalidRequest
	case errors.Is(err, ErrUnknownProduct):
		r.Code = CodeUnknownProduct
	case errors.Is(err, ErrUnavailable):
		r.Code, r.Message = CodeUnavailable, ErrUnavailable.Error()
	default:
		r.Code, r.Message = CodeInternal, "internal error"
	}
	return r
}

// Purchase validates req and runs the purchase script once. It never
// reports SUCCESS unless Redis confirmed the sale.
func (e *Engine) Purchase(ctx context.Context, req Request) Result {
	if err := ValidateProductID(req.ProductID); err != nil {
		return Fail(err)
	}
	if err := ValidateUserID(req.UserID); err != nil {
		return Fail(err)
	}
	k := KeysFor(req.ProductID)
	v, err := e.redis.Eval(ctx, purchaseScript, k.Stock, k.Buyers, req.ProductID, req.UserID, e.channel)
	if err != nil {
		return Fail(fmt.Errorf("purchase %s: %w", req.ProductID, err))
	}
	reply, err := redis.Int64s(v, nil)
	if err != nil || len(reply) != 2 {
		return Fail(fmt.Errorf("purchase %s: unexpected reply %v: %v", req.ProductID, v, err))
	}
	switch reply[0] {
	case 1:
		return Result{Status: StatusSuccess, Remaining: reply[1]}
	case 0:
		return Result{Status: StatusSoldOut}
	case -1:
		return Fail(ErrUnknownProduct)
	}
	return Fail(fmt.Errorf("purchase %s: unexpected reply %v", req.ProductID, reply))
}

// ProductStatus is one consistent reading of a product.
type ProductStatus struct {
	ID        string `json:"product_id"`
	Remaining int64  `json:"remaining"`
	Initial   int64  `json:"initial"`
	Buyers    int64  `json:"buyers"`
}

// Sold is how many units the product has sold since it was initialised.
func (s ProductStatus) Sold() int64 { return s.Initial - s.Remaining }

// Consistent reports the invariant remaining + buyers == initial, with
// stock never negative.
func (s ProductStatus) Consistent() bool {
	return s.Remaining >= 0 && s.Remaining+s.Buyers == s.Initial
}

// Init creates product id with units in stock, or re-creates it: buyers
// are cleared and the initial stock becomes units.
func (e *Engine) Init(ctx context.Context, id string, units int64) error {
	if err := ValidateProductID(id); err != nil {
		return err
	}
	if units < 0 {
		return ErrInvalidStock
	}
	k := KeysFor(id)
	_, err := e.redis.Eval(ctx, initScript, k.Stock, k.Buyers, k.Meta, units)
	if err != nil {
		return fmt.Errorf("init %s: %w", id, err)
	}
	return nil
}

// Status reads product id in one atomic step.
func (e *Engine) Status(ctx context.Context, id string) (ProductStatus, error) {
	if err := ValidateProductID(id); err != nil {
		return ProductStatus{}, err
	}
	k := KeysFor(id)
	v, err := e.redis.Eval(ctx, statusScript, k.Stock, k.Buyers, k.Meta)
	reply, err := redis.Int64s(v, err)
	if err != nil {
		return ProductStatus{}, fmt.Errorf("status %s: %w", id, err)
	}
	if len(reply) != 4 {
		return ProductStatus{}, fmt.Errorf("status %s: unexpected reply %v", id, reply)
	}
	if reply[0] == 0 {
		return ProductStatus{}, fmt.Errorf("%s: %w", id, ErrUnknownProduct)
	}
	return ProductStatus{ID: id, Remaining: reply[1], Initial: reply[2], Buyers: reply[3]}, nil
}

// Buyers returns the first limit buyers of product id in purchase order
// (all of them when limit <= 0) and how many there are in total.
func (e *Engine) Buyers(ctx context.Context, id string, limit int) (total int64, ids []string, err error) {
	if err := ValidateProductID(id); err != nil {
		return 0, nil, err
	}
	k := KeysFor(id)
	v, err := redis.Values(e.redis.Eval(ctx, buyersScript, k.Stock, k.Buyers, max(limit, 0)))
	if err != nil {
		return 0, nil, fmt.Errorf("buyers %s: %w", id, err)
	}
	var exists int64
	if _, err := redis.Scan(v, &exists, &total, &ids); err != nil {
		return 0, nil, fmt.Errorf("buyers %s: unexpected reply: %w", id, err)
	}
	if exists == 0 {
		return 0, nil, fmt.Errorf("%s: %w", id, ErrUnknownProduct)
	}
	return total, ids, nil
}

// Reset puts product id's stock back to its initial value and clears its
// buyers, atomically. It returns the initial stock.
func (e *Engine) Reset(ctx context.Context, id string) (int64, error) {
	if err := ValidateProductID(id); err != nil {
		return 0, err
	}
	k := KeysFor(id)
	initial, err := redis.Int64(e.redis.Eval(ctx, resetScript, k.Stock, k.Buyers, k.Meta))
	if err != nil {
		return 0, fmt.Errorf("reset %s: %w", id, err)
	}
	if initial < 0 {
		return 0, fmt.Errorf("%s: %w", id, ErrUnknownProduct)
	}
	return initial, nil
}

// Delete removes every key of product id.
func (e *Engine) Delete(ctx context.Context, id string) error {
	if err := ValidateProductID(id); err != nil {
		return err
	}
	k := KeysFor(id)
	n, err := redis.Int64(e.redis.Eval(ctx, deleteScript, k.Stock, k.Buyers, k.Meta))
	if err != nil {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", id, ErrUnknownProduct)
	}
	return nil
}
