package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/wire"
)

// ErrCheckFailed is returned when the oversell check fails.
var ErrCheckFailed = errors.New("oversell check FAILED")

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "drive a running server with purchases, report latency, and check for oversell against Redis",
		Flags: concat([]cli.Flag{
			&cli.StringFlag{
				Name:    "addr",
				Usage:   "flashsale server `address`",
				EnvVars: []string{"FLASHSALE_ADDR"},
				Value:   "localhost:8080",
			},
		}, loadFlags(), redisFlags(), clientTLSFlags(), userSecretFlags()),
		Action: runBench,
	}
}

// loadFlags describe a load; bench and demo share them.
func loadFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "requests", Aliases: []string{"n"}, Usage: "purchase attempts in all", Value: 10000},
		&cli.IntFlag{Name: "connections", Aliases: []string{"c"}, Usage: "concurrent connections", Value: 100},
		&cli.StringFlag{Name: "product", Usage: "product `ID` to buy", Value: "iphone15"},
		&cli.Int64Flag{Name: "init", Usage: "(re)initialise the product with `N` units first, so runs are repeatable"},
		&cli.StringFlag{Name: "user-prefix", Usage: "user ids are PREFIX_0, PREFIX_1, …", Value: "user"},
		&cli.IntFlag{Name: "users", Usage: "draw user ids from `U` customers (0 = a new customer per request)"},
		&cli.Int64Flag{Name: "quantity", Usage: "units per purchase", Value: 1},
		&cli.DurationFlag{Name: "timeout", Usage: "bound on one request's round trip", Value: 5 * time.Second},
	}
}

// loadConfig is one load run.
type loadConfig struct {
	Addr       string
	Product    string
	Requests   int
	Conns      int
	UserPrefix string
	Users      int
	Quantity   int64
	Timeout    time.Duration
	// Dial opens one connection to Addr: TCP, or TLS with bench --tls.
	Dial func(ctx context.Context) (net.Conn, error)
	// Tokens, when set, sign each purchase (bench --user-secret).
	Tokens *userTokens
}

func loadConfigFrom(c *cli.Context, addr string) (loadConfig, error) {
	cfg := loadConfig{
		Addr:       addr,
		Product:    c.String("product"),
		Requests:   c.Int("requests"),
		Conns:      c.Int("connections"),
		UserPrefix: c.String("user-prefix"),
		Users:      c.Int("users"),
		Quantity:   c.Int64("quantity"),
		Timeout:    c.Duration("timeout"),
	}
	switch {
	case cfg.Requests < 1:
		return cfg, usageErrorf(c, "-n must be at least 1")
	case cfg.Conns < 1:
		return cfg, usageErrorf(c, "-c must be at least 1")
	case cfg.Users < 0:
		return cfg, usageErrorf(c, "--users must be 0 (unique users) or more")
	case engine.ValidateQuantity(cfg.Quantity) != nil:
		return cfg, usageErrorf(c, "--quantity: %v", engine.ValidateQuantity(cfg.Quantity))
	case cfg.Timeout <= 0:
		return cfg, usageErrorf(c, "--timeout must be positive")
	case c.IsSet("init") && c.Int64("init") < 0:
		return cfg, usageErrorf(c, "--init must be zero or more units")
	}
	cfg.Conns = min(cfg.Conns, cfg.Requests)
	tlsConfig, err := clientTLSConfig(c)
	if err != nil {
		return cfg, err
	}
	cfg.Dial = dialFunc(cfg.Addr, cfg.Timeout, tlsConfig)
	return cfg, nil
}

func runBench(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageErrorf(c, "bench takes no arguments, got %q", c.Args().Slice())
	}
	cfg, err := loadConfigFrom(c, c.String("addr"))
	if err != nil {
		return err
	}
	if signer, err := signerFrom(c); err != nil {
		return err
	} else if signer != nil {
		cfg.Tokens = newUserTokens(signer, cfg)
	}
	st, err := openStoreFlags(c, zerolog.Nop(), redisSetup{PoolConfig: engine.PoolConfig{MaxActive: 2}}, false)
	if err != nil {
		return err
	}
	defer st.close()
	return benchAndCheck(c, st.Engine, cfg)
}

// benchAndCheck initialises the product if asked, runs the load, checks for
// oversell and prints the report.
func benchAndCheck(c *cli.Context, eng *engine.Engine, cfg loadConfig) error {
	ctx := c.Context
	if c.IsSet("init") {
		if err := eng.Init(ctx, cfg.Product, c.Int64("init")); err != nil {
			return err
		}
	}
	before, err := eng.Status(ctx, cfg.Product)
	if errors.Is(err, engine.ErrUnknownProduct) {
		return fmt.Errorf("%w (create it with --init N or 'flashsale admin init %s N')", err, cfg.Product)
	}
	if err != nil {
		return err
	}
	rep := runLoad(ctx, cfg)
	// The check runs even after Ctrl-C: it is the point of the run.
	checkCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	after, err := eng.Status(checkCtx, cfg.Product)
	if err != nil {
		return fmt.Errorf("oversell check: %w", err)
	}
	audit, err := eng.Verify(checkCtx, cfg.Product)
	if err != nil {
		return fmt.Errorf("oversell check: %w", err)
	}
	rep.Check = newCheck(rep, before, after, audit)
	if err := rep.WriteText(c.App.Writer); err != nil {
		return err
	}
	if !rep.Check.Pass {
		return ErrCheckFailed
	}
	return ctx.Err()
}

