package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/flashsale/flashsale/client"
	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/loadgen"
	"github.com/flashsale/flashsale/transport"
	"github.com/flashsale/flashsale/wire"
)

// Errors of a bench run that went wrong; main maps them to exit codes.
var (
	// ErrCheckFailed: the oversell check failed.
	ErrCheckFailed = errors.New("oversell check FAILED")
	// ErrRequestsFailed: some requests got no answer or an ERROR, and
	// --allow-errors was not given.
	ErrRequestsFailed = errors.New("requests failed")
	// ErrInterrupted: the run was stopped (Ctrl-C) before its end.
	ErrInterrupted = errors.New("interrupted")
)

// defaultAddr is where the one-shot commands and bench find the server:
// serve's default --listen, on loopback.
const defaultAddr = "127.0.0.1:8080"

// addrFlag is --addr of the commands that talk to a server.
func addrFlag(usage string) cli.Flag {
	return &cli.StringFlag{
		Name:    "addr",
		Usage:   usage + " (serve listens on its --listen / LISTEN_ADDR, :8080 by default)",
		EnvVars: []string{"FLASHSALE_ADDR"},
		Value:   defaultAddr,
	}
}

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "drive running servers with purchases, report latency, and check for oversell against Redis",
		Description: "Exit status: 0 when the oversell check passes and no request failed, 1 on\n" +
			"a failed check or failed requests (unless --allow-errors), 130 when\n" +
			"interrupted, 2 for a usage mistake.",
		Flags: concat([]cli.Flag{
			addrFlag("flashsale server `address`, or several separated by commas (connections are spread over them)"),
			&cli.BoolFlag{Name: "json", Usage: "print the report as one JSON object (no progress bar)"},
			&cli.BoolFlag{Name: "allow-errors", Usage: "exit 0 even when requests failed, if the oversell check passes"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "also write a self-contained HTML report (latency over time, status counts) to `FILE`", TakesFile: true},
			&cli.BoolFlag{Name: "request-ids", Usage: "give each purchase the request_id rid_N of its customer N (unique per request with --users 0; with --users, a customer's later attempts are retries)"},
		}, loadFlags(), holdFlags(), benchRoomFlags(), redisFlags(), clientTLSFlags(), userSecretFlags()),
		Action: runBench,
	}
}

// withRequestIDs returns a request hook that gives each purchase the
// request_id rid_N of its customer N, then calls sign (if any).
func withRequestIDs(sign func(*wire.PurchaseRequest, int64)) func(*wire.PurchaseRequest, int64) {
	return func(req *wire.PurchaseRequest, user int64) {
		req.RequestID = "rid_" + strconv.FormatInt(user, 10)
		if sign != nil {
			sign(req, user)
		}
	}
}

// maxPipeline bounds -P: each slot costs a little memory per connection,
// and the server stops reading a connection past its --max-in-flight.
const maxPipeline = 10000

// loadFlags describe a load; bench and demo share them.
func loadFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "requests", Aliases: []string{"n"}, Usage: "purchase attempts in all; 0 = unlimited, with --duration (the default when only --duration is given)", Value: 10000},
		&cli.IntFlag{Name: "connections", Aliases: []string{"c"}, Usage: "concurrent connections", Value: 100},
		&cli.IntFlag{Name: "pipeline", Aliases: []string{"P"}, Usage: "`N` requests in flight per connection", Value: 1},
		&cli.Float64Flag{Name: "rate", Usage: "open loop: send `R` requests per second in all, latency counted from when each was due (0 = closed loop)"},
		&cli.DurationFlag{Name: "duration", Usage: "send for `D` (and stop at -n if it is also given)"},
		&cli.StringFlag{Name: "product", Usage: "product `ID` to buy", Value: "iphone15"},
		&cli.Int64Flag{Name: "init", Usage: "(re)initialise the product with `N` units first, so runs are repeatable"},
		&cli.Int64Flag{Name: "per-user-limit", Usage: "with --init: most units one customer may hold (0 = no limit)", Value: engine.DefaultPerUserLimit},
		&cli.StringFlag{Name: "user-prefix", Usage: "user ids are PREFIX_0, PREFIX_1, …", Value: "user"},
		&cli.IntFlag{Name: "users", Usage: "draw user ids from `U` customers (0 = a new customer per request)"},
		&cli.Int64Flag{Name: "quantity", Usage: "units per purchase", Value: 1},
		&cli.DurationFlag{Name: "timeout", Usage: "bound on one request's round trip (a connection with no answer for this long fails)", Value: 5 * time.Second},
	}
}

