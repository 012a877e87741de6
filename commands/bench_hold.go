package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/loadgen"
	"github.com/flashsale/flashsale/wire"
)

// Bench with payers: against a product with a hold, each purchase answered
// RESERVED is a winner who pays (--pay), cancels (--cancel) or abandons
// the reservation, which then expires and goes back on sale to the
// customers who keep coming. Bench watches the product's released events
// for the release lag (from a second before the first hold can expire, or
// from the start with --cancel), waits at the end for the last holds to expire, and
// adds the reservations' books to its verdict.

// payConns is how many connections of their own the payers use.
const payConns = 4

// expiryMargin is how long past the last expiry bench waits by default
// for the releases: the engine promises them within a second.
const expiryMargin = 2 * time.Second

// maxDefaultWait bounds the default --settle-wait: past it, bench does not
// wait for a long hold unless asked.
const maxDefaultWait = time.Minute

// holdFlags are bench's flags for products with a hold.
func holdFlags() []cli.Flag {
	return []cli.Flag{
		&cli.DurationFlag{Name: "hold", Usage: "with --init: purchases reserve, and a reservation lasts `D` unless paid (see --pay)"},
		&cli.StringFlag{Name: "pay", Usage: "share `P%` of the reservations their customer confirms (pays), after --pay-delay; the others abandon theirs (or cancel, --cancel), so it expires", Value: "0%"},
		&cli.StringFlag{Name: "cancel", Usage: "share `P%` of the reservations their customer cancels after --pay-delay (with --pay, 100% at most)", Value: "0%"},
		&cli.DurationFlag{Name: "pay-delay", Usage: "a payer confirms (or cancels) `D` after the RESERVED answer", Value: time.Second},
		&cli.DurationFlag{Name: "pay-jitter", Usage: "plus a random delay up to `D`"},
		&cli.DurationFlag{Name: "settle-wait", Usage: "after the load, wait up to `D` for the unpaid reservations to expire before the check (default: the hold + 2s, or 0s for a hold above 1m; 0s: check what is still reserved)"},
	}
}

// holdConfig is what the hold flags ask for.
type holdConfig struct {
	hold               time.Duration // --hold (with --init)
	pay, cancel        float64       // shares, 0 to 1
	delay, jitter      time.Duration
	wait               time.Duration
	waitSet, initHold  bool
	shareSet, delaySet bool // --pay or --cancel, --pay-delay or --pay-jitter given
}

// parseShare reads flag name's share, a percentage: "70%" or "70".
func parseShare(c *cli.Context, name string) (float64, error) {
	s := strings.TrimSpace(c.String(name))
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil || v < 0 || v > 100 {
		return 0, usageErrorf(c, "--%s must be a share such as 70%%, between 0%% and 100%%, got %q", name, s)
	}
	return v / 100, nil
}

// holdConfigFrom reads and checks the hold flags.
func holdConfigFrom(c *cli.Context) (holdConfig, error) {
	h := holdConfig{
		hold: c.Duration("hold"), delay: c.Duration("pay-delay"), jitter: c.Duration("pay-jitter"),
		wait: c.Duration("settle-wait"), waitSet: c.IsSet("settle-wait"),
		shareSet: c.IsSet("pay") || c.IsSet("cancel"), delaySet: c.IsSet("pay-delay") || c.IsSet("pay-jitter"),
		initHold: c.IsSet("hold"),
	}
	var err error
	if h.pay, err = parseShare(c, "pay"); err != nil {
		return h, err
	}
	if h.cancel, err = parseShare(c, "cancel"); err != nil {
		return h, err
	}
	switch {
	case h.pay+h.cancel > 1+1e-9:
		return h, usageErrorf(c, "--pay and --cancel add up to more than 100%%")
	case h.initHold && !c.IsSet("init"):
		return h, usageErrorf(c, "--hold only applies with --init (or use 'flashsale admin hold')")
	case h.initHold && (h.hold < 0 || h.hold > engine.MaxHold):
		return h, usageErrorf(c, "--hold: %v", engine.ErrInvalidHold)
	case h.delay < 0 || h.jitter < 0:
		return h, usageErrorf(c, "--pay-delay and --pay-jitter must not be negative")
	case h.wait < 0:
		return h, usageErrorf(c, "--settle-wait must not be negative")
	}
	return h, nil
}

