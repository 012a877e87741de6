package commands

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/testkit/redistest"
)

func TestOneShot(t *testing.T) {
	raddr := redistest.Addr(t)
	addr := startServe(t, raddr)
	p := redistest.Product(t)
	mustRun(t, "admin", "init", "--redis-addr", raddr, p, "2")
	t.Setenv("FLASHSALE_ADDR", addr)
	for _, tc := range []struct {
		args []string
		exit int
		want string // in the output, or in the error
	}{
		{[]string{"ping"}, 0, "PONG from " + addr + ", redis up"},
		{[]string{"ping", "--json"}, 0, `{"status":"PONG","redis":"up"}`},
		{[]string{"stock", p}, 0, p + ": OPEN, 2 of 2 left, at most 1 per customer"},
		{[]string{"buy", p, "u1", "--request-id", "r1"}, 0, "SUCCESS: u1 bought 1 of " + p},
		{[]string{"buy", p, "u1", "--request-id", "r1", "--json"}, 0, `"status":"SUCCESS"`},
		{[]string{"buy", p, "u1"}, 1, "ALREADY_PURCHASED: u1 may hold at most 1 of " + p + " and holds 1"},
		{[]string{"buy", "--quantity", "2", p, "u2"}, 1, "ALREADY_PURCHASED: u2 may hold at most 1 of " + p + " and holds 0"},
		{[]string{"buy", p, "u2"}, 0, "SUCCESS"},
		{[]string{"buy", p, "u3", "--json"}, 1, `{"status":"SOLD_OUT"}`},
		{[]string{"stock", p, "--json"}, 0, `"state":"SOLD_OUT"`},
		{[]string{"stock", p + "-none"}, 1, "flashsale admin init " + p + "-none"},
		{[]string{"buy", p + "-none", "u1"}, 1, "flashsale admin init " + p + "-none"},
		{[]string{"ping", "--addr", freeAddr(t)}, 1, "flashsale serve"},
		{[]string{"buy", p}, 2, "want 2 argument(s)"},
		{[]string{"stock"}, 2, "want 1 argument(s)"},
		{[]string{"ping", "extra"}, 2, "want 0 argument(s)"},
		{[]string{"buy", p, "u4", "--quantity", "0"}, 2, "--quantity"},
	} {
		out, err := runApp(t, tc.args...)
		text := out
		if err != nil {
			text += err.Error()
		}
		if ExitCode(err) != tc.exit || !strings.Contains(text, tc.want) {
			t.Errorf("flashsale %v: exit %d (%v), want %d and %q\n%s", tc.args, ExitCode(err), err, tc.exit, tc.want, out)
		}
		if tc.exit == 1 && strings.HasPrefix(tc.args[0], "buy") && strings.Contains(text, "SOLD_OUT") && !errors.Is(err, ErrNotSold) {
			t.Errorf("flashsale %v: %v, want ErrNotSold", tc.args, err)
		}
	}
}

// TestPingRedisDown: ping exits 0 only while the server's Redis is up.
func TestPingRedisDown(t *testing.T) {
	rs := redistest.StartTestServer(t)
	addr := startServe(t, rs.Addr, "--redis-timeout", "500ms", "--log-level", "fatal")
	mustRun(t, "ping", "--addr", addr)
	if err := rs.Kill(); err != nil {
		t.Fatal(err)
	}
	// The server notices within its health check interval; wait for it,
	// bounded, without asserting on the time it takes.
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := runApp(t, "ping", "--addr", addr)
		if err != nil {
			if ExitCode(err) != 1 || !errors.Is(err, ErrNotReady) || !strings.Contains(err.Error(), "redis-server") {
				t.Errorf("ping with Redis down: %v (exit %d)\n%s", err, ExitCode(err), out)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ping still says %q 30s after Redis died", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
