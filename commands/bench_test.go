package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/flashsale/flashsale/client"
	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/loadgen"
	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/wire"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// golden compares got with testdata/<name>, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("..", "testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./commands -run %s -update)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (rerun with -update if intended)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestReportText(t *testing.T) {
	rep := &Report{
		Target: "localhost:8080", Product: "iphone15", Connections: 100,
		Pipeline: 1, RequestLimit: 10000, Quantity: 1,
	}
	rep.Result = loadgen.Result{
		Duration: 1234567 * time.Microsecond,
		Total:    10000,
		Statuses: map[wire.Status]int64{wire.StatusSuccess: 100, wire.StatusSoldOut: 9880, wire.StatusAlreadyPurchased: 10},
		Units:    100,
		Errors:   10,
		Latency: loadgen.Latencies{
			Count: 9997,
			Min:   41 * time.Microsecond, Mean: 120 * time.Microsecond, P50: 100 * time.Microsecond,
			P90: 200 * time.Microsecond, P95: 250 * time.Microsecond, P99: 800 * time.Microsecond,
			P999: 1500 * time.Microsecond, Max: 3200 * time.Microsecond,
		},
		ErrorSet: map[string]int64{"read: connection reset by peer": 7, "ERROR UNAVAILABLE: redis unavailable": 3},
	}
	before := engine.ProductStatus{Initial: 100, Remaining: 100}
	after := engine.ProductStatus{Initial: 100, Remaining: 0, Held: 100, Buyers: 100}
	audit := engine.Audit{Orders: 100, Sold: 100, Customers: 100}
	for _, tc := range []struct {
		name  string
		units int64
		audit engine.Audit
		// open loop: --rate 8000 --duration 1.25s -P 16
		rate bool
		// the run's errors are allowed; it was interrupted; order ids not in the stream
		allowErrors, interrupted bool
		missing                  []string
	}{
		{name: "pass", units: 100, audit: audit, allowErrors: true},
		{name: "errors", units: 100, audit: audit},
		{name: "fail", units: 101, audit: engine.Audit{Orders: 100, Sold: 100, Customers: 99, Problems: []string{"customer u1 holds 2 units, above the limit of 1"}}},
		{name: "missing", units: 100, audit: audit, allowErrors: true, missing: []string{"1764108000123-0"}},
		{name: "others", units: 60, audit: audit, allowErrors: true},
		{name: "interrupted", units: 100, audit: audit, interrupted: true},
		{name: "rate", units: 100, audit: audit, rate: true, allowErrors: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := *rep
			r.Units, r.AllowErrors, r.Interrupted = tc.units, tc.allowErrors, tc.interrupted
			if tc.units != 100 {
				r.Statuses = map[wire.Status]int64{wire.StatusSuccess: tc.units, wire.StatusSoldOut: 9980 - tc.units, wire.StatusAlreadyPurchased: 10}
			}
			if tc.rate {
				r.Pipeline, r.Rate, r.RequestLimit, r.DurationLimit, r.RateAchieved = 16, 8000, 0, 1250*time.Millisecond, 7998.4
			}
			r.Check = newCheck(&r, before, after, tc.audit, tc.missing)
			var b bytes.Buffer
			if err := r.WriteText(&b); err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("bench", "report-"+tc.name+".golden"), b.Bytes())
			b.Reset()
			if err := r.WriteJSON(&b); err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("bench", "report-"+tc.name+".json.golden"), b.Bytes())
		})
	}
}

func TestStatusLabelsCoverEveryStatus(t *testing.T) {
	if len(statusLabels) != len(wire.Statuses()) {
		t.Fatalf("statusLabels has %d entries for %d statuses", len(statusLabels), len(wire.Statuses()))
	}
}

