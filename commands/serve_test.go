package commands

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/wire"
)

// TestServeConcurrentBuyers is the promise of the product: 1000 buyers over
// 100 connections on 100 units end with exactly 100 sales, everywhere.
func TestServeConcurrentBuyers(t *testing.T) {
	raddr := redistest.Addr(t)
	addr := startServe(t, raddr)
	product := redistest.Product(t)
	mustRun(t, "admin", "init", "--redis-addr", raddr, product, "100")

	// Listen for the events before the sale starts.
	psc := redis.PubSubConn{Conn: redistest.Conn(t, raddr)}
	if err := psc.Subscribe(engine.EventChannel); err != nil {
		t.Fatal(err)
	}
	if _, ok := psc.Receive().(redis.Subscription); !ok {
		t.Fatal("no subscription confirmation")
	}
	events := make(chan map[string]any, 2000)
	go func() {
		for {
			switch m := psc.ReceiveWithTimeout(30 * time.Second).(type) {
			case redis.Message:
				var ev map[string]any
				if json.Unmarshal(m.Data, &ev) == nil && ev["product_id"] == product {
					events <- ev
				}
			case error:
				close(events)
				return
			}
		}
	}()

	const conns, perConn = 100, 10
	var mu sync.Mutex
	counts := map[string]int{}
	buyers := map[string]bool{}
	var wg sync.WaitGroup
	for c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := dialClient(t, addr)
			for i := range perConn {
				user := fmt.Sprintf("u%d_%d", c, i)
				cl.send(purchaseFrame(product, user))
				typ, r, err := cl.recv()
				if err != nil || typ != wire.TypePurchaseResponse {
					t.Errorf("answer: type %v, %v", typ, err)
					return
				}
				mu.Lock()
				counts[r.Status]++
				if r.Status == "SUCCESS" {
					buyers[user] = true
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if counts["SUCCESS"] != 100 || counts["SOLD_OUT"] != 900 || len(counts) != 2 {
		t.Fatalf("answers = %v, want 100 SUCCESS and 900 SOLD_OUT", counts)
	}
	k := engine.KeysFor(product)
	rc := redistest.Conn(t, raddr)
	if stock, _ := redis.String(rc.Do("GET", k.Stock)); stock != "0" {
		t.Errorf("stock = %q, want 0", stock)
	}
	list, _ := redis.Strings(rc.Do("LRANGE", k.Buyers, 0, -1))
	if len(list) != 100 {
		t.Errorf("buyers list has %d entries, want 100", len(list))
	}
	for _, u := range list {
		if !buyers[u] {
			t.Errorf("buyer %q in Redis was never told SUCCESS", u)
		}
	}
	got := 0
	timeout := time.After(10 * time.Second)
	for got < 100 {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("event stream ended after %d events", got)
			}
			if !buyers[ev["buyer"].(string)] {
				t.Errorf("event for %v, who was not told SUCCESS", ev["buyer"])
			}
			got++
		case <-timeout:
			t.Fatalf("received %d events, want 100", got)
		}
	}
	psc.Unsubscribe()
	out := mustRun(t, "admin", "status", "--redis-addr", raddr, product)
	if !strings.Contains(out, "Invariant:         OK") {
		t.Errorf("status after the sale:\n%s", out)
	}
}

// TestServeRecoversFromScriptFlush: Redis forgetting its scripts (a restart
// or SCRIPT FLUSH) is invisible to buyers.
func TestServeRecoversFromScriptFlush(t *testing.T) {
	raddr := redistest.Addr(t)
	addr := startServe(t, raddr)
	product := redistest.Product(t)
	mustRun(t, "admin", "init", "--redis-addr", raddr, product, "10")
	cl := dialClient(t, addr)
	rc := redistest.Conn(t, raddr)
	for i := range 3 {
		if _, err := rc.Do("SCRIPT", "FLUSH"); err != nil {
			t.Fatal(err)
		}
		cl.send(purchaseFrame(product, fmt.Sprint("after-flush-", i)))
		_, r, err := cl.recv()
		if err != nil || r.Status != "SUCCESS" || r.RemainingStock != int64(9-i) {
			t.Fatalf("purchase after SCRIPT FLUSH #%d: %+v, %v", i, r, err)
		}
	}
}

