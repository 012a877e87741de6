package engine

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/flashsale/flashsale/wire"
)

// MaxMergedPurchases bounds the purchases of one product that run as one
// script call.
const MaxMergedPurchases = 64

// Errors of the engine's operations.
var (
	ErrUnknownProduct = errors.New("unknown product")
	ErrUnknownOrder   = errors.New("unknown order")
	ErrInvalidStock   = fmt.Errorf("stock must be between 0 and %d units", MaxUnits)
	ErrInvalidWindow  = errors.New("the sale window must end after it starts")
	ErrRequestReused  = errors.New("request_id reused with a different payload")
	// ErrOrderReleased: a request_id replayed after admin release of its
	// order. The sale happened and was undone; the retry takes no stock.
	ErrOrderReleased = errors.New("the order of this request_id was released")
)

// MaxUnits caps a product's stock: Lua's numbers are exact up to 2^53.
const MaxUnits = 1<<53 - 1

// DefaultRequestTTL is how long a request_id is remembered.
const DefaultRequestTTL = 24 * time.Hour

// DefaultPerUserLimit is the per-customer limit of a product initialised
// without one.
const DefaultPerUserLimit = 1

// Engine runs purchases and admin operations against Redis.
type Engine struct {
	redis      Redis
	channel    string
	requestTTL time.Duration
	userRate   Rate
	soldOut    *soldOut         // nil: every attempt goes to Redis
	signer     TokenVerifier    // nil: no customer tokens required
	jwt        JWTVerifier      // nil: JWTs are not accepted
	now        func() time.Time // the clock tokens are checked against
	async      AsyncRedis       // redis, or redis with a goroutine per EvalAsync
	stats      engineStats
	shards     shardCache     // shard lists of sharded products, by id
	stocks     stockCache     // shard stocks of sharded products, by id
	args       argsCache      // the fixed parts of purchase calls, by id
	settings   scriptSettings // set by New, after the options
	// holdObserver hears of reservations (nil: no one); sweeper, when
	// set, is told of every reservation made (see Sweeper).
	holdObserver HoldObserver
	roomObserver RoomObserver  // hears of joins, polls and admissions (nil: no one)
	roomSecret   roomKeySource // what waiting-room tokens are signed with
	sweeper      atomic.Pointer[Sweeper]
	// transferHook, when set (by tests, see export_test.go), runs after a
	// transfer's debit, and before the credit of each part of a restock;
	// an error stops the transfer (or the restock) there, as a crash would.
	transferHook atomic.Pointer[func(tid string) error]
}

// Option tunes an Engine.
type Option func(*Engine)

// Rate is an attempts-per-time limit: one attempt per Interval on
// average, with up to Burst at once. The zero Rate is no limit.
type Rate struct {
	Interval time.Duration
	Burst    int
}

// ParseRate reads "N/s", "N/m" or "N/h" (N attempts per second, minute or
// hour), or "0" for no limit.
func ParseRate(s string, burst int) (Rate, error) {
	if s == "" || s == "0" {
		return Rate{}, nil
	}
	n, per, ok := strings.Cut(s, "/")
	count, err := strconv.ParseFloat(n, 64)
	unit := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}[per]
	if !ok || err != nil || count <= 0 || unit == 0 {
		return Rate{}, fmt.Errorf("rate %q: want N/s, N/m or N/h", s)
	}
	interval := time.Duration(float64(unit) / count)
	if interval < time.Millisecond {
		return Rate{}, fmt.Errorf("rate %q: at most 1000/s", s)
	}
	return Rate{Interval: interval, Burst: max(burst, 1)}, nil
}

// WithUserRate limits each customer's purchase attempts on a product,
// inside the purchase script (so every server shares the limit).
func WithUserRate(r Rate) Option { return func(e *Engine) { e.userRate = r } }

// WithRequestTTL sets how long a request_id is remembered for exact retries.
func WithRequestTTL(d time.Duration) Option {
	return func(e *Engine) {
		if d > 0 {
			e.requestTTL = max(d, time.Millisecond) // PEXPIRE 0 would delete the record at once
		}
	}
}

// WithSigner makes every purchase prove its user_id with a token s
// verifies (an *auth.Signer); a nil interface leaves purchases unsigned.
func WithSigner(s TokenVerifier) Option { return func(e *Engine) { e.signer = s } }

// WithJWT accepts customer JWTs that v (an *auth.JWTVerifier) verifies as
// proof of the user id, their sub; a nil interface leaves JWTs unchecked.
// With WithSigner as well, either proof is accepted: a request carrying a
// jwt is judged by it alone, one without by its HMAC token.
func WithJWT(v JWTVerifier) Option { return func(e *Engine) { e.jwt = v } }

// WithClock sets the clock customer tokens are checked against (default
// time.Now), for tests.
func WithClock(now func() time.Time) Option {
	return func(e *Engine) {
		if now != nil {
			e.now = now
		}
	}
}