// settleWait is how long bench waits at the end for hold's reservations.
func (h holdConfig) settleWait(hold time.Duration) time.Duration {
	switch {
	case h.waitSet:
		return h.wait
	case hold > maxDefaultWait:
		return 0
	}
	return hold + expiryMargin
}

// holdBench follows the reservations of one bench run.
type holdBench struct {
	cfg    holdConfig
	hold   time.Duration
	before engine.ProductStatus
	payer  *loadgen.Payer
	// offset is Redis's clock minus bench's, so that expires_at (Redis's)
	// compares with when bench saw a release (bench's).
	offset time.Duration
	stop   context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	released map[string]release // order id → its released event, as seen
}

// release is a released event as bench saw it.
type release struct {
	at     time.Time // bench's clock
	reason string
}

// startHoldBench prepares the payers of a run on a product with a hold
// and starts watching its released events; cfg's OnReserved hears the
// reservations.
func startHoldBench(ctx context.Context, st *store, cfg *loadgen.Config, h holdConfig, before engine.ProductStatus) (*holdBench, error) {
	offset, err := clockOffset(ctx, st.Engine, cfg.Product)
	if err != nil {
		return nil, err
	}
	hb := &holdBench{cfg: h, hold: before.Hold, before: before, offset: offset, done: make(chan struct{}), released: map[string]release{}}
	hb.payer = loadgen.NewPayer(ctx, loadgen.PayConfig{
		Addrs: cfg.Addrs, Conns: min(payConns, cfg.Conns), Product: cfg.Product, UserPrefix: cfg.UserPrefix,
		Pay: h.pay, Cancel: h.cancel, Delay: h.delay, Jitter: h.jitter, Options: cfg.Options, Sign: cfg.Sign,
	})
	cfg.OnReserved = hb.payer.Reserved
	wctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	hb.stop = stop
	go hb.watch(wctx, st.Engine, cfg.Product, h.watchAfter(before.Hold))
	return hb, nil
}

// watchEarly is how long before the first reservation can expire bench
// starts watching the released events.
const watchEarly = time.Second

// watchAfter is how long after the start bench may wait before it watches
// the released events of a product with hold: none of its reservations
// can expire sooner (the first is made after the start), and only a
// cancel releases one before it expires. A subscriber costs Redis a
// message per sale, and bench the parsing of it, so a run with a long
// hold does not watch a load that cannot release anything.
func (h holdConfig) watchAfter(hold time.Duration) time.Duration {
	if h.cancel > 0 {
		return 0
	}
	return max(hold-watchEarly, 0)
}

// clockOffset is Redis's clock minus bench's, read from a status.
func clockOffset(ctx context.Context, eng *engine.Engine, product string) (time.Duration, error) {
	t0 := time.Now()
	s, err := eng.Status(ctx, product)
	if err != nil {
		return 0, err
	}
	mid := t0.Add(time.Since(t0) / 2)
	return s.Now.Sub(mid), nil
}

