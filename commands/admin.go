package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/transport"
)

// Errors that make admin exit non-zero after printing what it found.
var (
	ErrInvariantBroken = errors.New("invariant BROKEN: remaining + units held != initial")
	ErrVerifyFailed    = errors.New("verify found discrepancies")
)

func adminCommand() *cli.Command {
	flags := concat(redisFlags(), []cli.Flag{
		&cli.BoolFlag{Name: "json", Usage: "print JSON for scripts instead of text"},
	})
	sub := func(name, usage, argsUsage string, action func(*adminCtx) error, extra ...cli.Flag) *cli.Command {
		return &cli.Command{
			Name:         name,
			Usage:        usage,
			ArgsUsage:    argsUsage,
			Flags:        concat(extra, flags),
			OnUsageError: onUsageError,
			Action: func(c *cli.Context) error {
				if err := checkIDArgs(c, argsUsage); err != nil {
					return &UsageError{Command: commandPath(c), Err: err}
				}
				a, err := newAdminCtx(c)
				if err != nil {
					return err
				}
				defer a.store.close()
				err = action(a)
				switch {
				case errors.Is(err, engine.ErrInvalidRequest):
					// The engine refused an argument (an ID, an ORDER_ID,
					// --user): a usage error, as a bad N is.
					err = &UsageError{Command: commandPath(c), Err: err}
				case errors.Is(err, engine.ErrUnknownProduct) && name != "init":
					err = fmt.Errorf("%w: create it with 'flashsale admin init %s N'", err, c.Args().First())
				case errors.Is(err, engine.ErrProductInUse):
					// Not a usage mistake (exit 1, as verify's findings).
					err = fmt.Errorf("%w: add --force, or use 'flashsale admin reset %s' to put the stock back", err, c.Args().First())
				}
				return err
			},
		}
	}
	return &cli.Command{
		Name:  "admin",
		Usage: "operate products: init, room, status, buyers, orders, open, close, restock, release, verify, watch, reset, delete; mint customer tokens",
		Description: "Flags may come before or after the arguments: flashsale admin buyers iphone15 --limit 10.\n" +
			"Redis is reached through --redis-addr / REDIS_ADDR, as for serve.",
		Subcommands: []*cli.Command{
			sub("init", "create or re-create a product with N units (clears its buyers and orders)", "ID N", adminInit,
				&cli.Int64Flag{Name: "per-user-limit", Usage: "most units one customer may hold (0 = no limit)", Value: engine.DefaultPerUserLimit},
				&cli.StringFlag{Name: "start", Usage: "the sale opens at `TIME` (RFC 3339, e.g. 2026-11-27T09:00:00Z)"},
				&cli.StringFlag{Name: "end", Usage: "the sale closes at `TIME` (RFC 3339)"},
				&cli.IntFlag{Name: "shards", Usage: "spread the units over `K` shards (2 or more; on a cluster, over its masters) for a product too hot for one Redis core"},
				&cli.BoolFlag{Name: "force", Usage: "re-create the product even if it has orders, units held or orders-stream entries, clearing them (without it, init refuses such a product and says what it would clear)"},
				&cli.DurationFlag{Name: "hold", Usage: "purchases reserve the units for `DURATION` (e.g. 10m) until the customer confirms (pays); unpaid ones go back on sale by themselves (0: sell outright)"}),
			sub("hold", "change how long a live product's new reservations last (0s: sell outright); reservations already made keep their expiry", "ID DURATION", adminHold),
			sub("room", adminRoomUsage, "ID", adminRoom, adminRoomFlags()...),
			sub("status", "stock, window, limit, units held, orders, customers and the invariant, in O(1) (admin verify audits the orders)", "ID", adminStatus),
			sub("buyers", "list a product's orders not released, one line per order with its customer, in purchase order (a sharded product's shard by shard); the header counts orders and customers", "ID", adminBuyers,
				&cli.IntFlag{Name: "limit", Usage: "show at most `N` orders (0 for all)", Value: 100}),
			sub("orders", "list a product's orders stream: sales, releases, restocks", "ID", adminOrders,
				&cli.IntFlag{Name: "limit", Usage: "show at most `N` entries (0 for all)", Value: 100}),
			sub("open", "open the sale now (drops the start, and an end already passed)", "ID", adminOpen),
			sub("close", "end the sale now", "ID", adminClose),
			sub("restock", "add N units to a live product (initial grows by N; a sharded product's go to its emptiest shards)", "ID N", adminRestock),
			sub("release", "return an unpaid order's units to stock and free the customer's allowance (idempotent)", "ID ORDER_ID", adminRelease,
				&cli.StringFlag{Name: "user", Usage: "the order is `USER`'s: on a sharded product, look in their home shard only (needed when shards' streams share the order id)"}),
			sub("verify", "check the books of the given products (all when none): exits 1 on any discrepancy", "[ID ...]", adminVerify,
				&cli.BoolFlag{Name: "repair", Usage: "first complete the transfers between shards that a crashed server left half done"}),
			sub("watch", "follow sales live (all products, or one)", "[ID]", adminWatch,
				&cli.IntFlag{Name: "count", Usage: "stop after `N` sales (0 = until interrupted)"}),
			sub("reset", "put stock back to its initial value and clear buyers and orders, atomically (a sharded product shard by shard)", "ID", adminReset),
			sub("delete", "remove every key of a product", "ID", adminDelete),
			adminTokenCommand(),
		},
	}
}

