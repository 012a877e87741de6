package server_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/server"
	"github.com/flashsale/flashsale/transport"
	"github.com/flashsale/flashsale/wire"
)

// testServer is a Server running on a loopback listener.
type testServer struct {
	addr     string
	cancel   context.CancelFunc
	done     chan error    // receives Serve's result
	accepted chan struct{} // receives once per accepted connection (up to its buffer)
	once     sync.Once
	err      error
}

// acceptCounter is a listener that announces every connection it accepts.
type acceptCounter struct {
	net.Listener
	accepted chan struct{}
}

func (l *acceptCounter) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err == nil {
		select {
		case l.accepted <- struct{}{}:
		default:
		}
	}
	return nc, err
}

// waitAccepted waits until the server has accepted n more connections.
func (s *testServer) waitAccepted(t testing.TB, n int) {
	t.Helper()
	for range n {
		select {
		case <-s.accepted:
		case <-time.After(testTimeout):
			t.Fatal("the server did not accept the connections")
		}
	}
}

// startServer runs a Server for eng with cfg until the test ends; it logs
// nothing.
func startServer(t testing.TB, eng *engine.Engine, cfg server.Config) *testServer {
	t.Helper()
	cfg.Logger = zerolog.Nop()
	return startLoggedServer(t, eng, cfg)
}

// startLoggedServer is startServer with cfg.Logger as it is.
func startLoggedServer(t testing.TB, eng *engine.Engine, cfg server.Config) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &testServer{addr: ln.Addr().String(), cancel: cancel, done: make(chan error, 1), accepted: make(chan struct{}, 1024)}
	srv := server.New(eng, cfg)
	go func() { s.done <- srv.Serve(ctx, &acceptCounter{Listener: ln, accepted: s.accepted}) }()
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("Serve returned %v", err)
		}
	})
	return s
}

// stop cancels Serve's context and returns what Serve returned.
func (s *testServer) stop() error {
	s.once.Do(func() {
		s.cancel()
		select {
		case s.err = <-s.done:
		case <-time.After(testTimeout):
			s.err = errors.New("Serve did not return after its context was cancelled")
		}
	})
	return s.err
}

// client is a test's side of one connection. Its socket has a deadline,
// so a server bug fails the test instead of hanging it.
type client struct {
	t  testing.TB
	nc net.Conn
	rd *wire.Reader
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(testTimeout))
	t.Cleanup(func() { nc.Close() })
	return &client{t: t, nc: nc, rd: wire.NewReader(nc, 0)}
}