func TestCheck(t *testing.T) {
	before := engine.ProductStatus{Initial: 100, Remaining: 60, Held: 40, Buyers: 40}
	good := engine.Audit{}
	cases := []struct {
		name          string
		orders, units int64
		after         engine.ProductStatus
		audit         engine.Audit
		pass          bool
	}{
		{"all accounted", 60, 60, engine.ProductStatus{Initial: 100, Remaining: 0, Held: 100, Buyers: 100}, good, true},
		{"quantities", 30, 60, engine.ProductStatus{Initial: 100, Remaining: 0, Held: 100, Buyers: 70}, good, true},
		{"nothing sold", 0, 0, before, good, true},
		{"another buyer's sale", 59, 59, engine.ProductStatus{Initial: 100, Remaining: 0, Held: 100, Buyers: 100}, good, true},
		{"told of a sale not recorded", 61, 61, engine.ProductStatus{Initial: 100, Remaining: 0, Held: 100, Buyers: 100}, good, false},
		{"oversold", 61, 61, engine.ProductStatus{Initial: 100, Remaining: -1, Held: 101, Buyers: 101}, good, false},
		{"buyer missing", 60, 60, engine.ProductStatus{Initial: 100, Remaining: 0, Held: 100, Buyers: 99}, good, false},
		{"books do not balance", 60, 60, engine.ProductStatus{Initial: 100, Remaining: 0, Held: 100, Buyers: 100}, engine.Audit{Problems: []string{"x"}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rep := &Report{Result: loadgen.Result{Statuses: map[wire.Status]int64{wire.StatusSuccess: tc.orders}, Units: tc.units}}
			if got := newCheck(rep, before, tc.after, tc.audit, nil).Pass; got != tc.pass {
				t.Errorf("Pass = %v, want %v", got, tc.pass)
			}
		})
	}
}

// TestBench runs the real bench against the real server and Redis.
func TestBench(t *testing.T) {
	raddr := redistest.Addr(t)
	addr := startServe(t, raddr)
	product := redistest.Product(t)
	out := mustRun(t, "bench", "--addr", addr, "--redis-addr", raddr, "--product", product,
		"-n", "2000", "-c", "50", "--init", "100")
	for _, want := range []string{"Total Requests:    2000\n", "Successful:        100\n", "Sold Out:          1900\n",
		"Errors:            0\n", "Oversell Check:    ✓ PASS"} {
		if !strings.Contains(out, want) {
			t.Errorf("bench output lacks %q:\n%s", want, out)
		}
	}
	// Without --init it goes on from where the product is, and still checks.
	out = mustRun(t, "bench", "--addr", addr, "--redis-addr", raddr, "--product", product, "-n", "10", "-c", "2")
	if !strings.Contains(out, "Sold Out:          10\n") || !strings.Contains(out, "✓ PASS") {
		t.Errorf("second bench:\n%s", out)
	}
}