// checkIDArgs validates the ID and ORDER_ID arguments argsUsage names
// ("ID N", "ID ORDER_ID", "[ID ...]") before Redis is dialled, so a
// malformed one is a usage error whether or not Redis is up.
func checkIDArgs(c *cli.Context, argsUsage string) error {
	names := strings.Fields(strings.NewReplacer("[", "", "]", "").Replace(argsUsage))
	for i, arg := range c.Args().Slice() {
		name := names[min(i, len(names)-1)]
		if name == "..." && len(names) > 1 {
			name = names[len(names)-2]
		}
		var err error
		switch name {
		case "ID":
			err = engine.ValidateProductID(arg)
		case "ORDER_ID":
			err = engine.ValidateOrderID(arg)
		}
		if err != nil {
			return err
		}
		if i >= len(names)-1 && names[len(names)-1] != "..." {
			break
		}
	}
	return nil
}

// adminCtx is what every admin subcommand works with.
type adminCtx struct {
	*cli.Context
	store *store
	json  bool
}

func newAdminCtx(c *cli.Context) (*adminCtx, error) {
	st, err := openStoreFlags(c, zerolog.Nop(), redisSetup{PoolConfig: transport.PoolConfig{MaxActive: 2}}, false)
	if err != nil {
		return nil, err
	}
	return &adminCtx{Context: c, store: st, json: c.Bool("json")}, nil
}

// print writes v as JSON with --json, else the text.
func (a *adminCtx) print(v any, format string, args ...any) error {
	w := a.App.Writer
	if a.json {
		return json.NewEncoder(w).Encode(v)
	}
	_, err := fmt.Fprintf(w, format, args...)
	return err
}

// units parses a count of units argument.
func (a *adminCtx) units(s string, least int64) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < least {
		return 0, usageErrorf(a.Context, "N must be a whole number of units, %d or more, got %q", least, s)
	}
	return n, nil
}

func (a *adminCtx) time(flag string) (time.Time, error) {
	s := a.String(flag)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return t, usageErrorf(a.Context, "--%s must be an RFC 3339 time such as 2026-11-27T09:00:00Z, got %q", flag, s)
	}
	return t, nil
}

