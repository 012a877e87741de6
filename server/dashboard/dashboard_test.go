package dashboard_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
	"github.com/flashsale/flashsale/server/dashboard"
	"github.com/flashsale/flashsale/wire"
)

// countingRedis counts the subscriptions and scans made through it.
type countingRedis struct {
	engine.Redis
	mu    sync.Mutex
	subs  map[string]int
	scans int
}

func (c *countingRedis) Scan(ctx context.Context, match string, fn func(string) error) error {
	c.mu.Lock()
	c.scans++
	c.mu.Unlock()
	return c.Redis.Scan(ctx, match, fn)
}

func (c *countingRedis) Subscribe(ctx context.Context, channel string, fn func([]byte)) error {
	c.mu.Lock()
	c.subs[channel]++
	c.mu.Unlock()
	return c.Redis.Subscribe(ctx, channel, fn)
}

func (c *countingRedis) count(channel string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.subs[channel]
}

// setup returns an engine on the test Redis that counts its subscriptions,
// a dashboard server on it, and the Redis address.
func setup(t *testing.T, cfg dashboard.Config) (*engine.Engine, *countingRedis, *httptest.Server, string) {
	t.Helper()
	pool, addr := saletest.Pool(t)
	cr := &countingRedis{Redis: pool, subs: map[string]int{}}
	eng := engine.New(cr)
	srv := httptest.NewServer(dashboard.New(eng, cfg))
	t.Cleanup(srv.Close)
	return eng, cr, srv, addr
}

type sseEvent struct {
	name string
	data string
}

// openStream opens an event stream and returns its events, and its
// comments as events named ":", on a channel closed when the stream ends.
func openStream(t *testing.T, ctx context.Context, url string) <-chan sseEvent {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/dashboard/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		res.Body.Close()
		t.Fatalf("GET /dashboard/events: %s, Content-Type %q", res.Status, res.Header.Get("Content-Type"))
	}
	out := make(chan sseEvent, 1024)
	go func() {
		defer close(out)
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" {
					out <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ":"):
				out <- sseEvent{name: ":", data: line}
			case strings.HasPrefix(line, "event: "):
				ev.name = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[len("data: "):]
			}
		}
	}()
	return out
}

// waitEvent returns the first event on s that match accepts, failing the
// test if the stream ends or ctx does first.
func waitEvent(t *testing.T, ctx context.Context, s <-chan sseEvent, what string, match func(sseEvent) bool) sseEvent {
	t.Helper()
	for {
		select {
		case ev, ok := <-s:
			if !ok {
				t.Fatalf("stream ended waiting for %s", what)
			}
			if match(ev) {
				return ev
			}
		case <-ctx.Done():
			t.Fatalf("no %s: %v", what, ctx.Err())
		}
	}
}

func named(name string) func(sseEvent) bool {
	return func(ev sseEvent) bool { return ev.name == name }
}

type salesData struct {
	Products []struct {
		ID        string  `json:"id"`
		Remaining *int64  `json:"remaining"`
		Sold      int64   `json:"sold"`
		Orders    int64   `json:"orders"`
		Rate      float64 `json:"rate"`
	} `json:"products"`
}

// salesOf returns what a sales event says of product id: its remaining
// stock (-1 without sales) and units sold.
func salesOf(t *testing.T, ev sseEvent, id string) (remaining, sold int64, found bool) {
	t.Helper()
	if ev.name != "sales" {
		return 0, 0, false
	}
	var d salesData
	if err := json.Unmarshal([]byte(ev.data), &d); err != nil {
		t.Fatalf("sales event %q: %v", ev.data, err)
	}
	for _, p := range d.Products {
		if p.ID == id {
			remaining = -1
			if p.Remaining != nil {
				remaining = *p.Remaining
			}
			return remaining, p.Sold, true
		}
	}
	return 0, 0, false
}

