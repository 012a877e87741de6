package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/rs/zerolog"

	"github.com/flashsale/flashsale/auth"
	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
	"github.com/flashsale/flashsale/server"
	"github.com/flashsale/flashsale/transport"
	"github.com/flashsale/flashsale/wire"
)

// httpAnswer is one HTTP answer: its status, headers and decoded body.
type httpAnswer struct {
	code   int
	header http.Header
	resp   wire.Response
	body   string
}

// newHTTPClient returns a client that keeps up to conns connections
// alive to one server.
func newHTTPClient(t testing.TB, conns int) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Timeout: testTimeout, Transport: tr}
}

// do sends one request and reads its whole answer.
func do(t testing.TB, c *http.Client, method, url, body string, header map[string]string) httpAnswer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, url, err)
	}
	a := httpAnswer{code: res.StatusCode, header: res.Header, body: string(b)}
	if strings.HasPrefix(a.body, `{"status":`) {
		if err := wire.DecodeResponse(b, &a.resp); err != nil {
			t.Fatalf("%s %s: answer %q: %v", method, url, b, err)
		}
	}
	return a
}

func purchaseJSON(product, user string) string {
	return string(wire.AppendPurchase(nil, wire.PurchaseRequest{ProductID: product, UserID: user}))
}

// TestHTTPStatusTable runs every outcome a purchase can have over real
// HTTP and checks its status code and JSON answer.
func TestHTTPStatusTable(t *testing.T) {
	t.Parallel()
	eng, addr := newEngine(t)
	srv := startServer(t, eng, server.Config{MaxPayload: 512})
	base := "http://" + srv.addr
	c := newHTTPClient(t, 4)
	now := time.Now()
	open := newProduct(t, eng, 1000)
	soldOut := newProduct(t, eng, 0)
	one := newProduct(t, eng, 1, engine.WithPerUserLimit(0))
	limited := newProduct(t, eng, 10)
	do(t, c, "POST", base, purchaseJSON(limited, "holder"), nil)
	upcoming := newProduct(t, eng, 10, engine.WithWindow(now.Add(time.Hour), now.Add(2*time.Hour)))
	ended := newProduct(t, eng, 10, engine.WithWindow(now.Add(-2*time.Hour), now.Add(-time.Hour)))
	do(t, c, "POST", base, `{"product_id":"`+open+`","user_id":"reuser","request_id":"reused-1"}`, nil)
	roomed, soldOutRoom := newProduct(t, eng, 10), newProduct(t, eng, 0)
	for _, id := range []string{roomed, soldOutRoom} {
		if _, err := eng.SetRoom(testContext(t), id, engine.Room{OpensAt: now.Add(time.Hour), Rate: 10}); err != nil {
			t.Fatal(err)
		}
	}
	joinJSON := func(product, user string) string {
		return string(wire.AppendJoin(nil, wire.JoinRequest{ProductID: product, UserID: user}))
	}
	ticket := do(t, c, "POST", base+"/v1/queue/join", joinJSON(roomed, "waiter"), nil).resp.Ticket
	queueStatus := func(product, ticket string) string {
		return "/v1/queue/status?" + url.Values{"product_id": {product}, "ticket": {ticket}}.Encode()
	}

	// Engines that answer the outcomes this one cannot.
	signer, err := auth.NewSigner(bytes.Repeat([]byte("k"), 32))
	if err != nil {
		t.Fatal(err)
	}
	pool, _ := saletest.Pool(t)
	authed := startServer(t, engine.New(pool, engine.WithSigner(signer)), server.Config{})
	rated := startServer(t, eng, server.Config{ConnRate: engine.Rate{Interval: time.Hour, Burst: 1}})
	down := transport.NewPool(transport.PoolConfig{Addr: closedAddr(t), DialTimeout: time.Second, Timeout: 2 * time.Second})
	t.Cleanup(func() { down.Close() })
	unavailable := startServer(t, engine.New(down), server.Config{})
	durability, err := transport.ParseDurability("replicas:1", 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	lonely := transport.NewPool(transport.PoolConfig{Addr: addr, Timeout: 10 * time.Second, Durability: durability})
	t.Cleanup(func() { lonely.Close() })
	if err := lonely.Load(testContext(t), engine.Scripts()...); err != nil {
		t.Fatal(err)
	}
	notDurable := startServer(t, engine.New(lonely), server.Config{})

	tests := []struct {
		name   string
		server string
		method string
		path   string
		body   string
		header map[string]string
		code   int
		status string // the answer's status, or for ERROR its code
	}{
		{"success", base, "POST", "/", purchaseJSON(open, "u1"), nil, 200, "SUCCESS"},
		{"success on /v1/purchase", base, "POST", "/v1/purchase", purchaseJSON(open, "u2"), nil, 200, "SUCCESS"},
		{"text/plain body, as hey sends", base, "POST", "/", purchaseJSON(open, "u3"), map[string]string{"Content-Type": "text/plain"}, 200, "SUCCESS"},
		{"sold out", base, "POST", "/", purchaseJSON(soldOut, "u"), nil, 409, "SOLD_OUT"},
		{"insufficient stock", base, "POST", "/", `{"product_id":"` + one + `","user_id":"u","quantity":2}`, nil, 409, "INSUFFICIENT_STOCK"},
		{"already purchased", base, "POST", "/", purchaseJSON(limited, "holder"), nil, 409, "ALREADY_PURCHASED"},
		{"not started", base, "POST", "/", purchaseJSON(upcoming, "u"), nil, 425, "NOT_STARTED"},
		{"ended", base, "POST", "/", purchaseJSON(ended, "u"), nil, 410, "ENDED"},
		{"unauthorized", "http://" + authed.addr, "POST", "/", purchaseJSON(open, "u4"), nil, 401, "UNAUTHORIZED"},
		{"invalid json", base, "POST", "/", `{"product_id":`, nil, 400, engine.CodeInvalidRequest},
		{"missing user", base, "POST", "/", `{"product_id":"` + open + `"}`, nil, 400, engine.CodeInvalidRequest},
		{"request_id reused", base, "POST", "/", `{"product_id":"` + open + `","user_id":"other","request_id":"reused-1"}`, nil, 400, engine.CodeRequestReused},
		{"Idempotency-Key and request_id differ", base, "POST", "/", `{"product_id":"` + open + `","user_id":"u5","request_id":"a"}`, map[string]string{"Idempotency-Key": "b"}, 400, engine.CodeInvalidRequest},
		{"unknown product", base, "POST", "/", purchaseJSON("no-such-product-"+open, "u"), nil, 404, engine.CodeUnknownProduct},
		{"body too large", base, "POST", "/", `{"product_id":"` + open + `","user_id":"u6"}` + strings.Repeat(" ", 600), nil, 413, engine.CodeFrameTooLarge},
		{"redis down", "http://" + unavailable.addr, "POST", "/", purchaseJSON("p", "u"), nil, 503, engine.CodeUnavailable},
		{"not durable", "http://" + notDurable.addr, "POST", "/", purchaseJSON(open, "u7"), nil, 503, engine.CodeNotDurable},
		{"stock", base, "GET", "/v1/products/" + open, "", nil, 200, "OK"},
		{"stock of an unknown product", base, "GET", "/v1/products/no-such-product-" + open, "", nil, 404, engine.CodeUnknownProduct},
		{"healthz", base, "GET", "/healthz", "", nil, 200, "OK"},
		{"readyz", base, "GET", "/readyz", "", nil, 200, "OK"},
		{"readyz with redis down", "http://" + unavailable.addr, "GET", "/readyz", "", nil, 503, engine.CodeUnavailable},
		{"unknown path", base, "GET", "/nope", "", nil, 404, engine.CodeInvalidRequest},
		{"wrong method", base, "GET", "/v1/purchase", "", nil, 405, engine.CodeInvalidRequest},
		{"GET / without a dashboard", base, "GET", "/", "", nil, 405, engine.CodeInvalidRequest},
		{"queue join", base, "POST", "/v1/queue/join", joinJSON(roomed, "q1"), nil, 200, "WAITING"},
		{"queue status", base, "GET", queueStatus(roomed, ticket), "", nil, 200, "WAITING"},
		{"queue join, sold out", base, "POST", "/v1/queue/join", joinJSON(soldOutRoom, "q2"), nil, 409, "SOLD_OUT"},
		{"purchase without an admission", base, "POST", "/", purchaseJSON(roomed, "q3"), nil, 403, engine.CodeNotAdmitted},
		{"unknown ticket", base, "GET", queueStatus(roomed, "t1.YQ.forged"), "", nil, 403, engine.CodeUnknownTicket},
		{"no room", base, "POST", "/v1/queue/join", joinJSON(open, "q4"), nil, 404, engine.CodeNoRoom},
		{"queue status, no room", base, "GET", queueStatus(open, ticket), "", nil, 404, engine.CodeNoRoom},
		{"queue join, wrong method", base, "GET", "/v1/queue/join", "", nil, 405, engine.CodeInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := do(t, c, tt.method, tt.server+tt.path, tt.body, tt.header)
			got := a.resp.Status
			if got == "ERROR" {
				got = a.resp.Code
			}
			if a.code != tt.code || got != tt.status {
				t.Errorf("%s %s = %d %s, want %d with %s", tt.method, tt.path, a.code, a.body, tt.code, tt.status)
			}
			if ct := a.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			if a.code == 405 && a.header.Get("Allow") == "" {
				t.Errorf("405 without an Allow header")
			}
		})
	}

	t.Run("rate limited", func(t *testing.T) {
		rc := newHTTPClient(t, 1)
		if a := do(t, rc, "POST", "http://"+rated.addr, purchaseJSON(open, "r1"), nil); a.code != 200 {
			t.Fatalf("first purchase = %d %s", a.code, a.body)
		}
		// The same keep-alive connection, over its rate.
		a := do(t, rc, "POST", "http://"+rated.addr, purchaseJSON(open, "r2"), nil)
		if a.code != 429 || a.resp.Status != "RATE_LIMITED" || a.header.Get("Retry-After") != "3600" {
			t.Errorf("second purchase = %d Retry-After %q %s, want 429 RATE_LIMITED, Retry-After 3600", a.code, a.header.Get("Retry-After"), a.body)
		}
	})

	t.Run("the answer is the TLV answer", func(t *testing.T) {
		a := do(t, c, "POST", base, purchaseJSON(one, "tlv-twin"), nil)
		var want wire.Response
		want.Status, want.Has, want.RemainingStock, want.Quantity, want.OrderID = "SUCCESS", wire.FieldRemaining|wire.FieldQuantity, 0, 1, a.resp.OrderID
		if a.body != string(wire.AppendResponse(nil, &want)) {
			t.Errorf("body = %s, want the TLV payload %s", a.body, wire.AppendResponse(nil, &want))
		}
	})

	t.Run("products", func(t *testing.T) {
		a := do(t, c, "GET", base+"/v1/products?limit=1000", "", nil)
		var list struct {
			Products []struct {
				ProductID      string `json:"product_id"`
				Status         string `json:"status"`
				RemainingStock *int64 `json:"remaining_stock"`
			} `json:"products"`
			Truncated *bool `json:"truncated"`
		}
		if err := json.Unmarshal([]byte(a.body), &list); err != nil || a.code != 200 || list.Truncated == nil {
			t.Fatalf("GET /v1/products = %d %s (%v)", a.code, a.body, err)
		}
		found := false
		for _, p := range list.Products {
			if p.ProductID == soldOut {
				found = p.Status == "OK" && p.RemainingStock != nil && *p.RemainingStock == 0
			}
		}
		if !found {
			t.Errorf("GET /v1/products: %s is missing or wrong in %s", soldOut, a.body)
		}
		if a := do(t, c, "GET", base+"/v1/products?limit=1", "", nil); !strings.HasSuffix(a.body, `"truncated":true}`) || strings.Count(a.body, "product_id") != 1 {
			t.Errorf("GET /v1/products?limit=1 = %s, want one product and truncated", a.body)
		}
	})
}