// New returns an Engine on r that announces sales on EventChannel.
func New(r Redis, opts ...Option) *Engine {
	e := &Engine{redis: r, channel: EventChannel, requestTTL: DefaultRequestTTL, now: time.Now}
	e.roomSecret.fetching = make(chan struct{}, 1)
	for _, o := range opts {
		o(e)
	}
	e.settings = newScriptSettings(e)
	// The one capability the engine asks about: a Redis that batches
	// (AsyncRedis) runs a purchase without a parked goroutine.
	if a, ok := r.(AsyncRedis); ok {
		e.async = a
	} else {
		e.async = goAsync{r}
	}
	return e
}

// goAsync is a Redis's EvalAsync by a goroutine per call.
type goAsync struct{ Redis }

func (g goAsync) EvalAsync(deadline time.Time, s *Script, done func(any, error), keysAndArgs ...any) {
	go func() {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		done(g.Eval(ctx, s, keysAndArgs...))
	}()
}

// Ping checks that the engine's Redis answers, for health checks.
func (e *Engine) Ping(ctx context.Context) error { return e.redis.Ping(ctx) }

// Subscribe calls fn with every message published on channel (such as
// EventChannel) until ctx is done, then returns nil, or until the
// subscription fails.
func (e *Engine) Subscribe(ctx context.Context, channel string, fn func(payload []byte)) error {
	return e.redis.Subscribe(ctx, channel, fn)
}

// Request is one purchase attempt.
type Request struct {
	ProductID string
	UserID    string
	Quantity  int64  // 0 means 1
	RequestID string // optional: retries with the same id get the same answer
	Token     string // the customer token, checked when the engine has a TokenVerifier
	Expires   int64  // the token's expiry, Unix seconds
	JWT       string // a JSON Web Token proving UserID (its sub), checked when the engine has a JWT verifier
	// Admission is the token a product's waiting room gave the customer
	// (see Poll); a product with a room sells only with it.
	Admission string

	admission string // the nonce of Admission, checked by the purchase script
}

// Result is the outcome of a purchase attempt.
type Result struct {
	Status     wire.Status
	Remaining  int64         // units left (SUCCESS, INSUFFICIENT_STOCK)
	OrderID    string        // SUCCESS, RESERVED
	Quantity   int64         // units sold (SUCCESS) or reserved (RESERVED)
	ExpiresAt  time.Time     // RESERVED: when the reservation lapses unless paid (Redis's clock)
	Held       int64         // units the customer already holds (ALREADY_PURCHASED)
	Limit      int64         // the per-customer limit (ALREADY_PURCHASED)
	RetryAfter time.Duration // RATE_LIMITED
	Start      time.Time     // NOT_STARTED
	End        time.Time     // ENDED
	Code       string        // one of the Code* values (ERROR)
	Message    string        // what the client is told (ERROR, UNAUTHORIZED)
	Err        error         // what the operator is told (ERROR)
}

// msgRefused is the client's message for a call Redis refused.
const msgRefused = "redis unavailable: the request did not run (nothing was sold); it can be retried"

// msgStoreFull is the client's message for a call Redis refused for want
// of memory.
const msgStoreFull = "the sale's store is full: the request did not run (nothing was recorded); retry later"

// Fail returns the ERROR result for err: its client message and code come
// from the error's kind, and Redis internals stay in Err.
func Fail(err error) Result {
	r := Result{Status: wire.StatusError, Err: err, Message: err.Error()}
	switch {
	case errors.Is(err, ErrInvalidRequest):
		r.Code = CodeInvalidRequest
	case errors.Is(err, ErrUnknownProduct):
		r.Code, r.Message = CodeUnknownProduct, ErrUnknownProduct.Error()
	case errors.Is(err, ErrRequestReused):
		r.Code, r.Message = CodeRequestReused, ErrRequestReused.Error()
	case errors.Is(err, ErrOrderReleased):
		r.Code = CodeOrderReleased
	case errors.Is(err, ErrUnknownOrder):
		r.Code = CodeUnknownOrder
	case errors.Is(err, ErrForbidden):
		r.Code = CodeForbidden
	case errors.Is(err, ErrNotAdmitted):
		r.Code = CodeNotAdmitted
	case errors.Is(err, ErrNoRoom):
		r.Code = CodeNoRoom
	case errors.Is(err, ErrUnknownTicket):
		r.Code = CodeUnknownTicket
	case errors.Is(err, ErrNotDurable):
		r.Code, r.Message = CodeNotDurable, "sale recorded but not confirmed durable in time; retry with the same request_id to learn its outcome"
	case errors.Is(err, ErrOutcomeUnknown):
		r.Code, r.Message = CodeUnavailable, "redis unavailable: outcome unknown; retry with the same request_id to learn it"
	case errors.Is(err, ErrStoreFull):
		r.Code, r.Message = CodeStoreFull, msgStoreFull
	case errors.Is(err, ErrRefused):
		r.Code, r.Message = CodeUnavailable, msgRefused
	case errors.Is(err, ErrUnavailable):
		r.Code, r.Message = CodeUnavailable, ErrUnavailable.Error()
	default:
		r.Code, r.Message = CodeInternal, "internal error"
	}
	return r
}