// waitSubscribed waits until the dashboard's subscriptions are in place
// on Redis, so that what a test publishes next is seen.
func waitSubscribed(t *testing.T, ctx context.Context, addr string) {
	t.Helper()
	c := redistest.Conn(t, addr)
	for {
		v, err := redis.Values(c.Do("PUBSUB", "NUMSUB", engine.EventChannel, engine.ControlChannel))
		if err != nil {
			t.Fatalf("PUBSUB NUMSUB: %v", err)
		}
		counts, err := redis.Int64Map(v, nil)
		if err != nil {
			t.Fatalf("PUBSUB NUMSUB: %v", err)
		}
		if counts[engine.EventChannel] > 0 && counts[engine.ControlChannel] > 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the dashboard never subscribed: %v", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Every browser gets every product's sales and changes, through one
// subscription per channel however many browsers there are.
func TestEventsFanOut(t *testing.T) {
	const browsers, units = 3, 5
	eng, cr, srv, addr := setup(t, dashboard.Config{Interval: 20 * time.Millisecond})
	id := saletest.Product(t, eng, units)
	ctx := saletest.Context(t)
	streams := make([]<-chan sseEvent, browsers)
	for i := range streams {
		streams[i] = openStream(t, ctx, srv.URL)
		waitEvent(t, ctx, streams[i], "hello", named("hello"))
	}
	waitSubscribed(t, ctx, addr)
	for _, ch := range []string{engine.EventChannel, engine.ControlChannel} {
		if n := cr.count(ch); n != 1 {
			t.Errorf("%d subscriptions to %s for %d browsers, want 1", n, ch, browsers)
		}
	}

	for i := range units {
		if r := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: fmt.Sprint("u", i)}); r.Status != wire.StatusSuccess {
			t.Fatalf("purchase %d: %v %v", i, r.Status, r.Err)
		}
	}
	for i, s := range streams {
		var sold int64
		waitEvent(t, ctx, s, "the sale of the last unit", func(ev sseEvent) bool {
			remaining, n, ok := salesOf(t, ev, id)
			sold += n
			return ok && remaining == 0
		})
		if sold != units {
			t.Errorf("browser %d: %d units sold in its sales events, want %d", i, sold, units)
		}
	}

	if _, _, err := eng.Restock(ctx, id, 7); err != nil {
		t.Fatal(err)
	}
	for _, s := range streams {
		ev := waitEvent(t, ctx, s, "the restocked product", named("product"))
		var p dashboard.Product
		if err := json.Unmarshal([]byte(ev.data), &p); err != nil || p.ID != id || p.Remaining != 7 || p.State != engine.StateOpen {
			t.Fatalf("product event %s (%v), want %s with 7 left, OPEN", ev.data, err, id)
		}
	}
	if err := eng.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	for _, s := range streams {
		ev := waitEvent(t, ctx, s, "the removal", named("removed"))
		if ev.data != fmt.Sprintf(`{"id":%q}`, id) {
			t.Fatalf("removed event %s, want id %s", ev.data, id)
		}
	}
}

// A flood of sales reaches the browser as a few sales events, with every
// unit accounted for.
func TestEventsCoalesceAFlood(t *testing.T) {
	const flood = 20000
	_, _, srv, addr := setup(t, dashboard.Config{Interval: 50 * time.Millisecond})
	ctx := saletest.Context(t)
	s := openStream(t, ctx, srv.URL)
	waitEvent(t, ctx, s, "hello", named("hello"))
	waitSubscribed(t, ctx, addr)

	const id = "flood"
	c := redistest.Conn(t, addr)
	for i := range flood {
		ev := fmt.Sprintf(`{"product_id":%q,"buyer":"u%d","remaining":%d,"timestamp":1764108000,"order_id":"%d-0","quantity":1}`,
			id, i, flood-1-i, i)
		if err := c.Send("PUBLISH", engine.EventChannel, ev); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Do(""); err != nil {
		t.Fatal(err)
	}
	var sold, messages int64
	waitEvent(t, ctx, s, "the last sale", func(ev sseEvent) bool {
		remaining, n, ok := salesOf(t, ev, id)
		if ok {
			messages++
			sold += n
		}
		return ok && remaining == 0
	})
	if sold != flood {
		t.Errorf("%d units in the sales events, want %d", sold, flood)
	}
	// Not a timing assertion: at one message per interval, 20,000 events
	// would have to take 100 s to arrive to make 2,000 messages.
	if messages > flood/10 {
		t.Errorf("%d sales events for %d sales: not coalesced", messages, flood)
	}
	t.Logf("%d sales reached the browser as %d sales events", flood, messages)
}

// While purchases run, every product event is one reading: units held are
// the units sold, every order is of two units, there are never more
// customers than orders, and each reading is at least as new as the one
// before. The last one is the product as the sale left it.
func TestEventsReadingsAgree(t *testing.T) {
	const qty, customers, purchases = 2, 30, 600
	eng, _, srv, addr := setup(t, dashboard.Config{Interval: 10 * time.Millisecond})
	id := saletest.Product(t, eng, 1_000_000, engine.WithPerUserLimit(0))
	ctx := saletest.Context(t)
	s := openStream(t, ctx, srv.URL)
	waitEvent(t, ctx, s, "hello", named("hello"))
	waitSubscribed(t, ctx, addr)

	var wg sync.WaitGroup
	for b := range 4 {
		wg.Go(func() {
			for i := b; i < purchases; i += 4 {
				if r := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: fmt.Sprint("c", i%customers), Quantity: qty}); r.Status != wire.StatusSuccess {
					t.Errorf("purchase %d: %v %v", i, r.Status, r.Err)
					return
				}
			}
		})
	}
	wg.Wait()
	st, err := eng.Status(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var readings int
	var last dashboard.Product
	waitEvent(t, ctx, s, "a reading of the product after the sale", func(ev sseEvent) bool {
		var p dashboard.Product
		if ev.name != "product" || json.Unmarshal([]byte(ev.data), &p) != nil || p.ID != id {
			return false
		}
		readings++
		if sold := p.Initial - p.Remaining; sold != p.Held || sold != qty*p.ActiveOrders ||
			p.Customers > min(p.ActiveOrders, customers) || p.Buyers != p.ActiveOrders || p.At < last.At {
			t.Errorf("product event %s after one at %d: not one reading, or an older one", ev.data, last.At)
		}
		last = p
		return p.ActiveOrders == st.Buyers
	})
	if last.Customers != st.Customers || last.Remaining != st.Remaining {
		t.Errorf("last reading %+v, want the status %+v", last, st)
	}
	t.Logf("%d purchases, %d readings sent", purchases, readings)
}

