package commands

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/redistest"
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
		Duration: 1234567 * time.Microsecond,
		Total:    10000,
		Statuses: map[engine.Status]int64{engine.StatusSuccess: 100, engine.StatusSoldOut: 9880, engine.StatusAlreadyPurchased: 10},
		Units:    100,
		Errors:   10,
		Latency: Latencies{
			Min: 41 * time.Microsecond, Mean: 120 * time.Microsecond, P50: 100 * time.Microsecond,
			P90: 200 * time.Microsecond, P95: 250 * time.Microsecond, P99: 800 * time.Microsecond, Max: 3200 * time.Microsecond,
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
	}{
		{"pass", 100, audit},
		{"fail", 99, engine.Audit{Orders: 100, Sold: 100, Customers: 99, Problems: []string{"customer u1 holds 2 units, above the limit of 1"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep.Units = tc.units
			rep.Check = newCheck(rep, before, after, tc.audit)
			var b bytes.Buffer
			if err := rep.WriteText(&b); err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("bench", "report-"+tc.name+".golden"), b.Bytes())
		})
	}
}

func TestStatusLabelsCoverEveryStatus(t *testing.T) {
	if len(statusLabels) != len(engine.Statuses()) {
		t.Fatalf("statusLabels has %d entries for %d statuses", len(statusLabels), len(engine.Statuses()))
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
		{"sale nobody was told of", 59, 59, engine.ProductStatus{Initial: 100, Remaining: 0, Held: 100, Buyers: 100}, good, false},
		{"oversold", 61, 61, engine.ProductStatus{Initial: 100, Remaining: -1, Held: 101, Buyers: 101}, good, false},
		{"buyer missing", 60, 60, engine.ProductStatus{Initial: 100, Remaining: 0, Held: 100, Buyers: 99}, good, false},
		{"books do not balance", 60, 60, engine.ProductStatus{Initial: 100, Remaining: 0, Held: 100, Buyers: 100}, engine.Audit{Problems: []string{"x"}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rep := &Report{Statuses: map[engine.Status]int64{engine.StatusSuccess: tc.orders}, Units: tc.units}
			if got := newCheck(rep, before, tc.after, tc.audit).Pass; got != tc.pass {
				t.Errorf("Pass = %v, want %v", got, tc.pass)
			}
		})
	}
}

func TestSummarise(t *testing.T) {
	var lat []time.Duration
	for i := 100; i >= 1; i-- {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	got := summarise(lat)
	want := Latencies{Min: 1 * time.Millisecond, Mean: 50500 * time.Microsecond, P50: 50 * time.Millisecond,
		P90: 90 * time.Millisecond, P95: 95 * time.Millisecond, P99: 99 * time.Millisecond, Max: 100 * time.Millisecond}
	if got != want {
		t.Errorf("summarise = %+v, want %+v", got, want)
	}
	if summarise(nil) != (Latencies{}) {
		t.Error("summarise(nil) is not zero")
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

func TestBenchErrors(t *testing.T) {
	raddr := redistest.Addr(t)
	t.Setenv("REDIS_ADDR", raddr)
	missing := redistest.Product(t)
	_, err := runApp(t, "bench", "--addr", freeAddr(t), "--product", missing, "-n", "1")
	if !errors.Is(err, engine.ErrUnknownProduct) || !strings.Contains(err.Error(), "--init N") {
		t.Errorf("bench of a missing product: %v", err)
	}
	if _, err := runApp(t, "bench", "-n", "0"); ExitCode(err) != 2 {
		t.Errorf("bench -n 0: %v, exit code %d", err, ExitCode(err))
	}
	// No server: every request is an error, the check still passes (nothing sold).
	p := redistest.Product(t)
	out, err := runApp(t, "bench", "--addr", freeAddr(t), "--product", p, "--init", "5", "-n", "20", "-c", "2")
	if err != nil || !strings.Contains(out, "Errors:            20\n") || !strings.Contains(out, "connection refused") {
		t.Errorf("bench without a server: %v\n%s", err, out)
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
