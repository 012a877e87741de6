package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/flashsale/client"
	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
	"github.com/flashsale/flashsale/server"
	"github.com/flashsale/flashsale/wire"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// serve runs a real server on the test Redis until the test ends.
func serve(t *testing.T) (addr string, product func(units int64, opts ...engine.InitOption) string) {
	t.Helper()
	return serveOn(t, func(ln net.Listener) net.Listener { return ln })
}

// serveOn runs a real server on the test Redis, on a loopback listener
// wrapped by wrap (with TLS, say), until tb ends, and returns its address
// and a maker of fresh products.
func serveOn(tb testing.TB, wrap func(net.Listener) net.Listener) (addr string, product func(units int64, opts ...engine.InitOption) string) {
	tb.Helper()
	eng, _ := saletest.Engine(tb)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.New(eng, server.Config{}).Serve(ctx, wrap(ln)) }()
	tb.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String(), func(units int64, opts ...engine.InitOption) string {
		return saletest.Product(tb, eng, units, opts...)
	}
}

func dial(t *testing.T, addr string, opts client.Options) *client.Conn {
	t.Helper()
	c, err := client.Dial(saletest.Context(t), addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestConn(t *testing.T) {
	addr, product := serve(t)
	ctx := saletest.Context(t)
	id := product(2)
	c := dial(t, addr, client.Options{})
	for _, tc := range []struct {
		name string
		call func() (client.Response, error)
		want string
	}{
		{"ping", func() (client.Response, error) { return c.Ping(ctx) }, "PONG"},
		{"buy", func() (client.Response, error) {
			return c.Purchase(ctx, client.Request{ProductID: id, UserID: "u1"})
		}, "SUCCESS"},
		{"limit", func() (client.Response, error) {
			return c.Purchase(ctx, client.Request{ProductID: id, UserID: "u1"})
		}, "ALREADY_PURCHASED"},
		{"last unit", func() (client.Response, error) {
			return c.Purchase(ctx, client.Request{ProductID: id, UserID: "u2"})
		}, "SUCCESS"},
		{"sold out", func() (client.Response, error) {
			return c.Purchase(ctx, client.Request{ProductID: id, UserID: "u3"})
		}, "SOLD_OUT"},
		{"stock", func() (client.Response, error) { return c.QueryStock(ctx, id) }, "OK"},
		{"unknown product", func() (client.Response, error) { return c.QueryStock(ctx, id+"-none") }, "ERROR"},
	} {
		r, err := tc.call()
		if err != nil || r.Status != tc.want {
			t.Errorf("%s: %+v, %v; want %s", tc.name, r, err, tc.want)
		}
	}
	if r, _ := c.Ping(ctx); r.Redis != "up" {
		t.Errorf("PONG says redis %q", r.Redis)
	}
}

// TestConnOrders reserves, confirms and cancels.
func TestConnOrders(t *testing.T) {
	addr, product := serve(t)
	ctx := saletest.Context(t)
	id := product(2, engine.WithHold(time.Minute))
	c := dial(t, addr, client.Options{})
	a, err := c.Purchase(ctx, client.Request{ProductID: id, UserID: "u1"})
	if err != nil || a.Status != "RESERVED" || a.ExpiresAt == 0 {
		t.Fatalf("purchase = %+v, %v; want RESERVED", a, err)
	}
	b, _ := c.Purchase(ctx, client.Request{ProductID: id, UserID: "u2"})
	for _, tc := range []struct {
		name string
		call func(context.Context, client.OrderRequest) (client.Response, error)
		req  client.OrderRequest
		want string
	}{
		{"confirm", c.Confirm, client.OrderRequest{ProductID: id, UserID: "u1", OrderID: a.OrderID}, "PAID"},
		{"cancel paid", c.Cancel, client.OrderRequest{ProductID: id, UserID: "u1", OrderID: a.OrderID}, "ALREADY_PAID"},
		{"cancel", c.Cancel, client.OrderRequest{ProductID: id, UserID: "u2", OrderID: b.OrderID}, "RELEASED"},
		{"confirm cancelled", c.Confirm, client.OrderRequest{ProductID: id, UserID: "u2", OrderID: b.OrderID}, "RELEASED"},
	} {
		if r, err := tc.call(ctx, tc.req); err != nil || r.Status != tc.want {
			t.Errorf("%s: %+v, %v; want %s", tc.name, r, err, tc.want)
		}
	}
}

// TestConnConcurrent: goroutines sharing one connection each get their own
// answer, and the sale sells exactly its stock.
func TestConnConcurrent(t *testing.T) {
	addr, product := serve(t)
	ctx := saletest.Context(t)
	id := product(50)
	c := dial(t, addr, client.Options{})
	const buyers, each = 40, 10
	var (
		mu       sync.Mutex
		statuses = map[string]int{}
		wg       sync.WaitGroup
	)
	for g := range buyers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				user := fmt.Sprintf("u%d_%d", g, i)
				r, err := c.Purchase(ctx, client.Request{ProductID: id, UserID: user, RequestID: user})
				mu.Lock()
				if err != nil {
					statuses[err.Error()]++
				} else {
					statuses[r.Status]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if statuses["SUCCESS"] != 50 || statuses["SOLD_OUT"] != buyers*each-50 {
		t.Errorf("statuses %v", statuses)
	}
}

// silentServer accepts connections and reads what they send without ever
// answering; pings counts the PING frames it read.
func silentServer(t *testing.T) (addr string, conns <-chan net.Conn, pings <-chan struct{}) {
	t.Helper()
	cc, pc := make(chan net.Conn, 16), make(chan struct{}, 1024)
	addr = saletest.Loopback(t, func(nc net.Conn) {
		cc <- nc
		rd := wire.NewReader(nc, 0)
		for {
			f, err := rd.Next()
			if err != nil {
				return
			}
			if f.Type == wire.TypePing {
				select {
				case pc <- struct{}{}:
				default:
				}
			}
		}
	})
	return addr, cc, pc
}

// TestConnDeadline: a call's context bounds its wait for an answer that
// never comes.
func TestConnDeadline(t *testing.T) {
	addr, _, _ := silentServer(t)
	c := dial(t, addr, client.Options{KeepAlive: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Ping(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Ping on a silent server: %v", err)
	}
}

// TestConnDeadFailsAll: when the connection dies, every waiting call
// fails with ErrClosed, and later calls fail at once.
func TestConnDeadFailsAll(t *testing.T) {
	addr, conns, _ := silentServer(t)
	c := dial(t, addr, client.Options{KeepAlive: -1})
	ctx := saletest.Context(t)
	errs := make(chan error, 10)
	for range 10 {
		go func() {
			_, err := c.Purchase(ctx, client.Request{ProductID: "p", UserID: "u"})
			errs <- err
		}()
	}
	nc := <-conns
	// Let the calls queue, then cut the connection.
	for c.Err() == nil {
		time.Sleep(5 * time.Millisecond)
		if nc != nil {
			nc.Close()
			nc = nil
		}
	}
	for range 10 {
		if err := <-errs; !errors.Is(err, client.ErrClosed) {
			t.Errorf("waiting call: %v", err)
		}
	}
	if _, err := c.Ping(ctx); !errors.Is(err, client.ErrClosed) {
		t.Errorf("call on a dead connection: %v", err)
	}
}

// TestConnKeepAlive: an idle connection pings.
func TestConnKeepAlive(t *testing.T) {
	addr, _, pings := silentServer(t)
	dial(t, addr, client.Options{KeepAlive: 20 * time.Millisecond})
	select {
	case <-pings:
	case <-time.After(saletest.Timeout):
		t.Fatal("no keepalive PING")
	}
}

func TestDialError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = client.Dial(saletest.Context(t), addr, client.Options{})
	var de *client.DialError
	if !errors.As(err, &de) || de.Addr != addr {
		t.Errorf("Dial to a closed port: %v", err)
	}
}