// watch records the product's released events from after until ctx
// ends, subscribing again if the subscription fails.
func (hb *holdBench) watch(ctx context.Context, eng *engine.Engine, product string, after time.Duration) {
	defer close(hb.done)
	select {
	case <-ctx.Done():
	case <-time.After(after):
	}
	for ctx.Err() == nil {
		_ = eng.Subscribe(ctx, engine.EventChannel, func(payload []byte) {
			at := time.Now()
			var ev engine.Event
			if json.Unmarshal(payload, &ev) != nil || ev.Type != "released" || ev.ProductID != product {
				return
			}
			hb.mu.Lock()
			hb.released[ev.OrderID] = release{at: at, reason: ev.Reason}
			hb.mu.Unlock()
		})
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// seen reports whether bench saw order id released.
func (hb *holdBench) seen(id string) bool {
	hb.mu.Lock()
	defer hb.mu.Unlock()
	_, ok := hb.released[id]
	return ok
}

// finish waits for the payers' last answers, then for the unpaid
// reservations to be released (up to --settle-wait, and the last expiry
// plus a margin), and stops watching.
func (hb *holdBench) finish(ctx context.Context) *HoldReport {
	settled := hb.payer.Wait(ctx)
	start := time.Now()
	deadline := start.Add(hb.cfg.settleWait(hb.hold))
	if last := hb.lastExpiry(settled); last.Add(expiryMargin).Before(deadline) {
		deadline = last.Add(expiryMargin)
	}
	for ctx.Err() == nil && time.Now().Before(deadline) && hb.open(settled) > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
	waited := time.Since(start)
	hb.stop()
	<-hb.done
	return hb.report(settled, waited)
}

// unsettled reports whether s should come back by expiry: abandoned, or a
// confirm or cancel that got no answer.
func unsettled(s loadgen.Settled) bool {
	return s.Fate == loadgen.Abandon || s.Status == wire.StatusError
}

// lastExpiry is the latest expiry of the unsettled reservations, on
// bench's clock (the zero time when there is none).
func (hb *holdBench) lastExpiry(settled []loadgen.Settled) time.Time {
	var last time.Time
	for _, s := range settled {
		if exp := hb.expiry(s); unsettled(s) && exp.After(last) {
			last = exp
		}
	}
	return last
}

// expiry is when s expires, on bench's clock.
func (hb *holdBench) expiry(s loadgen.Settled) time.Time {
	return time.UnixMilli(s.ExpiresAt).Add(-hb.offset)
}

// open counts the unsettled reservations not yet seen released.
func (hb *holdBench) open(settled []loadgen.Settled) int {
	n := 0
	for _, s := range settled {
		if unsettled(s) && !hb.seen(s.OrderID) {
			n++
		}
	}
	return n
}

// HoldReport is what became of the reservations of a bench run on a
// product with a hold, as bench saw it.
type HoldReport struct {
	Hold          time.Duration
	Pay, Cancel   float64 // --pay, --cancel
	Delay, Jitter time.Duration
	Reservations  int64 // RESERVED answers
	ReservedUnits int64 // units in them
	Stock         int64 // units in stock at the start
	// Resold is the units reserved beyond the stock at the start: units
	// that came back (expired or cancelled) and were reserved again.
	Resold         int64
	Paid           int64 // confirms answered PAID
	PaidUnits      int64
	ConfirmExpired int64 // confirms answered EXPIRED: too late
	Cancelled      int64 // cancels answered RELEASED
	Abandoned      int64 // reservations neither confirmed nor cancelled
	SettleErrors   int64 // confirms and cancels without a good answer
	SettleErrorSet map[string]int64
	// Releases are bench's reservations it saw released on expiry (their
	// released event); Lag is, for each, the time bench saw it minus its
	// expires_at.
	Releases int64
	Lag      LagSummary
	Waited   time.Duration // at the end, for the last holds to expire
	// Orders are the reservations' order ids, PaidIDs those answered PAID.
	Orders, PaidIDs []string
}

// LagSummary summarises release lags.
type LagSummary struct {
	Count         int
	P50, P99, Max time.Duration
}

// summariseLags sorts lags and summarises them.
func summariseLags(lags []time.Duration) LagSummary {
	if len(lags) == 0 {
		return LagSummary{}
	}
	slices.Sort(lags)
	at := func(q float64) time.Duration { return lags[min(int(q*float64(len(lags))), len(lags)-1)] }
	return LagSummary{Count: len(lags), P50: at(0.5), P99: at(0.99), Max: lags[len(lags)-1]}
}

// report counts what became of the reservations settled.
func (hb *holdBench) report(settled []loadgen.Settled, waited time.Duration) *HoldReport {
	h := &HoldReport{
		Hold: hb.hold, Pay: hb.cfg.pay, Cancel: hb.cfg.cancel, Delay: hb.cfg.delay, Jitter: hb.cfg.jitter,
		Stock: hb.before.Remaining, Waited: waited, SettleErrorSet: map[string]int64{},
	}
	var lags []time.Duration
	hb.mu.Lock()
	defer hb.mu.Unlock()
	for _, s := range settled {
		h.Reservations++
		h.ReservedUnits += s.Quantity
		h.Orders = append(h.Orders, s.OrderID)
		switch {
		case s.Fate == loadgen.Abandon:
			h.Abandoned++
		case s.Err != "":
			h.SettleErrors++
			h.SettleErrorSet[s.Err]++
		case s.Status == wire.StatusPaid:
			h.Paid++
			h.PaidUnits += s.Quantity
			h.PaidIDs = append(h.PaidIDs, s.OrderID)
		case s.Status == wire.StatusExpired:
			h.ConfirmExpired++
		case s.Status == wire.StatusReleased && s.Fate == loadgen.Cancel:
			h.Cancelled++
		default:
			h.SettleErrors++
			h.SettleErrorSet[fateName(s.Fate)+" answered "+s.Status.String()]++
		}
		if r, ok := hb.released[s.OrderID]; ok && r.reason == "expired" {
			h.Releases++
			lags = append(lags, r.at.Sub(hb.expiry(s)))
		}
	}
	h.Resold = max(h.ReservedUnits-h.Stock, 0)
	h.Lag = summariseLags(lags)
	return h
}

// fateName names what a customer did, for error texts.
func fateName(f loadgen.Fate) string {
	switch f {
	case loadgen.Pay:
		return "confirm"
	case loadgen.Cancel:
		return "cancel"
	}
	return "abandon"
}

// HoldCheck is the verdict's part on reservations, from Redis after the
// run: the product's reservation counts and its orders stream.
type HoldCheck struct {
	Expired   int64 // units released on expiry during the run (anyone's)
	Cancelled int64 // units cancelled during the run (anyone's)
	// The units at the end: in stock (or between shards), reserved, paid,
	// and sold outright before the run (by the product before it had a hold).
	Available, Reserved, Paid, Outright int64
	Initial                             int64
	PaidOK                              bool     // paid ≤ stock
	UnitsOK                             bool     // available + reserved + paid + outright == initial
	BothPaidReleased                    []string // orders with both a paid and a released entry
	// Unrecorded are reservations without their reserved entry in the
	// orders stream, and PAID answers without their paid entry.
	Unrecorded []string
	Pass       bool
}

// newHoldCheck checks h against the product before and after the run and
// its orders stream.
func newHoldCheck(h *HoldReport, before, after engine.ProductStatus, orders []engine.Order) *HoldCheck {
	hc := &HoldCheck{
		Expired: after.Expired - before.Expired, Cancelled: after.Cancelled - before.Cancelled,
		Available: after.Remaining + after.InTransit, Reserved: after.Reserved, Paid: after.Paid,
		Outright: max(before.Held-before.Reserved-before.Paid, 0), Initial: after.Initial,
	}
	hc.PaidOK = h.PaidUnits <= after.Initial && after.Paid <= after.Initial
	hc.UnitsOK = after.Remaining >= 0 && hc.Available+hc.Reserved+hc.Paid+hc.Outright == hc.Initial
	byType := map[string]map[string]bool{"reserved": {}, "paid": {}, "released": {}}
	for _, o := range orders {
		id := o.OrderID
		if o.Type == "reserved" {
			id = o.ID
		}
		if m := byType[o.Type]; m != nil {
			m[id] = true
		}
	}
	for id := range byType["paid"] {
		if byType["released"][id] {
			hc.BothPaidReleased = append(hc.BothPaidReleased, id)
		}
	}
	slices.Sort(hc.BothPaidReleased)
	hc.Unrecorded = append(missingFrom(h.Orders, byType["reserved"]), missingFrom(h.PaidIDs, byType["paid"])...)
	hc.Pass = hc.PaidOK && hc.UnitsOK && len(hc.BothPaidReleased) == 0 && len(hc.Unrecorded) == 0
	return hc
}

// addHold adds the check of the reservations h counted to ch.
func (ch *Check) addHold(h *HoldReport, before, after engine.ProductStatus, orders []engine.Order) {
	ch.Hold = newHoldCheck(h, before, after, orders)
	ch.Pass = ch.Pass && ch.Hold.Pass
	// Reservations come and go: other buyers are those who paid what this
	// bench's payers did not.
	ch.OtherUnits = max(after.Paid-before.Paid-h.PaidUnits, 0)
}

// missingFrom are the ids not in set.
func missingFrom(ids []string, set map[string]bool) []string {
	var missing []string
	for _, id := range ids {
		if !set[id] {
			missing = append(missing, id)
		}
	}
	return missing
}

// pct writes a share as a percentage.
func pct(f float64) string { return strconv.FormatFloat(math.Round(f*1000)/10, 'f', -1, 64) + "%" }

// writeText writes what became of the reservations, for people.
func (h *HoldReport) writeText(b *strings.Builder) {
	ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 1, 64) + " ms" }
	fmt.Fprintf(b, "Hold:              %s; %s of the winners pay after %s", h.Hold, pct(h.Pay), h.Delay)
	if h.Jitter > 0 {
		fmt.Fprintf(b, " (+ up to %s)", h.Jitter)
	}
	if h.Cancel > 0 {
		fmt.Fprintf(b, ", %s cancel", pct(h.Cancel))
	}
	fmt.Fprintf(b, ", the others abandon\n")
	fmt.Fprintf(b, "Reservations:      %d for %d units (%d in stock at the start: %d units re-sold)\n", h.Reservations, h.ReservedUnits, h.Stock, h.Resold)
	fmt.Fprintf(b, "Paid:              %d for %d units (confirms answered PAID)\n", h.Paid, h.PaidUnits)
	if h.ConfirmExpired > 0 {
		fmt.Fprintf(b, "Paid Too Late:     %d (confirms answered EXPIRED)\n", h.ConfirmExpired)
	}
	if h.Cancel > 0 || h.Cancelled > 0 {
		fmt.Fprintf(b, "Cancelled:         %d (cancels answered RELEASED)\n", h.Cancelled)
	}
	fmt.Fprintf(b, "Abandoned:         %d (neither confirmed nor cancelled)\n", h.Abandoned)
	fmt.Fprintf(b, "Releases Seen:     %d of bench's reservations released on expiry (their released events), after waiting %s at the end\n",
		h.Releases, h.Waited.Round(time.Millisecond))
	if h.Lag.Count > 0 {
		fmt.Fprintf(b, "Release Lag:       p50 %s, p99 %s, max %s (seen minus expires_at)\n", ms(h.Lag.P50), ms(h.Lag.P99), ms(h.Lag.Max))
	}
	if h.SettleErrors > 0 {
		fmt.Fprintf(b, "Settle Errors:     %d confirms or cancels without a good answer\n", h.SettleErrors)
		writeErrorSet(b, h.SettleErrorSet)
	}
}