// Validate checks req and fills in its defaults. UserID may be empty when
// a JWT is given: its sub becomes the user id once verified, and is
// validated then.
func (req *Request) Validate() error {
	if req.Quantity == 0 {
		req.Quantity = 1
	}
	if err := ValidateProductID(req.ProductID); err != nil {
		return err
	}
	if req.UserID != "" || req.JWT == "" {
		if err := ValidateUserID(req.UserID); err != nil {
			return err
		}
	}
	if err := ValidateQuantity(req.Quantity); err != nil {
		return err
	}
	if req.RequestID != "" {
		return ValidateRequestID(req.RequestID)
	}
	return nil
}

// Purchase validates req and runs the purchase script once. It never
// reports SUCCESS unless Redis confirmed the sale.
func (e *Engine) Purchase(ctx context.Context, req Request) Result {
	if e.needsRoomKey(&req) {
		if _, err := e.roomKey(ctx); err != nil {
			return Fail(err)
		}
	}
	args, res, ok := e.preparePurchase(&req)
	if !ok {
		return res
	}
	return e.purchasePrepared(ctx, &req, args)
}

// purchasePrepared runs a prepared purchase, waiting for its result.
func (e *Engine) purchasePrepared(ctx context.Context, req *Request, args []any) Result {
	ids := e.cachedShards(req.ProductID)
	v, err := e.redis.Eval(ctx, purchaseScript, e.firstArgs(req, ids, args)...)
	res := e.firstOutcome(req, ids, v, err)
	if e.answered(req, ids, &res) {
		return res
	}
	return e.followUp(ctx, req, ids, res)
}

// PurchaseAsync is Purchase for a server: done receives the result,
// perhaps on another goroutine, and must not block. Redis work is bounded
// by deadline.
func (e *Engine) PurchaseAsync(req Request, deadline time.Time, done func(Result)) {
	if e.needsRoomKey(&req) { // once an engine's life: read the room key first
		go func() {
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			defer cancel()
			if _, err := e.roomKey(ctx); err != nil {
				done(Fail(err))
				return
			}
			e.PurchaseAsync(req, deadline, done)
		}()
		return
	}
	args, res, ok := e.preparePurchase(&req)
	if !ok {
		done(res)
		return
	}
	e.purchaseAsync(req, args, deadline, done)
}

// purchaseAsync sends req's purchase, args prepared, to Redis. It is apart
// from PurchaseAsync so that only a purchase that goes to Redis copies req
// to the heap, not one answered at once (a sold-out answer allocates
// nothing). The first attempt is queued without a goroutine; only a
// follow-up (a refill, a product whose layout changed) takes one.
func (e *Engine) purchaseAsync(req Request, args []any, deadline time.Time, done func(Result)) {
	ids := e.cachedShards(req.ProductID)
	if ids == nil { // a callback without ids: a smaller closure, fewer bytes a purchase
		e.async.EvalAsync(deadline, purchaseScript, func(v any, err error) {
			e.finishAsync(&req, nil, deadline, done, v, err)
		}, args...)
		return
	}
	e.async.EvalAsync(deadline, purchaseScript, func(v any, err error) {
		e.finishAsync(&req, ids, deadline, done, v, err)
	}, e.firstArgs(&req, ids, args)...)
}

// finishAsync hands done the answer of req's first attempt, or, on a
// goroutine of its own, of its follow-up.
func (e *Engine) finishAsync(req *Request, ids []string, deadline time.Time, done func(Result), v any, err error) {
	res := e.firstOutcome(req, ids, v, err)
	if e.answered(req, ids, &res) {
		done(res)
		return
	}
	go func() {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		done(e.followUp(ctx, req, ids, res))
	}()
}

// preparePurchase checks req (filling in defaults) and returns the purchase
// script's keys and arguments; when the answer is known without Redis it
// returns that instead, with ok false.
func (e *Engine) preparePurchase(req *Request) (args []any, res Result, ok bool) {
	if err := req.Validate(); err != nil {
		return nil, Fail(err), false
	}
	subOnly := req.UserID == "" // Validate let it through for a JWT
	if err := e.authenticate(req); err != nil {
		return nil, Result{Status: wire.StatusUnauthorized, Message: err.Error()}, false
	}
	if subOnly { // the JWT's sub, or still empty when no verifier read the JWT
		if err := ValidateUserID(req.UserID); err != nil {
			return nil, Fail(err), false
		}
	}
	if err := e.checkAdmission(req); err != nil {
		return nil, Fail(err), false
	}
	// Sold out is final until the control channel says otherwise; a retry
	// with a request_id still goes to Redis, which may hold its SUCCESS.
	if e.soldOut != nil && req.RequestID == "" && e.soldOut.is(req.ProductID, e.now()) {
		e.stats.soldOutHits.Add(1)
		return nil, Result{Status: wire.StatusSoldOut}, false
	}
	return e.purchaseArgs(req, req.ProductID, true), Result{}, true
}