func TestEventsLimitsAndEnds(t *testing.T) {
	done := make(chan struct{})
	_, _, srv, _ := setup(t, dashboard.Config{MaxClients: 1, Heartbeat: 20 * time.Millisecond, Done: done})
	ctx := saletest.Context(t)
	s := openStream(t, ctx, srv.URL)
	waitEvent(t, ctx, s, "hello", named("hello"))
	waitEvent(t, ctx, s, "a heartbeat", named(":"))

	res, err := http.Get(srv.URL + "/dashboard/events")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Errorf("second stream with MaxClients 1: %s, Retry-After %q; want 503 with Retry-After", res.Status, res.Header.Get("Retry-After"))
	}

	close(done)
	for {
		select {
		case _, ok := <-s:
			if !ok {
				return
			}
		case <-ctx.Done():
			t.Fatal("the stream did not end when Done was closed")
		}
	}
}

// A stream outlives the server's WriteTimeout: every write sets its own
// deadline.
func TestEventsOutliveWriteTimeout(t *testing.T) {
	const writeTimeout = 100 * time.Millisecond
	pool, _ := saletest.Pool(t)
	srv := httptest.NewUnstartedServer(dashboard.New(engine.New(pool), dashboard.Config{Heartbeat: writeTimeout / 4}))
	srv.Config.WriteTimeout = writeTimeout
	srv.Start()
	t.Cleanup(srv.Close) // after the stream's context ends
	ctx := saletest.Context(t)
	s := openStream(t, ctx, srv.URL)
	started := time.Now()
	for beats := 0; beats < 8 || time.Since(started) < 3*writeTimeout; beats++ {
		waitEvent(t, ctx, s, "a heartbeat", named(":"))
	}
}