// TestServeBadInput: every kind of bad request gets a clear ERROR, and the
// connection keeps serving, except after an oversized frame.
func TestServeBadInput(t *testing.T) {
	raddr := redistest.Addr(t)
	addr := startServe(t, raddr, "--max-frame-size", "1024")
	product := redistest.Product(t)
	mustRun(t, "admin", "init", "--redis-addr", raddr, product, "5")
	long := strings.Repeat("x", 129)
	never := redistest.Product(t)

	cases := []struct {
		name     string
		frame    []byte
		wantType wire.Type
		want     string
	}{
		{"malformed json", wire.AppendFrame(nil, wire.TypePurchase, []byte(`{"product_id":`)), 0x81, `{"status":"ERROR","code":"INVALID_REQUEST","error":"invalid json"}`},
		{"not an object", wire.AppendFrame(nil, wire.TypePurchase, []byte(`[1,2]`)), 0x81, `{"status":"ERROR","code":"INVALID_REQUEST","error":"invalid json"}`},
		{"empty payload", wire.AppendFrame(nil, wire.TypePurchase, nil), 0x81, `{"status":"ERROR","code":"INVALID_REQUEST","error":"invalid json"}`},
		{"missing product", purchaseFrame("", "u1"), 0x81, `{"status":"ERROR","code":"INVALID_REQUEST","error":"missing product_id"}`},
		{"missing user", purchaseFrame(product, ""), 0x81, `{"status":"ERROR","code":"INVALID_REQUEST","error":"missing user_id"}`},
		{"long product", purchaseFrame(long, "u1"), 0x81, `{"status":"ERROR","code":"INVALID_REQUEST","error":"product_id longer than 128 bytes"}`},
		{"long user", purchaseFrame(product, long), 0x81, `{"status":"ERROR","code":"INVALID_REQUEST","error":"user_id longer than 128 bytes"}`},
		{"hash tag breaker", purchaseFrame("a}b", "u1"), 0x81, `{"status":"ERROR","code":"INVALID_REQUEST","error":"product_id contains a forbidden character"}`},
		{"unknown type", wire.AppendFrame(nil, 0x07, []byte(`{}`)), 0x87, `{"status":"ERROR","code":"UNKNOWN_TYPE","error":"unknown message type 0x07"}`},
		{"unknown product", purchaseFrame(never, "u1"), 0x81, `{"status":"ERROR","code":"UNKNOWN_PRODUCT","error":"unknown product"}`},
		{"still serving", purchaseFrame(product, "u1"), 0x81, `{"status":"SUCCESS","remaining_stock":4,"quantity":1,"order_id":"`},
	}
	// All in one write: the server must answer each, in order.
	cl := dialClient(t, addr)
	var all []byte
	for _, tc := range cases {
		all = append(all, tc.frame...)
	}
	cl.send(all)
	for _, tc := range cases {
		f, err := cl.rd.Next()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if f.Type != tc.wantType || !strings.HasPrefix(string(f.Payload), tc.want) {
			t.Errorf("%s: got 0x%02x %s, want 0x%02x %s", tc.name, byte(f.Type), f.Payload, byte(tc.wantType), tc.want)
		}
	}
	rc := redistest.Conn(t, raddr)
	k := engine.KeysFor(never)
	if n, _ := redis.Int(rc.Do("EXISTS", k.Stock, k.Buyers, k.Meta)); n != 0 {
		t.Errorf("a purchase of an unknown product created %d keys", n)
	}

	t.Run("frame too large", func(t *testing.T) {
		cl := dialClient(t, addr)
		other := dialClient(t, addr)
		cl.send(wire.AppendHeader(nil, wire.TypePurchase, 1<<30), []byte("some of the payload"))
		f, err := cl.rd.Next()
		if err != nil || f.Type != 0x81 || !strings.Contains(string(f.Payload), `"code":"FRAME_TOO_LARGE"`) {
			t.Fatalf("got %v %s, want a FRAME_TOO_LARGE error", err, f.Payload)
		}
		if _, err := cl.rd.Next(); err != io.EOF {
			t.Errorf("after an oversized frame: %v, want the server to close (EOF)", err)
		}
		other.send(purchaseFrame(product, "u2"))
		if _, r, err := other.recv(); err != nil || r.Status != "SUCCESS" {
			t.Errorf("another connection after the oversized frame: %+v %v", r, err)
		}
	})
}

func TestServeFailsFastWithoutRedis(t *testing.T) {
	start := time.Now()
	out, err := runApp(t, "serve", "--listen", "127.0.0.1:0", "--redis-addr", freeAddr(t), "--log-level", "error")
	if err == nil || !strings.Contains(err.Error(), "redis at") || !strings.Contains(err.Error(), "unavailable") {
		t.Fatalf("serve without Redis: %v\n%s", err, out)
	}
	if ExitCode(err) != 1 {
		t.Errorf("exit code %d, want 1", ExitCode(err))
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("took %s to give up", d)
	}
}

// TestServeSoldOutCache: with the sold-out cache on, a sold-out product is
// answered without Redis, and an admin restock reaches the server through
// the control channel (the TTL here is an hour, so nothing else could).
func TestServeSoldOutCache(t *testing.T) {
	raddr := redistest.Addr(t)
	t.Setenv("REDIS_ADDR", raddr)
	addr := startServe(t, raddr, "--soldout-ttl", "1h")
	product := redistest.Product(t)
	mustRun(t, "admin", "init", product, "1")
	cl := dialClient(t, addr)
	buy := func(user string) string {
		t.Helper()
		cl.send(purchaseFrame(product, user))
		_, r, err := cl.recv()
		if err != nil {
			t.Fatal(err)
		}
		return r.Status
	}
	if s := buy("first"); s != "SUCCESS" {
		t.Fatalf("first purchase: %s", s)
	}
	for i := range 50 {
		if s := buy(fmt.Sprint("late", i)); s != "SOLD_OUT" {
			t.Fatalf("after the last unit: %s", s)
		}
	}
	mustRun(t, "admin", "restock", product, "1")
	deadline := time.Now().Add(10 * time.Second)
	for buy("after-restock") != "SUCCESS" {
		if time.Now().After(deadline) {
			t.Fatal("the restock never reached the server's sold-out cache")
		}
		time.Sleep(10 * time.Millisecond)
	}
	verifyOK(t, raddr, product)
}
