package dashboard

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/testkit/saletest"
)

// event is a sale event laid out as purchase.lua publishes it.
func event(t *testing.T, id string, remaining, quantity int64) []byte {
	t.Helper()
	return fmt.Appendf(nil, `{"product_id":%q,"buyer":"u","remaining":%d,"timestamp":1764108000,"order_id":"1764108000123-0","quantity":%d}`,
		id, remaining, quantity)
}

// A flood of sale events becomes one entry per product per tick, with the
// units added up and the stock of the last event.
func TestTallyCoalescesAFlood(t *testing.T) {
	const floods = 30000
	tl := newTally(DefaultMaxProducts)
	products := []struct {
		id       string
		quantity int64
	}{{"a", 1}, {"b", 2}, {"c", 0}} // 0: an event from before quantities were published counts as 1 unit
	type want struct{ orders, units, remaining int64 }
	wants := map[string]*want{}
	for i := range floods {
		p := products[i%len(products)]
		tl.sale(event(t, p.id, int64(floods-i), p.quantity))
		w := wants[p.id]
		if w == nil {
			w = &want{}
			wants[p.id] = w
		}
		w.orders, w.units, w.remaining = w.orders+1, w.units+max(p.quantity, 1), int64(floods-i)
	}
	tl.sale([]byte("not json")) // ignored
	sales, dirty, overflow := tl.take(statusPerTick)
	if len(dirty) != 0 || overflow {
		t.Fatalf("dirty %v, overflow %v after sales only", dirty, overflow)
	}
	if len(sales) != len(products) {
		t.Fatalf("%d products in the tally, want %d", len(sales), len(products))
	}
	for id, w := range wants {
		if s := sales[id]; s == nil || *s != (sale{units: w.units, orders: w.orders, remaining: w.remaining}) {
			t.Errorf("%s: %+v, want %+v", id, s, *w)
		}
	}
	if again, _, _ := tl.take(statusPerTick); len(again) != 0 {
		t.Errorf("take did not empty the tally: %v", again)
	}
}

func TestTallyBounds(t *testing.T) {
	tl := newTally(2)
	for _, id := range []string{"a", "b", "c"} {
		tl.sale(event(t, id, 1, 1))
		tl.control([]byte(id))
	}
	tl.control([]byte("a")) // already announced: no second entry
	sales, dirty, overflow := tl.take(1)
	if len(sales) != 2 || len(dirty) != 1 || !overflow {
		t.Fatalf("sales %d, dirty %v, overflow %v; want 2, one id, true", len(sales), dirty, overflow)
	}
	_, rest, overflow := tl.take(statusPerTick)
	if len(rest) != 1 || rest[0] == dirty[0] || overflow {
		t.Fatalf("second take: dirty %v, overflow %v; want the other id, false", rest, overflow)
	}
}

// The rate is the units of the last second; a product that stops selling
// is sent once more with rate 0, then no more.
func TestRatesWindow(t *testing.T) {
	r := newRates(250 * time.Millisecond) // 4 ticks make a second
	tick := func(units int64) map[string]float64 {
		sales := map[string]*sale{}
		if units > 0 {
			sales["p"] = &sale{units: units, orders: units, remaining: 7}
		}
		out := map[string]float64{}
		for _, ps := range r.advance(sales) {
			out[ps.ID] = ps.Rate
			if (units > 0) != (ps.Remaining != nil) || ps.Sold != units {
				t.Fatalf("entry %+v after a tick of %d units", ps, units)
			}
		}
		return out
	}
	steps := []struct {
		units int64
		want  map[string]float64
	}{
		{10, map[string]float64{"p": 10}},
		{20, map[string]float64{"p": 30}},
		{0, map[string]float64{"p": 30}},
		{0, map[string]float64{"p": 30}},
		{0, map[string]float64{"p": 20}}, // the 10 left the window
		{0, map[string]float64{"p": 0}},  // the 20 too: sent at 0 once
		{0, map[string]float64{}},        // then forgotten
	}
	for i, s := range steps {
		got := tick(s.units)
		if fmt.Sprint(got) != fmt.Sprint(s.want) {
			t.Fatalf("tick %d: rates %v, want %v", i, got, s.want)
		}
	}
}