// splitAddrs reads a comma-separated --addr.
func splitAddrs(c *cli.Context, list string) ([]string, error) {
	var addrs []string
	for _, a := range strings.Split(list, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return nil, usageErrorf(c, "--addr is empty")
	}
	return addrs, nil
}

func loadConfigFrom(c *cli.Context, addrs []string) (loadgen.Config, error) {
	cfg := loadgen.Config{
		Addrs:      addrs,
		Product:    c.String("product"),
		Requests:   c.Int("requests"),
		Conns:      c.Int("connections"),
		Pipeline:   c.Int("pipeline"),
		Rate:       c.Float64("rate"),
		Duration:   c.Duration("duration"),
		UserPrefix: c.String("user-prefix"),
		Users:      c.Int("users"),
		Quantity:   c.Int64("quantity"),
		Timeout:    c.Duration("timeout"),
	}
	// With --duration, -n 0 (or no -n) is unlimited: the clock ends the run.
	unlimited := c.IsSet("duration") && (!c.IsSet("requests") || cfg.Requests == 0)
	if unlimited {
		cfg.Requests = 0
	}
	switch {
	case cfg.Requests < 0:
		return cfg, usageErrorf(c, "-n must be 1 or more, or 0 (unlimited) with --duration")
	case cfg.Requests == 0 && !unlimited:
		return cfg, usageErrorf(c, "-n 0 is unlimited, which needs --duration D to end the run: add --duration, or give -n 1 or more")
	case cfg.Conns < 1:
		return cfg, usageErrorf(c, "-c must be at least 1")
	case cfg.Pipeline < 1 || cfg.Pipeline > maxPipeline:
		return cfg, usageErrorf(c, "-P must be between 1 and %d", maxPipeline)
	case cfg.Rate < 0 || math.IsNaN(cfg.Rate) || math.IsInf(cfg.Rate, 0):
		return cfg, usageErrorf(c, "--rate must be 0 (closed loop) or requests per second")
	case cfg.Duration < 0 || (c.IsSet("duration") && cfg.Duration == 0):
		return cfg, usageErrorf(c, "--duration must be positive")
	case cfg.Users < 0:
		return cfg, usageErrorf(c, "--users must be 0 (unique users) or more")
	case engine.ValidateQuantity(cfg.Quantity) != nil:
		return cfg, usageErrorf(c, "--quantity: %v", engine.ValidateQuantity(cfg.Quantity))
	case cfg.Timeout <= 0:
		return cfg, usageErrorf(c, "--timeout must be positive")
	case c.IsSet("init") && c.Int64("init") < 0:
		return cfg, usageErrorf(c, "--init must be zero or more units")
	case c.Int64("per-user-limit") < 0:
		return cfg, usageErrorf(c, "--per-user-limit must be 0 (no limit) or more")
	case c.IsSet("per-user-limit") && !c.IsSet("init"):
		return cfg, usageErrorf(c, "--per-user-limit only applies with --init (or use 'flashsale admin init')")
	}
	if cfg.Requests > 0 {
		cfg.Conns = min(cfg.Conns, cfg.Requests)
	}
	tlsConfig, err := clientTLSConfig(c)
	if err != nil {
		return cfg, err
	}
	cfg.Options = client.Options{TLS: tlsConfig, DialTimeout: cfg.Timeout, Timeout: cfg.Timeout}
	return cfg, nil
}

// describe says how much load cfg is, for people: "10000 requests",
// "requests for 10s", "2000 req/s for 10s".
func describe(cfg loadgen.Config) string {
	var s string
	switch {
	case cfg.Rate > 0:
		s = strconv.FormatFloat(cfg.Rate, 'f', -1, 64) + " req/s"
		if cfg.Requests > 0 {
			s = strconv.Itoa(cfg.Requests) + " requests at " + s
		}
	case cfg.Requests > 0:
		s = strconv.Itoa(cfg.Requests) + " requests"
	default:
		s = "requests"
	}
	if cfg.Duration > 0 {
		s += " for " + cfg.Duration.String()
	}
	return s
}