// TestHTTPIdempotencyKey: a retry with the same Idempotency-Key gets the
// original sale, order id included, and sells nothing more.
func TestHTTPIdempotencyKey(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	srv := startServer(t, eng, server.Config{})
	id := newProduct(t, eng, 10, engine.WithPerUserLimit(0))
	c := newHTTPClient(t, 1)
	key := map[string]string{"Idempotency-Key": "order-attempt-42"}
	first := do(t, c, "POST", "http://"+srv.addr+"/v1/purchase", purchaseJSON(id, "buyer"), key)
	again := do(t, c, "POST", "http://"+srv.addr+"/v1/purchase", purchaseJSON(id, "buyer"), key)
	if first.code != 200 || again.code != 200 || first.resp.OrderID == "" || again.resp.OrderID != first.resp.OrderID {
		t.Fatalf("first %d %s, retry %d %s; want one SUCCESS replayed with its order_id", first.code, first.body, again.code, again.body)
	}
	// The header and the body's request_id are one and the same.
	inBody := do(t, c, "POST", "http://"+srv.addr, `{"product_id":"`+id+`","user_id":"buyer","request_id":"order-attempt-42"}`, nil)
	if inBody.resp.OrderID != first.resp.OrderID {
		t.Errorf("request_id in the body: %s, want order %s", inBody.body, first.resp.OrderID)
	}
	if st, err := eng.Status(testContext(t), id); err != nil || st.Remaining != 9 {
		t.Errorf("remaining = %d, %v; want 9", st.Remaining, err)
	}
}

