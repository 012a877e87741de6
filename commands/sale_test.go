package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/transport"
	"github.com/flashsale/flashsale/wire"
)

// The rules of a real sale (issue 3), each under concurrency, through the
// real server and a real Redis.

func purchase(req wire.PurchaseRequest) []byte {
	return wire.AppendFrame(nil, wire.TypePurchase, wire.AppendPurchase(nil, req))
}

// buy sends one purchase and returns the raw payload of its answer.
func (c *rawClient) buy(req wire.PurchaseRequest) (string, error) {
	c.send(purchase(req))
	f, err := c.rd.Next()
	return string(f.Payload), err
}

// hammer sends reqs over conns connections, one request in flight per
// connection, and returns every answer.
func hammer(t *testing.T, addr string, conns int, reqs []wire.PurchaseRequest) []wire.Response {
	t.Helper()
	answers := make([]wire.Response, len(reqs))
	var wg sync.WaitGroup
	for c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := dialClient(t, addr)
			for i := c; i < len(reqs); i += conns {
				cl.send(purchase(reqs[i]))
				_, r, err := cl.recv()
				if err != nil {
					t.Errorf("request %d: %v", i, err)
					return
				}
				answers[i] = r
			}
		}()
	}
	wg.Wait()
	return answers
}

func countStatuses(answers []wire.Response) map[string]int {
	n := map[string]int{}
	for _, a := range answers {
		n[a.Status]++
	}
	return n
}

// verifyOK runs admin verify on product and fails the test unless it is OK.
func verifyOK(t *testing.T, raddr, product string) {
	t.Helper()
	if out, err := runApp(t, "admin", "verify", "--redis-addr", raddr, product); err != nil {
		t.Fatalf("admin verify %s: %v\n%s", product, err, out)
	}
}

// streamSales counts the sale entries of the orders stream, by order id.
func streamSales(t *testing.T, raddr, product string) map[string]string {
	t.Helper()
	rc := redistest.Conn(t, raddr)
	entries, err := redis.Values(rc.Do("XRANGE", engine.KeysFor(product).Orders, "-", "+"))
	if err != nil {
		t.Fatal(err)
	}
	sales := map[string]string{}
	for _, e := range entries {
		var id string
		var fields map[string]string
		parts := e.([]any)
		id, _ = redis.String(parts[0], nil)
		fields, _ = redis.StringMap(parts[1], nil)
		if fields["type"] == "sale" {
			sales[id] = fields["user_id"]
		}
	}
	return sales
}