func runBench(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageErrorf(c, "bench takes no arguments, got %q", c.Args().Slice())
	}
	addrs, err := splitAddrs(c, c.String("addr"))
	if err != nil {
		return err
	}
	cfg, err := loadConfigFrom(c, addrs)
	if err != nil {
		return err
	}
	h, err := holdConfigFrom(c)
	if err != nil {
		return err
	}
	var rb roomBench
	if c.Bool("room") {
		if rb, err = roomBenchFrom(c); err != nil {
			return err
		}
	}
	if signer, err := signerFrom(c); err != nil {
		return err
	} else if signer != nil {
		cfg.Sign = newUserTokens(signer, cfg).sign
	}
	if c.Bool("request-ids") {
		cfg.Sign = withRequestIDs(cfg.Sign)
	}
	st, err := openStoreFlags(c, zerolog.Nop(), redisSetup{PoolConfig: transport.PoolConfig{MaxActive: 2}}, false)
	if err != nil {
		return err
	}
	defer st.close()
	if c.Bool("room") {
		return benchRoom(c, st, cfg, rb)
	}
	return benchHeld(c, st, cfg, h)
}

// reachServers pings every server once, so that a server that is not
// there fails the run at once, by name, instead of as a pile of errors.
func reachServers(ctx context.Context, cfg loadgen.Config) error {
	for _, addr := range cfg.Addrs {
		conn, err := client.Dial(ctx, addr, cfg.Options)
		if err == nil {
			_, err = conn.Ping(ctx)
			conn.Close()
		}
		if err != nil {
			return serverError(addr, cfg.Options.TLS != nil, err)
		}
	}
	return nil
}

// serverError says what to do about a server that cannot be reached.
func serverError(addr string, withTLS bool, err error) error {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("no flashsale server at %s (%w): start one with 'flashsale serve' "+
			"(it listens on --listen / LISTEN_ADDR, :8080 by default), or point --addr / FLASHSALE_ADDR at it", addr, oneLine(err))
	case !withTLS && errors.Is(err, io.EOF):
		return fmt.Errorf("flashsale server at %s closed the connection (%w): does it serve TLS? then add --tls", addr, oneLine(err))
	}
	return fmt.Errorf("flashsale server at %s: %w", addr, oneLine(err))
}

// benchAndCheck initialises the product if asked, runs the load, checks for
// oversell and prints the report: text, or JSON with bench --json. On a
// product with a hold, its winners abandon their reservations.
func benchAndCheck(c *cli.Context, st *store, cfg loadgen.Config) error {
	return benchHeld(c, st, cfg, holdConfig{})
}

// benchHeld is benchAndCheck with h saying what the winners of a product
// with a hold do (and, with --init, its hold).
func benchHeld(c *cli.Context, st *store, cfg loadgen.Config, h holdConfig) error {
	ctx, eng := c.Context, st.Engine
	if err := reachServers(ctx, cfg); err != nil {
		return err
	}
	cleared, before, err := initBenchProduct(c, eng, cfg.Product, h.hold)
	if err != nil {
		return err
	}
	var hb *holdBench
	switch {
	case before.Hold > 0:
		if hb, err = startHoldBench(ctx, st, &cfg, h, before); err != nil {
			return err
		}
	case h.shareSet || h.delaySet:
		return usageErrorf(c, "product %s has no hold, so its purchases sell outright and no one pays: "+
			"give it one with --init N --hold D, or 'flashsale admin hold %s D'", cfg.Product, cfg.Product)
	}
	asJSON := c.Bool("json")
	output := c.String("output")
	cfg.Timeline = output != ""
	gen := loadgen.New(cfg)
	var stopProgress func()
	if !asJSON && isTerminal(c.App.ErrWriter) {
		stopProgress = startProgress(c.App.ErrWriter, gen, cfg.Requests, cfg.Duration)
	}
	cpu0, cpuErr := st.cpu(ctx)
	res := gen.Run(ctx)
	if stopProgress != nil {
		stopProgress()
	}
	rep := newReport(cfg, res, c.Bool("allow-errors"))
	rep.Cleared = cleared
	if cpuErr == nil {
		cpu1, err := st.cpu(context.WithoutCancel(ctx))
		rep.RedisCPU = redisCPU(cpu0, cpu1, err)
	}
	if hb != nil {
		// The last confirms, then the last holds' expiry: before the check.
		rep.Hold = hb.finish(ctx)
	}
	// The check runs even after Ctrl-C: it is the point of the run.
	checkCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if rep.Check, err = check(checkCtx, eng, cfg.Product, rep, before); err != nil {
		return fmt.Errorf("oversell check: %w", err)
	}
	if asJSON {
		err = rep.WriteJSON(c.App.Writer)
	} else {
		err = rep.WriteText(c.App.Writer)
	}
	if err != nil {
		return err
	}
	if output != "" {
		if err := writeHTMLFile(output, rep); err != nil {
			return err
		}
		if !asJSON {
			fmt.Fprintf(c.App.Writer, "HTML report:       %s\n", output)
		}
	}
	return rep.Err()
}