// TestHTTPAndTLVOnOnePort buys over both protocols on one port at once.
func TestHTTPAndTLVOnOnePort(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	srv := startServer(t, eng, server.Config{})
	id := newProduct(t, eng, 40, engine.WithPerUserLimit(0))
	c := newHTTPClient(t, 4)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			tlv := dial(t, srv.addr)
			for j := range 5 {
				tlv.send(purchaseFrame(id, fmt.Sprintf("tlv-%d-%d", i, j)))
				if r := decodeResponse(t, tlv.mustNext()); r.Status != "SUCCESS" {
					t.Errorf("TLV purchase: %+v", r)
				}
			}
		})
		wg.Go(func() {
			for j := range 5 {
				if a := do(t, c, "POST", "http://"+srv.addr, purchaseJSON(id, fmt.Sprintf("http-%d-%d", i, j)), nil); a.code != 200 {
					t.Errorf("HTTP purchase: %d %s", a.code, a.body)
				}
			}
		})
	}
	wg.Wait()
	if st, err := eng.Status(testContext(t), id); err != nil || st.Remaining != 0 {
		t.Errorf("remaining = %d, %v; want 0", st.Remaining, err)
	}
}

// TestHTTPSlowloris: a client that sends its headers a byte at a time is
// dropped by the header timeout (FrameTimeout) long before it is done.
func TestHTTPSlowloris(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	srv := startServer(t, eng, server.Config{FrameTimeout: 300 * time.Millisecond})
	c := dial(t, srv.addr)
	req := "POST / HTTP/1.1\r\nHost: flashsale\r\nX-Slow: " + strings.Repeat("a", 100) + "\r\n\r\n"
	closed := make(chan error, 1)
	// Being dropped is being told 400 (as net/http does on a header
	// timeout) or nothing, then the end of the connection: a FIN, or a
	// reset when the server closed with a byte of ours unread.
	go func() {
		b, err := io.ReadAll(c.nc)
		if errors.Is(err, syscall.ECONNRESET) {
			err = nil
		}
		if len(b) > 0 && !bytes.HasPrefix(b, []byte("HTTP/1.1 400 ")) {
			err = fmt.Errorf("answered %q", b)
		}
		closed <- err
	}()
	for i := range len(req) {
		select {
		case err := <-closed:
			if err != nil {
				t.Fatalf("after %d of %d bytes: %v", i, len(req), err)
			}
			t.Logf("dropped after %d of %d bytes", i, len(req))
			return
		case <-time.After(100 * time.Millisecond):
		}
		if _, err := c.nc.Write([]byte{req[i]}); err != nil {
			t.Logf("dropped after %d of %d bytes: %v", i, len(req), err)
			return
		}
	}
	t.Fatal("the slow client sent its whole request without being dropped")
}

