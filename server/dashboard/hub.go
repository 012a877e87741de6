package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flashsale/flashsale/engine"
)

// ErrTooManyClients is returned by join when MaxClients streams are open.
var ErrTooManyClients = errors.New("too many dashboard streams")

// Messages of the stream that carry no data of their own.
var (
	// msgResync tells the page to read the snapshot again: it missed
	// messages (it was slow, or the subscription was lost meanwhile).
	msgResync = sseMessage("resync", struct{}{})
	// msgRedisDown tells the page that the numbers it shows are stale.
	msgRedisDown = sseMessage("redis", map[string]bool{"ok": false})
	msgRedisUp   = sseMessage("redis", map[string]bool{"ok": true})
)

// statusPerTick bounds the status reads one tick makes for products that
// sold or that the control channel announced; the rest wait for the next
// tick.
const statusPerTick = 16

// sseMessage encodes one server-sent event. v must marshal (every caller
// passes one of this package's types).
func sseMessage(event string, v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("dashboard: encoding a %s event: %v", event, err))
	}
	return fmt.Appendf(nil, "event: %s\ndata: %s\n\n", event, data)
}

// client is one browser's event stream: a bounded queue of encoded
// messages, and a flag set when a message did not fit.
type client struct {
	ch     chan []byte
	lagged atomic.Bool
}

// next returns the client's next message, or msgResync in place of
// everything queued when it fell behind, so that it never replays stale
// numbers after messages were dropped.
func (c *client) next(m []byte) []byte {
	if !c.lagged.Swap(false) {
		return m
	}
	for {
		select {
		case <-c.ch:
		default:
			return msgResync
		}
	}
}

// hub is the one feed a dashboard handler shares between its browsers: it
// subscribes to the engine's channels while at least one browser is
// connected, adds sales up per product, and sends each browser a few
// messages a second. The figures it sends (stock, orders, customers) are
// each product's status read once per tick, never counts added up from
// events, so that they agree with each other and with the snapshot; the
// events give the rates.
type hub struct {
	eng *engine.Engine
	cfg Config

	mu      sync.Mutex
	clients map[*client]struct{}
	gen     uint64             // the running feed's generation; stale feeds' messages are dropped
	stop    context.CancelFunc // stops the running feed; nil when none runs
	down    int                // subscriptions of the running feed lost and not recovered
}

func newHub(eng *engine.Engine, cfg Config) *hub {
	cfg.setDefaults()
	return &hub{eng: eng, cfg: cfg, clients: make(map[*client]struct{})}
}

// join registers a browser, starting the feed if it is the first.
func (h *hub) join() (*client, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.clients) >= h.cfg.MaxClients {
		return nil, ErrTooManyClients
	}
	c := &client{ch: make(chan []byte, h.cfg.ClientBuffer)}
	if h.down > 0 {
		c.ch <- msgRedisDown
	}
	h.clients[c] = struct{}{}
	if h.stop == nil {
		ctx, cancel := context.WithCancel(context.Background())
		h.gen++
		h.stop, h.down = cancel, 0
		go h.feed(ctx, h.gen)
	}
	return c, nil
}

// leave unregisters a browser, stopping the feed after the last.
func (h *hub) leave(c *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.clients, c)
	if len(h.clients) == 0 && h.stop != nil {
		h.stop()
		h.stop = nil
	}
}

// clientCount is the number of browsers connected.
func (h *hub) clientCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

// broadcast queues m for every browser, if feed generation gen is still
// the running one.
func (h *hub) broadcast(gen uint64, m []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if gen == h.gen && h.stop != nil {
		h.send(m)
	}
}

// setDown records that a subscription of feed generation gen was lost
// (down) or made again, and tells the browsers: their numbers are stale
// while any is lost, and they resync after each recovery, since messages
// were missed meanwhile.
func (h *hub) setDown(gen uint64, down bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if gen != h.gen || h.stop == nil {
		return
	}
	if down {
		h.down++
		h.send(msgRedisDown)
		return
	}
	h.down--
	if h.down == 0 {
		h.send(msgRedisUp)
	}
	h.send(msgResync)
}

// send queues m for every browser; h.mu is held. A browser whose queue is
// full loses m and is marked to resync: one slow browser never holds the
// others back.
func (h *hub) send(m []byte) {
	for c := range h.clients {
		select {
		case c.ch <- m:
		default:
			c.lagged.Store(true)
		}
	}
}