func adminInit(a *adminCtx) error {
	as, err := args(a.Context, "ID", "N")
	if err != nil {
		return err
	}
	id := as[0]
	n, err := a.units(as[1], 0)
	if err != nil {
		return err
	}
	limit := a.Int64("per-user-limit")
	if limit < 0 {
		return usageErrorf(a.Context, "--per-user-limit must be 0 (no limit) or more")
	}
	start, err := a.time("start")
	if err != nil {
		return err
	}
	end, err := a.time("end")
	if err != nil {
		return err
	}
	hold := a.Duration("hold")
	var cleared engine.Cleared
	opts := []engine.InitOption{engine.WithPerUserLimit(limit), engine.WithWindow(start, end), engine.WithCleared(&cleared), engine.WithHold(hold)}
	if a.Bool("force") {
		opts = append(opts, engine.WithForce())
	}
	if k := a.Int("shards"); k > 1 {
		if err := a.store.InitSharded(a.Context.Context, id, n, k, opts...); err != nil {
			return err
		}
		shards, err := a.store.Shards(a.Context.Context, id)
		if err != nil {
			return err
		}
		return a.print(map[string]any{"product_id": id, "initial": n, "per_user_limit": limit, "start": wireTime(start), "end": wireTime(end), "shards": shards, "cleared": cleared, "hold_ms": hold.Milliseconds()},
			"✓ Product '%s' initialized with %d units over %d shards %s (per-user limit %s, window %s%s)\n%s", id, n, k, strings.Join(shards, ","), limitText(limit), windowText(start, end), holdText(hold), clearedLine(cleared))
	}
	if err := a.store.Init(a.Context.Context, id, n, opts...); err != nil {
		return err
	}
	return a.print(map[string]any{"product_id": id, "initial": n, "per_user_limit": limit, "start": wireTime(start), "end": wireTime(end), "cleared": cleared, "hold_ms": hold.Milliseconds()},
		"✓ Product '%s' initialized with %d units (per-user limit %s, window %s%s)\n%s", id, n, limitText(limit), windowText(start, end), holdText(hold), clearedLine(cleared))
}

// holdText is how init describes a hold: nothing when purchases sell
// outright.
func holdText(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return ", reservations held " + d.String() + " until paid"
}

func adminHold(a *adminCtx) error {
	as, err := args(a.Context, "ID", "DURATION")
	if err != nil {
		return err
	}
	d, err := time.ParseDuration(as[1])
	if err != nil {
		return usageErrorf(a.Context, "DURATION must be a duration such as 10m or 0s, got %q", as[1])
	}
	was, err := a.store.SetHold(a.Context.Context, as[0], d)
	if err != nil {
		return err
	}
	now := "sell outright"
	if d > 0 {
		now = "reserve for " + d.String()
	}
	return a.print(map[string]any{"product_id": as[0], "hold_ms": d.Milliseconds(), "was_ms": was.Milliseconds()},
		"✓ Purchases of '%s' now %s (the hold was %s); reservations already made keep their expiry\n", as[0], now, was)
}

// clearedLine says what a forced init cleared: nothing when it cleared
// nothing.
func clearedLine(c engine.Cleared) string {
	if !c.Any() {
		return ""
	}
	return "  cleared " + c.String() + "\n"
}

func wireTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func limitText(n int64) string {
	if n == 0 {
		return "none"
	}
	return strconv.FormatInt(n, 10)
}

func windowText(start, end time.Time) string {
	switch {
	case start.IsZero() && end.IsZero():
		return "always open"
	case end.IsZero():
		return "from " + wireTime(start)
	case start.IsZero():
		return "until " + wireTime(end)
	}
	return wireTime(start) + " to " + wireTime(end)
}

func adminStatus(a *adminCtx) error {
	as, err := args(a.Context, "ID")
	if err != nil {
		return err
	}
	st, err := a.store.Status(a.Context.Context, as[0])
	if err != nil {
		return err
	}
	// Status is one O(1) script: it does not audit the orders (admin
	// verify does, blocking Redis for the time it takes). A room is one
	// more (gone by then if the product was re-created in between).
	var room *engine.RoomInfo
	if st.Room.Rate > 0 {
		r, err := a.store.RoomInfo(a.Context.Context, as[0])
		switch {
		case err == nil:
			room = &r
		case !errors.Is(err, engine.ErrNoRoom):
			return err
		}
	}
	if err := printStatus(a.App.Writer, st, room, a.json); err != nil {
		return err
	}
	if !st.Consistent() {
		return fmt.Errorf("%s: %w", st.ID, ErrInvariantBroken)
	}
	return nil
}