// Check is the oversell check: what clients were told against what Redis
// recorded during the run, and the product's books (admin verify).
type Check struct {
	Orders    int64                // SUCCESS answers the clients received
	Units     int64                // units in those answers
	Sold      int64                // units the product sold during the run
	NewBuyers int64                // buyers (orders) recorded during the run
	After     engine.ProductStatus // the product at the end
	Audit     engine.Audit         // admin verify at the end
	Pass      bool
}

func newCheck(rep *Report, before, after engine.ProductStatus, audit engine.Audit) *Check {
	ch := &Check{
		Orders:    rep.Count(engine.StatusSuccess),
		Units:     rep.Units,
		Sold:      after.Sold() - before.Sold(),
		NewBuyers: after.Buyers - before.Buyers,
		After:     after,
		Audit:     audit,
	}
	ch.Pass = after.Consistent() && audit.OK() && ch.Units == ch.Sold && ch.Orders == ch.NewBuyers
	return ch
}

// Report is the outcome of a load run.
type Report struct {
	Target      string
	Product     string
	Connections int
	Duration    time.Duration
	Total       int64                   // requests sent
	Statuses    map[engine.Status]int64 // answers by status
	Units       int64                   // units in SUCCESS answers
	Errors      int64                   // ERROR answers and requests with no answer
	Latency     Latencies
	ErrorSet    map[string]int64 // error text → count
	Check       *Check
}

// Latencies summarises the round trips that got an answer.
type Latencies struct {
	Min, Mean, P50, P90, P95, P99, Max time.Duration
}

// Count is how many answers had status s.
func (r *Report) Count(s engine.Status) int64 { return r.Statuses[s] }

// Throughput is requests per second.
func (r *Report) Throughput() float64 {
	if r.Duration <= 0 {
		return 0
	}
	return float64(r.Total) / r.Duration.Seconds()
}

// runLoad sends cfg.Requests purchases over cfg.Conns connections, each
// waiting for its answer before sending the next. It stops early when ctx
// is done.
func runLoad(ctx context.Context, cfg loadConfig) *Report {
	var next atomic.Int64
	results := make([]workerResult, cfg.Conns)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i].run(ctx, cfg, &next)
		}()
	}
	wg.Wait()
	rep := &Report{
		Target:      cfg.Addr,
		Product:     cfg.Product,
		Connections: cfg.Conns,
		Duration:    time.Since(start),
		Statuses:    map[engine.Status]int64{},
		ErrorSet:    map[string]int64{},
	}
	var all []time.Duration
	for i := range results {
		r := &results[i]
		rep.Total += r.total
		rep.Units += r.units
		for i, n := range r.statuses {
			if n > 0 {
				rep.Statuses[engine.Status(i)] += n
			}
		}
		for msg, n := range r.errors {
			rep.Errors += n
			rep.ErrorSet[msg] += n
		}
		all = append(all, r.latencies...)
	}
	rep.Latency = summarise(all)
	return rep
}