// feed runs one generation of the shared subscription until ctx ends.
func (h *hub) feed(ctx context.Context, gen uint64) {
	t := newTally(h.cfg.MaxProducts)
	var wg sync.WaitGroup
	wg.Go(func() { h.follow(ctx, gen, engine.EventChannel, t.sale) })
	wg.Go(func() { h.follow(ctx, gen, engine.ControlChannel, t.control) })
	defer wg.Wait()
	r := newRates(h.cfg.Interval)
	sold := newRereads(h.cfg.MaxProducts)
	tick := time.NewTicker(h.cfg.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			for _, m := range h.flush(ctx, t, r, sold, now) {
				h.broadcast(gen, m)
			}
		}
	}
}

// flush turns what the tally gathered since the last tick into messages:
// a product (or removed) message, one status reading, for every product
// that sold or that the control channel announced, then one sales message
// with the rate of every product that sold or whose rate is falling back
// to zero.
func (h *hub) flush(ctx context.Context, t *tally, r *rates, sold *rereads, now time.Time) [][]byte {
	sales, dirty, overflow := t.take(statusPerTick)
	var out [][]byte
	if overflow || !sold.add(sales) {
		out = append(out, msgResync)
	}
	out = h.readings(ctx, out, append(dirty, sold.take(statusPerTick-len(dirty), dirty)...))
	if ps := r.advance(sales); len(ps) > 0 {
		out = append(out, sseMessage("sales", salesMessage{T: now.UnixMilli(), Products: ps}))
	}
	return out
}

// readings appends a product message for each of ids, read now, or a
// removed message for one deleted. It stops at the first failed read with
// a resync: the page reads the snapshot again, which tells it whether
// Redis answers.
func (h *hub) readings(ctx context.Context, out [][]byte, ids []string) [][]byte {
	for _, id := range ids {
		sctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
		s, err := h.eng.Status(sctx, id)
		cancel()
		switch {
		case errors.Is(err, engine.ErrUnknownProduct):
			out = append(out, sseMessage("removed", removedMessage{ID: id}))
		case errors.Is(err, engine.ErrInvalidRequest):
			// Not a product id: nothing to show.
		case err != nil:
			if ctx.Err() == nil {
				h.cfg.Logger.Warn().Err(err).Str("product", id).Msg("dashboard: status of a product that changed")
			}
			return append(out, msgResync)
		default:
			out = append(out, sseMessage("product", h.cfg.product(s)))
		}
	}
	return out
}

// follow keeps a subscription to channel until ctx ends. After a failure
// it tells the browsers their numbers are stale, and waits until Redis
// answers again to subscribe anew.
func (h *hub) follow(ctx context.Context, gen uint64, channel string, fn func([]byte)) {
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		err := h.eng.Subscribe(ctx, channel, fn)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("unsubscribed by the server")
		}
		h.cfg.Logger.Warn().Err(err).Str("channel", channel).Msg("dashboard: subscription lost; retrying")
		h.setDown(gen, true)
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
			pctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
			err := h.eng.Ping(pctx)
			cancel()
			if err == nil {
				break
			}
		}
		backoff = 50 * time.Millisecond
		h.setDown(gen, false)
	}
}

// salesMessage is the data of a "sales" event.
type salesMessage struct {
	T        int64          `json:"t"` // the server's clock, Unix ms
	Products []productSales `json:"products"`
}

// productSales is one product's sales in one interval, from its events:
// the page takes the rate from it, and its figures from the product
// messages (Remaining is the last event's stock, Sold and Orders this
// interval's, which a reading taken at another moment would not match).
type productSales struct {
	ID        string  `json:"id"`
	Remaining *int64  `json:"remaining,omitempty"` // after the interval's last sale; absent without sales
	Sold      int64   `json:"sold"`                // units sold in the interval
	Orders    int64   `json:"orders"`              // sales in the interval
	Rate      float64 `json:"rate"`                // units per second over the last second
}

// removedMessage is the data of a "removed" event: the product was deleted.
type removedMessage struct {
	ID string `json:"id"`
}

// sale is what one product sold in one interval.
type sale struct {
	units, orders, remaining int64
}

// tally gathers, between two ticks, the sales of each product and the
// products the control channel announced. The subscriptions write it; the
// ticker empties it.
type tally struct {
	max int // distinct products held at once; beyond, the browsers resync

	mu       sync.Mutex
	sales    map[string]*sale
	dirty    map[string]struct{}
	overflow bool
}