// send writes b in one write.
func (c *client) send(b []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// next reads one frame; its payload is a copy.
func (c *client) next() (wire.Frame, error) {
	f, err := c.rd.Next()
	f.Payload = bytes.Clone(f.Payload)
	return f, err
}

// mustNext reads one frame and fails the test on error.
func (c *client) mustNext() wire.Frame {
	c.t.Helper()
	f, err := c.next()
	if err != nil {
		c.t.Fatalf("reading answer: %v", err)
	}
	return f
}

// expectEOF checks that the server closed the connection cleanly, after a
// whole frame.
func (c *client) expectEOF() {
	c.t.Helper()
	if f, err := c.next(); err != io.EOF {
		c.t.Fatalf("after the last answer: frame %#x %q, err %v; want io.EOF", byte(f.Type), f.Payload, err)
	}
}

func purchaseFrame(product, user string) []byte {
	return wire.AppendFrame(nil, wire.TypePurchase, wire.AppendPurchase(nil, wire.PurchaseRequest{ProductID: product, UserID: user}))
}

// expectFrame checks a frame's type and exact payload.
func expectFrame(t testing.TB, f wire.Frame, typ wire.Type, payload string) {
	t.Helper()
	if f.Type != typ || string(f.Payload) != payload {
		t.Errorf("answer = %#x %s, want %#x %s", byte(f.Type), f.Payload, byte(typ), payload)
	}
}

// successPayload is the exact answer to a sale of one unit.
func successPayload(remaining int64, orderID string) string {
	return fmt.Sprintf(`{"status":"SUCCESS","remaining_stock":%d,"quantity":1,"order_id":%q}`, remaining, orderID)
}

// expectSuccess checks that f answers a sale of one unit leaving remaining
// units, with a well-formed order id, and returns the order id.
func expectSuccess(t testing.TB, f wire.Frame, remaining int64) string {
	t.Helper()
	r := decodeResponse(t, f)
	if err := engine.ValidateOrderID(r.OrderID); err != nil {
		t.Errorf("answer %s: %v", f.Payload, err)
	}
	expectFrame(t, f, wire.TypePurchaseResponse, successPayload(remaining, r.OrderID))
	return r.OrderID
}

func decodeResponse(t testing.TB, f wire.Frame) wire.Response {
	t.Helper()
	if f.Type != wire.TypePurchaseResponse {
		t.Fatalf("answer type %#x, want %#x", byte(f.Type), byte(wire.TypePurchaseResponse))
	}
	var r wire.Response
	if err := wire.DecodeResponse(f.Payload, &r); err != nil {
		t.Fatalf("answer %q: %v", f.Payload, err)
	}
	return r
}

func TestServerPurchase(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	srv := startServer(t, eng, server.Config{})
	tests := []struct {
		name    string
		units   int64 // -1: product never initialised
		user    string
		payload string // "" for a sale of one unit
	}{
		{"success", 5, "alice", ""},
		{"last unit", 1, "alice", ""},
		{"sold out", 0, "alice", `{"status":"SOLD_OUT"}`},
		{"unknown product", -1, "alice", `{"status":"ERROR","code":"UNKNOWN_PRODUCT","error":"unknown product"}`},
		{"invalid user", 5, "a\x01b", `{"status":"ERROR","code":"INVALID_REQUEST","error":"user_id contains a forbidden character"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id := redistest.Product(t)
			if tt.units >= 0 {
				id = newProduct(t, eng, tt.units)
			}
			c := dial(t, srv.addr)
			c.send(purchaseFrame(id, tt.user))
			if tt.payload == "" {
				expectSuccess(t, c.mustNext(), tt.units-1)
				return
			}
			expectFrame(t, c.mustNext(), wire.TypePurchaseResponse, tt.payload)
		})
	}
}

func TestServerPipelining(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	tests := []struct {
		name        string
		maxInFlight int
	}{
		{"default window", 0},
		{"window of 1", 1},
		{"window of 3", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			testPipelining(t, eng, server.Config{MaxInFlight: tt.maxInFlight})
		})
	}
}

// testPipelining sends 50 mixed frames in one write and checks the 50
// answers, in order.
func testPipelining(t *testing.T, eng *engine.Engine, cfg server.Config) {
	const units = 1000
	srv := startServer(t, eng, cfg)
	id := newProduct(t, eng, units)

	const invalidJSON = `{"status":"ERROR","code":"INVALID_REQUEST","error":"invalid json"}`
	malformed := []struct{ payload, answer string }{
		{`{bad`, invalidJSON}, {``, invalidJSON}, {`null`, invalidJSON}, {`[]`, invalidJSON}, {`"x"`, invalidJSON},
		{`{"product_id":1,"user_id":"u"}`, `{"status":"ERROR","code":"INVALID_REQUEST","error":"product_id: want a string, got a number"}`},
		{`{"product_id":"p"} trailing`, invalidJSON},
	}
	type want struct {
		typ     wire.Type
		payload string // exact answer; "" for a purchase that must succeed
	}
	var stream []byte
	var wants []want
	valid := 0
	for i := range 50 {
		switch i % 5 {
		case 0:
			m := malformed[(i/5)%len(malformed)]
			stream = wire.AppendFrame(stream, wire.TypePurchase, []byte(m.payload))
			wants = append(wants, want{wire.TypePurchaseResponse, m.answer})
		case 1:
			stream = wire.AppendFrame(stream, 0x07, []byte(`{"product_id":"p","user_id":"u"}`))
			wants = append(wants, want{0x87, `{"status":"ERROR","code":"UNKNOWN_TYPE","error":"unknown message type 0x07"}`})
		case 2:
			stream = wire.AppendFrame(stream, wire.TypePurchase, []byte(`{"product_id":"`+id+`"}`))
			wants = append(wants, want{wire.TypePurchaseResponse, `{"status":"ERROR","code":"INVALID_REQUEST","error":"missing user_id"}`})
		default:
			stream = append(stream, purchaseFrame(id, fmt.Sprintf("user_%d", i))...)
			wants = append(wants, want{wire.TypePurchaseResponse, ""})
			valid++
		}
	}

	c := dial(t, srv.addr)
	c.send(stream)
	var remaining []int64
	for i, w := range wants {
		f := c.mustNext()
		if w.payload != "" {
			expectFrame(t, f, w.typ, w.payload)
			continue
		}
		r := decodeResponse(t, f)
		if r.Status != "SUCCESS" || r.Has&wire.FieldRemaining == 0 {
			t.Errorf("answer %d = %s, want SUCCESS", i, f.Payload)
		}
		expectFrame(t, f, wire.TypePurchaseResponse, successPayload(r.RemainingStock, r.OrderID))
		remaining = append(remaining, r.RemainingStock)
	}
	slices.Sort(remaining)
	for i, r := range remaining {
		if want := int64(units - valid + i); r != want {
			t.Fatalf("remaining stocks = %v, want %d..%d", remaining, units-valid, units-1)
		}
	}

	// The connection still serves after the bad frames.
	c.send(purchaseFrame(id, "after"))
	expectSuccess(t, c.mustNext(), int64(units-valid-1))
	st, err := eng.Status(testContext(t), id)
	if err != nil || st.Sold() != int64(valid+1) || !st.Consistent() {
		t.Errorf("Status = %+v, %v; want %d sold, consistent", st, err, valid+1)
	}
}

func TestServerFrameTooLarge(t *testing.T) {
	t.Parallel()
	const maxPayload = 1024
	eng, _ := newEngine(t)
	srv := startServer(t, eng, server.Config{MaxPayload: maxPayload})
	id := newProduct(t, eng, 1000)

	header := func(typ wire.Type, n uint32) []byte {
		return binary.BigEndian.AppendUint32([]byte{byte(typ)}, n)
	}
	tooLarge := func(n uint32) string {
		return fmt.Sprintf(`{"status":"ERROR","code":"FRAME_TOO_LARGE","error":"frame too large: %d bytes, limit %d"}`, n, maxPayload)
	}
	tests := []struct {
		name    string
		stream  []byte
		answers []string // "" for a SUCCESS of any remaining stock
		typ     wire.Type
	}{
		{"1 MiB announced with some bytes", append(header(wire.TypePurchase, 1<<20), strings.Repeat("x", 100)...), []string{tooLarge(1 << 20)}, 0x81},
		{"4 GiB announced, no payload", header(wire.TypePurchase, 0xFFFFFFFF), []string{tooLarge(0xFFFFFFFF)}, 0x81},
		{"one byte over the limit", header(wire.TypePurchase, maxPayload+1), []string{tooLarge(maxPayload + 1)}, 0x81},
		{"unknown type", header(0x07, 1<<20), []string{tooLarge(1 << 20)}, 0x87},
		{"after a valid request", append(purchaseFrame(id, "first"), header(wire.TypePurchase, 1<<20)...), []string{"", tooLarge(1 << 20)}, 0x81},
	}

	// A connection opened before, and still open during, the bad frames.
	bystander := dial(t, srv.addr)
	bystander.send(purchaseFrame(id, "bystander_before"))
	if r := decodeResponse(t, bystander.mustNext()); r.Status != "SUCCESS" {
		t.Fatalf("bystander = %+v", r)
	}

	t.Run("cases", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				c := dial(t, srv.addr)
				c.send(tt.stream)
				for i, want := range tt.answers {
					f := c.mustNext()
					if want == "" {
						if r := decodeResponse(t, f); r.Status != "SUCCESS" {
							t.Errorf("answer %d = %s, want SUCCESS", i, f.Payload)
						}
						continue
					}
					expectFrame(t, f, tt.typ, want)
				}
				c.expectEOF()
			})
		}
	})

	t.Run("limit itself is accepted", func(t *testing.T) {
		p := wire.AppendPurchase(nil, wire.PurchaseRequest{ProductID: id, UserID: "at_limit"})
		p = append(p, strings.Repeat(" ", maxPayload-len(p))...)
		c := dial(t, srv.addr)
		c.send(wire.AppendFrame(nil, wire.TypePurchase, p))
		if r := decodeResponse(t, c.mustNext()); r.Status != "SUCCESS" {
			t.Errorf("payload of exactly %d bytes: %+v, want SUCCESS", maxPayload, r)
		}
	})

	// Other connections are unaffected: the old one and a new one.
	bystander.send(purchaseFrame(id, "bystander_after"))
	if r := decodeResponse(t, bystander.mustNext()); r.Status != "SUCCESS" {
		t.Errorf("bystander after the bad frames = %+v, want SUCCESS", r)
	}
	fresh := dial(t, srv.addr)
	fresh.send(purchaseFrame(id, "fresh"))
	if r := decodeResponse(t, fresh.mustNext()); r.Status != "SUCCESS" {
		t.Errorf("new connection after the bad frames = %+v, want SUCCESS", r)
	}
}

// TestServerHugeHeaderDoesNotAllocate is not parallel, so the allocation
// count is (nearly) the server's own.
func TestServerHugeHeaderDoesNotAllocate(t *testing.T) {
	eng, _ := newEngine(t)
	srv := startServer(t, eng, server.Config{})

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 4 {
		c := dial(t, srv.addr)
		c.send([]byte{byte(wire.TypePurchase), 0xFF, 0xFF, 0xFF, 0xFF})
		f := c.mustNext()
		if r := decodeResponse(t, f); r.Code != engine.CodeFrameTooLarge {
			t.Errorf("answer = %s, want FRAME_TOO_LARGE", f.Payload)
		}
		c.expectEOF()
	}
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > 256<<20 {
		t.Errorf("answering 4 oversized headers allocated %d MiB", d>>20)
	}
}

func TestServerConcurrentConnections(t *testing.T) {
	t.Parallel()
	const units, conns, perConn = 100, 100, 10
	eng, addr := newEngine(t)
	// 1,000 purchases at once: on the embedded store (a Lua interpreter in
	// this process, under -race, beside every other package's tests) they
	// can take longer than the default 2 s request timeout, and this test
	// is about concurrent connections, not timeouts.
	srv := startServer(t, eng, server.Config{RequestTimeout: testTimeout})
	id := newProduct(t, eng, units)

	type answer struct {
		user string
		resp wire.Response
	}
	answers := make([][]answer, conns)
	errs := make(chan error, conns)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() {
			nc, err := net.DialTimeout("tcp", srv.addr, testTimeout)
			if err != nil {
				errs <- err
				return
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(testTimeout))
			var stream []byte
			var users []string
			for j := range perConn {
				u := fmt.Sprintf("user_%d_%d", i, j)
				users = append(users, u)
				stream = append(stream, purchaseFrame(id, u)...)
			}
			if _, err := nc.Write(stream); err != nil {
				errs <- err
				return
			}
			rd := wire.NewReader(nc, 0)
			for _, u := range users {
				f, err := rd.Next()
				if err != nil {
					errs <- fmt.Errorf("conn %d: %w", i, err)
					return
				}
				var r wire.Response
				if f.Type != wire.TypePurchaseResponse || wire.DecodeResponse(f.Payload, &r) != nil {
					errs <- fmt.Errorf("conn %d: bad answer %#x %q", i, byte(f.Type), f.Payload)
					return
				}
				answers[i] = append(answers[i], answer{u, r})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}

	var remaining []int64
	winners := make(map[string]bool)
	for _, as := range answers {
		for _, a := range as {
			switch a.resp.Status {
			case "SUCCESS":
				remaining = append(remaining, a.resp.RemainingStock)
				winners[a.user] = true
			case "SOLD_OUT":
			default:
				t.Errorf("%s: %+v", a.user, a.resp)
			}
		}
	}
	checkSoldOut(t, addr, id, units, remaining, winners)
}

func TestServerShutdown(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)

	t.Run("idle connection", func(t *testing.T) {
		t.Parallel()
		srv := startServer(t, eng, server.Config{})
		c := dial(t, srv.addr)
		// Make sure the connection was accepted before shutting down.
		c.send(purchaseFrame(redistest.Product(t), "u"))
		c.mustNext()
		if err := srv.stop(); err != nil {
			t.Fatalf("Serve = %v, want nil", err)
		}
		c.expectEOF()
		if nc, err := net.DialTimeout("tcp", srv.addr, time.Second); err == nil {
			nc.Close()
			t.Error("the listener still accepts after shutdown")
		}
	})

	tests := []struct {
		name        string
		units       int64
		conns       int
		perConn     int
		maxInFlight int
	}{
		// Padded requests overflow the server's read buffer, and a tiny
		// in-flight window keeps it reading while the shutdown starts,
		// so usually some requests are never read.
		{"slow reader", 150, 4, 50, 2},
		{"default window", 150, 4, 50, 0},
		{"plenty of stock", 1000, 2, 100, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, eng, server.Config{MaxInFlight: tt.maxInFlight})
			id := newProduct(t, eng, tt.units)

			clients := make([]*client, tt.conns)
			for i := range clients {
				clients[i] = dial(t, srv.addr)
				var stream []byte
				for j := range tt.perConn {
					p := wire.AppendPurchase(nil, wire.PurchaseRequest{ProductID: id, UserID: fmt.Sprintf("user_%d_%d", i, j)})
					p = append(p, strings.Repeat(" ", 400)...)
					stream = wire.AppendFrame(stream, wire.TypePurchase, p)
				}
				clients[i].send(stream)
			}

			type outcome struct {
				success, other int
				err            error
			}
			outcomes := make([]outcome, tt.conns)
			first := make(chan struct{}, tt.conns)
			var wg sync.WaitGroup
			for i, c := range clients {
				wg.Go(func() {
					o := &outcomes[i]
					for {
						f, err := c.next()
						if err != nil {
							o.err = err
							return
						}
						var r wire.Response
						if f.Type != wire.TypePurchaseResponse || wire.DecodeResponse(f.Payload, &r) != nil {
							o.err = fmt.Errorf("bad answer %#x %q", byte(f.Type), f.Payload)
							return
						}
						switch r.Status {
						case "SUCCESS":
							o.success++
						case "SOLD_OUT":
							o.other++
						default:
							o.err = fmt.Errorf("answer %s", f.Payload)
							return
						}
						select {
						case first <- struct{}{}:
						default:
						}
					}
				})
			}

			// Connections still in the listen backlog when the listener
			// closes are reset by the kernel; the server owes answers
			// only on those it accepted.
			srv.waitAccepted(t, tt.conns)
			<-first // answers are arriving: shut down now
			if err := srv.stop(); err != nil {
				t.Errorf("Serve = %v, want nil", err)
			}
			wg.Wait()

			var success, answered int
			for i, o := range outcomes {
				if o.err != io.EOF {
					t.Errorf("connection %d ended with %v after %d answers, want io.EOF after whole frames", i, o.err, o.success+o.other)
				}
				if n := o.success + o.other; n > tt.perConn {
					t.Errorf("connection %d: %d answers to %d requests", i, n, tt.perConn)
				}
				success += o.success
				answered += o.success + o.other
			}
			st, err := eng.Status(testContext(t), id)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d of %d requests answered before the shutdown, %d sold", answered, tt.conns*tt.perConn, st.Sold())
			if st.Sold() != int64(success) {
				t.Errorf("Redis sold %d units, clients were told SUCCESS %d times", st.Sold(), success)
			}
			if !st.Consistent() {
				t.Errorf("inconsistent after shutdown: %+v", st)
			}
		})
	}
}

func TestServerRedisUnavailable(t *testing.T) {
	t.Parallel()
	pool := transport.NewPool(transport.PoolConfig{Addr: closedAddr(t), DialTimeout: time.Second, Timeout: 2 * time.Second})
	t.Cleanup(func() { pool.Close() })
	srv := startServer(t, engine.New(pool), server.Config{})
	c := dial(t, srv.addr)
	c.send(append(purchaseFrame("p", "u"), purchaseFrame("p", "")...))
	expectFrame(t, c.mustNext(), wire.TypePurchaseResponse, `{"status":"ERROR","code":"UNAVAILABLE","error":"redis unavailable"}`)
	// Validation needs no Redis.
	expectFrame(t, c.mustNext(), wire.TypePurchaseResponse, `{"status":"ERROR","code":"INVALID_REQUEST","error":"missing user_id"}`)
}

func TestServeReturnsListenerError(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- server.New(eng, server.Config{Logger: zerolog.Nop()}).Serve(context.Background(), ln)
	}()
	ln.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Serve after its listener closed = %v, want net.ErrClosed", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Serve did not return after its listener closed")
	}
}

func TestServerClientHalfClose(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	srv := startServer(t, eng, server.Config{})
	id := newProduct(t, eng, 10)

	// A client that sends its requests and then closes its side still
	// gets every answer, then EOF.
	c := dial(t, srv.addr)
	var stream []byte
	for i := range 5 {
		stream = append(stream, purchaseFrame(id, fmt.Sprint("u", i))...)
	}
	c.send(stream)
	if err := c.nc.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if r := decodeResponse(t, c.mustNext()); r.Status != "SUCCESS" {
			t.Errorf("answer = %+v, want SUCCESS", r)
		}
	}
	c.expectEOF()
}

func TestServerTruncatedFrame(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	srv := startServer(t, eng, server.Config{})
	id := newProduct(t, eng, 10)

	// A request cut in the middle is not a request: nothing is sold and the
	// whole ones before it are answered.
	c := dial(t, srv.addr)
	whole := purchaseFrame(id, "whole")
	cut := purchaseFrame(id, "cut")
	c.send(append(whole, cut[:len(cut)-3]...))
	if err := c.nc.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if r := decodeResponse(t, c.mustNext()); r.Status != "SUCCESS" {
		t.Errorf("answer = %+v, want SUCCESS", r)
	}
	c.expectEOF()
	total, buyers, err := eng.Buyers(testContext(t), id, 0)
	if err != nil || total != 1 || !slices.Equal(buyers, []string{"whole"}) {
		t.Errorf("Buyers = %d %q %v, want only \"whole\"", total, buyers, err)
	}
}