// TestFirstByteDeadline: connections that never send are closed by the
// first-byte deadline, whatever the idle timeout; a connection that sent
// a PING is then kept by the idle timeout, so a buyer can connect early
// and wait for the sale.
func TestFirstByteDeadline(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	srv := startServer(t, eng, server.Config{FirstFrameTimeout: 200 * time.Millisecond, IdleTimeout: time.Hour})
	id := newProduct(t, eng, 10)

	early := dial(t, srv.addr)
	early.send(wire.AppendFrame(nil, wire.TypePing, nil))
	if f := early.mustNext(); f.Type != wire.TypePing.Response() {
		t.Fatalf("PING answer: %#x %s", byte(f.Type), f.Payload)
	}

	const silent = 2000
	var wg sync.WaitGroup
	for range silent {
		wg.Go(func() {
			c := dial(t, srv.addr)
			if n, err := c.nc.Read(make([]byte, 1)); err != io.EOF {
				t.Errorf("a silent connection: read %d bytes, %v; want EOF", n, err)
			}
		})
	}
	wg.Wait()

	// Well past the first-byte deadline, the early buyer is still served.
	early.send(purchaseFrame(id, "early"))
	if r := decodeResponse(t, early.mustNext()); r.Status != "SUCCESS" {
		t.Errorf("the early buyer: %+v", r)
	}
}