// initBenchProduct initialises product with --init (with hold), and returns
// what that cleared (nil without --init) and the product's status before
// the run.
func initBenchProduct(c *cli.Context, eng *engine.Engine, product string, hold time.Duration) (*engine.Cleared, engine.ProductStatus, error) {
	ctx := c.Context
	var cleared *engine.Cleared // what --init cleared
	if c.IsSet("init") {
		// Re-initialising is what --init is for: it wipes, and says what.
		cleared = &engine.Cleared{}
		if err := eng.Init(ctx, product, c.Int64("init"), engine.WithPerUserLimit(c.Int64("per-user-limit")),
			engine.WithHold(hold), engine.WithForce(), engine.WithCleared(cleared)); err != nil {
			return nil, engine.ProductStatus{}, err
		}
		if !c.Bool("json") { // with --json, stdout is the report's alone
			fmt.Fprintf(c.App.Writer, "--init %d: cleared %s\n", c.Int64("init"), *cleared)
		}
	}
	before, err := eng.Status(ctx, product)
	if errors.Is(err, engine.ErrUnknownProduct) {
		return nil, before, fmt.Errorf("%w (create it with --init N or 'flashsale admin init %s N')", err, product)
	}
	return cleared, before, err
}

// check reads the product back from Redis after the run.
func check(ctx context.Context, eng *engine.Engine, product string, rep *Report, before engine.ProductStatus) (*Check, error) {
	after, err := eng.Status(ctx, product)
	if err != nil {
		return nil, err
	}
	audit, err := eng.Verify(ctx, product)
	if err != nil {
		return nil, err
	}
	var orders []engine.Order
	if len(rep.OrderIDs) > 0 || rep.Hold != nil {
		if orders, err = eng.Orders(ctx, product, 0); err != nil {
			return nil, err
		}
	}
	ch := newCheck(rep, before, after, audit, missingOrders(rep.OrderIDs, orders))
	if rep.Hold != nil {
		ch.addHold(rep.Hold, before, after, orders)
	}
	return ch, nil
}

// missingOrders are the order ids that are not sales in orders.
func missingOrders(ids []string, orders []engine.Order) []string {
	sales := make(map[string]struct{}, len(orders))
	for _, o := range orders {
		if o.Type == "sale" {
			sales[o.ID] = struct{}{}
		}
	}
	var missing []string
	for _, id := range ids {
		if _, ok := sales[id]; !ok {
			missing = append(missing, id)
		}
	}
	return missing
}

// Check is the oversell check: what this bench was told against what
// Redis recorded during the run, and the product's books (admin verify).
// Other buyers (another bench, real customers) may buy during the run:
// their sales are counted, not held against the check.
type Check struct {
	Orders     int64                // SUCCESS answers this bench received
	Units      int64                // units in those answers
	Sold       int64                // units the product sold during the run, by anyone
	NewOrders  int64                // orders recorded during the run, by anyone
	OtherUnits int64                // units sold to other buyers: Sold − Units
	Missing    []string             // SUCCESS order ids not in the orders stream
	After      engine.ProductStatus // the product at the end
	Audit      engine.Audit         // admin verify at the end
	Hold       *HoldCheck           // the reservations' part, for a product with a hold
	Pass       bool
}

func newCheck(rep *Report, before, after engine.ProductStatus, audit engine.Audit, missing []string) *Check {
	ch := &Check{
		Orders:    rep.Count(wire.StatusSuccess),
		Units:     rep.Units,
		Sold:      after.Sold() - before.Sold(),
		NewOrders: after.Buyers - before.Buyers,
		Missing:   missing,
		After:     after,
		Audit:     audit,
	}
	ch.OtherUnits = max(ch.Sold-ch.Units, 0)
	// Stock never below zero and units sold never above initial + restocks
	// (Consistent); the books balance (verify); every sale this bench was
	// told of is recorded, as many units and orders as it was told of at
	// least, and each of its order ids in the orders stream.
	ch.Pass = after.Consistent() && audit.OK() && ch.Units <= ch.Sold && ch.Orders <= ch.NewOrders && len(missing) == 0
	return ch
}

