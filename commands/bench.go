package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/transport"
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
			&cli.BoolFlag{Name: "json", Usage: "print the report as one JSON object (no progress bar)"},
		}, loadFlags(), redisFlags(), clientTLSFlags(), userSecretFlags()),
		Action: runBench,
	}
}

// maxPipeline bounds -P: each slot costs a little memory per connection,
// and the server stops reading a connection past its --max-in-flight.
const maxPipeline = 10000

// loadFlags describe a load; bench and demo share them.
func loadFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "requests", Aliases: []string{"n"}, Usage: "purchase attempts in all (default unlimited when only --duration is given)", Value: 10000},
		&cli.IntFlag{Name: "connections", Aliases: []string{"c"}, Usage: "concurrent connections", Value: 100},
		&cli.IntFlag{Name: "pipeline", Aliases: []string{"P"}, Usage: "`N` requests in flight per connection", Value: 1},
		&cli.Float64Flag{Name: "rate", Usage: "open loop: send `R` requests per second in all, latency counted from when each was due (0 = closed loop)"},
		&cli.DurationFlag{Name: "duration", Usage: "send for `D` (and stop at -n if it is also given)"},
		&cli.StringFlag{Name: "product", Usage: "product `ID` to buy", Value: "iphone15"},
		&cli.Int64Flag{Name: "init", Usage: "(re)initialise the product with `N` units first, so runs are repeatable"},
		&cli.StringFlag{Name: "user-prefix", Usage: "user ids are PREFIX_0, PREFIX_1, …", Value: "user"},
		&cli.IntFlag{Name: "users", Usage: "draw user ids from `U` customers (0 = a new customer per request)"},
		&cli.Int64Flag{Name: "quantity", Usage: "units per purchase", Value: 1},
		&cli.DurationFlag{Name: "timeout", Usage: "bound on one request's round trip (a connection with no answer for this long fails)", Value: 5 * time.Second},
	}
}

// loadConfig is one load run.
type loadConfig struct {
	Addr       string
	Product    string
	Requests   int // in all; 0 = unlimited (only with Duration)
	Conns      int
	Pipeline   int           // requests in flight per connection
	Rate       float64       // open loop: requests per second in all; 0 = closed loop
	Duration   time.Duration // send for this long; 0 = until Requests
	UserPrefix string
	Users      int
	Quantity   int64
	Timeout    time.Duration
	// Dial opens one connection to Addr: TCP, or TLS with bench --tls.
	Dial func(ctx context.Context) (net.Conn, error)
	// Tokens, when set, sign each purchase (bench --user-secret).
	Tokens *userTokens
	// Progress, when set, shows a progress line there while the load runs.
	Progress io.Writer
}

