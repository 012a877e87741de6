package client_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/flashsale/client"
	"github.com/flashsale/flashsale/engine"
)

// Example dials a server, buys one unit and reads the answer.
func Example() {
	addr, product := exampleSale(100)

	ctx := context.Background()
	// Zero Options: plain TCP, 5 s per call, a PING every 15–30 s while idle.
	conn, err := client.Dial(ctx, addr, client.Options{})
	if err != nil {
		log.Fatal(err) // a *client.DialError: nothing was sent
	}
	defer conn.Close()

	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	r, err := conn.Purchase(ctx, client.Request{ProductID: product, UserID: "user_123", RequestID: "c0ffee-1"})
	switch {
	case err != nil:
		// No answer: the outcome is unknown; retry with the same RequestID.
		log.Printf("purchase: %v", err)
	case r.Status == "SUCCESS":
		fmt.Println(r.Status, "quantity", r.Quantity, "remaining", r.RemainingStock)
	default:
		// SOLD_OUT, ALREADY_PURCHASED, ERROR …: answers, not errors.
		fmt.Println("not sold:", r.Status, r.Code, r.Error)
	}
	// Output: SUCCESS quantity 1 remaining 99
}

// ExampleConn_Confirm reserves a unit of a product sold with a hold
// (admin init --hold), then pays for it: the reservation would otherwise
// go back on sale at its expires_at.
func ExampleConn_Confirm() {
	addr, product := exampleSale(10, engine.WithHold(10*time.Minute))
	ctx := context.Background()
	conn, err := client.Dial(ctx, addr, client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	r, err := conn.Purchase(ctx, client.Request{ProductID: product, UserID: "user_123", RequestID: "c0ffee-2"})
	if err != nil || r.Status != "RESERVED" {
		log.Fatalf("purchase: %+v %v", r, err)
	}
	fmt.Println(r.Status, "until", time.UnixMilli(r.ExpiresAt).Sub(time.Now()).Round(time.Minute))
	// ... the customer pays; then, retried with the same order id until
	// an answer comes:
	paid, err := conn.Confirm(ctx, client.OrderRequest{ProductID: product, UserID: "user_123", OrderID: r.OrderID})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(paid.Status)
	// Output:
	// RESERVED until 10m0s
	// PAID
}

// ExampleConn_Purchase_retry retries a purchase with its RequestID, as a
// client does when an answer was lost: the retry gets the original answer
// and takes no second unit.
func ExampleConn_Purchase_retry() {
	addr, product := exampleSale(10)
	ctx := context.Background()
	conn, err := client.Dial(ctx, addr, client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	req := client.Request{ProductID: product, UserID: "user_123", RequestID: "c0ffee-2"}
	first, err := conn.Purchase(ctx, req)
	if err != nil {
		log.Fatal(err)
	}
	// Say that answer never arrived: send the same request again.
	again, err := conn.Purchase(ctx, req)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(first.Status, "remaining", first.RemainingStock)
	fmt.Println(again.Status, "remaining", again.RemainingStock, "same order:", again.OrderID == first.OrderID)

	// The same RequestID for another customer is a mistake, not a retry.
	other, err := conn.Purchase(ctx, client.Request{ProductID: product, UserID: "user_456", RequestID: "c0ffee-2"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(other.Status, other.Code)
	// Output:
	// SUCCESS remaining 9
	// SUCCESS remaining 9 same order: true
	// ERROR REQUEST_ID_REUSED
}

// ExampleConn_concurrent shares one connection between goroutines: their
// purchases are pipelined on it, and each gets its own answer.
func ExampleConn_concurrent() {
	addr, product := exampleSale(5)
	ctx := context.Background()
	conn, err := client.Dial(ctx, addr, client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses = map[string]int{}
	)
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := conn.Purchase(ctx, client.Request{ProductID: product, UserID: fmt.Sprintf("user_%d", i)})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				statuses["no answer"]++
				return
			}
			statuses[r.Status]++
		}()
	}
	wg.Wait()
	for _, s := range slices.Sorted(maps.Keys(statuses)) {
		fmt.Println(s, statuses[s])
	}
	// Output:
	// SOLD_OUT 5
	// SUCCESS 5
}

// ExampleConn_QueryStock asks for a product's state and stock.
func ExampleConn_QueryStock() {
	addr, product := exampleSale(100)
	ctx := context.Background()
	conn, err := client.Dial(ctx, addr, client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	r, err := conn.QueryStock(ctx, product)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %s, %d of %d left, at most %d per customer\n", r.Status, r.State, r.RemainingStock, r.Initial, r.Limit)
	// Output: OK: OPEN, 100 of 100 left, at most 1 per customer
}

// ExampleDial_tls dials a server that serves TLS (serve --tls-cert
// --tls-key), trusting the CA that signed its certificate.
func ExampleDial_tls() {
	addr, roots := exampleTLSServer()
	ctx := context.Background()
	// ServerName defaults to the host of the address; for mutual TLS add
	// the client's certificate: Certificates: []tls.Certificate{cert}.
	conn, err := client.Dial(ctx, addr, client.Options{TLS: &tls.Config{RootCAs: roots}})
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	r, err := conn.Ping(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.Status, "redis", r.Redis)
	// Output: PONG redis up
}

// exampleTB is the testing.TB the examples' servers are started with: an
// example has no *testing.T, and serveOn and the saletest helpers take
// one. A failure stops the test binary; cleanups are dropped, so the
// servers live until it exits (redistest.Main then stops Redis).
type exampleTB struct{ testing.TB }

func (exampleTB) Helper()                      {}
func (exampleTB) Name() string                 { return "Example" }
func (exampleTB) Cleanup(func())               {}
func (exampleTB) Fatal(args ...any)            { log.Fatal(args...) }
func (exampleTB) Fatalf(f string, args ...any) { log.Fatalf(f, args...) }

var examplePlain = sync.OnceValues(func() (string, func(int64, ...engine.InitOption) string) {
	return serveOn(exampleTB{}, func(ln net.Listener) net.Listener { return ln })
})

// exampleSale returns the address of a server on the test Redis and a
// fresh product with units in stock (per-customer limit 1).
func exampleSale(units int64, opts ...engine.InitOption) (addr, product string) {
	addr, newProduct := examplePlain()
	return addr, newProduct(units, opts...)
}

// exampleTLSServer starts a TLS server on the test Redis, with
// net/http/httptest's certificate (valid for 127.0.0.1), and returns its
// address and the pool that trusts it.
func exampleTLSServer() (addr string, roots *x509.CertPool) {
	h := httptest.NewTLSServer(http.NotFoundHandler())
	h.Close()
	roots = x509.NewCertPool()
	roots.AddCert(h.Certificate())
	conf := &tls.Config{Certificates: h.TLS.Certificates}
	addr, _ = serveOn(exampleTB{}, func(ln net.Listener) net.Listener { return tls.NewListener(ln, conf) })
	return addr, roots
}
