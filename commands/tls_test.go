package commands

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/server"
	"github.com/flashsale/flashsale/transport"
	"github.com/flashsale/flashsale/wire"
)

// testPKI is a CA, a server certificate for 127.0.0.1 and localhost, a
// client certificate, and a client certificate from another CA, as PEM
// files in a temporary directory.
type testPKI struct {
	ca, serverCert, serverKey, clientCert, clientKey string
	otherCA, strangerCert, strangerKey               string
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	p := &testPKI{}
	ca, caKey := issue(t, dir, "ca", &x509.Certificate{
		Subject:               pkix.Name{CommonName: "flashsale test CA"},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, nil, nil)
	p.ca = filepath.Join(dir, "ca.pem")
	p.serverCert, p.serverKey = leafFiles(t, dir, "server", &x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, caKey)
	p.clientCert, p.clientKey = leafFiles(t, dir, "client", &x509.Certificate{
		Subject:     pkix.Name{CommonName: "bench"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca, caKey)
	other, otherKey := issue(t, dir, "other-ca", &x509.Certificate{
		Subject:               pkix.Name{CommonName: "some other CA"},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}, nil, nil)
	p.otherCA = filepath.Join(dir, "other-ca.pem")
	p.strangerCert, p.strangerKey = leafFiles(t, dir, "stranger", &x509.Certificate{
		Subject:     pkix.Name{CommonName: "stranger"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, other, otherKey)
	return p
}

func leafFiles(t *testing.T, dir, name string, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (cert, key string) {
	t.Helper()
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	issue(t, dir, name, tmpl, parent, parentKey)
	return filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
}

// issue signs tmpl with parentKey (self-signed when parent is nil) and
// writes NAME.pem and NAME-key.pem.
func issue(t *testing.T, dir, name string, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, name+".pem"), "CERTIFICATE", der)
	writePEM(t, filepath.Join(dir, name+"-key.pem"), "PRIVATE KEY", pkcs8)
	return cert, key
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// wantReport checks bench output for each of the lines given.
func wantReport(t *testing.T, what, out string, lines ...string) {
	t.Helper()
	for _, want := range lines {
		if !strings.Contains(out, want) {
			t.Errorf("%s: output lacks %q:\n%s", what, want, out)
		}
	}
}

func TestTLSBench(t *testing.T) {
	pki := newTestPKI(t)
	raddr := redistest.Addr(t)
	addr := startServe(t, raddr, "--tls-cert", pki.serverCert, "--tls-key", pki.serverKey)
	product := redistest.Product(t)
	bench := func(extra ...string) (string, error) {
		return runApp(t, append([]string{"bench", "--addr", addr, "--redis-addr", raddr, "--product", product,
			"-n", "20", "-c", "4", "--timeout", "2s"}, extra...)...)
	}

	out, err := bench("--init", "10", "--tls", "--tls-ca", pki.ca)
	if err != nil {
		t.Fatalf("bench --tls --tls-ca: %v\n%s", err, out)
	}
	wantReport(t, "bench --tls --tls-ca", out, "Successful:        10\n", "Sold Out:          10\n",
		"Errors:            0\n", "Oversell Check:    ✓ PASS")

	// The name checked is --tls-server-name when given.
	out, err = bench("--tls", "--tls-ca", pki.ca, "--tls-server-name", "localhost")
	if err != nil {
		t.Fatalf("bench --tls-server-name localhost: %v\n%s", err, out)
	}
	wantReport(t, "bench --tls-server-name localhost", out, "Sold Out:          20\n", "Errors:            0\n", "✓ PASS")

	// Every way of not trusting the server fails the run at once, saying
	// why, not a hang.
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"wrong name", []string{"--tls", "--tls-ca", pki.ca, "--tls-server-name", "shop.example"}, "shop.example"},
		{"unknown CA", []string{"--tls", "--tls-ca", pki.otherCA}, "x509"},
		{"system roots", []string{"--tls"}, "x509"},
		{"plain TCP", nil, "add --tls"},
	} {
		out, err := bench(tc.args...)
		if ExitCode(err) != 1 || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), addr) {
			t.Errorf("bench %s: %v (exit %d)\n%s", tc.name, err, ExitCode(err), out)
		}
	}

	out, err = bench("--tls", "--tls-insecure")
	if err != nil {
		t.Fatalf("bench --tls-insecure: %v\n%s", err, out)
	}
	wantReport(t, "bench --tls-insecure", out, "Sold Out:          20\n", "Errors:            0\n", "✓ PASS")
}

func TestTLSFromEnv(t *testing.T) {
	pki := newTestPKI(t)
	raddr := redistest.Addr(t)
	t.Setenv("FLASHSALE_TLS_CERT", pki.serverCert)
	t.Setenv("FLASHSALE_TLS_KEY", pki.serverKey)
	t.Setenv("FLASHSALE_TLS_CLIENT_CA", pki.ca)
	addr := startServe(t, raddr)
	product := redistest.Product(t)
	// bench does not read the server's variables: it needs its own flags.
	out := mustRun(t, "bench", "--addr", addr, "--redis-addr", raddr, "--product", product, "--init", "3",
		"-n", "5", "-c", "2", "--timeout", "2s", "--tls", "--tls-ca", pki.ca,
		"--tls-cert", pki.clientCert, "--tls-key", pki.clientKey)
	wantReport(t, "bench", out, "Successful:        3\n", "Errors:            0\n", "✓ PASS")
}

func TestTLSPlainClient(t *testing.T) {
	pki := newTestPKI(t)
	raddr := redistest.Addr(t)
	addr := startServe(t, raddr, "--tls-cert", pki.serverCert, "--tls-key", pki.serverKey)
	product := redistest.Product(t)
	mustRun(t, "admin", "init", "--redis-addr", raddr, product, "5")

	for name, garbage := range map[string][]byte{
		"protocol frame": purchaseFrame(product, "plain"),
		"bad handshake":  {0x16, 0x03, 0x01, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8},
	} {
		c := dialClient(t, addr)
		c.nc.SetDeadline(time.Now().Add(5 * time.Second))
		c.send(garbage)
		typ, resp, err := c.recv()
		if err == nil {
			t.Errorf("%s: plain client got an answer %s %+v", name, typ, resp)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("%s: the server left the connection open: %v", name, err)
		}
	}

	out := mustRun(t, "bench", "--addr", addr, "--redis-addr", raddr, "--product", product,
		"-n", "10", "-c", "2", "--timeout", "2s", "--tls", "--tls-ca", pki.ca)
	wantReport(t, "bench after plain clients", out, "Successful:        5\n", "Errors:            0\n", "✓ PASS")
}

func TestTLSMutual(t *testing.T) {
	pki := newTestPKI(t)
	raddr := redistest.Addr(t)
	addr := startServe(t, raddr, "--tls-cert", pki.serverCert, "--tls-key", pki.serverKey, "--tls-client-ca", pki.ca)
	product := redistest.Product(t)
	bench := func(extra ...string) (string, error) {
		return runApp(t, append([]string{"bench", "--addr", addr, "--redis-addr", raddr, "--product", product,
			"-n", "6", "-c", "2", "--timeout", "2s", "--tls", "--tls-ca", pki.ca}, extra...)...)
	}
	mustRun(t, "admin", "init", "--redis-addr", raddr, product, "4")

	for name, args := range map[string][]string{
		"no client certificate":          nil,
		"certificate from another CA":    {"--tls-cert", pki.strangerCert, "--tls-key", pki.strangerKey},
		"server certificate as a client": {"--tls-cert", pki.serverCert, "--tls-key", pki.serverKey},
	} {
		start := time.Now()
		out, err := bench(args...)
		if ExitCode(err) != 1 || !strings.Contains(err.Error(), "tls:") || !strings.Contains(err.Error(), addr) {
			t.Errorf("bench, %s: %v (exit %d)\n%s", name, err, ExitCode(err), out)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("bench, %s: took %s", name, d)
		}
	}

	out, err := bench("--tls-cert", pki.clientCert, "--tls-key", pki.clientKey)
	if err != nil {
		t.Fatalf("bench with a client certificate: %v\n%s", err, out)
	}
	wantReport(t, "bench with a client certificate", out, "Successful:        4\n", "Sold Out:          2\n",
		"Errors:            0\n", "✓ PASS")
}

func TestTLSFlagErrors(t *testing.T) {
	pki := newTestPKI(t)
	raddr := redistest.Addr(t)
	missing := filepath.Join(t.TempDir(), "missing.pem")
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	serve := func(args ...string) []string {
		return append([]string{"serve", "--listen", "127.0.0.1:0", "--redis-addr", raddr}, args...)
	}
	bench := func(args ...string) []string {
		return append([]string{"bench", "--addr", "127.0.0.1:1", "--redis-addr", raddr, "-n", "1"}, args...)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string // in the error
	}{
		{serve("--tls-cert", pki.serverCert), 2, "--tls-cert needs --tls-key"},
		{serve("--tls-key", pki.serverKey), 2, "--tls-key needs --tls-cert"},
		{serve("--tls-client-ca", pki.ca), 2, "--tls-client-ca needs --tls-cert and --tls-key"},
		{serve("--tls-cert", missing, "--tls-key", pki.serverKey), 1, missing + ": no such file or directory"},
		{serve("--tls-cert", pki.serverCert, "--tls-key", missing), 1, missing + ": no such file or directory"},
		{serve("--tls-cert", pki.serverCert, "--tls-key", pki.clientKey), 1, "private key does not match public key"},
		{serve("--tls-cert", notPEM, "--tls-key", pki.serverKey), 1, notPEM},
		{serve("--tls-cert", pki.serverCert, "--tls-key", pki.serverKey, "--tls-client-ca", missing), 1, "--tls-client-ca: open " + missing},
		{serve("--tls-cert", pki.serverCert, "--tls-key", pki.serverKey, "--tls-client-ca", notPEM), 1, "--tls-client-ca " + notPEM + ": no PEM certificate"},
		{bench("--tls-ca", pki.ca), 2, "--tls-ca needs --tls"},
		{bench("--tls-insecure"), 2, "--tls-insecure needs --tls"},
		{bench("--tls", "--tls-cert", pki.clientCert), 2, "--tls-cert needs --tls-key"},
		{bench("--tls", "--tls-ca", missing), 1, "--tls-ca: open " + missing},
		{bench("--tls", "--tls-cert", missing, "--tls-key", pki.clientKey), 1, missing},
	} {
		out, err := runApp(t, tc.args...)
		switch {
		case err == nil:
			t.Errorf("%v: no error\n%s", tc.args, out)
		case ExitCode(err) != tc.code || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n"):
			t.Errorf("%v: error %q (exit code %d), want exit code %d and one line with %q", tc.args, err, ExitCode(err), tc.code, tc.want)
		}
	}
}

// syncBuffer is a log sink for several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestTLSHandshakeFailuresLogQuietly runs the engine's server on a mutual
// TLS listener with a debug log: clients that fail the handshake in every
// way are logged at debug level only, and the server goes on serving.
func TestTLSHandshakeFailuresLogQuietly(t *testing.T) {
	pki := newTestPKI(t)
	cert, err := tls.LoadX509KeyPair(pki.serverCert, pki.serverKey)
	if err != nil {
		t.Fatal(err)
	}
	clientCAs, err := certPool("ca", pki.ca)
	if err != nil {
		t.Fatal(err)
	}
	st, err := openStore(context.Background(), zerolog.Nop(), redisSetup{PoolConfig: transport.PoolConfig{Addr: redistest.Addr(t)}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	var logs syncBuffer
	srv := server.New(st.Engine, server.Config{Logger: zerolog.New(&logs).Level(zerolog.DebugLevel)})
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := tcp.Addr().String()
	ln := tls.NewListener(tcp, &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert},
		ClientCAs: clientCAs, ClientAuth: tls.RequireAndVerifyClientCert})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()

	roots, err := certPool("ca", pki.ca)
	if err != nil {
		t.Fatal(err)
	}
	clientCert, err := tls.LoadX509KeyPair(pki.clientCert, pki.clientKey)
	if err != nil {
		t.Fatal(err)
	}
	ping := wire.AppendFrame(nil, wire.TypePing, nil)
	// exchange sends a ping on a fresh connection and reads the answer.
	exchange := func(cfg *tls.Config) (wire.Response, error) {
		d := &net.Dialer{Timeout: 5 * time.Second}
		var nc net.Conn
		var err error
		if cfg == nil {
			nc, err = d.Dial("tcp", addr)
		} else {
			nc, err = tls.DialWithDialer(d, "tcp", addr, cfg)
		}
		if err != nil {
			return wire.Response{}, err
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := nc.Write(ping); err != nil {
			return wire.Response{}, err
		}
		f, err := wire.NewReader(nc, wire.DefaultMaxPayload).Next()
		if err != nil {
			return wire.Response{}, err
		}
		var r wire.Response
		return r, wire.DecodeResponse(f.Payload, &r)
	}
	for name, cfg := range map[string]*tls.Config{
		"plain TCP":             nil,
		"untrusted server":      {ServerName: "localhost"},
		"no client certificate": {RootCAs: roots, ServerName: "localhost"},
		"TLS 1.1": {RootCAs: roots, ServerName: "localhost", Certificates: []tls.Certificate{clientCert},
			MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11},
	} {
		if r, err := exchange(cfg); err == nil {
			t.Errorf("%s: got an answer %+v", name, r)
		}
	}
	r, err := exchange(&tls.Config{RootCAs: roots, ServerName: "localhost", Certificates: []tls.Certificate{clientCert}})
	if err != nil || r.Status != "PONG" {
		t.Errorf("trusted client after the failures: %+v, %v", r, err)
	}
	cancel()
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	out := logs.String()
	for _, level := range []string{`"level":"error"`, `"level":"warn"`, `"level":"fatal"`, `"level":"panic"`} {
		if strings.Contains(out, level) {
			t.Errorf("server logged at %s:\n%s", level, out)
		}
	}
	for _, want := range []string{"first record does not look like a TLS handshake", "didn't provide a certificate", "unsupported versions"} {
		if !strings.Contains(out, want) {
			t.Errorf("server log lacks %q at debug level:\n%s", want, out)
		}
	}
}