// hubWithClients returns a hub whose feed is marked running (generation 1)
// without subscribing, and n clients on it.
func hubWithClients(n, buffer int) (*hub, []*client) {
	h := newHub(nil, Config{ClientBuffer: buffer})
	h.gen, h.stop = 1, func() {}
	cs := make([]*client, n)
	for i := range cs {
		cs[i] = &client{ch: make(chan []byte, buffer)}
		h.clients[cs[i]] = struct{}{}
	}
	return h, cs
}

// A browser that does not read loses messages and is told to resync; the
// others get every message.
func TestSlowClientResyncs(t *testing.T) {
	const buffer = 4
	h, cs := hubWithClients(2, buffer)
	fast, slow := cs[0], cs[1]
	for i := range 3 * buffer {
		m := []byte(fmt.Sprintf("m%d", i))
		h.broadcast(1, m)
		if got := fast.next(<-fast.ch); string(got) != string(m) {
			t.Fatalf("fast client got %q, want %q", got, m)
		}
	}
	if fast.lagged.Load() || !slow.lagged.Load() {
		t.Fatalf("lagged: fast %v, slow %v; want false, true", fast.lagged.Load(), slow.lagged.Load())
	}
	if got := slow.next(<-slow.ch); string(got) != string(msgResync) {
		t.Fatalf("slow client got %q first, want the resync", got)
	}
	if len(slow.ch) != 0 {
		t.Fatalf("%d stale messages still queued after the resync", len(slow.ch))
	}
	h.broadcast(1, []byte("after"))
	if got := slow.next(<-slow.ch); string(got) != "after" {
		t.Fatalf("slow client got %q after resyncing, want the next message", got)
	}
}

func TestStaleFeedIsDropped(t *testing.T) {
	h, cs := hubWithClients(1, 8)
	h.broadcast(0, []byte("old generation"))
	h.setDown(0, true)
	if len(cs[0].ch) != 0 {
		t.Fatalf("a stale feed's messages reached a client")
	}
	h.setDown(1, true)
	h.setDown(1, true)
	h.setDown(1, false) // one of two subscriptions back: still down
	h.setDown(1, false)
	var got []string
	for len(cs[0].ch) > 0 {
		got = append(got, string(<-cs[0].ch))
	}
	want := []string{string(msgRedisDown), string(msgRedisDown), string(msgResync), string(msgRedisUp), string(msgResync)}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("messages %q, want %q", got, want)
	}
}

// The feed runs while browsers are connected, and the client count is
// capped.
func TestJoinLeave(t *testing.T) {
	eng, _ := saletest.Engine(t)
	h := newHub(eng, Config{MaxClients: 2, ClientBuffer: 4})
	a, err := h.join()
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.join()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.join(); !errors.Is(err, ErrTooManyClients) {
		t.Fatalf("third join: %v, want ErrTooManyClients", err)
	}
	gen := h.gen
	h.leave(a)
	if h.stop == nil {
		t.Fatal("feed stopped with a browser still connected")
	}
	h.leave(b)
	if h.stop != nil {
		t.Fatal("feed still running with no browser")
	}
	c, err := h.join()
	if err != nil || h.gen != gen+1 {
		t.Fatalf("join after the last left: %v, generation %d; want a new feed, generation %d", err, h.gen, gen+1)
	}
	h.leave(c)
}

// A product that sold is read once, in the tick it sold or, past
// statusPerTick reads, in a later one; one read anyway this tick is not
// read twice; beyond the bound the browsers resync.
func TestRereads(t *testing.T) {
	q := newRereads(3)
	sold := func(ids ...string) map[string]*sale {
		m := map[string]*sale{}
		for _, id := range ids {
			m[id] = &sale{units: 1, orders: 1}
		}
		return m
	}
	if !q.add(sold("a", "b", "c")) || !q.add(sold("a")) {
		t.Fatal("add refused products within the bound")
	}
	if q.add(sold("d")) {
		t.Fatal("add took a fourth product, above the bound of 3")
	}
	first := q.take(1, []string{"b"}) // b is read this tick anyway
	rest := q.take(statusPerTick, nil)
	got := append(first, rest...)
	slices.Sort(got)
	if len(first) != 1 || fmt.Sprint(got) != "[a c]" {
		t.Fatalf("took %v then %v; want one, then the other of [a c]", first, rest)
	}
	if again := q.take(statusPerTick, nil); len(again) != 0 {
		t.Fatalf("read again without a sale: %v", again)
	}
}