// authenticate checks the proof of req's user id, if the engine wants one:
// a JWT when the request carries one and the engine has a verifier (its
// sub fills in an empty UserID and must equal a given one), else the HMAC
// token when the engine has a signer. Its error's text is what the client
// is told.
func (e *Engine) authenticate(req *Request) error {
	if e.jwt != nil && (req.JWT != "" || e.signer == nil) {
		user, err := e.jwt.VerifyUser(req.UserID, req.JWT, e.now())
		if err == nil {
			req.UserID = user
		}
		return err
	}
	if e.signer != nil {
		return e.signer.Verify(req.UserID, req.Token, req.Expires, e.now())
	}
	return nil
}

// purchaseOutcome turns the purchase script's reply into the result, and
// remembers a SOLD_OUT.
func (e *Engine) purchaseOutcome(req *Request, v any, err error) Result {
	res := e.decodeOutcome(req, v, err)
	if res.Status == wire.StatusSoldOut && e.soldOut != nil {
		e.soldOut.mark(req.ProductID, e.now())
	}
	return res
}

// decodeOutcome turns the purchase script's reply into the result.
func (e *Engine) decodeOutcome(req *Request, v any, err error) Result {
	notDurable := errors.Is(err, ErrNotDurable) && v != nil
	if err != nil && !notDurable {
		return Fail(fmt.Errorf("purchase %s: %w", req.ProductID, err))
	}
	res, perr := purchaseResult(v)
	if perr != nil {
		return Fail(fmt.Errorf("purchase %s: %w", req.ProductID, perr))
	}
	if res.Status == wire.StatusReserved {
		res.Quantity = req.Quantity // the reply has the expiry in its place
		e.reserved(req.ProductID, res.ExpiresAt)
	}
	if notDurable && (res.Status == wire.StatusSuccess || res.Status == wire.StatusReserved) {
		return Fail(fmt.Errorf("purchase %s: order %s: %w", req.ProductID, res.OrderID, err))
	}
	return res
}

// purchaseResult decodes the purchase script's reply to one purchase: its
// answer's answerLen elements, the outcome then its values, 0 in the
// places it has no value for (see lua/purchase.lua).
func purchaseResult(v any) (Result, error) {
	bad := func(err error) (Result, error) {
		return Result{}, fmt.Errorf("unexpected reply %v: %w", v, err)
	}
	reply, err := replyArray(v)
	if err != nil {
		return bad(err)
	}
	if len(reply) != answerLen {
		return bad(fmt.Errorf("%d elements, want %d", len(reply), answerLen))
	}
	kind, err := replyInt(reply[0])
	if err != nil {
		return bad(err)
	}
	values := answerValues(kind)
	if values < 0 {
		return bad(fmt.Errorf("unknown outcome %d", kind))
	}
	for _, z := range reply[1+values:] {
		if x, err := replyInt(z); err != nil || x != 0 {
			return bad(errors.New("a value where the outcome has none"))
		}
	}
	switch outcome(kind) {
	case outSold:
		remaining, err1 := replyInt(reply[1])
		oid, err2 := replyString(reply[2])
		qty, err3 := replyInt(reply[3])
		if err := errors.Join(err1, err2, err3); err != nil {
			return bad(err)
		}
		if qty < 1 {
			return bad(fmt.Errorf("quantity %d", qty))
		}
		return Result{Status: wire.StatusSuccess, Remaining: remaining, OrderID: oid, Quantity: qty}, nil
	case outReleased:
		oid, err := replyString(reply[1])
		if err != nil {
			return bad(err)
		}
		return Fail(fmt.Errorf("%w: order %s", ErrOrderReleased, oid)), nil
	case outNotAdmitted:
		why, err := replyInt(reply[1])
		if err != nil {
			return bad(err)
		}
		return Fail(notAdmitted(why)), nil
	case outReserved:
		remaining, err1 := replyInt(reply[1])
		oid, err2 := replyString(reply[2])
		expires, err3 := replyInt(reply[3])
		if err := errors.Join(err1, err2, err3); err != nil {
			return bad(err)
		}
		return Result{Status: wire.StatusReserved, Remaining: remaining, OrderID: oid,
			ExpiresAt: time.UnixMilli(expires).UTC()}, nil
	}
	var n [2]int64
	for i := range values {
		if n[i], err = replyInt(reply[1+i]); err != nil {
			return bad(err)
		}
	}
	switch outcome(kind) {
	case outSoldOut:
		return Result{Status: wire.StatusSoldOut}, nil
	case outUnknownProduct:
		return Fail(ErrUnknownProduct), nil
	case outInsufficient:
		return Result{Status: wire.StatusInsufficientStock, Remaining: n[0]}, nil
	case outOverLimit:
		return Result{Status: wire.StatusAlreadyPurchased, Held: n[0], Limit: n[1]}, nil
	case outNotStarted:
		return Result{Status: wire.StatusNotStarted, Start: time.UnixMilli(n[0]).UTC()}, nil
	case outEnded:
		return Result{Status: wire.StatusEnded, End: time.UnixMilli(n[0]).UTC()}, nil
	case outRequestReused:
		return Fail(ErrRequestReused), nil
	case outRateLimited:
		return Result{Status: wire.StatusRateLimited, RetryAfter: time.Duration(n[0]) * time.Millisecond}, nil
	}
	return bad(fmt.Errorf("outcome %d undecoded", kind))
}