func loadConfigFrom(c *cli.Context, addr string) (loadConfig, error) {
	cfg := loadConfig{
		Addr:       addr,
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
	durationOnly := c.IsSet("duration") && !c.IsSet("requests")
	if durationOnly {
		cfg.Requests = 0
	}
	switch {
	case cfg.Requests < 1 && !durationOnly:
		return cfg, usageErrorf(c, "-n must be at least 1")
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
	}
	if cfg.Requests > 0 {
		cfg.Conns = min(cfg.Conns, cfg.Requests)
	}
	tlsConfig, err := clientTLSConfig(c)
	if err != nil {
		return cfg, err
	}
	cfg.Dial = dialFunc(cfg.Addr, cfg.Timeout, tlsConfig)
	return cfg, nil
}

// describe says how much load cfg is, for people: "10000 requests",
// "requests for 10s", "2000 req/s for 10s".
func (cfg loadConfig) describe() string {
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
	cfg, err := loadConfigFrom(c, c.String("addr"))
	if err != nil {
		return err
	}
	if signer, err := signerFrom(c); err != nil {
		return err
	} else if signer != nil {
		cfg.Tokens = newUserTokens(signer, cfg)
	}
	st, err := openStoreFlags(c, zerolog.Nop(), redisSetup{PoolConfig: transport.PoolConfig{MaxActive: 2}}, false)
	if err != nil {
		return err
	}
	defer st.close()
	return benchAndCheck(c, st.Engine, cfg)
}

// benchAndCheck initialises the product if asked, runs the load, checks for
// oversell and prints the report: text, or JSON with bench --json.
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
	asJSON := c.Bool("json")
	if !asJSON && isTerminal(c.App.ErrWriter) {
		cfg.Progress = c.App.ErrWriter
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
	if asJSON {
		err = rep.WriteJSON(c.App.Writer)
	} else {
		err = rep.WriteText(c.App.Writer)
	}
	if err != nil {
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
	// The load asked for.
	Pipeline      int           // -P
	Rate          float64       // --rate; 0 = closed loop
	RequestLimit  int64         // -n; 0 = unlimited
	DurationLimit time.Duration // --duration; 0 = none
	Users         int
	Quantity      int64

	Duration     time.Duration
	Total        int64                   // requests sent
	RateAchieved float64                 // requests written per second, first write to last
	Statuses     map[engine.Status]int64 // answers by status
	Units        int64                   // units in SUCCESS answers
	Errors       int64                   // ERROR answers and requests with no answer
	Latency      Latencies
	ErrorSet     map[string]int64 // error text → count
	Check        *Check
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
	if r.Rate > 0 {
		fmt.Fprintf(&b, "Rate:              %s req/sec target, %.0f req/sec achieved\n",
			strconv.FormatFloat(r.Rate, 'f', -1, 64), r.RateAchieved)
	}
	l := r.Latency
	fmt.Fprintf(&b, "Latency:           min %s, mean %s, max %s\n", ms(l.Min), ms(l.Mean), ms(l.Max))
	fmt.Fprintf(&b, "Percentiles:       p50 %s, p90 %s, p95 %s, p99 %s, p99.9 %s\n", ms(l.P50), ms(l.P90), ms(l.P95), ms(l.P99), ms(l.P999))
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

// jsonReport is the report as bench --json prints it. The field names are
// stable; README.md documents them.
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
	Check        *jsonCheck       `json:"oversell_check"`
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
	NewBuyers    int64    `json:"new_buyers"`
	Remaining    int64    `json:"remaining"`
	Initial      int64    `json:"initial"`
	InvariantOK  bool     `json:"invariant_ok"`
	VerifyOK     bool     `json:"verify_ok"`
	Problems     []string `json:"problems"`
}

// round3 keeps three decimals, so JSON numbers stay short.
func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

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
		LatencyUS: jsonLatency{
			Count: l.Count, Min: l.Min.Microseconds(), Mean: round3(float64(l.Mean) / 1e3),
			P50: l.P50.Microseconds(), P90: l.P90.Microseconds(), P95: l.P95.Microseconds(),
			P99: l.P99.Microseconds(), P999: l.P999.Microseconds(), Max: l.Max.Microseconds(),
		},
	}
	// Every purchase status is present, seen or not; ERROR counts under errors.
	for _, s := range engine.Statuses() {
		if statusLabels[s] != "" || (s != engine.StatusError && r.Count(s) > 0) {
			j.Statuses[s.String()] = r.Count(s)
		}
	}
	for m, n := range r.ErrorSet {
		j.ErrorSet[m] = n
	}
	if ch := r.Check; ch != nil {
		j.Check = &jsonCheck{
			Pass: ch.Pass, Successes: ch.Orders, SuccessUnits: ch.Units, UnitsSold: ch.Sold, NewBuyers: ch.NewBuyers,
			Remaining: ch.After.Remaining, Initial: ch.After.Initial,
			InvariantOK: ch.After.Consistent(), VerifyOK: ch.Audit.OK(),
			Problems: append([]string{}, ch.Audit.Problems...),
		}
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(j)
}
