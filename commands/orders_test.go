package commands

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/testkit/redistest"
)

// TestReserveThenPay runs the reservation commands against a served
// product: buy reserves, confirm pays, cancel releases, and serve's
// sweeper puts an unpaid reservation back on sale after its hold.
func TestReserveThenPay(t *testing.T) {
	raddr := redistest.Addr(t)
	addr := startServe(t, raddr)
	p := redistest.Product(t)
	if out := mustRun(t, "admin", "init", "--redis-addr", raddr, "--hold", "10m", p, "3"); !strings.Contains(out, "reservations held 10m0s until paid") {
		t.Errorf("init: %s", out)
	}
	t.Setenv("FLASHSALE_ADDR", addr)
	order := func(user string) string {
		t.Helper()
		var r struct {
			Status    string `json:"status"`
			OrderID   string `json:"order_id"`
			ExpiresAt int64  `json:"expires_at"`
		}
		if err := json.Unmarshal([]byte(mustRun(t, "buy", p, user, "--json")), &r); err != nil || r.Status != "RESERVED" || r.ExpiresAt == 0 {
			t.Fatalf("buy %s: %+v %v", user, r, err)
		}
		return r.OrderID
	}
	a, b := order("u1"), order("u2")
	for _, tc := range []struct {
		args []string
		exit int
		want string
	}{
		{[]string{"confirm", p, "u1", a}, 0, "PAID: order " + a},
		{[]string{"confirm", p, "u1", a}, 0, "PAID"},
		{[]string{"cancel", p, "u1", a}, 1, "ALREADY_PAID"},
		{[]string{"cancel", p, "u3", b}, 1, "FORBIDDEN"},
		{[]string{"cancel", p, "u2", b}, 0, "RELEASED: order " + b},
		{[]string{"confirm", p, "u2", b}, 1, "RELEASED"},
		{[]string{"confirm", p, "u2"}, 2, "want 3 argument(s)"},
		{[]string{"admin", "hold", "--redis-addr", raddr, p, "200ms"}, 0, "now reserve for 200ms (the hold was 10m0s)"},
		{[]string{"admin", "hold", "--redis-addr", raddr, p, "soon"}, 2, "DURATION"},
		{[]string{"admin", "status", "--redis-addr", raddr, p}, 0, "0 units reserved, 1 paid, 0 expired, 1 cancelled"},
	} {
		out, err := runApp(t, tc.args...)
		text := out
		if err != nil {
			text += err.Error()
		}
		if ExitCode(err) != tc.exit || !strings.Contains(text, tc.want) {
			t.Errorf("flashsale %v: exit %d (%v), want %d and %q\n%s", tc.args, ExitCode(err), err, tc.exit, tc.want, out)
		}
	}
	// u2's cancel freed a unit: u3 reserves it for 200ms, does not pay,
	// and serve's sweeper releases it with no purchase to help.
	order("u3")
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(mustRun(t, "admin", "status", "--redis-addr", raddr, p), "0 units reserved, 1 paid, 1 expired, 1 cancelled") {
		if time.Now().After(deadline) {
			t.Fatalf("the expired reservation was not released: %s", mustRun(t, "admin", "status", "--redis-addr", raddr, p))
		}
		time.Sleep(20 * time.Millisecond)
	}
	mustRun(t, "admin", "verify", "--redis-addr", raddr, p)
}