// Report is a bench run: the load asked for, what came back, the check.
type Report struct {
	Target      string
	Product     string
	Connections int
	// The load asked for.
	Pipeline      int           // -P
	Rate          float64       // --rate; 0 = closed loop
	RequestLimit  int64         // -n; 0 = unlimited
	DurationLimit time.Duration // --duration; 0 = none
	Users         int
	Quantity      int64
	AllowErrors   bool // --allow-errors

	loadgen.Result
	// RedisCPU is the CPU time the Redis processes used during the load
	// (before the check), nil when Redis cannot say (the embedded store).
	RedisCPU *RedisCPU
	Check    *Check
	// Cleared is what --init cleared before the run, nil without --init.
	Cleared *engine.Cleared
	// Hold is what became of the reservations, for a product with a hold.
	Hold *HoldReport
	// Room is what bench --room measured of the waiting room.
	Room *RoomMetrics
}

// RedisCPU is the CPU time (user + sys) Redis used during a run: with
// the units sold, the cost of a sale in Redis, which says how many sales
// one Redis core can make on any machine. It counts everything Redis ran
// meanwhile, other clients' commands included.
type RedisCPU struct {
	Seconds float64             // over every node
	Nodes   []transport.NodeCPU // per node, in the order the store lists them
}

// redisCPU is the CPU used between the readings before and after, or nil
// when the second failed or the nodes changed (a failover) meanwhile.
func redisCPU(before, after []transport.NodeCPU, err error) *RedisCPU {
	if err != nil || len(before) != len(after) {
		return nil
	}
	r := &RedisCPU{}
	for i, a := range after {
		if a.Addr != before[i].Addr {
			return nil
		}
		d := transport.NodeCPU{Addr: a.Addr, Seconds: a.Seconds - before[i].Seconds}
		r.Seconds += d.Seconds
		r.Nodes = append(r.Nodes, d)
	}
	return r
}

// PerUnit is the Redis CPU per unit sold, in microseconds (0 when nothing
// sold).
func (r *RedisCPU) PerUnit(units int64) float64 {
	if units <= 0 {
		return 0
	}
	return r.Seconds * 1e6 / float64(units)
}

func newReport(cfg loadgen.Config, res *loadgen.Result, allowErrors bool) *Report {
	return &Report{
		Target:        strings.Join(cfg.Addrs, ","),
		Product:       cfg.Product,
		Connections:   cfg.Conns,
		Pipeline:      cfg.Pipeline,
		Rate:          cfg.Rate,
		RequestLimit:  int64(cfg.Requests),
		DurationLimit: cfg.Duration,
		Users:         cfg.Users,
		Quantity:      cfg.Quantity,
		AllowErrors:   allowErrors,
		Result:        *res,
	}
}

// Err is the run's outcome as bench's exit status sees it: nil for a
// pass, ErrCheckFailed, ErrInterrupted or ErrRequestsFailed.
func (r *Report) Err() error {
	switch {
	case r.Check != nil && !r.Check.Pass:
		return ErrCheckFailed
	case r.Room != nil && !r.Room.Pass:
		return ErrRoomFailed
	case r.Interrupted:
		return ErrInterrupted
	case r.failures() > 0 && !r.AllowErrors:
		return fmt.Errorf("%w: %d of %d (pass --allow-errors to accept them)", ErrRequestsFailed, r.failures(), r.Total+r.settles())
	}
	return nil
}

// failures counts the requests that failed: purchases, and the payers'
// confirms and cancels.
func (r *Report) failures() int64 {
	if r.Hold != nil {
		return r.Errors + r.Hold.SettleErrors
	}
	return r.Errors
}

// settles counts the confirms and cancels sent.
func (r *Report) settles() int64 {
	if r.Hold != nil {
		return r.Hold.Reservations - r.Hold.Abandoned
	}
	return 0
}