// pingTLV opens a TLV connection and waits for a PONG, which proves the
// server took it in.
func pingTLV(t testing.TB, addr string) *client {
	t.Helper()
	c := dial(t, addr)
	c.send(wire.AppendFrame(nil, wire.TypePing, nil))
	if f := c.mustNext(); f.Type != wire.TypePing.Response() {
		t.Fatalf("PING answer: %#x %s", byte(f.Type), f.Payload)
	}
	return c
}

// httpKeepAlive opens a raw connection, gets one HTTP answer on it and
// leaves it open.
func httpKeepAlive(t testing.TB, addr string) net.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(testTimeout))
	if _, err := io.WriteString(nc, "GET /healthz HTTP/1.1\r\nHost: flashsale\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("GET /healthz on a raw connection: %v %v", res, err)
	}
	res.Body.Close()
	return nc
}

// expectBusy reads the BUSY frame of a refused connection, then its end.
func expectBusy(t testing.TB, addr string) {
	t.Helper()
	c := dial(t, addr)
	expectFrame(t, c.mustNext(), wire.ResponseBit, `{"status":"ERROR","code":"BUSY","error":"server busy"}`)
	c.expectEOF()
}

// TestMaxConnsBothProtocols: MaxConns counts TLV and HTTP connections
// together.
func TestMaxConnsBothProtocols(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	srv := startServer(t, eng, server.Config{MaxConns: 3})
	pingTLV(t, srv.addr)
	pingTLV(t, srv.addr)
	h := httpKeepAlive(t, srv.addr)
	expectBusy(t, srv.addr)

	// Once the HTTP connection closes, its place is free again.
	h.Close()
	for deadline := time.Now().Add(testTimeout); ; time.Sleep(20 * time.Millisecond) {
		c := dial(t, srv.addr)
		c.send(wire.AppendFrame(nil, wire.TypePing, nil))
		f, err := c.next()
		c.nc.Close()
		if err == nil && f.Type == wire.TypePing.Response() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection taken in after the HTTP one closed: %#x %s %v", byte(f.Type), f.Payload, err)
		}
	}
}

