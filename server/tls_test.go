package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/flashsale/flashsale/server"
	"github.com/flashsale/flashsale/wire"
)

// selfSigned returns a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "flashsale test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, roots
}

// TestTLSBothProtocols: behind TLS the protocol is sniffed after the
// handshake, and a client that never finishes its handshake is dropped by
// the handshake deadline.
func TestTLSBothProtocols(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	cert, roots := selfSigned(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	srv := server.New(eng, server.Config{Logger: zerolog.Nop(), HandshakeTimeout: 200 * time.Millisecond, IdleTimeout: time.Hour})
	go func() {
		done <- srv.Serve(ctx, tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}}))
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve returned %v", err)
		}
	})
	id := newProduct(t, eng, 10)
	clientTLS := &tls.Config{RootCAs: roots}

	nc, err := tls.Dial("tcp", addr, clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(testTimeout))
	c := &client{t: t, nc: nc, rd: wire.NewReader(nc, 0)}
	c.send(purchaseFrame(id, "tls-tlv"))
	if r := decodeResponse(t, c.mustNext()); r.Status != "SUCCESS" {
		t.Errorf("TLV over TLS: %+v", r)
	}

	hc := &http.Client{Timeout: testTimeout, Transport: &http.Transport{TLSClientConfig: clientTLS}}
	defer hc.CloseIdleConnections()
	if a := do(t, hc, "POST", "https://"+addr+"/v1/purchase", purchaseJSON(id, "tls-http"), nil); a.code != 200 || a.resp.Status != "SUCCESS" {
		t.Errorf("HTTP over TLS: %d %s", a.code, a.body)
	}

	// A plain TCP connection that never starts its handshake.
	raw := dial(t, addr)
	if n, err := raw.nc.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("a connection without a handshake: read %d bytes, %v; want EOF", n, err)
	}
}