func TestSalePerUserLimit(t *testing.T) {
	raddr := redistest.Addr(t)
	addr := startServe(t, raddr)
	p := redistest.Product(t)
	mustRun(t, "admin", "init", "--redis-addr", raddr, "--per-user-limit", "1", p, "100")
	reqs := make([]wire.PurchaseRequest, 1000)
	for i := range reqs {
		reqs[i] = wire.PurchaseRequest{ProductID: p, UserID: fmt.Sprint("cust-", i%50)}
	}
	answers := hammer(t, addr, 100, reqs)
	got := countStatuses(answers)
	if got["SUCCESS"] != 50 || got["ALREADY_PURCHASED"] != 950 {
		t.Fatalf("answers = %v, want 50 SUCCESS and 950 ALREADY_PURCHASED", got)
	}
	winners := map[string]bool{}
	for i, a := range answers {
		switch a.Status {
		case "SUCCESS":
			if winners[reqs[i].UserID] {
				t.Errorf("%s bought twice", reqs[i].UserID)
			}
			winners[reqs[i].UserID] = true
		case "ALREADY_PURCHASED":
			if a.Held != 1 || a.Limit != 1 || a.Has&(wire.FieldHeld|wire.FieldLimit) == 0 {
				t.Errorf("ALREADY_PURCHASED answer %+v, want held 1 limit 1", a)
			}
		}
	}
	if n := len(streamSales(t, raddr, p)); n != 50 {
		t.Errorf("orders stream has %d sales, want 50", n)
	}
	verifyOK(t, raddr, p)

	t.Run("limit of 3 with quantities", func(t *testing.T) {
		p := redistest.Product(t)
		mustRun(t, "admin", "init", "--redis-addr", raddr, "--per-user-limit", "3", p, "10")
		cl := dialClient(t, addr)
		steps := []struct {
			qty  int64
			want string
		}{
			{2, `{"status":"SUCCESS","remaining_stock":8,"quantity":2,"order_id":`},
			{2, `{"status":"ALREADY_PURCHASED","held":2,"limit":3}`},
			{1, `{"status":"SUCCESS","remaining_stock":7,"quantity":1,"order_id":`},
			{1, `{"status":"ALREADY_PURCHASED","held":3,"limit":3}`},
		}
		for i, st := range steps {
			if got, err := cl.buy(wire.PurchaseRequest{ProductID: p, UserID: "ann", Quantity: st.qty}); err != nil || !strings.HasPrefix(got, st.want) {
				t.Fatalf("step %d: %s %v, want %s", i, got, err, st.want)
			}
		}
		verifyOK(t, raddr, p)
	})

	t.Run("unlimited", func(t *testing.T) {
		p := redistest.Product(t)
		mustRun(t, "admin", "init", "--redis-addr", raddr, "--per-user-limit", "0", p, "5")
		reqs := make([]wire.PurchaseRequest, 20)
		for i := range reqs {
			reqs[i] = wire.PurchaseRequest{ProductID: p, UserID: "whale"}
		}
		got := countStatuses(hammer(t, addr, 10, reqs))
		if got["SUCCESS"] != 5 || got["SOLD_OUT"] != 15 {
			t.Errorf("answers = %v, want 5 SUCCESS 15 SOLD_OUT", got)
		}
		verifyOK(t, raddr, p)
	})
}

func TestSaleQuantityAllOrNothing(t *testing.T) {
	raddr := redistest.Addr(t)
	addr := startServe(t, raddr)
	p := redistest.Product(t)
	mustRun(t, "admin", "init", "--redis-addr", raddr, "--per-user-limit", "0", p, "5")
	cl := dialClient(t, addr)
	steps := []struct {
		req  wire.PurchaseRequest
		want string
	}{
		{wire.PurchaseRequest{ProductID: p, UserID: "a", Quantity: 3}, `{"status":"SUCCESS","remaining_stock":2,"quantity":3,"order_id":`},
		{wire.PurchaseRequest{ProductID: p, UserID: "b", Quantity: 3}, `{"status":"INSUFFICIENT_STOCK","remaining_stock":2}`},
		{wire.PurchaseRequest{ProductID: p, UserID: "b", Quantity: -1}, `{"status":"ERROR","code":"INVALID_REQUEST","error":"quantity must be between 1 and 10000"}`},
		{wire.PurchaseRequest{ProductID: p, UserID: "b", Quantity: 10001}, `{"status":"ERROR","code":"INVALID_REQUEST","error":"quantity must be between 1 and 10000"}`},
		{wire.PurchaseRequest{ProductID: p, UserID: "b", Quantity: 2}, `{"status":"SUCCESS","remaining_stock":0,"quantity":2,"order_id":`},
		{wire.PurchaseRequest{ProductID: p, UserID: "c", Quantity: 1}, `{"status":"SOLD_OUT"}`},
	}
	for i, st := range steps {
		if got, err := cl.buy(st.req); err != nil || !strings.HasPrefix(got, st.want) {
			t.Fatalf("step %d: %s %v, want %s", i, got, err, st.want)
		}
	}
	verifyOK(t, raddr, p)
}