func summarise(lat []time.Duration) Latencies {
	if len(lat) == 0 {
		return Latencies{}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	q := func(p float64) time.Duration {
		i := int(p*float64(len(lat))+0.999999) - 1
		return lat[min(max(i, 0), len(lat)-1)]
	}
	return Latencies{
		Min: lat[0], Mean: sum / time.Duration(len(lat)),
		P50: q(0.50), P90: q(0.90), P95: q(0.95), P99: q(0.99),
		Max: lat[len(lat)-1],
	}
}

// workerResult is what one connection saw.
type workerResult struct {
	total, units int64
	statuses     [len(statusLabels)]int64
	errors       map[string]int64
	latencies    []time.Duration
}

func (r *workerResult) fail(msg string) {
	if r.errors == nil {
		r.errors = map[string]int64{}
	}
	r.errors[msg]++
}

func (r *workerResult) run(ctx context.Context, cfg loadConfig, next *atomic.Int64) {
	var (
		nc      net.Conn
		rd      *wire.Reader
		frame   []byte
		payload []byte
		resp    wire.Response
	)
	defer func() {
		if nc != nil {
			nc.Close()
		}
	}()
	req := wire.PurchaseRequest{ProductID: cfg.Product}
	if cfg.Quantity != 1 {
		req.Quantity = cfg.Quantity
	}
	for ctx.Err() == nil {
		i := next.Add(1) - 1
		if i >= int64(cfg.Requests) {
			return
		}
		r.total++
		if nc == nil {
			var err error
			if nc, err = cfg.Dial(ctx); err != nil {
				r.fail(errText(err))
				nc = nil
				continue
			}
			rd = wire.NewReader(nc, wire.DefaultMaxPayload)
		}
		user := i
		if cfg.Users > 0 {
			user = i % int64(cfg.Users)
		}
		req.UserID = cfg.UserPrefix + "_" + strconv.FormatInt(user, 10)
		cfg.Tokens.sign(&req, user)
		payload = wire.AppendPurchase(payload[:0], req)
		frame = wire.AppendFrame(frame[:0], wire.TypePurchase, payload)
		start := time.Now()
		nc.SetDeadline(start.Add(cfg.Timeout))
		_, err := nc.Write(frame)
		var f wire.Frame
		if err == nil {
			f, err = rd.Next()
		}
		if err == nil && f.Type != wire.TypePurchaseResponse {
			err = fmt.Errorf("answer of type %s", f.Type)
		}
		if err == nil {
			err = wire.DecodeResponse(f.Payload, &resp)
		}
		if err != nil {
			r.fail(errText(err))
			nc.Close()
			nc = nil
			continue
		}
		r.latencies = append(r.latencies, time.Since(start))
		s, known := engine.ParseStatus(resp.Status)
		switch {
		case !known || s == engine.StatusError:
			r.fail(strings.TrimSpace(resp.Status + " " + resp.Code + ": " + resp.Error))
			continue
		case s == engine.StatusSuccess:
			r.units += resp.Quantity
		}
		r.statuses[s]++
	}
}

// statusLabels name the statuses in the report; ERROR is counted under
// Errors instead.
var statusLabels = [...]string{
	engine.StatusSuccess:           "Successful",
	engine.StatusSoldOut:           "Sold Out",
	engine.StatusInsufficientStock: "Insufficient",
	engine.StatusAlreadyPurchased:  "Already Purchased",
	engine.StatusNotStarted:        "Not Started",
	engine.StatusEnded:             "Ended",
	engine.StatusOK:                "",
	engine.StatusPong:              "",
	engine.StatusUnauthorized:      "Unauthorized",
	engine.StatusRateLimited:       "Rate Limited",
}

// errText names a network error without the addresses that make every
// occurrence unique.
func errText(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Op + ": " + op.Err.Error()
	}
	return err.Error()
}

// WriteText prints the report for people.
func (r *Report) WriteText(w io.Writer) error {
	ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 3, 64) + " ms" }
	var b strings.Builder
	fmt.Fprintf(&b, "=== Benchmark Results ===\n")
	fmt.Fprintf(&b, "Target:            %s (product %s, %d connections)\n", r.Target, r.Product, r.Connections)
	fmt.Fprintf(&b, "Duration:          %s\n", r.Duration.Round(time.Millisecond))
	fmt.Fprintf(&b, "Total Requests:    %d\n", r.Total)
	for _, s := range engine.Statuses() {
		// Successful and Sold Out always show; other statuses when seen.
		if label := statusLabels[s]; label != "" && (r.Count(s) > 0 || s == engine.StatusSuccess || s == engine.StatusSoldOut) {
			fmt.Fprintf(&b, "%-19s%d\n", label+":", r.Count(s))
		}
	}
	if r.Units != r.Count(engine.StatusSuccess) {
		fmt.Fprintf(&b, "Units Sold:        %d\n", r.Units)
	}
	fmt.Fprintf(&b, "Errors:            %d\n", r.Errors)
	fmt.Fprintf(&b, "Throughput:        %.0f req/sec\n", r.Throughput())
	l := r.Latency
	fmt.Fprintf(&b, "Latency:           min %s, mean %s, max %s\n", ms(l.Min), ms(l.Mean), ms(l.Max))
	fmt.Fprintf(&b, "Percentiles:       p50 %s, p90 %s, p95 %s, p99 %s\n", ms(l.P50), ms(l.P90), ms(l.P95), ms(l.P99))
	if ch := r.Check; ch != nil {
		verdict := "✓ PASS"
		if !ch.Pass {
			verdict = "✗ FAIL"
		}
		fmt.Fprintf(&b, "Oversell Check:    %s (successes %d for %d units, units sold %d, new buyers %d; stock %d of %d, invariant %s, verify %s)\n",
			verdict, ch.Orders, ch.Units, ch.Sold, ch.NewBuyers, ch.After.Remaining, ch.After.Initial,
			okText(ch.After.Consistent()), okText(ch.Audit.OK()))
		for _, p := range ch.Audit.Problems {
			fmt.Fprintf(&b, "  ✗ %s\n", p)
		}
	}
	if len(r.ErrorSet) > 0 {
		fmt.Fprintf(&b, "Error Set:\n")
		msgs := make([]string, 0, len(r.ErrorSet))
		for m := range r.ErrorSet {
			msgs = append(msgs, m)
		}
		sort.Strings(msgs)
		for _, m := range msgs {
			fmt.Fprintf(&b, "  %6d × %s\n", r.ErrorSet[m], m)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