// TestBenchPipelined runs -P 16 against the real server: the counts are
// exact and the oversell check passes.
func TestBenchPipelined(t *testing.T) {
	raddr := redistest.Addr(t)
	addr := startServe(t, raddr)
	product := redistest.Product(t)
	out := mustRun(t, "bench", "--addr", addr, "--redis-addr", raddr, "--product", product,
		"-n", "5000", "-c", "8", "-P", "16", "--init", "100")
	for _, want := range []string{"Total Requests:    5000\n", "Successful:        100\n", "Sold Out:          4900\n",
		"Errors:            0\n", "p99.9 ", "Oversell Check:    ✓ PASS"} {
		if !strings.Contains(out, want) {
			t.Errorf("bench -P 16 output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Rate:") {
		t.Errorf("a closed loop reports a Rate line:\n%s", out)
	}
	// Per-user limits, pipelined: each of 50 customers buys once.
	out = mustRun(t, "bench", "--addr", addr, "--redis-addr", raddr, "--product", product,
		"-n", "3000", "-c", "4", "--pipeline", "32", "--users", "50", "--init", "100")
	for _, want := range []string{"Total Requests:    3000\n", "Successful:        50\n", "Already Purchased: 2950\n",
		"Errors:            0\n", "Oversell Check:    ✓ PASS"} {
		if !strings.Contains(out, want) {
			t.Errorf("bench --users 50 -P 32 output lacks %q:\n%s", want, out)
		}
	}
}

// benchJSON is what the tests read of bench --json.
type benchJSON struct {
	Target string `json:"target"`
	Config struct {
		Connections int     `json:"connections"`
		Pipeline    int     `json:"pipeline"`
		Rate        float64 `json:"rate"`
		DurationS   float64 `json:"duration_s"`
		Requests    int64   `json:"requests"`
	} `json:"config"`
	Requests     int64            `json:"requests"`
	DurationS    float64          `json:"duration_s"`
	RateAchieved float64          `json:"rate_achieved"`
	Throughput   float64          `json:"throughput"`
	Statuses     map[string]int64 `json:"statuses"`
	Units        int64            `json:"units"`
	Errors       int64            `json:"errors"`
	ErrorSet     map[string]int64 `json:"error_set"`
	LatencyUS    map[string]float64
	Check        *struct {
		Pass     bool     `json:"pass"`
		Problems []string `json:"problems"`
	} `json:"oversell_check"`
}

func parseBenchJSON(t *testing.T, out string) (benchJSON, map[string]any) {
	t.Helper()
	var rep benchJSON
	var raw map[string]any
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("bench --json is not one JSON object: %v\n%s", err, out)
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	lat, _ := raw["latency_us"].(map[string]any)
	rep.LatencyUS = map[string]float64{}
	for k, v := range lat {
		rep.LatencyUS[k], _ = v.(float64)
	}
	return rep, raw
}

// TestBenchRate runs an open loop: about rate × duration requests, however
// fast the server is, and a JSON report.
func TestBenchRate(t *testing.T) {
	raddr := redistest.Addr(t)
	addr := startServe(t, raddr)
	product := redistest.Product(t)
	start := time.Now()
	out := mustRun(t, "bench", "--addr", addr, "--redis-addr", raddr, "--product", product,
		"--rate", "2000", "--duration", "1s", "-c", "4", "-P", "8", "--init", "100", "--json")
	elapsed := time.Since(start)
	rep, raw := parseBenchJSON(t, out)
	if rep.Requests < 1000 || rep.Requests > 3000 {
		t.Errorf("--rate 2000 --duration 1s sent %d requests, want about 2000", rep.Requests)
	}
	if elapsed > 30*time.Second {
		t.Errorf("the run took %s", elapsed)
	}
	if c := rep.Config; c.Connections != 4 || c.Pipeline != 8 || c.Rate != 2000 || c.DurationS != 1 || c.Requests != 0 {
		t.Errorf("config = %+v", c)
	}
	if rep.Check == nil || !rep.Check.Pass || rep.Check.Problems == nil {
		t.Errorf("oversell check: %s", out)
	}
	var answered int64
	for _, n := range rep.Statuses {
		answered += n
	}
	if answered+rep.Errors != rep.Requests || rep.Statuses["SUCCESS"] != rep.Units || rep.Statuses["SUCCESS"] > 100 {
		t.Errorf("statuses %v, errors %d, units %d for %d requests", rep.Statuses, rep.Errors, rep.Units, rep.Requests)
	}
	if rep.RateAchieved <= 0 || rep.Throughput <= 0 || rep.DurationS < 0.9 {
		t.Errorf("rate_achieved %v, throughput %v, duration_s %v", rep.RateAchieved, rep.Throughput, rep.DurationS)
	}
	for _, k := range []string{"count", "min", "mean", "p50", "p90", "p95", "p99", "p99_9", "max"} {
		if _, ok := rep.LatencyUS[k]; !ok {
			t.Errorf("latency_us lacks %q", k)
		}
	}
	if l := rep.LatencyUS; l["count"] != float64(answered) || l["min"] > l["p50"] || l["p50"] > l["p99_9"] || l["p99_9"] > l["max"] {
		t.Errorf("latency_us = %v for %d answers", l, answered)
	}
	for _, k := range []string{"target", "product", "config", "requests", "duration_s", "rate_achieved", "throughput",
		"statuses", "units", "errors", "error_set", "latency_us", "oversell_check"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("bench --json lacks %q", k)
		}
	}
}

// TestBenchDuration: --duration alone runs a closed loop for that long and
// stops by itself; with -n too, whichever comes first.
func TestBenchDuration(t *testing.T) {
	raddr := redistest.Addr(t)
	addr := startServe(t, raddr)
	product := redistest.Product(t)
	start := time.Now()
	out := mustRun(t, "bench", "--addr", addr, "--redis-addr", raddr, "--product", product,
		"--duration", "300ms", "-c", "4", "-P", "4", "--init", "10", "--json")
	if elapsed := time.Since(start); elapsed > 30*time.Second {
		t.Errorf("--duration 300ms took %s", elapsed)
	}
	rep, _ := parseBenchJSON(t, out)
	if rep.Requests < 10 || rep.Statuses["SUCCESS"] != 10 || rep.Errors != 0 || rep.Check == nil || !rep.Check.Pass {
		t.Errorf("--duration 300ms: %s", out)
	}
	out = mustRun(t, "bench", "--addr", addr, "--redis-addr", raddr, "--product", product,
		"--duration", "1m", "-n", "50", "-c", "4", "-P", "4", "--init", "10")
	if !strings.Contains(out, "Total Requests:    50\n") || !strings.Contains(out, "Successful:        10\n") {
		t.Errorf("-n 50 --duration 1m:\n%s", out)
	}
	// -n 0 is unlimited with --duration, as an open-loop run is given.
	out = mustRun(t, "bench", "--addr", addr, "--redis-addr", raddr, "--product", product,
		"--duration", "300ms", "--rate", "200", "-n", "0", "-c", "2", "--init", "10", "--json")
	if rep, _ := parseBenchJSON(t, out); rep.Requests < 10 || rep.Statuses["SUCCESS"] != 10 || rep.Errors != 0 {
		t.Errorf("--duration 300ms --rate 200 -n 0: %s", out)
	}
}

// TestBenchUnlimitedNeedsDuration: -n 0 alone is refused, saying what to add.
func TestBenchUnlimitedNeedsDuration(t *testing.T) {
	_, err := runApp(t, "bench", "-n", "0")
	if ExitCode(err) != 2 || !strings.Contains(err.Error(), "needs --duration") {
		t.Errorf("bench -n 0: %v, exit code %d; want exit 2 naming --duration", err, ExitCode(err))
	}
}

func TestBenchFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-P", "0"}, {"-P", "100000"}, {"--rate", "-1"}, {"--duration", "0s"}, {"--duration", "-1s"}, {"-n", "-1"}, {"-n", "-1", "--duration", "1s"}, {"-n", "0"},
	} {
		if _, err := runApp(t, append([]string{"bench"}, args...)...); ExitCode(err) != 2 {
			t.Errorf("bench %v: %v, exit code %d", args, err, ExitCode(err))
		}
	}
}