func TestSnapshot(t *testing.T) {
	eng, _, srv, _ := setup(t, dashboard.Config{})
	ctx := saletest.Context(t)
	now := time.Now()
	open := saletest.Product(t, eng, 3, engine.WithPerUserLimit(2))
	soldOut := saletest.Product(t, eng, 1)
	upcoming := saletest.Product(t, eng, 5, engine.WithWindow(now.Add(time.Hour), time.Time{}))
	ended := saletest.Product(t, eng, 5, engine.WithWindow(now.Add(-2*time.Hour), now.Add(-time.Hour)))
	for _, p := range []string{open, soldOut} {
		if r := eng.Purchase(ctx, engine.Request{ProductID: p, UserID: "u"}); r.Status != wire.StatusSuccess {
			t.Fatalf("purchase %s: %v", p, r.Status)
		}
	}
	snap := getSnapshot(t, srv.URL)
	got := map[string]dashboard.Product{}
	for _, p := range snap.Products {
		got[p.ID] = p
	}
	tests := []struct {
		id        string
		state     engine.State
		remaining int64
		initial   int64
		buyers    int64
	}{
		{open, engine.StateOpen, 2, 3, 1},
		{soldOut, engine.StateSoldOut, 0, 1, 1},
		{upcoming, engine.StateUpcoming, 5, 5, 0},
		{ended, engine.StateEnded, 5, 5, 0},
	}
	for _, tt := range tests {
		p, ok := got[tt.id]
		if !ok || p.State != tt.state || p.Remaining != tt.remaining || p.Initial != tt.initial || p.Buyers != tt.buyers {
			t.Errorf("%s: %+v (listed %v), want %s %d/%d, %d buyers", tt.id, p, ok, tt.state, tt.remaining, tt.initial, tt.buyers)
		}
	}
	if p := got[upcoming]; p.Start != now.Add(time.Hour).UnixMilli() || p.End != 0 {
		t.Errorf("upcoming window %d..%d, want %d..0", p.Start, p.End, now.Add(time.Hour).UnixMilli())
	}
	if snap.Now == 0 || snap.Truncated {
		t.Errorf("now %d, truncated %v", snap.Now, snap.Truncated)
	}

	small := httptest.NewServer(dashboard.New(eng, dashboard.Config{MaxProducts: 2}))
	defer small.Close()
	if snap := getSnapshot(t, small.URL); len(snap.Products) != 2 || !snap.Truncated {
		t.Errorf("MaxProducts 2: %d products, truncated %v; want 2, true", len(snap.Products), snap.Truncated)
	}
}

// Browsers opening the page at once share one read of Redis.
func TestSnapshotShared(t *testing.T) {
	const browsers = 20
	eng, cr, srv, _ := setup(t, dashboard.Config{})
	id := saletest.Product(t, eng, 3)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range browsers {
		wg.Go(func() {
			<-start
			snap := getSnapshot(t, srv.URL)
			if !slices.ContainsFunc(snap.Products, func(p dashboard.Product) bool { return p.ID == id }) {
				t.Errorf("snapshot without %s", id)
			}
		})
	}
	close(start)
	wg.Wait()
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if cr.scans >= browsers {
		t.Errorf("%d scans for %d snapshots at once: not shared", cr.scans, browsers)
	}
	t.Logf("%d snapshots at once, %d scans", browsers, cr.scans)
}

func getSnapshot(t *testing.T, url string) dashboard.Snapshot {
	t.Helper()
	var snap dashboard.Snapshot
	res, err := http.Get(url + "/dashboard/api/products")
	if err != nil {
		t.Error(err)
		return snap
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(&snap); err != nil || res.StatusCode != http.StatusOK {
		t.Errorf("snapshot: %s, %v", res.Status, err)
	}
	return snap
}

func TestSnapshotRedisDown(t *testing.T) {
	pool, _ := saletest.Pool(t)
	pool.Close()
	srv := httptest.NewServer(dashboard.New(engine.New(pool), dashboard.Config{Timeout: time.Second}))
	defer srv.Close()
	res, err := http.Get(srv.URL + "/dashboard/api/products")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "redis unavailable") {
		t.Errorf("snapshot with Redis gone: %s %s, want 503 redis unavailable", res.Status, body)
	}
}