// okText is OK or BROKEN.
func okText(ok bool) string {
	if ok {
		return "OK"
	}
	return "BROKEN"
}

// printStatus writes a status reading, and room when the product has one.
func printStatus(w io.Writer, st engine.ProductStatus, room *engine.RoomInfo, asJSON bool) error {
	if asJSON {
		v := map[string]any{
			"product_id": st.ID, "state": st.State(), "remaining": st.Remaining, "initial": st.Initial,
			"held": st.Held, "active_orders": st.Buyers, "customers": st.Customers, "stream_entries": st.Orders,
			"per_user_limit": st.Limit, "start": wireTime(st.Start), "end": wireTime(st.End),
			// Deprecated names, kept for existing scripts: buyers counted
			// orders (active_orders), orders counted stream entries.
			"buyers": st.Buyers, "orders": st.Orders,
			"invariant": okText(st.Consistent()), "shards": st.Shards, "in_transit": st.InTransit,
			"hold_ms": st.Hold.Milliseconds(), "reserved": st.Reserved, "paid": st.Paid,
			"expired": st.Expired, "cancelled": st.Cancelled,
		}
		if room != nil {
			v["room"] = roomJSON(*room)
		}
		return json.NewEncoder(w).Encode(v)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "=== Product Status: %s ===\n", st.ID)
	fmt.Fprintf(&b, "State:             %s\n", st.State())
	fmt.Fprintf(&b, "Window:            %s\n", windowText(st.Start, st.End))
	fmt.Fprintf(&b, "Per-User Limit:    %s\n", limitText(st.Limit))
	fmt.Fprintf(&b, "Remaining Stock:   %d\n", st.Remaining)
	fmt.Fprintf(&b, "Initial Stock:     %d\n", st.Initial)
	fmt.Fprintf(&b, "Units Held:        %d\n", st.Held)
	fmt.Fprintf(&b, "Orders:            %d (not released)\n", st.Buyers)
	fmt.Fprintf(&b, "Customers:         %d (holding units)\n", st.Customers)
	if st.Shards > 0 {
		fmt.Fprintf(&b, "Shards:            %d (%d units in transit)\n", st.Shards, st.InTransit)
	}
	if st.Hold > 0 || st.Reserved+st.Paid+st.Expired+st.Cancelled > 0 {
		fmt.Fprintf(&b, "Hold:              %s (0s: sells outright)\n", st.Hold)
		fmt.Fprintf(&b, "Reservations:      %d units reserved, %d paid, %d expired, %d cancelled\n", st.Reserved, st.Paid, st.Expired, st.Cancelled)
	}
	if room != nil {
		roomLines(&b, *room)
	}
	fmt.Fprintf(&b, "Invariant:         %s (remaining %d + held %d, initial %d)\n", okText(st.Consistent()), st.Remaining, st.Held, st.Initial)
	_, err := io.WriteString(w, b.String())
	return err
}