// TestRefusalFlood: 2,000 connections past MaxConns are each told BUSY,
// without a goroutine each, and logged in a line per second at most, with
// their count.
func TestRefusalFlood(t *testing.T) {
	eng, _ := newEngine(t)
	var logs saletest.SyncBuffer
	srv := startLoggedServer(t, eng, server.Config{MaxConns: 1, Logger: zerolog.New(&logs)})
	pingTLV(t, srv.addr)

	const flood, workers = 2000, 8
	base := runtime.NumGoroutine()
	var peak atomic.Int64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			peak.Store(max(peak.Load(), int64(runtime.NumGoroutine())))
			select {
			case <-stopSampling:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	start := time.Now()
	var busy atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range flood / workers {
				nc, err := net.DialTimeout("tcp", srv.addr, testTimeout)
				if err != nil {
					t.Errorf("worker %d: %v", w, err)
					return
				}
				nc.SetDeadline(time.Now().Add(testTimeout))
				f, err := wire.NewReader(nc, 0).Next()
				nc.Close()
				if err == nil && f.Type == wire.ResponseBit && bytes.Contains(f.Payload, []byte(`"BUSY"`)) {
					busy.Add(1)
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	close(stopSampling)
	<-sampled
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}
	if busy.Load() != flood {
		t.Errorf("%d of %d refused connections got the BUSY frame", busy.Load(), flood)
	}
	// The test's own goroutines: workers, sampler, and one per open client
	// connection at most; the server's refusals add none.
	if extra := peak.Load() - int64(base); extra > 3*workers+20 {
		t.Errorf("goroutines peaked %d above the %d before the flood", extra, base)
	}
	var lines, refused int64
	for line := range strings.SplitSeq(logs.String(), "\n") {
		var entry struct {
			Message string `json:"message"`
			Refused int64  `json:"refused"`
		}
		if json.Unmarshal([]byte(line), &entry) == nil && entry.Refused > 0 {
			lines++
			refused += entry.Refused
		}
	}
	t.Logf("%d refusals in %s: %d log lines, peak goroutines %d (base %d)", flood, took.Round(time.Millisecond), lines, peak.Load(), base)
	if refused != flood {
		t.Errorf("the log counts %d refusals, want %d", refused, flood)
	}
	if maxLines := int64(took/time.Second) + 2; lines > maxLines {
		t.Errorf("%d log lines about refusals in %s, want at most one a second", lines, took)
	}
}

// slowRedis is a Redis whose scripts take delay, and that says when one
// has started.
type slowRedis struct {
	engine.Redis
	delay   time.Duration
	started chan struct{}
}

func (r *slowRedis) Eval(ctx context.Context, s *engine.Script, keysAndArgs ...any) (any, error) {
	select {
	case r.started <- struct{}{}:
	default:
	}
	time.Sleep(r.delay)
	return r.Redis.Eval(ctx, s, keysAndArgs...)
}

// TestHTTPDrain: a shutdown answers the HTTP purchase in flight, then
// Serve returns.
func TestHTTPDrain(t *testing.T) {
	t.Parallel()
	pool, _ := saletest.Pool(t)
	slow := &slowRedis{Redis: pool, delay: 300 * time.Millisecond, started: make(chan struct{}, 1)}
	eng := engine.New(slow)
	id := newProduct(t, engine.New(pool), 10)
	srv := startServer(t, eng, server.Config{})
	c := newHTTPClient(t, 1)
	answered := make(chan httpAnswer, 1)
	go func() { answered <- do(t, c, "POST", "http://"+srv.addr, purchaseJSON(id, "in-flight"), nil) }()
	select {
	case <-slow.started:
	case <-time.After(testTimeout):
		t.Fatal("the purchase never reached Redis")
	}
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}
	if a := <-answered; a.code != 200 || a.resp.Status != "SUCCESS" {
		t.Errorf("the purchase in flight during the shutdown: %d %s, want 200 SUCCESS", a.code, a.body)
	}
}

// TestHTTPLoad: 10,000 purchases over 100 keep-alive connections on 100
// units sell exactly 100, answer the rest 409 SOLD_OUT, and oversell
// nothing.
func TestHTTPLoad(t *testing.T) {
	// Not parallel: it is long, and parallel tests waiting for a slot would
	// run past their deadlines.
	const units, requests, conns = 100, 10000, 100
	pool, addr := saletest.Pool(t)
	// Through the batcher, as serve runs purchases.
	batcher := transport.NewBatcher(pool, transport.BatcherConfig{})
	t.Cleanup(func() { batcher.Close() })
	eng := engine.New(batcher)
	srv := startServer(t, eng, server.Config{})
	id := newProduct(t, eng, units, engine.WithPerUserLimit(0))
	c := newHTTPClient(t, conns)
	body := purchaseJSON(id, "user") // the seed's hey line: one user, many tries
	var next atomic.Int64
	var codes sync.Map
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			for next.Add(1) <= requests {
				res, err := c.Post("http://"+srv.addr, "text/plain", strings.NewReader(body))
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				n, _ := codes.LoadOrStore(res.StatusCode, new(atomic.Int64))
				n.(*atomic.Int64).Add(1)
			}
		})
	}
	wg.Wait()
	got := map[int]int64{}
	codes.Range(func(k, v any) bool { got[k.(int)] = v.(*atomic.Int64).Load(); return true })
	if got[200] != units || got[409] != requests-units || len(got) != 2 {
		t.Errorf("status codes %v, want %d × 200 and %d × 409", got, units, requests-units)
	}
	rc := redistest.Conn(t, addr)
	if stock, err := redis.String(rc.Do("GET", engine.KeysFor(id).Stock)); err != nil || stock != "0" {
		t.Errorf("stock = %q, %v; want \"0\"", stock, err)
	}
	if a, err := eng.Verify(testContext(t), id); err != nil || !a.OK() || a.Sold != units {
		t.Errorf("verify: %+v %v; want OK with %d sold", a, err, units)
	}
}

