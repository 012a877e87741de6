package commands

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/flashsale/flashsale/engine"
)

// ErrInvariantBroken is returned by admin status when remaining + buyers
// != initial.
var ErrInvariantBroken = errors.New("invariant BROKEN: remaining + buyers != initial")

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
				a, err := newAdminCtx(c)
				if err != nil {
					return err
				}
				defer a.store.close()
				return action(a)
			},
		}
	}
	return &cli.Command{
		Name:  "admin",
		Usage: "operate products: init, status, buyers, reset, delete",
		Description: "Flags go before the arguments: flashsale admin buyers --limit 10 iphone15.\n" +
			"Redis is reached through --redis-addr / REDIS_ADDR, as for serve.",
		Subcommands: []*cli.Command{
			sub("init", "create or re-create a product with N units (clears its buyers)", "ID N", adminInit),
			sub("status", "remaining, initial, buyers and the invariant remaining + buyers == initial", "ID", adminStatus),
			sub("buyers", "list a product's buyers in purchase order", "ID", adminBuyers,
				&cli.IntFlag{Name: "limit", Usage: "show at most `N` buyers (0 for all)", Value: 100}),
			sub("reset", "put stock back to its initial value and clear the buyers, atomically", "ID", adminReset),
			sub("delete", "remove every key of a product", "ID", adminDelete),
		},
	}
}

// adminCtx is what every admin subcommand works with.
type adminCtx struct {
	*cli.Context
	store *store
	json  bool
}

func newAdminCtx(c *cli.Context) (*adminCtx, error) {
	st, err := openStoreFlags(c, zerolog.Nop(), engine.PoolConfig{MaxActive: 2}, false)
	if err != nil {
		return nil, err
	}
	return &adminCtx{Context: c, store: st, json: c.Bool("json")}, nil
}

// print writes v as JSON with --json, else the text.
func (a *adminCtx) print(v any, format string, args ...any) error {
	w := a.App.Writer
	if a.json {
		enc := json.NewEncoder(w)
		return enc.Encode(v)
	}
	_, err := fmt.Fprintf(w, format, args...)
	return err
}

func adminInit(a *adminCtx) error {
	as, err := args(a.Context, "ID", "N")
	if err != nil {
		return err
	}
	id := as[0]
	n, err := strconv.ParseInt(as[1], 10, 64)
	if err != nil || n < 0 {
		return usageErrorf(a.Context, "N must be a whole number of units, zero or more, got %q", as[1])
	}
	if err := a.store.Init(a.Context.Context, id, n); err != nil {
		return err
	}
	return a.print(map[string]any{"product_id": id, "initial": n},
		"✓ Product '%s' initialized with %d units\n", id, n)
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
	if err := printStatus(a.App.Writer, st, a.json); err != nil {
		return err
	}
	if !st.Consistent() {
		return fmt.Errorf("%s: %w", st.ID, ErrInvariantBroken)
	}
	return nil
}

// invariantText is OK or BROKEN.
func invariantText(st engine.ProductStatus) string {
	if st.Consistent() {
		return "OK"
	}
	return "BROKEN"
}

func printStatus(w io.Writer, st engine.ProductStatus, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(struct {
			engine.ProductStatus
			Invariant string `json:"invariant"`
		}{st, invariantText(st)})
	}
	_, err := fmt.Fprintf(w, `=== Product Status: %s ===
Remaining Stock:   %d
Initial Stock:     %d
Successful Buyers: %d
Invariant:         %s (remaining %d + buyers %d, initial %d)
`, st.ID, st.Remaining, st.Initial, st.Buyers, invariantText(st), st.Remaining, st.Buyers, st.Initial)
	return err
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
	if a.json {
		if ids == nil {
			ids = []string{}
		}
		return a.print(map[string]any{"product_id": id, "total": total, "buyers": ids}, "")
	}
	w := a.App.Writer
	fmt.Fprintf(w, "=== Buyers for %s (%d total) ===\n", id, total)
	for i, u := range ids {
		fmt.Fprintf(w, "%d. %s\n", i+1, u)
	}
	if more := total - int64(len(ids)); more > 0 {
		fmt.Fprintf(w, "… and %d more (--limit 0 shows all)\n", more)
	}
	return nil
}

func adminReset(a *adminCtx) error {
	as, err := args(a.Context, "ID")
	if err != nil {
		return err
	}
	initial, err := a.store.Reset(a.Context.Context, as[0])
	if err != nil {
		return err
	}
	return a.print(map[string]any{"product_id": as[0], "initial": initial},
		"✓ Product '%s' reset to %d units, buyers cleared\n", as[0], initial)
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
