package commands

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
	"github.com/flashsale/flashsale/wire"
)

// edKey is an Ed25519 key pair for the serve tests: the public key as a PEM
// file, and a function that mints an EdDSA JWT with the private key. With
// openssl on $PATH both the key and the signatures come from OpenSSL, so
// neither Go's x509 nor the JWT library is on the minting side.
func edKey(t *testing.T) (pubFile string, mint func(claims map[string]any) string) {
	t.Helper()
	dir := t.TempDir()
	pubFile = filepath.Join(dir, "jwt.pub.pem")
	if _, err := exec.LookPath("openssl"); err == nil {
		priv := filepath.Join(dir, "jwt.key.pem")
		run := func(args ...string) []byte {
			out, err := exec.Command("openssl", args...).Output()
			if err != nil {
				t.Fatalf("openssl %v: %v", args, err)
			}
			return out
		}
		run("genpkey", "-algorithm", "ed25519", "-out", priv)
		run("pkey", "-in", priv, "-pubout", "-out", pubFile)
		return pubFile, func(claims map[string]any) string {
			h, _ := json.Marshal(map[string]any{"alg": "EdDSA", "typ": "JWT"})
			c, _ := json.Marshal(claims)
			input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
			in := filepath.Join(dir, "input")
			if err := os.WriteFile(in, []byte(input), 0o600); err != nil {
				t.Fatal(err)
			}
			return input + "." + base64.RawURLEncoding.EncodeToString(run("pkeyutl", "-sign", "-rawin", "-inkey", priv, "-in", in))
		}
	}
	t.Log("no openssl: minting with crypto/ed25519")
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// An Ed25519 SubjectPublicKeyInfo is a fixed 12-byte prefix and the key.
	der := append([]byte{0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00}, pub...)
	pemText := "-----BEGIN PUBLIC KEY-----\n" + base64.StdEncoding.EncodeToString(der) + "\n-----END PUBLIC KEY-----\n"
	if err := os.WriteFile(pubFile, []byte(pemText), 0o600); err != nil {
		t.Fatal(err)
	}
	return pubFile, func(claims map[string]any) string {
		return saletest.JWT(t, priv, map[string]any{"alg": "EdDSA", "typ": "JWT"}, claims)
	}
}

// TestServeJWT runs serve with --jwt-key, --jwt-issuer and --jwt-audience
// and buys with JWTs over TLV.
func TestServeJWT(t *testing.T) {
	raddr := redistest.Addr(t)
	pubFile, mint := edKey(t)
	addr := startServe(t, raddr, "--jwt-key", pubFile, "--jwt-issuer", "https://shop.example", "--jwt-audience", "flashsale")
	p := redistest.Product(t)
	mustRun(t, "admin", "init", "--redis-addr", raddr, "--per-user-limit", "0", p, "5")

	claims := func(sub, iss string) map[string]any {
		return map[string]any{"sub": sub, "iss": iss, "aud": []string{"flashsale"}, "exp": time.Now().Add(time.Hour).Unix()}
	}
	buy := func(user, jwt string) []byte {
		return wire.AppendFrame(nil, wire.TypePurchase, wire.AppendPurchase(nil, wire.PurchaseRequest{ProductID: p, UserID: user, JWT: jwt}))
	}
	ann := mint(claims("ann", "https://shop.example"))
	c := dialClient(t, addr)
	c.send(buy("", ann), buy("ann", ann), buy("bob", ann), buy("ann", ""), buy("", mint(claims("ann", "https://evil.example"))))
	for i, want := range []wire.Response{
		{Status: "SUCCESS"}, {Status: "SUCCESS"},
		{Status: "UNAUTHORIZED", Error: "token is for another user_id"},
		{Status: "UNAUTHORIZED", Error: "missing token"},
		{Status: "UNAUTHORIZED", Error: "wrong token issuer"},
	} {
		_, r, err := c.recv()
		if err != nil || r.Status != want.Status || r.Error != want.Error {
			t.Errorf("answer %d: %+v, %v; want %s %q", i, r, err, want.Status, want.Error)
		}
	}
	out := mustRun(t, "admin", "buyers", "--redis-addr", raddr, p)
	if strings.Count(out, "ann") != 2 || strings.Contains(out, "bob") {
		t.Errorf("admin buyers after two JWT purchases by ann:\n%s", out)
	}
}

func TestServeJWTUsageErrors(t *testing.T) {
	t.Setenv("REDIS_ADDR", freeAddr(t)) // every case fails before Redis
	pubFile, _ := edKey(t)
	junk := filepath.Join(t.TempDir(), "junk.pem")
	if err := os.WriteFile(junk, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	secret := strings.Repeat("s", 32)
	for _, args := range [][]string{
		{"serve", "--jwt-secret", strings.Repeat("s", 31)},
		{"serve", "--jwt-secret", secret, "--jwt-key", pubFile},
		{"serve", "--jwt-issuer", "https://shop.example"},
		{"serve", "--jwt-audience", "flashsale"},
		{"serve", "--jwt-key", junk},
	} {
		out, err := runApp(t, args...)
		if ExitCode(err) != 2 || !strings.Contains(err.Error(), "jwt") && !strings.Contains(err.Error(), "JWT") {
			t.Errorf("%q: %v (exit %d), want a usage error about the JWT flags\n%s", args, err, ExitCode(err), out)
		}
	}
	if _, err := runApp(t, "serve", "--jwt-key", filepath.Join(t.TempDir(), "none")); err == nil || !strings.Contains(err.Error(), "--jwt-key") {
		t.Errorf("missing key file: %v", err)
	}
	t.Setenv("FLASHSALE_JWT_SECRET", "short")
	if _, err := runApp(t, "serve"); ExitCode(err) != 2 || !strings.Contains(err.Error(), "32 bytes") {
		t.Errorf("FLASHSALE_JWT_SECRET=short: %v, want a usage error naming 32 bytes", err)
	}
}