// writeText writes the verdict's part on reservations, for people.
func (hc *HoldCheck) writeText(b *strings.Builder) {
	verdict := "✓ PASS"
	if !hc.Pass {
		verdict = "✗ FAIL"
	}
	fmt.Fprintf(b, "Reservation Check: %s (paid %d ≤ stock %d %s; available %d + reserved %d + paid %d", verdict,
		hc.Paid, hc.Initial, okText(hc.PaidOK), hc.Available, hc.Reserved, hc.Paid)
	if hc.Outright > 0 {
		fmt.Fprintf(b, " + sold outright %d", hc.Outright)
	}
	fmt.Fprintf(b, " == initial %d %s; %d units expired, %d cancelled; both paid and released: %d; orders stream %s)\n",
		hc.Initial, okText(hc.UnitsOK), hc.Expired, hc.Cancelled, len(hc.BothPaidReleased), okText(len(hc.Unrecorded) == 0))
	if n := len(hc.BothPaidReleased); n > 0 {
		fmt.Fprintf(b, "  ✗ %d orders both paid and released, e.g. order %s\n", n, hc.BothPaidReleased[0])
	}
	if n := len(hc.Unrecorded); n > 0 {
		fmt.Fprintf(b, "  ✗ %d reservations or payments not in the orders stream, e.g. order %s\n", n, hc.Unrecorded[0])
	}
}