func newTally(maxProducts int) *tally {
	return &tally{max: maxProducts, sales: make(map[string]*sale), dirty: make(map[string]struct{})}
}

// sale adds one sale event (engine.Event as JSON); a reservation counts
// as a sale (its units left the stock), and one paid or released marks
// its product to be read again, selling nothing. Unreadable events are
// ignored: nothing on the page depends on one event.
func (t *tally) sale(payload []byte) {
	id, remaining, quantity, settles, ok := saleOf(payload)
	if !ok {
		return
	}
	if settles {
		t.control(id)
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.sales[string(id)]
	if s == nil {
		if len(t.sales) >= t.max {
			t.overflow = true
			return
		}
		s = &sale{}
		t.sales[string(id)] = s
	}
	s.units += max(quantity, 1)
	s.orders++
	// One Redis runs a product's scripts one at a time and delivers its
	// messages in that order, so the last event has the latest stock.
	s.remaining = remaining
}

// control records a product id announced on the control channel.
func (t *tally) control(id []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.dirty[string(id)]; ok {
		return
	}
	if len(t.dirty) >= t.max {
		t.overflow = true
		return
	}
	t.dirty[string(id)] = struct{}{}
}

// take empties the sales and takes up to n announced ids (the rest stay
// for the next call), and reports whether anything was dropped for lack
// of room since the last call.
func (t *tally) take(n int) (sales map[string]*sale, dirty []string, overflow bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	sales, t.sales = t.sales, make(map[string]*sale, len(t.sales))
	for id := range t.dirty {
		if len(dirty) == n {
			break
		}
		dirty = append(dirty, id)
		delete(t.dirty, id)
	}
	overflow, t.overflow = t.overflow, false
	return sales, dirty, overflow
}

// rereads is the set of products that sold since their last reading: each
// is read once per tick while it sells, statusPerTick at most a tick, the
// others in later ticks.
type rereads struct {
	max int // products held at once; beyond, the browsers resync
	ids map[string]struct{}
}

func newRereads(maxProducts int) *rereads {
	return &rereads{max: maxProducts, ids: make(map[string]struct{})}
}

// add records the products of sales, and reports false if some did not
// fit.
func (q *rereads) add(sales map[string]*sale) bool {
	for id := range sales {
		if _, ok := q.ids[id]; ok {
			continue
		}
		if len(q.ids) >= q.max {
			return false
		}
		q.ids[id] = struct{}{}
	}
	return true
}

// take removes and returns up to n products, and drops those of read (read
// this tick anyway).
func (q *rereads) take(n int, read []string) []string {
	for _, id := range read {
		delete(q.ids, id)
	}
	var ids []string
	for id := range q.ids {
		if len(ids) >= n {
			break
		}
		ids = append(ids, id)
		delete(q.ids, id)
	}
	return ids
}

// rates keeps, per product, the units sold in each of the last ticks that
// make up one second, for a sales-per-second figure that moves smoothly.
type rates struct {
	slots  int
	window time.Duration // slots ticks
	units  map[string][]int64
	sum    map[string]int64
	i      int // the slot this tick writes
}

func newRates(interval time.Duration) *rates {
	slots := max(1, int((time.Second+interval/2)/interval))
	return &rates{
		slots: slots, window: time.Duration(slots) * interval,
		units: make(map[string][]int64), sum: make(map[string]int64),
	}
}

// advance moves the window one tick on, adding this tick's sales, and
// returns the sales of every product that sold in the window, including
// those whose rate just fell to zero (then forgotten).
func (r *rates) advance(sales map[string]*sale) []productSales {
	r.i = (r.i + 1) % r.slots
	for id := range sales {
		if r.units[id] == nil {
			r.units[id] = make([]int64, r.slots)
		}
	}
	out := make([]productSales, 0, len(r.units))
	for id, u := range r.units {
		r.sum[id] -= u[r.i]
		u[r.i] = 0
		p := productSales{ID: id}
		if s := sales[id]; s != nil {
			u[r.i] = s.units
			r.sum[id] += s.units
			p.Sold, p.Orders, p.Remaining = s.units, s.orders, &s.remaining
		}
		p.Rate = float64(r.sum[id]) / r.window.Seconds()
		out = append(out, p)
		if r.sum[id] == 0 {
			delete(r.units, id)
			delete(r.sum, id)
		}
	}
	return out
}
