package commands

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/auth"
	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/wire"
)

const testUserSecret = "test-shop-secret-0123456789"

// TestServeUserSecret runs serve with customer tokens required, against
// bench with and without the secret and clients with admin tokens.
func TestServeUserSecret(t *testing.T) {
	raddr := redistest.Addr(t)
	addr := startServe(t, raddr, "--user-secret", testUserSecret)
	p := redistest.Product(t)

	// Without the secret every answer is UNAUTHORIZED and nothing is sold.
	out := mustRun(t, "bench", "--addr", addr, "--redis-addr", raddr, "--product", p, "--init", "5", "-n", "20", "-c", "4")
	for _, want := range []string{"Total Requests:    20\n", "Successful:        0\n", "Unauthorized:      20\n",
		"Errors:            0\n", "Oversell Check:    ✓ PASS"} {
		if !strings.Contains(out, want) {
			t.Errorf("bench without --user-secret lacks %q:\n%s", want, out)
		}
	}

	// The answer on the wire: status and reason, no code.
	c := dialClient(t, addr)
	c.send(purchaseFrame(p, "ann"))
	f, err := c.rd.Next()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(f.Payload), `{"status":"UNAUTHORIZED","error":"missing token"}`; f.Type != wire.TypePurchaseResponse || got != want {
		t.Errorf("unsigned purchase answered %s %s, want %s", f.Type, got, want)
	}

	// With the secret it sells: unique users, then users drawn from 3
	// customers (per-user limit 1), whose tokens are cached.
	out = mustRun(t, "bench", "--addr", addr, "--redis-addr", raddr, "--product", p, "--init", "5", "-n", "20", "-c", "4",
		"--user-secret", testUserSecret)
	for _, want := range []string{"Successful:        5\n", "Sold Out:          15\n", "Errors:            0\n", "✓ PASS"} {
		if !strings.Contains(out, want) {
			t.Errorf("bench --user-secret lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Unauthorized") {
		t.Errorf("bench --user-secret got UNAUTHORIZED answers:\n%s", out)
	}
	out = mustRun(t, "bench", "--addr", addr, "--redis-addr", raddr, "--product", p, "--init", "5", "-n", "20", "-c", "4",
		"--users", "3", "--user-secret", testUserSecret)
	for _, want := range []string{"Successful:        3\n", "Already Purchased: 17\n", "✓ PASS"} {
		if !strings.Contains(out, want) {
			t.Errorf("bench --users 3 --user-secret lacks %q:\n%s", want, out)
		}
	}

	// A token from admin token buys, for its user only.
	mustRun(t, "admin", "init", "--force", "--redis-addr", raddr, p, "2")
	token, expires := adminTokenJSON(t, "ann", "--user-secret", testUserSecret)
	signed := func(user string) []byte {
		return wire.AppendFrame(nil, wire.TypePurchase, wire.AppendPurchase(nil,
			wire.PurchaseRequest{ProductID: p, UserID: user, Token: token, Expires: expires}))
	}
	c.send(signed("bob"), signed("ann"))
	if _, r, err := c.recv(); err != nil || r.Status != "UNAUTHORIZED" || r.Error != "bad token" {
		t.Errorf("bob with ann's token: %+v, %v; want UNAUTHORIZED bad token", r, err)
	}
	if _, r, err := c.recv(); err != nil || r.Status != "SUCCESS" || r.RemainingStock != 1 {
		t.Errorf("ann with her token: %+v, %v; want SUCCESS, 1 left", r, err)
	}
}

// adminTokenJSON runs admin token --json and checks its output.
func adminTokenJSON(t *testing.T, user string, flags ...string) (string, int64) {
	t.Helper()
	var got struct {
		UserID  string `json:"user_id"`
		Token   string `json:"token"`
		Expires int64  `json:"expires"`
	}
	out := mustRun(t, append(append([]string{"admin", "token", "--json"}, flags...), user)...)
	if err := json.Unmarshal([]byte(out), &got); err != nil || got.UserID != user || got.Token == "" {
		t.Fatalf("admin token --json printed %q: %v", out, err)
	}
	return got.Token, got.Expires
}

func TestAdminToken(t *testing.T) {
	// No Redis is involved: point it nowhere.
	t.Setenv("REDIS_ADDR", freeAddr(t))
	signer, err := auth.NewSigner([]byte(testUserSecret))
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	out := mustRun(t, "admin", "token", "--user-secret", testUserSecret, "--ttl", "2h", "user_42")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "token: ") || !strings.HasPrefix(lines[1], "expires: ") {
		t.Fatalf("admin token printed %q", out)
	}
	token := strings.TrimPrefix(lines[0], "token: ")
	unixText, rfc, ok := strings.Cut(strings.TrimPrefix(lines[1], "expires: "), " ")
	expires, err := strconv.ParseInt(unixText, 10, 64)
	if !ok || err != nil || rfc != "("+time.Unix(expires, 0).UTC().Format(time.RFC3339)+")" {
		t.Fatalf("admin token expiry line %q", lines[1])
	}
	if d := time.Unix(expires, 0).Sub(before); d < 2*time.Hour-time.Second || d > 2*time.Hour+time.Minute {
		t.Errorf("expires %d is %s after the run, want 2h", expires, d)
	}
	if err := signer.Verify("user_42", token, expires, time.Now()); err != nil {
		t.Errorf("admin token's token does not verify: %v", err)
	}

	// The secret from a file (trailing newline dropped) or the environment
	// signs the same way.
	file := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(file, []byte(testUserSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	token, expires = adminTokenJSON(t, "ann", "--user-secret-file", file)
	if err := signer.Verify("ann", token, expires, time.Now()); err != nil {
		t.Errorf("token from --user-secret-file: %v", err)
	}
	t.Setenv("FLASHSALE_USER_SECRET", testUserSecret)
	token, expires = adminTokenJSON(t, "ann")
	if err := signer.Verify("ann", token, expires, time.Now()); err != nil {
		t.Errorf("token from FLASHSALE_USER_SECRET: %v", err)
	}
	if d := time.Until(time.Unix(expires, 0)); d < time.Hour-time.Minute || d > time.Hour {
		t.Errorf("default --ttl gave an expiry %s away, want 1h", d)
	}
	t.Setenv("FLASHSALE_USER_SECRET", "")

	for _, args := range [][]string{
		{"admin", "token", "ann"}, // no secret
		{"admin", "token", "--user-secret", "short", "ann"},
		{"admin", "token", "--user-secret", testUserSecret, "--user-secret-file", file, "ann"},
		{"admin", "token", "--user-secret", testUserSecret, "--ttl", "721h", "ann"},
		{"admin", "token", "--user-secret", testUserSecret, "--ttl", "0s", "ann"},
		{"admin", "token", "--user-secret", testUserSecret},
		{"admin", "token", "--user-secret", testUserSecret, strings.Repeat("u", 129)},
		{"serve", "--user-secret", "short"},
		{"bench", "--user-secret", "short"},
	} {
		if out, err := runApp(t, args...); ExitCode(err) != 2 {
			t.Errorf("%q: %v (exit %d), want a usage error\n%s", args, err, ExitCode(err), out)
		}
	}
	if _, err := runApp(t, "admin", "token", "--user-secret-file", filepath.Join(t.TempDir(), "none"), "ann"); err == nil || !strings.Contains(err.Error(), "--user-secret-file") {
		t.Errorf("missing secret file: %v", err)
	}
}