// verdict is the report's last word, for people.
func (r *Report) verdict() string {
	switch err := r.Err(); {
	case errors.Is(err, ErrCheckFailed):
		return "✗ FAIL (oversell check)"
	case errors.Is(err, ErrRoomFailed):
		return "✗ FAIL (waiting room: see the lines above marked FAIL)"
	case errors.Is(err, ErrInterrupted) && r.failures() > 0 && !r.AllowErrors:
		return fmt.Sprintf("✗ FAIL, interrupted (Ctrl-C): %d requests failed before the run was stopped", r.failures())
	case errors.Is(err, ErrInterrupted):
		return "interrupted (Ctrl-C): the run stopped early; the check above covers what was sent"
	case errors.Is(err, ErrRequestsFailed):
		return fmt.Sprintf("✗ FAIL (%d requests failed; --allow-errors accepts them)", r.failures())
	case r.failures() > 0:
		return fmt.Sprintf("✓ PASS (%d requests failed, allowed by --allow-errors)", r.failures())
	}
	return "✓ PASS"
}

// statusLabels name the statuses in the report; ERROR is counted under
// Errors instead.
var statusLabels = [...]string{
	wire.StatusSuccess:           "Successful",
	wire.StatusSoldOut:           "Sold Out",
	wire.StatusInsufficientStock: "Insufficient",
	wire.StatusAlreadyPurchased:  "Already Purchased",
	wire.StatusNotStarted:        "Not Started",
	wire.StatusEnded:             "Ended",
	wire.StatusOK:                "",
	wire.StatusPong:              "",
	wire.StatusUnauthorized:      "Unauthorized",
	wire.StatusRateLimited:       "Rate Limited",
	wire.StatusReserved:          "Reserved",
	// Answers to confirms and cancels, which bench does not send.
	wire.StatusPaid:        "",
	wire.StatusExpired:     "",
	wire.StatusReleased:    "",
	wire.StatusAlreadyPaid: "",
	// Answers to waiting-room joins and polls.
	wire.StatusWaiting:  "",
	wire.StatusAdmitted: "",
}

// WriteText prints the report for people.
func (r *Report) WriteText(w io.Writer) error {
	ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 3, 64) + " ms" }
	var b strings.Builder
	fmt.Fprintf(&b, "=== Benchmark Results ===\n")
	fmt.Fprintf(&b, "Target:            %s (product %s, %d connections)\n", r.Target, r.Product, r.Connections)
	fmt.Fprintf(&b, "Duration:          %s\n", r.Duration.Round(time.Millisecond))
	fmt.Fprintf(&b, "Total Requests:    %d\n", r.Total)
	for _, s := range wire.Statuses() {
		// Successful and Sold Out always show; other statuses when seen.
		if label := statusLabels[s]; label != "" && (r.Count(s) > 0 || s == wire.StatusSuccess || s == wire.StatusSoldOut) {
			fmt.Fprintf(&b, "%-19s%d\n", label+":", r.Count(s))
		}
	}
	if r.Units != r.Count(wire.StatusSuccess) {
		fmt.Fprintf(&b, "Units Sold:        %d\n", r.Units)
	}
	fmt.Fprintf(&b, "Errors:            %d\n", r.Errors)
	if r.GaveUp > 0 {
		fmt.Fprintf(&b, "Gave Up:           %d connections (their server refused connections for --timeout)\n", r.GaveUp)
	}
	fmt.Fprintf(&b, "Throughput:        %.0f req/sec\n", r.Throughput())
	if r.Rate > 0 {
		fmt.Fprintf(&b, "Rate:              %s req/sec target, %.0f req/sec achieved\n",
			strconv.FormatFloat(r.Rate, 'f', -1, 64), r.RateAchieved)
	}
	l := r.Latency
	fmt.Fprintf(&b, "Latency:           min %s, mean %s, max %s\n", ms(l.Min), ms(l.Mean), ms(l.Max))
	fmt.Fprintf(&b, "Percentiles:       p50 %s, p90 %s, p95 %s, p99 %s, p99.9 %s\n", ms(l.P50), ms(l.P90), ms(l.P95), ms(l.P99), ms(l.P999))
	if rc := r.RedisCPU; rc != nil {
		fmt.Fprintf(&b, "Redis CPU:         %.3f s", rc.Seconds)
		if r.Units > 0 {
			fmt.Fprintf(&b, ", %.2f µs per unit sold", rc.PerUnit(r.Units))
		}
		if len(rc.Nodes) > 1 {
			nodes := make([]string, len(rc.Nodes))
			for i, n := range rc.Nodes {
				nodes[i] = fmt.Sprintf("%s %.3f s", n.Addr, n.Seconds)
			}
			fmt.Fprintf(&b, " (%s)", strings.Join(nodes, ", "))
		}
		b.WriteString("\n")
	}
	if r.Hold != nil {
		r.Hold.writeText(&b)
	}
	if r.Room != nil {
		r.Room.writeText(&b)
	}
	if ch := r.Check; ch != nil {
		verdict := "✓ PASS"
		if !ch.Pass {
			verdict = "✗ FAIL"
		}
		fmt.Fprintf(&b, "Oversell Check:    %s (successes %d for %d units, units sold %d, new orders %d; stock %d of %d, invariant %s, verify %s, orders stream %s)\n",
			verdict, ch.Orders, ch.Units, ch.Sold, ch.NewOrders, ch.After.Remaining, ch.After.Initial,
			okText(ch.After.Consistent()), okText(ch.Audit.OK()), okText(len(ch.Missing) == 0))
		for _, p := range ch.Audit.Problems {
			fmt.Fprintf(&b, "  ✗ %s\n", p)
		}
		if n := len(ch.Missing); n > 0 {
			fmt.Fprintf(&b, "  ✗ %d SUCCESS answers not in the orders stream, e.g. order %s\n", n, ch.Missing[0])
		}
		if ch.Hold != nil {
			ch.Hold.writeText(&b)
		}
		if ch.OtherUnits > 0 && ch.Hold != nil {
			fmt.Fprintf(&b, "Other Buyers:      %d units paid by other clients during the run (not this bench's)\n", ch.OtherUnits)
		} else if ch.OtherUnits > 0 {
			fmt.Fprintf(&b, "Other Buyers:      %d units, %d orders sold to other clients during the run (not this bench's)\n",
				ch.OtherUnits, max(ch.NewOrders-ch.Orders, 0))
		}
	}
	if len(r.ErrorSet) > 0 {
		fmt.Fprintf(&b, "Error Set:\n")
		writeErrorSet(&b, r.ErrorSet)
	}
	fmt.Fprintf(&b, "Verdict:           %s\n", r.verdict())
	_, err := io.WriteString(w, b.String())
	return err
}