// writeAudit writes the verify result and its discrepancies, one a line.
func writeAudit(b *strings.Builder, audit engine.Audit) {
	fmt.Fprintf(b, "%s (%d orders, %d units sold, %d released, %s)\n",
		okText(audit.OK()), audit.Orders, audit.Sold, audit.Released, plural(audit.Customers, "customer"))
	for _, p := range audit.Problems {
		fmt.Fprintf(b, "  ✗ %s\n", p)
	}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func adminBuyers(a *adminCtx) error {
	as, err := args(a.Context, "ID")
	if err != nil {
		return err
	}
	id, limit := as[0], a.Int("limit")
	if limit < 0 {
		return usageErrorf(a.Context, "--limit must be 0 (all) or more, got %d", limit)
	}
	total, ids, err := a.store.Buyers(a.Context.Context, id, limit)
	if err != nil {
		return err
	}
	// One more O(1) reading for the customers, who are not the orders'
	// count: with a per-customer limit above 1, one customer may hold
	// many orders, listed once each.
	st, err := a.store.Status(a.Context.Context, id)
	if err != nil {
		return err
	}
	if a.json {
		// total and buyers count and list orders (one entry per order, a
		// customer's id as many times as they have orders).
		return a.print(map[string]any{"product_id": id, "total": total, "buyers": nonNil(ids), "customers": st.Customers}, "")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "=== Orders of %s (%d total) of %s: one line per order not released, its customer ===\n",
		id, total, plural(st.Customers, "customer"))
	for i, u := range ids {
		fmt.Fprintf(&b, "%d. %s\n", i+1, u)
	}
	if more := total - int64(len(ids)); more > 0 {
		fmt.Fprintf(&b, "… and %d more (--limit 0 shows all)\n", more)
	}
	_, err = io.WriteString(a.App.Writer, b.String())
	return err
}

// plural is n and the noun, in the plural unless n is 1.
func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.FormatInt(n, 10) + " " + noun + "s"
}