// jsonHold is HoldReport in bench --json; docs/cli.md documents it.
type jsonHold struct {
	HoldMS          int64            `json:"hold_ms"`
	Pay             float64          `json:"pay"`    // share, 0 to 1
	Cancel          float64          `json:"cancel"` // share, 0 to 1
	PayDelayMS      int64            `json:"pay_delay_ms"`
	PayJitterMS     int64            `json:"pay_jitter_ms"`
	Reservations    int64            `json:"reservations"`
	ReservedUnits   int64            `json:"reserved_units"`
	Stock           int64            `json:"stock_at_start"`
	Resold          int64            `json:"resold_units"`
	Paid            int64            `json:"paid"`
	PaidUnits       int64            `json:"paid_units"`
	ConfirmsExpired int64            `json:"confirms_expired"`
	Cancelled       int64            `json:"cancelled"`
	Abandoned       int64            `json:"abandoned"`
	SettleErrors    int64            `json:"settle_errors"`
	SettleErrorSet  map[string]int64 `json:"settle_error_set"`
	Releases        int64            `json:"releases_seen"`
	LagMS           jsonLag          `json:"release_lag_ms"`
	WaitedS         float64          `json:"waited_s"`
}

type jsonLag struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// msOf is d in ms, to the µs.
func msOf(d time.Duration) float64 { return round3(float64(d) / 1e6) }