func TestBenchErrors(t *testing.T) {
	raddr := redistest.Addr(t)
	t.Setenv("REDIS_ADDR", raddr)
	missing := redistest.Product(t)
	_, err := runApp(t, "bench", "--addr", startServe(t, raddr), "--product", missing, "-n", "1")
	if !errors.Is(err, engine.ErrUnknownProduct) || !strings.Contains(err.Error(), "--init N") {
		t.Errorf("bench of a missing product: %v", err)
	}
	if _, err := runApp(t, "bench", "-n", "0"); ExitCode(err) != 2 {
		t.Errorf("bench -n 0: %v, exit code %d", err, ExitCode(err))
	}
	// No server: the run fails at once, naming the address and what to start.
	p := redistest.Product(t)
	dead := freeAddr(t)
	for _, extra := range [][]string{nil, {"-P", "8", "--rate", "1000"}} {
		out, err := runApp(t, append([]string{"bench", "--addr", dead, "--product", p, "--init", "5", "-n", "20", "-c", "2"}, extra...)...)
		if ExitCode(err) != 1 || !strings.Contains(err.Error(), dead) || !strings.Contains(err.Error(), "flashsale serve") ||
			!strings.Contains(err.Error(), "connection refused") {
			t.Errorf("bench %v without a server: %v (exit %d)\n%s", extra, err, ExitCode(err), out)
		}
	}
}

