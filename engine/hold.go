package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/flashsale/flashsale/wire"
)

// Reserve, then pay. A product initialised WithHold (or given a hold by
// SetHold) reserves instead of selling: a purchase answers RESERVED with
// the order's expiry, and takes the units from stock at once, so a
// reservation never oversells. Its customer confirms it (paid) or cancels
// it (the units back in stock at once); one left unpaid past its expiry is
// released by whichever comes first: a server's Sweeper, a purchase of the
// product (which releases the expired reservations before it judges
// stock), or a confirm or cancel of it. Each is one script call, and a
// reservation is settled exactly once: paid, or released, never both (see
// lua/reservation.lua). A release frees the customer's allowance under the
// per-customer limit, as admin release does.

// MaxHold caps how long a reservation may last.
const MaxHold = 7 * 24 * time.Hour

// Errors of reservations.
var (
	ErrInvalidHold = invalidError(fmt.Sprintf("the hold must be 0 (sell outright) or between 1ms and %s", MaxHold))
	// ErrForbidden: the order is another customer's.
	ErrForbidden = errors.New("the order is another customer's")
	// ErrAlreadyPaid: admin release of a reservation that is paid.
	ErrAlreadyPaid = errors.New("the reservation is paid")
)

// WithHold makes the product's purchases reservations that last d unless
// paid (0 sells outright, the default).
func WithHold(d time.Duration) InitOption { return func(s *Settings) { s.Hold = d } }

// SetHold changes how long the reservations of live product id last, and
// returns the hold it replaced. Purchases from then on reserve for d (0:
// they sell outright); reservations already made keep their expiry.
func (e *Engine) SetHold(ctx context.Context, id string, d time.Duration) (time.Duration, error) {
	if _, err := initSettings(id, 0, []InitOption{WithHold(d)}); err != nil {
		return 0, err
	}
	l, err := e.layoutOf(ctx, id, false)
	if err != nil {
		return 0, err
	}
	return l.setHold(ctx, d)
}

// setHoldOf sets the hold of product (or shard) id.
func (e *Engine) setHoldOf(ctx context.Context, id string, d time.Duration) (time.Duration, error) {
	was, err := e.evalInt(ctx, holdScript, KeysFor(id), d.Milliseconds())
	switch {
	case err != nil:
		return 0, fmt.Errorf("hold %s: %w", id, err)
	case was == replyUnknownProduct:
		return 0, fmt.Errorf("%s: %w", id, ErrUnknownProduct)
	}
	return time.Duration(was) * time.Millisecond, nil
}

// OrderRequest names a reservation its customer confirms or cancels, with
// the customer's proof as a purchase carries it (see Request).
type OrderRequest struct {
	ProductID string
	UserID    string
	OrderID   string
	Token     string
	Expires   int64
	JWT       string
}

// The ways to settle a reservation (order.lua's op).
const (
	opConfirm = "confirm"
	opCancel  = "cancel"
)

// Confirm marks a reservation paid: PAID, also for a confirm retried after
// it succeeded. A reservation past its expiry is EXPIRED (released, if no
// one had yet); one cancelled is RELEASED. Another customer's order is
// refused with FORBIDDEN, an unknown one with UNKNOWN_ORDER.
func (e *Engine) Confirm(ctx context.Context, req OrderRequest) Result {
	return e.settle(ctx, opConfirm, req)
}

// Cancel releases a reservation: its units go back to stock at once and
// its customer's allowance is freed. It answers RELEASED, also when the
// reservation had been cancelled or had expired before, and ALREADY_PAID
// (changing nothing) for one that is paid. Admins release any order with
// Release.
func (e *Engine) Cancel(ctx context.Context, req OrderRequest) Result {
	return e.settle(ctx, opCancel, req)
}

func (e *Engine) settle(ctx context.Context, op string, req OrderRequest) Result {
	if err := e.checkOrderRequest(&req); err != nil {
		if errors.Is(err, ErrInvalidRequest) {
			return Fail(err)
		}
		return Result{Status: wire.StatusUnauthorized, Message: err.Error()}
	}
	l, err := e.layoutOf(ctx, req.ProductID, true)
	if err != nil {
		return Fail(err)
	}
	s, err := l.settle(ctx, op, req.OrderID, req.UserID)
	if err != nil {
		return Fail(err)
	}
	if s.changed && e.holdObserver != nil {
		e.holdObserver.Settled(op, s.status)
	}
	return Result{Status: s.status, Remaining: s.remaining, Quantity: s.quantity, OrderID: req.OrderID}
}

// checkOrderRequest validates req and checks its customer's proof.
func (e *Engine) checkOrderRequest(req *OrderRequest) error {
	if err := ValidateProductID(req.ProductID); err != nil {
		return err
	}
	if err := ValidateOrderID(req.OrderID); err != nil {
		return err
	}
	p := Request{UserID: req.UserID, Token: req.Token, Expires: req.Expires, JWT: req.JWT}
	if p.UserID != "" || p.JWT == "" {
		if err := ValidateUserID(p.UserID); err != nil {
			return err
		}
	}
	if err := e.authenticate(&p); err != nil {
		return err
	}
	req.UserID = p.UserID
	return ValidateUserID(req.UserID)
}

// settled is order.lua's answer.
type settled struct {
	status              wire.Status
	changed             bool // this call settled (or released) the reservation
	remaining, quantity int64
}