func (h *HoldReport) json() *jsonHold {
	if h == nil {
		return nil
	}
	return &jsonHold{
		HoldMS: h.Hold.Milliseconds(), Pay: round3(h.Pay), Cancel: round3(h.Cancel),
		PayDelayMS: h.Delay.Milliseconds(), PayJitterMS: h.Jitter.Milliseconds(),
		Reservations: h.Reservations, ReservedUnits: h.ReservedUnits, Stock: h.Stock, Resold: h.Resold,
		Paid: h.Paid, PaidUnits: h.PaidUnits, ConfirmsExpired: h.ConfirmExpired, Cancelled: h.Cancelled,
		Abandoned: h.Abandoned, SettleErrors: h.SettleErrors, SettleErrorSet: h.SettleErrorSet,
		Releases: h.Releases, WaitedS: round3(h.Waited.Seconds()),
		LagMS: jsonLag{Count: h.Lag.Count, P50: msOf(h.Lag.P50), P99: msOf(h.Lag.P99), Max: msOf(h.Lag.Max)},
	}
}

// jsonHoldCheck is HoldCheck in bench --json; docs/cli.md documents it.
type jsonHoldCheck struct {
	Pass             bool     `json:"pass"`
	ExpiredUnits     int64    `json:"expired_units"`
	CancelledUnits   int64    `json:"cancelled_units"`
	Available        int64    `json:"available"`
	Reserved         int64    `json:"reserved"`
	Paid             int64    `json:"paid"`
	Outright         int64    `json:"sold_outright"`
	Initial          int64    `json:"initial"`
	PaidOK           bool     `json:"paid_ok"`
	UnitsOK          bool     `json:"units_ok"`
	PaidAndReleased  []string `json:"paid_and_released"`
	UnrecordedOrders []string `json:"unrecorded_orders"`
}

func (hc *HoldCheck) json() *jsonHoldCheck {
	if hc == nil {
		return nil
	}
	return &jsonHoldCheck{
		Pass: hc.Pass, ExpiredUnits: hc.Expired, CancelledUnits: hc.Cancelled,
		Available: hc.Available, Reserved: hc.Reserved, Paid: hc.Paid, Outright: hc.Outright, Initial: hc.Initial,
		PaidOK: hc.PaidOK, UnitsOK: hc.UnitsOK,
		PaidAndReleased: append([]string{}, hc.BothPaidReleased...), UnrecordedOrders: append([]string{}, hc.Unrecorded...),
	}
}

// htmlRows are the reservations' lines of the HTML report's check table
// (none without a hold).
func (h *HoldReport) htmlRows(hc *HoldCheck) []htmlRow {
	if h == nil || hc == nil {
		return nil
	}
	return []htmlRow{
		{"reservations", h.Reservations}, {"re-sold units", h.Resold}, {"paid (confirms answered PAID)", h.Paid},
		{"confirms answered EXPIRED", h.ConfirmExpired}, {"abandoned", h.Abandoned}, {"expired units", hc.Expired},
		{"release lag p50 (ms)", msOf(h.Lag.P50)}, {"release lag p99 (ms)", msOf(h.Lag.P99)},
		{"reservation check", okText(hc.Pass)},
	}
}