func TestRoutes(t *testing.T) {
	eng, _ := saletest.Engine(t)
	h := dashboard.New(eng, dashboard.Config{})
	// As the listener mounts it: the prefix stripped.
	mux := http.NewServeMux()
	mux.Handle("/dashboard/", http.StripPrefix("/dashboard", h))
	mounts := []struct {
		name    string
		handler http.Handler
	}{{"direct", h}, {"stripped", mux}}
	tests := []struct {
		method, path string
		status       int
		contentType  string
		body         string
		direct       bool // only where the handler is mounted at /
	}{
		{"GET", "/", 200, "text/html", "<canvas", true},
		{"GET", "/dashboard", 200, "text/html", "<canvas", true},
		{"GET", "/dashboard/", 200, "text/html", "<canvas", false},
		{"GET", "/dashboard/index.html", 200, "text/html", "<canvas", false},
		{"HEAD", "/dashboard/", 200, "text/html", "", false},
		{"GET", "/dashboard/app.js", 200, "text/javascript", "EventSource", false},
		{"GET", "/dashboard/app.css", 200, "text/css", "--bg", false},
		{"GET", "/dashboard/favicon.svg", 200, "image/svg+xml", "<svg", false},
		{"GET", "/dashboard/api/products", 200, "application/json", `"products"`, false},
		{"HEAD", "/dashboard/events", 200, "text/event-stream", "", false},
		{"GET", "/dashboard/nope.js", 404, "", "", false},
		{"GET", "/dashboard/static/app.js", 404, "", "", false},
		{"GET", "/dashboard/../go.mod", 404, "", "", false},
		{"POST", "/dashboard/", 405, "", "", false},
		{"DELETE", "/dashboard/events", 405, "", "", false},
	}
	for _, m := range mounts {
		srv := httptest.NewServer(m.handler)
		defer srv.Close()
		for _, tt := range tests {
			if tt.direct && m.name != "direct" {
				continue
			}
			t.Run(m.name+" "+tt.method+" "+tt.path, func(t *testing.T) {
				req, err := http.NewRequest(tt.method, srv.URL+tt.path, nil)
				if err != nil {
					t.Fatal(err)
				}
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				body, _ := io.ReadAll(res.Body)
				if res.StatusCode != tt.status || !strings.HasPrefix(res.Header.Get("Content-Type"), tt.contentType) || !strings.Contains(string(body), tt.body) {
					t.Errorf("%s, Content-Type %q, body %.80q; want %d, %q, containing %q",
						res.Status, res.Header.Get("Content-Type"), body, tt.status, tt.contentType, tt.body)
				}
				if tt.status == 200 && !strings.Contains(res.Header.Get("Content-Security-Policy"), "default-src 'self'") {
					t.Errorf("Content-Security-Policy %q: the page must load nothing from elsewhere", res.Header.Get("Content-Security-Policy"))
				}
			})
		}
	}
}

// A product sold with a hold shows its reservations: in the snapshot, and
// in a product message after a confirm (its paid event sells nothing, but
// the figures changed); a product without a hold carries none of them.
func TestHeldProduct(t *testing.T) {
	eng, _, srv, addr := setup(t, dashboard.Config{Interval: 20 * time.Millisecond})
	ctx := saletest.Context(t)
	heldID := saletest.Product(t, eng, 10, engine.WithHold(time.Minute))
	plain := saletest.Product(t, eng, 10)
	var orders []string
	for i := range 3 {
		r := eng.Purchase(ctx, engine.Request{ProductID: heldID, UserID: fmt.Sprint("u", i)})
		if r.Status != wire.StatusReserved {
			t.Fatalf("purchase %d: %v %v", i, r.Status, r.Err)
		}
		orders = append(orders, r.OrderID)
	}
	if r := eng.Cancel(ctx, engine.OrderRequest{ProductID: heldID, UserID: "u0", OrderID: orders[0]}); r.Status != wire.StatusReleased {
		t.Fatalf("cancel: %v %v", r.Status, r.Err)
	}
	got := map[string]dashboard.Product{}
	for _, p := range getSnapshot(t, srv.URL).Products {
		got[p.ID] = p
	}
	tests := []struct {
		id   string
		want [5]int64 // hold (ms), reserved, paid, expired, cancelled
	}{
		{heldID, [5]int64{time.Minute.Milliseconds(), 2, 0, 0, 1}},
		{plain, [5]int64{}},
	}
	for _, tt := range tests {
		p := got[tt.id]
		if g := [5]int64{p.HoldMs, p.Reserved, p.Paid, p.Expired, p.Cancelled}; g != tt.want {
			t.Errorf("%s: hold, reserved, paid, expired, cancelled %v, want %v", tt.id, g, tt.want)
		}
	}
	s := openStream(t, ctx, srv.URL)
	waitEvent(t, ctx, s, "hello", named("hello"))
	waitSubscribed(t, ctx, addr)
	if r := eng.Confirm(ctx, engine.OrderRequest{ProductID: heldID, UserID: "u1", OrderID: orders[1]}); r.Status != wire.StatusPaid {
		t.Fatalf("confirm: %v %v", r.Status, r.Err)
	}
	waitEvent(t, ctx, s, "the product after its confirm", func(ev sseEvent) bool {
		if _, sold, ok := salesOf(t, ev, heldID); ok && sold > 0 {
			t.Errorf("a confirm counted as %d units sold", sold)
		}
		var p dashboard.Product
		return ev.name == "product" && json.Unmarshal([]byte(ev.data), &p) == nil && p.ID == heldID && p.Paid == 1 && p.Reserved == 1
	})
	b, err := json.Marshal(got[plain])
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"hold_ms", "reserved", "paid", "expired", "cancelled"} {
		if strings.Contains(string(b), `"`+field+`"`) {
			t.Errorf("a product without a hold carries %q: %s", field, b)
		}
	}
}