// writeErrorSet writes each error text with its count, by text.
func writeErrorSet(b *strings.Builder, set map[string]int64) {
	msgs := make([]string, 0, len(set))
	for m := range set {
		msgs = append(msgs, m)
	}
	sort.Strings(msgs)
	for _, m := range msgs {
		fmt.Fprintf(b, "  %6d × %s\n", set[m], m)
	}
}

// jsonReport is the report as bench --json prints it. The field names are
// stable; docs/cli.md documents them (flashsale bench).
type jsonReport struct {
	Target       string           `json:"target"`
	Product      string           `json:"product"`
	Config       jsonConfig       `json:"config"`
	Requests     int64            `json:"requests"`
	DurationS    float64          `json:"duration_s"`
	RateAchieved float64          `json:"rate_achieved"`
	Throughput   float64          `json:"throughput"`
	Statuses     map[string]int64 `json:"statuses"`
	Units        int64            `json:"units"`
	Errors       int64            `json:"errors"`
	ErrorSet     map[string]int64 `json:"error_set"`
	LatencyUS    jsonLatency      `json:"latency_us"`
	RedisCPU     *jsonRedisCPU    `json:"redis_cpu,omitempty"`
	Check        *jsonCheck       `json:"oversell_check"`
	InitCleared  *engine.Cleared  `json:"init_cleared,omitempty"` // what --init cleared; absent without --init
	Hold         *jsonHold        `json:"reservations,omitempty"` // a product with a hold: what became of the reservations
	Room         *jsonRoom        `json:"room,omitempty"`         // bench --room: the waiting room's measures
	Interrupted  bool             `json:"interrupted"`
	Pass         bool             `json:"pass"` // the verdict: check passed, no failed request (or --allow-errors), not interrupted
}

type jsonRedisCPU struct {
	Seconds   float64       `json:"seconds"`
	USPerUnit float64       `json:"us_per_unit"`
	Nodes     []jsonNodeCPU `json:"nodes"`
}

type jsonNodeCPU struct {
	Addr    string  `json:"addr"`
	Seconds float64 `json:"seconds"`
}

type jsonConfig struct {
	Connections int     `json:"connections"`
	Pipeline    int     `json:"pipeline"`
	Rate        float64 `json:"rate"`
	DurationS   float64 `json:"duration_s"`
	Requests    int64   `json:"requests"`
	Users       int     `json:"users"`
	Quantity    int64   `json:"quantity"`
}