func TestSaleExactRetries(t *testing.T) {
	raddr := redistest.Addr(t)
	addr := startServe(t, raddr)
	p := redistest.Product(t)
	mustRun(t, "admin", "init", "--redis-addr", raddr, "--per-user-limit", "0", p, "100")

	// 200 concurrent retries of one request sell one unit, and all get the
	// same answer with the same order id.
	reqs := make([]wire.PurchaseRequest, 200)
	for i := range reqs {
		reqs[i] = wire.PurchaseRequest{ProductID: p, UserID: "ann", RequestID: "req-1"}
	}
	answers := hammer(t, addr, 100, reqs)
	for i, a := range answers {
		if a != answers[0] || a.Status != "SUCCESS" || a.OrderID == "" || a.RemainingStock != 99 {
			t.Fatalf("answer %d = %+v, first = %+v; want 200 identical SUCCESS answers", i, a, answers[0])
		}
	}
	if sales := streamSales(t, raddr, p); len(sales) != 1 || sales[answers[0].OrderID] != "ann" {
		t.Errorf("orders stream sales = %v, want one, order %s", sales, answers[0].OrderID)
	}

	cl := dialClient(t, addr)
	for _, tc := range []struct {
		name string
		req  wire.PurchaseRequest
		want string
	}{
		{"other user, same request id", wire.PurchaseRequest{ProductID: p, UserID: "bob", RequestID: "req-1"},
			`{"status":"ERROR","code":"REQUEST_ID_REUSED","error":"request_id reused with a different payload"}`},
		{"other quantity, same request id", wire.PurchaseRequest{ProductID: p, UserID: "ann", Quantity: 2, RequestID: "req-1"},
			`{"status":"ERROR","code":"REQUEST_ID_REUSED","error":"request_id reused with a different payload"}`},
		{"a new request id buys again", wire.PurchaseRequest{ProductID: p, UserID: "ann", RequestID: "req-2"},
			`{"status":"SUCCESS","remaining_stock":98,`},
		{"without request id", wire.PurchaseRequest{ProductID: p, UserID: "ann"},
			`{"status":"SUCCESS","remaining_stock":97,`},
		{"request id too long", wire.PurchaseRequest{ProductID: p, UserID: "ann", RequestID: strings.Repeat("r", 129)},
			`{"status":"ERROR","code":"INVALID_REQUEST","error":"request_id longer than 128 bytes"}`},
	} {
		if got, err := cl.buy(tc.req); err != nil || !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: %s %v, want %s", tc.name, got, err, tc.want)
		}
	}

	// A reset starts a new incarnation: old request ids no longer replay.
	mustRun(t, "admin", "reset", "--redis-addr", raddr, p)
	cl.send(purchase(wire.PurchaseRequest{ProductID: p, UserID: "ann", RequestID: "req-1"}))
	if _, r, err := cl.recv(); err != nil || r.Status != "SUCCESS" || r.RemainingStock != 99 || r.OrderID == answers[0].OrderID {
		t.Errorf("req-1 after reset: %+v %v, want a new sale", r, err)
	}
	verifyOK(t, raddr, p)

	// The record expires: with a short TTL the retry is a new purchase.
	t.Run("ttl", func(t *testing.T) {
		redistest.SkipUnlessReal(t, "the embedded store does not expire keys as time passes")
		addr := startServe(t, raddr, "--request-ttl", "200ms")
		cl := dialClient(t, addr)
		p := redistest.Product(t)
		mustRun(t, "admin", "init", "--redis-addr", raddr, "--per-user-limit", "0", p, "10")
		req := purchase(wire.PurchaseRequest{ProductID: p, UserID: "ann", RequestID: "short"})
		cl.send(req, req)
		_, a, _ := cl.recv()
		_, b, _ := cl.recv()
		if a != b || a.RemainingStock != 9 {
			t.Fatalf("retry within the TTL: %+v then %+v", a, b)
		}
		time.Sleep(400 * time.Millisecond)
		cl.send(req)
		if _, c, err := cl.recv(); err != nil || c.RemainingStock != 8 {
			t.Errorf("retry after the TTL: %+v %v, want a new sale", c, err)
		}
	})
}