// Settings are what a product is initialised with.
type Settings struct {
	// PerUserLimit caps the units one customer may hold; 0 means no limit.
	PerUserLimit int64
	// Start and End bound the sale window; zero means unbounded.
	Start, End time.Time
	// Force re-creates a product in use (see WithForce).
	Force bool
	// Hold makes purchases reservations that last this long unless paid
	// (see WithHold); zero sells outright.
	Hold time.Duration

	cleared *Cleared // where to report what was cleared (WithCleared)
}

// InitOption changes the Settings of Init.
type InitOption func(*Settings)

// WithPerUserLimit sets the per-customer limit (0 = unlimited).
func WithPerUserLimit(k int64) InitOption { return func(s *Settings) { s.PerUserLimit = k } }

// WithWindow sets the sale window; a zero time leaves that side open.
func WithWindow(start, end time.Time) InitOption {
	return func(s *Settings) { s.Start, s.End = start, end }
}

// Init creates product id with units in stock, or re-creates it: buyers,
// customers and orders are cleared and the initial stock becomes units. A
// product in use (orders, units held, customers or orders-stream entries)
// is re-created only WithForce: else Init changes nothing and returns a
// *ProductInUseError (ErrProductInUse) with its counts, checked in the
// call that would wipe it. The per-user limit defaults to
// DefaultPerUserLimit.
func (e *Engine) Init(ctx context.Context, id string, units int64, opts ...InitOption) error {
	s, err := initSettings(id, units, opts)
	if err != nil {
		return err
	}
	used, err := e.prepareInit(ctx, id, s, false)
	if err != nil {
		return err
	}
	c, err := e.initOf(ctx, id, id, units, s)
	if err != nil && !errors.Is(err, ErrProductInUse) { // that one names the product
		err = fmt.Errorf("init %s: %w", id, err)
	}
	if err != nil {
		return err
	}
	s.report(used.plus(c))
	return nil
}

// initOf runs init.lua on product (or shard) sid of product id, and
// returns what it cleared.
func (e *Engine) initOf(ctx context.Context, sid, id string, units int64, s Settings) (Cleared, error) {
	return e.evalChecked(ctx, initScript, sid,
		units, s.PerUserLimit, msOrEmpty(s.Start), msOrEmpty(s.End), ControlChannel, id, forceArg(s.Force),
		s.Hold.Milliseconds())
}

// initSettings applies opts and checks what a product is initialised with.
func initSettings(id string, units int64, opts []InitOption) (Settings, error) {
	s := Settings{PerUserLimit: DefaultPerUserLimit}
	for _, o := range opts {
		o(&s)
	}
	switch err := ValidateProductID(id); {
	case err != nil:
		return s, err
	case units < 0 || units > MaxUnits:
		return s, ErrInvalidStock
	case s.PerUserLimit < 0:
		return s, invalidError("the per-user limit must be 0 (none) or more")
	case !s.Start.IsZero() && !s.End.IsZero() && !s.End.After(s.Start):
		return s, ErrInvalidWindow
	case s.Hold < 0 || s.Hold > MaxHold || s.Hold > 0 && s.Hold < time.Millisecond:
		return s, ErrInvalidHold
	}
	return s, nil
}

func msOrEmpty(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixMilli(), 10)
}

// ProductStatus is one consistent reading of a product.
type ProductStatus struct {
	ID        string
	Remaining int64
	Initial   int64
	Held      int64 // units held by customers
	Buyers    int64 // orders not released (entries in the buyers list): orders, not customers
	Customers int64 // customers holding units (entries in the holders hash)
	Orders    int64 // entries in the orders stream (sales, releases, restocks)
	Limit     int64 // per-customer limit, 0 = none
	Start     time.Time
	End       time.Time
	Now       time.Time // Redis's clock at the reading
	Shards    int       // shards of a sharded product (0: not sharded)
	InTransit int64     // units debited from a shard and not yet credited to another
	// Hold is how long a purchase's reservation lasts (0: purchases sell
	// outright); Reserved, Paid, Expired and Cancelled count the units of
	// reservations not yet settled, paid, released on expiry, and
	// cancelled (by their customer or an admin).
	Hold                               time.Duration
	Reserved, Paid, Expired, Cancelled int64
	// Room is the product's waiting room (see SetRoom); its Rate is 0
	// when it has none.
	Room RoomStatus
}