// TestHTTPDashboardMount: the dashboard is served below /dashboard/ with
// the prefix stripped and answers browsers' GET /, and a stream it
// holds open ends when the server drains, so the drain does not wait for
// it.
func TestHTTPDashboardMount(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	streaming := make(chan struct{})
	dashboard := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/events" {
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			close(streaming)
			<-r.Context().Done()
			return
		}
		fmt.Fprintf(w, "dashboard at %s", r.URL.Path)
	})
	srv := startServer(t, eng, server.Config{Dashboard: dashboard, DrainTimeout: 10 * testTimeout})
	c := newHTTPClient(t, 2)
	base := "http://" + srv.addr
	if a := do(t, c, "GET", base+"/dashboard/app.js", "", nil); a.code != 200 || a.body != "dashboard at /app.js" {
		t.Errorf("GET /dashboard/app.js = %d %q", a.code, a.body)
	}
	browser := map[string]string{"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
	if a := do(t, c, "GET", base+"/", "", browser); a.code != 200 || a.body != "dashboard at /" {
		t.Errorf("a browser's GET / = %d %q, want the dashboard", a.code, a.body)
	}
	if a := do(t, c, "GET", base+"/", "", map[string]string{"Accept": "*/*"}); a.code != 405 {
		t.Errorf("curl's GET / = %d %q, want 405", a.code, a.body)
	}

	res, err := c.Get(base + "/dashboard/events")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	<-streaming
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
}

// TestHTTPStreamOutlivesFrameTimeout: the frame timeout bounds reading a
// request, not a long answer such as the dashboard's event stream.
func TestHTTPStreamOutlivesFrameTimeout(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	const frameTimeout = 100 * time.Millisecond
	cut := make(chan bool, 1)
	stream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			cut <- true
		case <-time.After(5 * frameTimeout):
			cut <- false
		}
	})
	srv := startServer(t, eng, server.Config{Dashboard: stream, FrameTimeout: frameTimeout})
	res, err := newHTTPClient(t, 1).Get("http://" + srv.addr + "/dashboard/events")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if <-cut {
		t.Errorf("the stream's request context ended before 5 × the %s frame timeout", frameTimeout)
	}
}

// TestDecodeErrorsNameTheField: a member the decoder refuses is a 400
// INVALID_REQUEST naming it, over HTTP and TLV alike, and buys nothing.
func TestDecodeErrorsNameTheField(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	srv := startServer(t, eng, server.Config{})
	id := newProduct(t, eng, 10, engine.WithPerUserLimit(0))
	c := newHTTPClient(t, 1)
	tlv := dial(t, srv.addr)
	for _, tt := range []struct{ name, body, error string }{
		{"unknown field", `{"product_id":"` + id + `","user_id":"u","qty":2}`,
			`unknown field \"qty\" (the fields are product_id, user_id, quantity, request_id, token, expires, jwt, admission)`},
		{"quantity as a string", `{"product_id":"` + id + `","user_id":"u","quantity":"2"}`, "quantity: want a number, got a string"},
	} {
		want := `{"status":"ERROR","code":"INVALID_REQUEST","error":"` + tt.error + `"}`
		t.Run(tt.name+" over HTTP", func(t *testing.T) {
			if a := do(t, c, "POST", "http://"+srv.addr, tt.body, nil); a.code != 400 || a.body != want {
				t.Errorf("POST %s = %d %s, want 400 %s", tt.body, a.code, a.body, want)
			}
		})
		t.Run(tt.name+" over TLV", func(t *testing.T) {
			tlv.send(wire.AppendFrame(nil, wire.TypePurchase, []byte(tt.body)))
			expectFrame(t, tlv.mustNext(), wire.TypePurchaseResponse, want)
		})
	}
	if st, err := eng.Status(testContext(t), id); err != nil || st.Remaining != 10 {
		t.Fatalf("after refused requests: remaining %d (%v), want 10", st.Remaining, err)
	}
}