func TestSaleWindow(t *testing.T) {
	raddr := redistest.Addr(t)
	addr := startServe(t, raddr)
	cl := dialClient(t, addr)
	buy := func(p string) wire.Response {
		t.Helper()
		cl.send(purchase(wire.PurchaseRequest{ProductID: p, UserID: "ann"}))
		_, r, err := cl.recv()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	query := func(p string) wire.Response {
		t.Helper()
		cl.send(wire.AppendFrame(nil, wire.TypeQuery, wire.AppendQuery(nil, wire.QueryRequest{ProductID: p})))
		f, err := cl.rd.Next()
		if err != nil || f.Type != 0x82 {
			t.Fatalf("query answer type %v: %v", f.Type, err)
		}
		var r wire.Response
		if err := wire.DecodeResponse(f.Payload, &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	start := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	end := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)

	upcoming := redistest.Product(t)
	mustRun(t, "admin", "init", "--redis-addr", raddr, "--start", start.Format(time.RFC3339), upcoming, "10")
	if r := buy(upcoming); r.Status != "NOT_STARTED" || r.Start != start.Format(time.RFC3339) {
		t.Errorf("before the start: %+v, want NOT_STARTED with start %s", r, start.Format(time.RFC3339))
	}
	if r := query(upcoming); r.Status != "OK" || r.State != "UPCOMING" || r.RemainingStock != 10 || r.Initial != 10 || r.Start == "" {
		t.Errorf("query before the start: %+v", r)
	}
	mustRun(t, "admin", "open", "--redis-addr", raddr, upcoming)
	if r := buy(upcoming); r.Status != "SUCCESS" {
		t.Errorf("after admin open: %+v", r)
	}
	if r := query(upcoming); r.State != "OPEN" || r.RemainingStock != 9 {
		t.Errorf("query of an open sale: %+v", r)
	}

	ended := redistest.Product(t)
	mustRun(t, "admin", "init", "--redis-addr", raddr, "--end", end.Format(time.RFC3339), ended, "10")
	if r := buy(ended); r.Status != "ENDED" || r.End != end.Format(time.RFC3339) {
		t.Errorf("after the end: %+v, want ENDED with end %s", r, end.Format(time.RFC3339))
	}
	if r := query(ended); r.State != "ENDED" {
		t.Errorf("query after the end: %+v", r)
	}
	mustRun(t, "admin", "open", "--redis-addr", raddr, ended)
	if r := buy(ended); r.Status != "SUCCESS" {
		t.Errorf("after reopening: %+v", r)
	}
	mustRun(t, "admin", "close", "--redis-addr", raddr, ended)
	if r := buy(ended); r.Status != "ENDED" {
		t.Errorf("after admin close: %+v", r)
	}
	for _, p := range []string{upcoming, ended} {
		if n := len(streamSales(t, raddr, p)); n != 1 {
			t.Errorf("%s: %d sales, want 1 (only inside the window)", p, n)
		}
		verifyOK(t, raddr, p)
	}

	soldOut := redistest.Product(t)
	mustRun(t, "admin", "init", "--redis-addr", raddr, soldOut, "0")
	if r := query(soldOut); r.State != "SOLD_OUT" {
		t.Errorf("query of a sold-out sale: %+v", r)
	}
	if r := query(redistest.Product(t)); r.Status != "ERROR" || r.Code != "UNKNOWN_PRODUCT" {
		t.Errorf("query of an unknown product: %+v", r)
	}
	if _, err := runApp(t, "admin", "init", "--redis-addr", raddr, "--start", "tomorrow", soldOut, "1"); ExitCode(err) != 2 {
		t.Errorf("init --start tomorrow: %v", err)
	}
	if _, err := runApp(t, "admin", "init", "--redis-addr", raddr, "--start", start.Format(time.RFC3339),
		"--end", end.Format(time.RFC3339), soldOut, "1"); err == nil || !strings.Contains(err.Error(), "must end after it starts") {
		t.Errorf("init with end before start: %v", err)
	}
}

func TestPing(t *testing.T) {
	raddr := redistest.Addr(t)
	addr := startServe(t, raddr)
	cl := dialClient(t, addr)
	cl.send(wire.AppendFrame(nil, wire.TypePing, nil), wire.AppendFrame(nil, wire.TypePing, []byte("anything")))
	for range 2 {
		f, err := cl.rd.Next()
		if err != nil || f.Type != 0x83 || string(f.Payload) != `{"status":"PONG","redis":"up"}` {
			t.Fatalf("ping answer: %v %s %v", f.Type, f.Payload, err)
		}
	}
}

func TestSaleReleaseAndRestock(t *testing.T) {
	raddr := redistest.Addr(t)
	t.Setenv("REDIS_ADDR", raddr)
	addr := startServe(t, raddr)
	p := redistest.Product(t)
	mustRun(t, "admin", "init", p, "3")
	reqs := []wire.PurchaseRequest{{ProductID: p, UserID: "ann"}, {ProductID: p, UserID: "bob"}, {ProductID: p, UserID: "cat"}, {ProductID: p, UserID: "dan"}}
	answers := hammer(t, addr, 1, reqs)
	if got := countStatuses(answers); got["SUCCESS"] != 3 || got["SOLD_OUT"] != 1 {
		t.Fatalf("answers = %v", got)
	}
	bobOrder := answers[1].OrderID

	out := mustRun(t, "admin", "release", p, bobOrder)
	if !strings.Contains(out, "released: 1 unit(s) of bob back in stock, 1 remaining") {
		t.Errorf("release printed %q", out)
	}
	verifyOK(t, raddr, p)
	// Idempotent.
	out = mustRun(t, "admin", "release", "--json", p, bobOrder)
	var rel map[string]any
	if json.Unmarshal([]byte(out), &rel) != nil || rel["already_released"] != true || rel["remaining"] != 1.0 {
		t.Errorf("second release printed %q", out)
	}
	if _, err := runApp(t, "admin", "release", p, "1-1"); err == nil || !strings.Contains(err.Error(), "unknown order") {
		t.Errorf("release of an unknown order: %v", err)
	}
	if _, err := runApp(t, "admin", "release", p, "nonsense"); err == nil {
		t.Error("release of a malformed order id succeeded")
	}
	verifyOK(t, raddr, p)

	// Bob's allowance is free again, and dan gets the released unit's twin.
	answers = hammer(t, addr, 1, []wire.PurchaseRequest{{ProductID: p, UserID: "bob"}, {ProductID: p, UserID: "dan"}})
	if answers[0].Status != "SUCCESS" || answers[1].Status != "SOLD_OUT" {
		t.Errorf("after the release: %+v", answers)
	}

	out = mustRun(t, "admin", "restock", p, "2")
	if !strings.Contains(out, "restocked with 2 units: 2 remaining, initial 5") {
		t.Errorf("restock printed %q", out)
	}
	answers = hammer(t, addr, 1, []wire.PurchaseRequest{{ProductID: p, UserID: "dan"}, {ProductID: p, UserID: "eve"}, {ProductID: p, UserID: "fay"}})
	if got := countStatuses(answers); got["SUCCESS"] != 2 || got["SOLD_OUT"] != 1 {
		t.Errorf("after the restock: %v", got)
	}
	verifyOK(t, raddr, p)

	st := mustRun(t, "admin", "status", p)
	for _, want := range []string{"Remaining Stock:   0", "Initial Stock:     5", "Units Held:        5", "Invariant:         OK"} {
		if !strings.Contains(st, want) {
			t.Errorf("status lacks %q:\n%s", want, st)
		}
	}
	orders := mustRun(t, "admin", "orders", "--limit", "0", p)
	if n := strings.Count(orders, " sale "); n != 6 || strings.Count(orders, " release ") != 1 || strings.Count(orders, " restock ") != 1 {
		t.Errorf("orders listing:\n%s", orders)
	}
	// The stream holds exactly one sale entry per SUCCESS.
	if n := len(streamSales(t, raddr, p)); n != 6 {
		t.Errorf("%d sale entries, want 6", n)
	}
}

func TestVerifyFindsDiscrepancies(t *testing.T) {
	raddr := redistest.Addr(t)
	t.Setenv("REDIS_ADDR", raddr)
	eng := engine.New(transport.NewPool(transport.PoolConfig{Addr: raddr}))
	rc := redistest.Conn(t, raddr)
	cases := []struct {
		name   string
		break_ func(k engine.Keys)
		want   string
	}{
		{"stock drifted", func(k engine.Keys) { rc.Do("INCR", k.Stock) }, "initial 4 != remaining 3 + units held 2"},
		{"holder without order", func(k engine.Keys) {
			rc.Do("HINCRBY", k.Holders, "ghost", 1)
			rc.Do("HINCRBY", k.Meta, "held", 1)
			rc.Do("DECR", k.Stock)
		},
			"customer ghost holds 1 units with no order in the stream"},
		{"order without holder", func(k engine.Keys) { rc.Do("HDEL", k.Holders, "u0") }, "customer u0: orders stream says 1 units, record says 0"},
		{"above the limit", func(k engine.Keys) {
			rc.Do("HINCRBY", k.Holders, "u0", 1)
			rc.Do("HINCRBY", k.Meta, "held", 1)
			rc.Do("DECR", k.Stock)
		}, "customer u0 holds 2 units, above the limit of 1"},
		{"negative stock", func(k engine.Keys) { rc.Do("SET", k.Stock, -1) }, "stock is negative: -1"},
		{"missing buyer", func(k engine.Keys) { rc.Do("RPOP", k.Buyers) }, "buyers list has 1 entries for 2 orders not released"},
	}
	var ids []string
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := redistest.Product(t)
			ids = append(ids, p)
			if err := eng.Init(t.Context(), p, 4); err != nil {
				t.Fatal(err)
			}
			for i := range 2 {
				if r := eng.Purchase(t.Context(), engine.Request{ProductID: p, UserID: fmt.Sprint("u", i)}); r.Status != wire.StatusSuccess {
					t.Fatal(r)
				}
			}
			verifyOK(t, raddr, p)
			tc.break_(engine.KeysFor(p))
			out, err := runApp(t, "admin", "verify", p)
			if err == nil || !strings.Contains(out, tc.want) {
				t.Errorf("verify: %v\n%s\nwant a line with %q", err, out, tc.want)
			}
		})
	}
	// With no ids, verify checks every product, and fails if any is broken.
	out, err := runApp(t, "admin", "verify", "--json")
	var res struct {
		OK       bool           `json:"ok"`
		Products []engine.Audit `json:"products"`
	}
	if json.Unmarshal([]byte(out), &res) != nil || res.OK || err == nil {
		t.Fatalf("verify of all products: %v\n%s", err, out)
	}
	found := 0
	for _, a := range res.Products {
		for _, id := range ids {
			if a.ID == id {
				found++
				if a.OK() {
					t.Errorf("%s verified OK", id)
				}
			}
		}
	}
	if found != len(ids) {
		t.Errorf("verify of all products covered %d of the %d broken ones", found, len(ids))
	}
}

func TestAdminWatch(t *testing.T) {
	raddr := redistest.Addr(t)
	t.Setenv("REDIS_ADDR", raddr)
	addr := startServe(t, raddr)
	p := redistest.Product(t)
	mustRun(t, "admin", "init", p, "5")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := goApp(t, ctx, "admin", "watch", "--count", "3", p)
	// Keep buying until the watcher has seen three sales: it may subscribe
	// after the first purchases.
	cl := dialClient(t, addr)
	for i := 0; ; i++ {
		select {
		case r := <-done:
			if r.err != nil || strings.Count(r.out, p) != 3 || !strings.Contains(r.out, "order ") {
				t.Fatalf("watch: %v\n%s", r.err, r.out)
			}
			return
		case <-time.After(100 * time.Millisecond):
		}
		if i >= 50 {
			t.Fatal("watch did not see 3 sales")
		}
		mustRun(t, "admin", "restock", p, "1")
		cl.send(purchase(wire.PurchaseRequest{ProductID: p, UserID: fmt.Sprint("w", i)}))
		if _, _, err := cl.recv(); err != nil {
			t.Fatal(err)
		}
	}
}