type jsonLatency struct {
	Count int64   `json:"count"`
	Min   int64   `json:"min"`
	Mean  float64 `json:"mean"`
	P50   int64   `json:"p50"`
	P90   int64   `json:"p90"`
	P95   int64   `json:"p95"`
	P99   int64   `json:"p99"`
	P999  int64   `json:"p99_9"`
	Max   int64   `json:"max"`
}

type jsonCheck struct {
	Pass         bool     `json:"pass"`
	Successes    int64    `json:"successes"`
	SuccessUnits int64    `json:"success_units"`
	UnitsSold    int64    `json:"units_sold"`
	NewOrders    int64    `json:"new_orders"`
	NewBuyers    int64    `json:"new_buyers"` // deprecated: new_orders (it always counted orders)
	Remaining    int64    `json:"remaining"`
	Initial      int64    `json:"initial"`
	InvariantOK  bool     `json:"invariant_ok"`
	VerifyOK     bool     `json:"verify_ok"`
	Problems     []string `json:"problems"`
	OtherUnits   int64    `json:"other_buyers_units"`
	Missing      []string `json:"missing_orders"`
	// Hold is the check of the reservations, for a product with a hold.
	Hold *jsonHoldCheck `json:"reservations,omitempty"`
}

// round3 keeps three decimals, so JSON numbers stay short.
func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

// round6 keeps six decimals (INFO cpu's resolution).
func round6(f float64) float64 { return math.Round(f*1e6) / 1e6 }

// WriteJSON prints the report as one JSON object on one line.
func (r *Report) WriteJSON(w io.Writer) error {
	l := r.Latency
	j := jsonReport{
		Target:  r.Target,
		Product: r.Product,
		Config: jsonConfig{
			Connections: r.Connections, Pipeline: r.Pipeline, Rate: r.Rate,
			DurationS: r.DurationLimit.Seconds(), Requests: r.RequestLimit,
			Users: r.Users, Quantity: r.Quantity,
		},
		Requests:     r.Total,
		DurationS:    round3(r.Duration.Seconds()),
		RateAchieved: round3(r.RateAchieved),
		Throughput:   round3(r.Throughput()),
		Statuses:     map[string]int64{},
		Units:        r.Units,
		Errors:       r.Errors,
		ErrorSet:     map[string]int64{},
		InitCleared:  r.Cleared,
		LatencyUS: jsonLatency{
			Count: l.Count, Min: l.Min.Microseconds(), Mean: round3(float64(l.Mean) / 1e3),
			P50: l.P50.Microseconds(), P90: l.P90.Microseconds(), P95: l.P95.Microseconds(),
			P99: l.P99.Microseconds(), P999: l.P999.Microseconds(), Max: l.Max.Microseconds(),
		},
	}
	if rc := r.RedisCPU; rc != nil {
		j.RedisCPU = &jsonRedisCPU{Seconds: round6(rc.Seconds), USPerUnit: round3(rc.PerUnit(r.Units))}
		for _, n := range rc.Nodes {
			j.RedisCPU.Nodes = append(j.RedisCPU.Nodes, jsonNodeCPU{Addr: n.Addr, Seconds: round6(n.Seconds)})
		}
	}
	// Every purchase status is present, seen or not; ERROR counts under errors.
	for _, s := range wire.Statuses() {
		if statusLabels[s] != "" || (s != wire.StatusError && r.Count(s) > 0) {
			j.Statuses[s.String()] = r.Count(s)
		}
	}
	for m, n := range r.ErrorSet {
		j.ErrorSet[m] = n
	}
	if ch := r.Check; ch != nil {
		j.Check = &jsonCheck{
			Pass: ch.Pass, Successes: ch.Orders, SuccessUnits: ch.Units, UnitsSold: ch.Sold, NewOrders: ch.NewOrders, NewBuyers: ch.NewOrders,
			Remaining: ch.After.Remaining, Initial: ch.After.Initial,
			InvariantOK: ch.After.Consistent(), VerifyOK: ch.Audit.OK(),
			Problems:   append([]string{}, ch.Audit.Problems...),
			OtherUnits: ch.OtherUnits, Missing: append([]string{}, ch.Missing...),
			Hold: ch.Hold.json(),
		}
	}
	j.Hold = r.Hold.json()
	j.Room = r.Room.json()
	j.Interrupted, j.Pass = r.Interrupted, r.Err() == nil
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(j)
}
