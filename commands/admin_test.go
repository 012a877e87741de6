package commands

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gomodule/redigo/redis"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/transport"
	"github.com/flashsale/flashsale/wire"
)

func TestAdmin(t *testing.T) {
	raddr := redistest.Addr(t)
	t.Setenv("REDIS_ADDR", raddr)
	p := redistest.Product(t)
	k := engine.KeysFor(p)
	rc := redistest.Conn(t, raddr)

	if out := mustRun(t, "admin", "init", p, "3"); out != "✓ Product '"+p+"' initialized with 3 units (per-user limit 1, window always open)\n" {
		t.Errorf("init printed %q", out)
	}
	eng := engine.New(transport.NewPool(transport.PoolConfig{Addr: raddr}))
	for _, u := range []string{"ann", "bob"} {
		if r := eng.Purchase(t.Context(), engine.Request{ProductID: p, UserID: u}); r.Status != wire.StatusSuccess {
			t.Fatalf("purchase: %+v", r)
		}
	}

	want := "=== Product Status: " + p + " ===\n" +
		"State:             OPEN\n" +
		"Window:            always open\n" +
		"Per-User Limit:    1\n" +
		"Remaining Stock:   1\n" +
		"Initial Stock:     3\n" +
		"Units Held:        2\n" +
		"Orders:            2 (not released)\n" +
		"Customers:         2 (holding units)\n" +
		"Invariant:         OK (remaining 1 + held 2, initial 3)\n"
	if out := mustRun(t, "admin", "status", p); out != want {
		t.Errorf("status printed\n%s\nwant\n%s", out, want)
	}
	var st map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, "admin", "status", "--json", p)), &st); err != nil {
		t.Fatal(err)
	}
	if st["remaining"] != 1.0 || st["initial"] != 3.0 || st["buyers"] != 2.0 || st["held"] != 2.0 ||
		st["invariant"] != "OK" || st["state"] != "OPEN" || st["product_id"] != p || st["verify"] != nil {
		t.Errorf("status --json = %v", st)
	}

	if out := mustRun(t, "admin", "buyers", p); out != "=== Orders of "+p+" (2 total) of 2 customers: one line per order not released, its customer ===\n1. ann\n2. bob\n" {
		t.Errorf("buyers printed %q", out)
	}
	if out := mustRun(t, "admin", "buyers", "--limit", "1", p); !strings.Contains(out, "1. ann\n… and 1 more") {
		t.Errorf("buyers --limit 1 printed %q", out)
	}
	var b struct {
		Total  int      `json:"total"`
		Buyers []string `json:"buyers"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, "admin", "buyers", "--json", p)), &b); err != nil || b.Total != 2 || len(b.Buyers) != 2 {
		t.Errorf("buyers --json = %+v, %v", b, err)
	}

	if out := mustRun(t, "admin", "reset", p); out != "✓ Product '"+p+"' reset to 3 units: cleared 2 orders (2 units held by 2 customers, 2 stream entries)\n" {
		t.Errorf("reset printed %q", out)
	}
	if stock, _ := redis.String(rc.Do("GET", k.Stock)); stock != "3" {
		t.Errorf("stock after reset = %q", stock)
	}
	if n, _ := redis.Int(rc.Do("LLEN", k.Buyers)); n != 0 {
		t.Errorf("%d buyers after reset", n)
	}

	// A broken invariant is shown and makes status fail.
	rc.Do("HSET", k.Holders, "ghost", 1)
	out, err := runApp(t, "admin", "status", p)
	if !errors.Is(err, ErrInvariantBroken) || !strings.Contains(out, "Invariant:         BROKEN") {
		t.Errorf("status of a broken product: %v\n%s", err, out)
	}
	rc.Do("HDEL", k.Holders, "ghost")
	// Books that do not balance are verify's to find: status stays O(1)
	// and does not read the orders.
	rc.Do("RPUSH", k.Buyers, "ghost")
	if out, err := runApp(t, "admin", "status", p); err != nil || strings.Contains(out, "ghost") {
		t.Errorf("status of a product with a ghost buyer: %v\n%s; want the O(1) reading, no audit", err, out)
	}
	out, err = runApp(t, "admin", "verify", p)
	if !errors.Is(err, ErrVerifyFailed) || !strings.Contains(out, "✗ customer ghost is listed 1 times as a buyer for 0 orders") {
		t.Errorf("verify of a product with a ghost buyer: %v\n%s", err, out)
	}

	if out := mustRun(t, "admin", "delete", "--json", p); strings.TrimSpace(out) != `{"deleted":true,"product_id":"`+p+`"}` {
		t.Errorf("delete --json printed %q", out)
	}
	if n, _ := redis.Int(rc.Do("EXISTS", k.Stock, k.Buyers, k.Meta)); n != 0 {
		t.Errorf("%d keys left after delete", n)
	}
}

// adminProduct points admin at the test Redis, creates a product of units
// with admin init and flags, and returns an engine on that Redis and the
// product's id.
func adminProduct(t *testing.T, units string, flags ...string) (*engine.Engine, string) {
	t.Helper()
	raddr := redistest.Addr(t)
	t.Setenv("REDIS_ADDR", raddr)
	id := redistest.Product(t)
	mustRun(t, append(append([]string{"admin", "init"}, flags...), id, units)...)
	return engine.New(transport.NewPool(transport.PoolConfig{Addr: raddr})), id
}

// With no per-customer limit, one customer's ten orders are ten orders of
// one customer, in status, buyers and verify alike.
func TestAdminOrdersAndCustomers(t *testing.T) {
	eng, p := adminProduct(t, "100", "--per-user-limit", "0")
	for range 10 {
		if r := eng.Purchase(t.Context(), engine.Request{ProductID: p, UserID: "ann", Quantity: 10}); r.Status != wire.StatusSuccess {
			t.Fatalf("purchase: %+v", r)
		}
	}
	var st map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, "admin", "status", "--json", p)), &st); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		out  string
		want []string
	}{
		{"status", mustRun(t, "admin", "status", p), []string{"Units Held:        100\n", "Orders:            10 (not released)\n", "Customers:         1 (holding units)\n"}},
		{"buyers", mustRun(t, "admin", "buyers", "--limit", "2", p), []string{"(10 total) of 1 customer: one line per order", "1. ann\n2. ann\n… and 8 more"}},
		{"verify", mustRun(t, "admin", "verify", p), []string{"OK (10 orders, 100 units sold, 0 released, 1 customer)"}},
		{"status --json", fmt.Sprint(st["active_orders"], st["customers"], st["held"], st["buyers"]), []string{"10 1 100 10"}},
	}
	for _, tt := range tests {
		for _, w := range tt.want {
			if !strings.Contains(tt.out, w) {
				t.Errorf("admin %s printed\n%s\nwant it to contain %q", tt.name, tt.out, w)
			}
		}
	}
}

func TestAdminErrors(t *testing.T) {
	raddr := redistest.Addr(t)
	t.Setenv("REDIS_ADDR", raddr)
	missing := redistest.Product(t)
	cases := []struct {
		args     []string
		wantErr  string
		wantCode int
	}{
		{[]string{"admin", "status", missing}, missing + ": unknown product", 1},
		{[]string{"admin", "reset", missing}, missing + ": unknown product", 1},
		{[]string{"admin", "delete", missing}, missing + ": unknown product", 1},
		{[]string{"admin", "buyers", missing}, missing + ": unknown product", 1},
		{[]string{"admin", "init", missing}, "want 2 argument(s) [ID N], got 1 (see 'flashsale admin init --help')", 2},
		{[]string{"admin", "init", missing, "-5"}, "N must be a whole number of units", 2},
		{[]string{"admin", "init", missing, "lots"}, "N must be a whole number of units", 2},
		{[]string{"admin", "init", "bad{id}", "5"}, "product_id contains a forbidden character", 2},
		{[]string{"admin", "init", "", "10"}, "missing product_id (see 'flashsale admin init --help')", 2},
		{[]string{"admin", "status", ""}, "missing product_id", 2},
		{[]string{"admin", "restock", "", "5"}, "missing product_id", 2},
		{[]string{"admin", "verify", "a{b"}, "product_id contains a forbidden character", 2},
		{[]string{"admin", "release", missing, "12"}, `order id "12" is not of the form`, 2},
		{[]string{"admin", "init", missing, "10", "--shards", "1000"}, "shards must be between 2 and", 2},
		{[]string{"admin", "status", "--bogus", missing}, "flag provided but not defined: --bogus", 2},
		{[]string{"admin", "buyers", "--limit", "-1", missing}, "--limit must be 0 (all) or more", 2},
		{[]string{"admin", "status", "--redis-addr", "embedded", missing}, "--redis-addr embedded only works for serve and demo", 2},
		{[]string{"admin", "status", "--redis-addr", freeAddr(t), missing}, "redis unavailable", 1},
		// A malformed argument is a usage error before Redis is dialled,
		// so it says so even when Redis is down.
		{[]string{"admin", "init", "--redis-addr", freeAddr(t), "", "10"}, "missing product_id", 2},
		{[]string{"admin", "verify", "--redis-addr", freeAddr(t), "ok", "a{b"}, "product_id contains a forbidden character", 2},
		{[]string{"admin", "release", "--redis-addr", freeAddr(t), missing, "12"}, `order id "12" is not of the form`, 2},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args[1:], " "), func(t *testing.T) {
			_, err := runApp(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			if got := ExitCode(err); got != tc.wantCode {
				t.Errorf("exit code %d, want %d", got, tc.wantCode)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	if out := mustRun(t, "--version"); out != "flashsale version test\n" {
		t.Errorf("--version printed %q", out)
	}
}