func TestDemo(t *testing.T) {
	out, err := runApp(t, "demo", "-n", "1000", "-c", "20", "--log-level", "error")
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	for _, want := range []string{"NOT for production", "Successful:        100\n", "Oversell Check:    ✓ PASS"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}

// soldSome waits until product has sold something, as a server sees it.
func soldSome(t *testing.T, addr, product string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := client.Dial(ctx, addr, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for {
		r, err := conn.QueryStock(ctx, product)
		if err != nil {
			t.Fatalf("waiting for a sale: %v", err)
		}
		if r.RemainingStock < r.Initial {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestBenchServerKilled: a server that goes away mid-run fails the run
// (exit 1, FAIL, the errors counted) while the oversell check still passes.
func TestBenchServerKilled(t *testing.T) {
	raddr := redistest.Addr(t)
	addr, stop := startServeStoppable(t, raddr)
	product := redistest.Product(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := goApp(t, ctx, "bench", "--addr", addr, "--redis-addr", raddr, "--product", product,
		"-n", "300000", "-c", "4", "--init", "1000000", "--per-user-limit", "0", "--timeout", "2s")
	soldSome(t, addr, product)
	stop()
	r := <-done
	if ExitCode(r.err) != 1 || !errors.Is(r.err, ErrRequestsFailed) {
		t.Errorf("bench with its server stopped: %v (exit %d)\n%s", r.err, ExitCode(r.err), r.out)
	}
	for _, want := range []string{"Oversell Check:    ✓ PASS", "Verdict:           ✗ FAIL (", "requests failed"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("bench output lacks %q:\n%s", want, r.out)
		}
	}
	if strings.Contains(r.out, "Errors:            0\n") {
		t.Errorf("no errors counted:\n%s", r.out)
	}
}

// TestBenchInterrupted: Ctrl-C ends the run early, the report says so and
// the exit code is 130.
func TestBenchInterrupted(t *testing.T) {
	raddr := redistest.Addr(t)
	addr := startServe(t, raddr)
	product := redistest.Product(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := goApp(t, ctx, "bench", "--addr", addr, "--redis-addr", raddr, "--product", product,
		"--duration", "1m", "-c", "2", "--init", "1000000", "--per-user-limit", "0")
	soldSome(t, addr, product)
	cancel()
	r := <-done
	if ExitCode(r.err) != 130 || !strings.Contains(r.out, "interrupted") || !strings.Contains(r.out, "✓ PASS") {
		t.Errorf("interrupted bench: %v (exit %d)\n%s", r.err, ExitCode(r.err), r.out)
	}
}

// TestBenchTwoServers: two benches on two servers selling one product
// both pass and each reports the other's sales as other buyers; one bench
// spread over both servers passes too, and writes an HTML report.
func TestBenchTwoServers(t *testing.T) {
	raddr := redistest.Addr(t)
	a, b := startServe(t, raddr), startServe(t, raddr)
	product := redistest.Product(t)
	mustRun(t, "admin", "init", "--redis-addr", raddr, "--per-user-limit", "0", product, "1000000")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bench := func(addr, prefix string) <-chan appResult {
		return goApp(t, ctx, "bench", "--addr", addr, "--redis-addr", raddr, "--product", product,
			"--duration", "1s", "-c", "2", "--user-prefix", prefix)
	}
	da, db := bench(a, "a"), bench(b, "b")
	ra, rb := <-da, <-db
	others := 0
	for _, r := range []appResult{ra, rb} {
		if r.err != nil || !strings.Contains(r.out, "Oversell Check:    ✓ PASS") || !strings.Contains(r.out, "Verdict:           ✓ PASS") {
			t.Errorf("bench beside another: %v\n%s", r.err, r.out)
		}
		if strings.Contains(r.out, "Other Buyers:") {
			others++
		}
	}
	if others == 0 {
		t.Errorf("neither bench saw the other's sales:\n%s\n%s", ra.out, rb.out)
	}

	html := filepath.Join(t.TempDir(), "report.html")
	out := mustRun(t, "bench", "--addr", a+","+b, "--redis-addr", raddr, "--product", product,
		"-n", "400", "-c", "4", "--output", html)
	if !strings.Contains(out, "Target:            "+a+","+b+" ") || !strings.Contains(out, "✓ PASS") {
		t.Errorf("bench --addr a,b:\n%s", out)
	}
	page, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<script type="application/json" id="data">`, `"answered":400`, "<canvas"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the HTML report lacks %q", want)
		}
	}
	for _, banned := range []string{"http://", "https://", " src=", "<link"} {
		if strings.Contains(string(page), banned) {
			t.Errorf("the HTML report is not self-contained: it has %q", banned)
		}
	}
}

// TestBenchRequestIDs: --request-ids gives every purchase its customer's
// request_id, so each sale leaves its request record.
func TestBenchRequestIDs(t *testing.T) {
	raddr := redistest.Addr(t)
	addr := startServe(t, raddr)
	product := redistest.Product(t)
	out := mustRun(t, "bench", "--addr", addr, "--redis-addr", raddr, "--product", product,
		"-n", "300", "-c", "4", "-P", "16", "--init", "100", "--request-ids")
	for _, want := range []string{"Successful:        100\n", "Sold Out:          200\n", "Oversell Check:    ✓ PASS"} {
		if !strings.Contains(out, want) {
			t.Errorf("bench --request-ids output lacks %q:\n%s", want, out)
		}
	}
	c, n := redistest.Conn(t, raddr), 0
	for _, key := range engine.KeysFor(product).Requests {
		fields, err := redis.Strings(c.Do("HKEYS", key))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fields {
			if strings.HasPrefix(f, "rid_") {
				n++
			}
		}
	}
	if n != 100 {
		t.Errorf("%d request records, want 100", n)
	}
}