func adminOrders(a *adminCtx) error {
	as, err := args(a.Context, "ID")
	if err != nil {
		return err
	}
	limit := a.Int("limit")
	if limit < 0 {
		return usageErrorf(a.Context, "--limit must be 0 (all) or more, got %d", limit)
	}
	orders, err := a.store.Orders(a.Context.Context, as[0], limit)
	if err != nil {
		return err
	}
	if a.json {
		return a.print(map[string]any{"product_id": as[0], "orders": nonNil(orders)}, "")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "=== Orders stream of %s (%d shown) ===\n", as[0], len(orders))
	fmt.Fprintf(&b, "%-20s %-8s %-20s %-16s %8s %10s  %s\n", "ENTRY", "TYPE", "ORDER", "USER", "QUANTITY", "REMAINING", "TIME")
	for _, o := range orders {
		fmt.Fprintf(&b, "%-20s %-8s %-20s %-16s %8d %10d  %s\n", o.ID, o.Type, dash(o.OrderID), dash(o.UserID),
			o.Quantity, o.Remaining, o.Time.Format(time.RFC3339Nano))
	}
	_, err = io.WriteString(a.App.Writer, b.String())
	return err
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func adminOpen(a *adminCtx) error  { return adminWindow(a, a.store.Open, "opened") }
func adminClose(a *adminCtx) error { return adminWindow(a, a.store.Close, "closed") }

func adminWindow(a *adminCtx, op func(ctx context.Context, id string) error, done string) error {
	as, err := args(a.Context, "ID")
	if err != nil {
		return err
	}
	if err := op(a.Context.Context, as[0]); err != nil {
		return err
	}
	return a.print(map[string]any{"product_id": as[0], done: true}, "✓ Sale of '%s' %s\n", as[0], done)
}

func adminRestock(a *adminCtx) error {
	as, err := args(a.Context, "ID", "N")
	if err != nil {
		return err
	}
	n, err := a.units(as[1], 1)
	if err != nil {
		return err
	}
	remaining, initial, err := a.store.Restock(a.Context.Context, as[0], n)
	if err != nil {
		return err
	}
	return a.print(map[string]any{"product_id": as[0], "added": n, "remaining": remaining, "initial": initial},
		"✓ Product '%s' restocked with %d units: %d remaining, initial %d\n", as[0], n, remaining, initial)
}

func adminRelease(a *adminCtx) error {
	as, err := args(a.Context, "ID", "ORDER_ID")
	if err != nil {
		return err
	}
	var opts []engine.ReleaseOption
	if u := a.String("user"); u != "" {
		opts = append(opts, engine.ReleaseOfUser(u))
	}
	r, err := a.store.Release(a.Context.Context, as[0], as[1], opts...)
	if err != nil {
		return err
	}
	verb := "released"
	if r.Already {
		verb = "was already released"
	}
	return a.print(map[string]any{"product_id": as[0], "order_id": as[1], "already_released": r.Already,
		"user_id": r.UserID, "quantity": r.Quantity, "remaining": r.Remaining},
		"✓ Order %s of '%s' %s: %d unit(s) of %s back in stock, %d remaining\n",
		as[1], as[0], verb, r.Quantity, r.UserID, r.Remaining)
}

func adminVerify(a *adminCtx) error {
	ids := a.Args().Slice()
	if len(ids) == 0 {
		var err error
		if ids, err = a.store.Products(a.Context.Context); err != nil {
			return err
		}
	}
	var audits []engine.Audit
	failed := 0
	var b strings.Builder
	for _, id := range ids {
		if a.Bool("repair") {
			n, err := a.store.Repair(a.Context.Context, id)
			if err != nil {
				return err
			}
			if n > 0 && !a.json {
				fmt.Fprintf(&b, "↻ %s: %d transfer(s) between shards completed\n", id, n)
			}
		}
		audit, err := a.store.Verify(a.Context.Context, id)
		if err != nil {
			return err
		}
		audits = append(audits, audit)
		if !audit.OK() {
			failed++
		}
		mark := "✓"
		if !audit.OK() {
			mark = "✗"
		}
		fmt.Fprintf(&b, "%s %s: ", mark, id)
		writeAudit(&b, audit)
	}
	if a.json {
		for i := range audits {
			audits[i].Problems = nonNil(audits[i].Problems)
		}
		if err := a.print(map[string]any{"ok": failed == 0, "products": nonNil(audits)}, ""); err != nil {
			return err
		}
	} else {
		if len(ids) == 0 {
			b.WriteString("no products\n")
		}
		if _, err := io.WriteString(a.App.Writer, b.String()); err != nil {
			return err
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d product(s): %w", failed, len(ids), ErrVerifyFailed)
	}
	return nil
}

// adminWatch follows the sale events until interrupted or --count sales.
func adminWatch(a *adminCtx) error {
	if a.NArg() > 1 {
		return usageErrorf(a.Context, "watch takes at most one product ID")
	}
	product, limit := a.Args().First(), a.Int("count")
	ctx, cancel := context.WithCancel(a.Context.Context)
	defer cancel()
	seen := 0
	var werr error
	err := a.store.Subscribe(ctx, engine.EventChannel, func(payload []byte) {
		var ev engine.Event
		if json.Unmarshal(payload, &ev) != nil || (product != "" && ev.ProductID != product) || werr != nil {
			return
		}
		if a.json {
			_, werr = fmt.Fprintf(a.App.Writer, "%s\n", payload)
		} else {
			_, werr = fmt.Fprintf(a.App.Writer, "%s  %-16s %-16s ×%d  order %s  %d left\n",
				time.Unix(ev.Timestamp, 0).UTC().Format(time.TimeOnly), ev.ProductID, ev.Buyer, max(ev.Quantity, 1), dash(ev.OrderID), ev.Remaining)
		}
		if seen++; limit > 0 && seen >= limit {
			cancel()
		}
	})
	return errors.Join(err, werr)
}

func adminReset(a *adminCtx) error {
	as, err := args(a.Context, "ID")
	if err != nil {
		return err
	}
	initial, cleared, err := a.store.Reset(a.Context.Context, as[0])
	if err != nil {
		return err
	}
	return a.print(map[string]any{"product_id": as[0], "initial": initial, "cleared": cleared},
		"✓ Product '%s' reset to %d units: cleared %s\n", as[0], initial, cleared)
}

func adminDelete(a *adminCtx) error {
	as, err := args(a.Context, "ID")
	if err != nil {
		return err
	}
	if err := a.store.Delete(a.Context.Context, as[0]); err != nil {
		return err
	}
	return a.print(map[string]any{"product_id": as[0], "deleted": true},
		"✓ Product '%s' deleted\n", as[0])
}