// RoomStatus is a waiting room as a status reading sees it.
type RoomStatus struct {
	Rate     int64 // places admitted a second
	Joined   int64 // customers who joined (each has one ticket)
	Admitted int64 // customers admitted so far
}

// Waiting is how many customers are in the room and not yet admitted.
func (r RoomStatus) Waiting() int64 { return max(r.Joined-r.Admitted, 0) }

// Sold is how many units the product has sold (net of releases) since it
// was initialised.
func (s ProductStatus) Sold() int64 { return s.Initial - s.Remaining }

// Consistent reports what one reading can check of the books: stock
// never negative, initial == remaining + units held (+ units in transit
// between shards), and every customer in the holders holding at least one
// unit and, with a limit, at most the limit. (Units held are initial -
// stock per key set, so the equality catches units lost between shards;
// the whole audit is Verify's.)
func (s ProductStatus) Consistent() bool {
	return s.Remaining >= 0 && s.Remaining+s.Held+s.InTransit == s.Initial &&
		s.Customers <= s.Held && (s.Limit == 0 || s.Held <= s.Customers*s.Limit)
}

// State is where the sale stands at the reading.
func (s ProductStatus) State() State {
	switch {
	case !s.Start.IsZero() && s.Now.Before(s.Start):
		return StateUpcoming
	case !s.End.IsZero() && !s.Now.Before(s.End):
		return StateEnded
	case s.Remaining <= 0:
		return StateSoldOut
	}
	return StateOpen
}

// Status reads product id: in one atomic step, or, for a product spread
// over shards, each shard in one step of its own and then the transfers
// pending between them (see shardedStatus).
func (e *Engine) Status(ctx context.Context, id string) (ProductStatus, error) {
	l, err := e.layoutOf(ctx, id, true)
	if err != nil {
		return ProductStatus{}, err
	}
	return l.status(ctx)
}

// statusOf reads product (or shard) id in one atomic step.
func (e *Engine) statusOf(ctx context.Context, id string) (ProductStatus, error) {
	v, err := e.eval(ctx, statusScript, KeysFor(id))
	if err != nil {
		return ProductStatus{}, fmt.Errorf("status %s: %w", id, err)
	}
	r, err := decodeStatus(v)
	switch {
	case err != nil:
		return ProductStatus{}, fmt.Errorf("status %s: unexpected reply %v: %w", id, v, err)
	case r.exists == 0:
		return ProductStatus{}, fmt.Errorf("%s: %w", id, ErrUnknownProduct)
	}
	return ProductStatus{
		ID: id, Remaining: r.remaining, Initial: r.initial, Held: r.held, Buyers: r.buyers,
		Limit: r.limit, Start: msTime(r.startMS), End: msTime(r.endMS),
		Now: time.UnixMilli(r.nowMS).UTC(), Orders: r.orders, Customers: r.customers,
		Hold: time.Duration(r.holdMS) * time.Millisecond, Reserved: r.reserved, Paid: r.paid,
		Expired: r.expired, Cancelled: r.cancelled,
		Room: RoomStatus{Rate: r.roomRate, Joined: r.roomJoined, Admitted: r.roomAdmitted},
	}, nil
}

// statusReply is status.lua's reply, by name: {exists} alone when the
// product does not exist.
type statusReply struct {
	exists, remaining, initial, held, buyers, limit int64
	startMS, endMS                                  int64 // -1: none
	nowMS, orders, customers                        int64
	holdMS, reserved, paid, expired, cancelled      int64
	roomRate, roomJoined, roomAdmitted              int64
}

func decodeStatus(v any) (r statusReply, err error) {
	if a, _ := replyArray(v); len(a) == 1 {
		if err := scanReply(v, &r.exists); err != nil || r.exists != 0 {
			return r, errors.Join(err, errors.New("one element, not 0"))
		}
		return r, nil
	}
	return r, scanReply(v, &r.exists, &r.remaining, &r.initial, &r.held, &r.buyers, &r.limit,
		&r.startMS, &r.endMS, &r.nowMS, &r.orders, &r.customers,
		&r.holdMS, &r.reserved, &r.paid, &r.expired, &r.cancelled, &r.roomRate, &r.roomJoined, &r.roomAdmitted)
}