// The outcomes of order.lua, by op.
var settleStatus = map[string][5]wire.Status{
	opConfirm: {1: wire.StatusPaid, 2: wire.StatusExpired, 3: wire.StatusReleased, 4: wire.StatusPaid},
	opCancel:  {1: wire.StatusAlreadyPaid, 2: wire.StatusReleased, 3: wire.StatusReleased, 4: wire.StatusAlreadyPaid},
}

// settleOf runs order.lua on product (or shard) id of product.
func (e *Engine) settleOf(ctx context.Context, id, product, op, orderID, user string) (settled, error) {
	v, err := e.eval(ctx, orderScript, KeysFor(id), op, orderID, user, e.channel, ControlChannel, product)
	if err != nil {
		return settled{}, fmt.Errorf("%s %s %s: %w", op, id, orderID, err)
	}
	switch replyKind(v) {
	case replyUnknownProduct:
		return settled{}, fmt.Errorf("%s: %w", product, ErrUnknownProduct)
	case replyUnknownOrder:
		return settled{}, fmt.Errorf("%s: no reservation has order id %s: %w", product, orderID, ErrUnknownOrder)
	case replyForbidden:
		return settled{}, fmt.Errorf("order %s: %w", orderID, ErrForbidden)
	}
	var kind, changed int64
	var s settled
	var owner string
	if err := scanReply(v, &kind, &changed, &s.remaining, &s.quantity, &owner); err != nil || kind < 1 || kind > 4 {
		return settled{}, fmt.Errorf("%s %s: unexpected reply %v: %w", op, id, v, errors.Join(err, errBadOutcome))
	}
	s.status, s.changed = settleStatus[op][kind], changed == 1
	return s, nil
}

var errBadOutcome = errors.New("unknown outcome")

// SweepLimit bounds the reservations one sweep call releases, so that a
// call never blocks Redis for long; the next call takes the rest.
const SweepLimit = 200

// Swept is what one sweep of a product released.
type Swept struct {
	Units int64 // units back in stock
	// Lags are how late each reservation released was: the time from its
	// expiry to its release.
	Lags []time.Duration
	// Next is the expiry of the product's next reservation (zero: none),
	// and Now Redis's clock at the sweep.
	Next, Now time.Time
	// More: the sweep stopped at SweepLimit with more due.
	More bool
}

// Sweep releases product id's reservations whose hold has expired (at
// most SweepLimit per shard), as a purchase would before it judges stock.
// Any number of servers may sweep at once: each reservation is released
// once.
func (e *Engine) Sweep(ctx context.Context, id string) (Swept, error) {
	l, err := e.layoutOf(ctx, id, true)
	if err != nil {
		return Swept{}, err
	}
	sw, err := l.sweep(ctx)
	if err == nil {
		e.heardSwept(sw)
	}
	return sw, err
}

// heardSwept tells the observer, if any, of what a sweep released.
func (e *Engine) heardSwept(sw Swept) {
	if len(sw.Lags) > 0 && e.holdObserver != nil {
		e.holdObserver.Expired(sw.Lags)
	}
}

// sweepOf sweeps product (or shard) id of product.
func (e *Engine) sweepOf(ctx context.Context, id, product string) (Swept, error) {
	n, err := e.evalInts(ctx, sweepScript, KeysFor(id), SweepLimit, e.channel, ControlChannel, product)
	switch {
	case err != nil:
		return Swept{}, fmt.Errorf("sweep %s: %w", id, err)
	case len(n) == 1 && n[0] == replyUnknownProduct:
		return Swept{}, fmt.Errorf("%s: %w", product, ErrUnknownProduct)
	case len(n) < 3:
		return Swept{}, fmt.Errorf("sweep %s: unexpected reply %v", id, n)
	}
	sw := Swept{Units: n[0], Now: time.UnixMilli(n[2]).UTC(), More: len(n)-3 >= SweepLimit}
	if n[1] >= 0 {
		sw.Next = time.UnixMilli(n[1]).UTC()
	}
	for _, ms := range n[3:] {
		sw.Lags = append(sw.Lags, time.Duration(ms)*time.Millisecond)
	}
	return sw, nil
}

// plus adds what another shard's sweep released.
func (sw Swept) plus(o Swept) Swept {
	sw.Units += o.Units
	sw.Lags = append(sw.Lags, o.Lags...)
	sw.More = sw.More || o.More
	if sw.Next.IsZero() || !o.Next.IsZero() && o.Next.Before(sw.Next) {
		sw.Next = o.Next
	}
	if o.Now.After(sw.Now) {
		sw.Now = o.Now
	}
	return sw
}

// HoldObserver hears what happens to reservations, for metrics. Its
// methods must not block.
type HoldObserver interface {
	// Reserved is called for every purchase answered RESERVED (a replay
	// included).
	Reserved()
	// Settled is called when a confirm or cancel (op "confirm" or
	// "cancel") changed a reservation, with the status it answered:
	// PAID, EXPIRED (the confirm found it expired and released it) or
	// RELEASED.
	Settled(op string, status wire.Status)
	// Expired is called with how late each reservation a sweep released
	// was.
	Expired(lags []time.Duration)
}

// WithHoldObserver sets the observer of reservations.
func WithHoldObserver(o HoldObserver) Option { return func(e *Engine) { e.holdObserver = o } }