// msTime is the time of a millisecond timestamp, zero for -1 (none).
func msTime(ms int64) time.Time {
	if ms < 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// Buyers returns the first limit buyers of product id in purchase order
// (all of them when limit <= 0) and how many there are in total. The
// buyers of a sharded product are listed shard by shard, each shard's in
// purchase order.
func (e *Engine) Buyers(ctx context.Context, id string, limit int) (total int64, ids []string, err error) {
	l, err := e.layoutOf(ctx, id, false)
	if err != nil {
		return 0, nil, err
	}
	return l.buyers(ctx, max(limit, 0))
}

// buyersOf lists the buyers of product (or shard) id: limit of them, all
// for 0, none (the total only) for -1.
func (e *Engine) buyersOf(ctx context.Context, id string, limit int) (total int64, ids []string, err error) {
	v, err := e.eval(ctx, buyersScript, KeysFor(id), limit)
	if err != nil {
		return 0, nil, fmt.Errorf("buyers %s: %w", id, err)
	}
	var exists int64
	if err := scanReply(v, &exists, &total, &ids); err != nil {
		return 0, nil, fmt.Errorf("buyers %s: unexpected reply: %w", id, err)
	}
	if exists == 0 {
		return 0, nil, fmt.Errorf("%s: %w", id, ErrUnknownProduct)
	}
	return total, ids, nil
}

// Reset puts product id's stock back to its initial value and clears its
// buyers, customers and orders, atomically. Earlier request ids no longer
// replay. It returns the initial stock and what it cleared. A sharded
// product is reset shard by shard (see shardedReset).
func (e *Engine) Reset(ctx context.Context, id string) (int64, Cleared, error) {
	l, err := e.layoutOf(ctx, id, false)
	if err != nil {
		return 0, Cleared{}, err
	}
	return l.reset(ctx)
}

// resetOf resets product (or shard) id, announcing product on the control
// channel.
func (e *Engine) resetOf(ctx context.Context, id, product string) (int64, Cleared, error) {
	n, err := e.evalInts(ctx, resetScript, KeysFor(id), ControlChannel, product)
	if err != nil {
		return 0, Cleared{}, fmt.Errorf("reset %s: %w", id, err)
	}
	if len(n) > 0 && n[0] == replyUnknownProduct {
		return 0, Cleared{}, fmt.Errorf("%s: %w", id, ErrUnknownProduct)
	}
	c, err := clearedOf(n)
	if err != nil {
		return 0, Cleared{}, fmt.Errorf("reset %s: unexpected reply: %w", id, err)
	}
	return n[0], c, nil
}

// Delete removes every key of product id.
func (e *Engine) Delete(ctx context.Context, id string) error {
	l, err := e.layoutOf(ctx, id, false)
	if err != nil {
		return err
	}
	if _, err := l.dropShards(ctx, true); err != nil {
		return err
	}
	n, err := e.evalInt(ctx, deleteScript, KeysFor(id), ControlChannel, id)
	if err != nil {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", id, ErrUnknownProduct)
	}
	return nil
}

// Open opens the sale of product id now: no start, and an end already
// passed is dropped. Close ends it now. Both use Redis's clock.
func (e *Engine) Open(ctx context.Context, id string) error { return e.window(ctx, id, "open") }

// Close ends the sale of product id now, by Redis's clock.
func (e *Engine) Close(ctx context.Context, id string) error { return e.window(ctx, id, "close") }

func (e *Engine) window(ctx context.Context, id, op string) error {
	l, err := e.layoutOf(ctx, id, false)
	if err != nil {
		return err
	}
	return l.window(ctx, op)
}

// windowOf opens or closes (op) the window of product (or shard) id.
func (e *Engine) windowOf(ctx context.Context, id, op string) error {
	n, err := e.evalInt(ctx, windowScript, KeysFor(id), op, ControlChannel, id)
	if err != nil {
		return fmt.Errorf("%s %s: %w", op, id, err)
	}
	if n == replyUnknownProduct {
		return fmt.Errorf("%s: %w", id, ErrUnknownProduct)
	}
	return nil
}

// Restock adds units to product id; its initial stock grows by as much.
// It returns the new remaining and initial stock. A sharded product's
// units go to its emptiest shards (see shardedRestock).
func (e *Engine) Restock(ctx context.Context, id string, units int64) (remaining, initial int64, err error) {
	if err := ValidateProductID(id); err != nil {
		return 0, 0, err
	}
	if units < 1 || units > MaxUnits {
		return 0, 0, invalidError(fmt.Sprintf("restock takes 1 to %d units", MaxUnits))
	}
	if err := e.refuseShard(ctx, id); err != nil {
		return 0, 0, err
	}
	l, err := e.layoutOf(ctx, id, false)
	if err != nil {
		return 0, 0, err
	}
	return l.restock(ctx, units)
}

// restockOf adds units to product (or shard) id.
func (e *Engine) restockOf(ctx context.Context, id string, units int64) (remaining, initial int64, err error) {
	reply, err := e.evalInts(ctx, restockScript, KeysFor(id), units, ControlChannel, id)
	if err != nil {
		return 0, 0, fmt.Errorf("restock %s: %w", id, err)
	}
	switch {
	case len(reply) == 1 && reply[0] == replyUnknownProduct:
		return 0, 0, fmt.Errorf("%s: %w", id, ErrUnknownProduct)
	case len(reply) != 2:
		return 0, 0, fmt.Errorf("restock %s: unexpected reply %v", id, reply)
	}
	return reply[0], reply[1], nil
}

// Release is the outcome of releasing an order.
type Release struct {
	Already   bool // the order had been released before; nothing changed
	Remaining int64
	Quantity  int64
	UserID    string
}

// Release returns the units of an unpaid order to stock and frees the
// customer's allowance, recording it in the orders stream. Releasing the
// same order again changes nothing. On a sharded product the order is
// released in the shard whose stream holds it: its customer's home shard
// (see shardedRelease).
func (e *Engine) Release(ctx context.Context, id, orderID string, opts ...ReleaseOption) (Release, error) {
	if err := ValidateProductID(id); err != nil {
		return Release{}, err
	}
	if err := ValidateOrderID(orderID); err != nil {
		return Release{}, err
	}
	var o releaseOptions
	for _, opt := range opts {
		opt(&o)
	}
	l, err := e.layoutOf(ctx, id, false)
	if err != nil {
		return Release{}, err
	}
	return l.release(ctx, orderID, o.user)
}

// releaseOf releases order orderID of product (or shard) id, announcing
// product on the control channel.
func (e *Engine) releaseOf(ctx context.Context, id, product, orderID string) (Release, error) {
	v, err := e.eval(ctx, releaseScript, KeysFor(id), orderID, ControlChannel, product, e.channel)
	if err != nil {
		return Release{}, fmt.Errorf("release %s %s: %w", id, orderID, err)
	}
	switch replyKind(v) {
	case replyUnknownProduct:
		return Release{}, fmt.Errorf("%s: %w", id, ErrUnknownProduct)
	case replyUnknownOrder:
		return Release{}, fmt.Errorf("%s: order %s: %w", id, orderID, ErrUnknownOrder)
	case replyPaid:
		return Release{}, fmt.Errorf("%s: order %s: %w", id, orderID, ErrAlreadyPaid)
	}
	var kind int64
	var r Release
	if err := scanReply(v, &kind, &r.Remaining, &r.Quantity, &r.UserID); err != nil {
		return Release{}, fmt.Errorf("release %s: unexpected reply %v: %w", id, v, err)
	}
	r.Already = kind == 0
	return r, nil
}

// replyKind is the first element of a script's array reply: by the scripts'
// convention, negative values name a failure such as replyUnknownProduct.
// It is 0 for an empty or malformed reply.
func replyKind(v any) int64 {
	a, _ := replyArray(v)
	if len(a) == 0 {
		return 0
	}
	n, _ := replyInt(a[0])
	return n
}

// Order is one entry of a product's orders stream.
type Order struct {
	ID        string    `json:"id"`   // stream entry id; a sale's order id
	Type      string    `json:"type"` // sale, release, restock
	OrderID   string    `json:"order_id,omitempty"`
	UserID    string    `json:"user_id,omitempty"`
	Quantity  int64     `json:"quantity"`
	Remaining int64     `json:"remaining"`
	Time      time.Time `json:"time"`
	Shard     string    `json:"shard,omitempty"` // the shard whose stream holds it (sharded products)
}

// Orders returns the first limit entries of product id's orders stream
// (all when limit <= 0).
func (e *Engine) Orders(ctx context.Context, id string, limit int) ([]Order, error) {
	l, err := e.layoutOf(ctx, id, false)
	if err != nil {
		return nil, err
	}
	return l.orders(ctx, limit)
}

// ordersOf lists the first limit entries of the orders stream of product
// (or shard) id (all when limit <= 0).
func (e *Engine) ordersOf(ctx context.Context, id string, limit int) ([]Order, error) {
	v, err := e.eval(ctx, ordersScript, KeysFor(id), max(limit, 0))
	if err != nil {
		return nil, fmt.Errorf("orders %s: %w", id, err)
	}
	if replyKind(v) == replyUnknownProduct {
		return nil, fmt.Errorf("%s: %w", id, ErrUnknownProduct)
	}
	var kind int64
	var entries []any
	if err := scanReply(v, &kind, &entries); err != nil {
		return nil, fmt.Errorf("orders %s: unexpected reply: %w", id, err)
	}
	orders := make([]Order, len(entries))
	for i, raw := range entries {
		if orders[i], err = decodeOrder(raw); err != nil {
			return nil, fmt.Errorf("orders %s: unexpected entry: %w", id, err)
		}
	}
	return orders, nil
}

// decodeOrder reads one entry of an orders stream, as XRANGE gives it.
func decodeOrder(raw any) (Order, error) {
	var (
		eid    string
		fields []string
	)
	if err := scanReply(raw, &eid, &fields); err != nil {
		return Order{}, err
	}
	o := Order{ID: eid}
	for i := 0; i+1 < len(fields); i += 2 {
		switch val := fields[i+1]; fields[i] {
		case "type":
			o.Type = val
		case "order_id":
			o.OrderID = val
		case "user_id":
			o.UserID = val
		case "quantity":
			o.Quantity, _ = strconv.ParseInt(val, 10, 64)
		case "remaining":
			o.Remaining, _ = strconv.ParseInt(val, 10, 64)
		case "time":
			ms, _ := strconv.ParseInt(val, 10, 64)
			o.Time = time.UnixMilli(ms).UTC()
		}
	}
	if o.Type == "sale" {
		o.OrderID = o.ID
	}
	return o, nil
}
