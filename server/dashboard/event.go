package dashboard

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/flashsale/flashsale/engine"
)

// saleOf reads the fields the tally needs from a sale event: the product,
// the stock after the sale, and the units sold. settles reports an event
// that settles a reservation ("paid" or "released"): it sold nothing, but
// the product's figures changed. A sale flood runs this on the
// subscription's goroutine for every sale, so the layouts purchase.lua
// writes (a sale, a reservation) are read by hand, without reflection
// (about ten times cheaper than encoding/json); anything else, such as an
// id that JSON had to escape, falls back to encoding/json.
func saleOf(b []byte) (id []byte, remaining, quantity int64, settles, ok bool) {
	if id, remaining, quantity, ok = parseSale(b); ok {
		return id, remaining, quantity, false, true
	}
	var ev engine.Event
	if json.Unmarshal(b, &ev) != nil || ev.ProductID == "" {
		return nil, 0, 0, false, false
	}
	return []byte(ev.ProductID), ev.Remaining, ev.Quantity, ev.Type == eventPaid || ev.Type == eventReleased, true
}

// The types of the events that settle a reservation (engine.Event.Type).
const (
	eventPaid     = "paid"
	eventReleased = "released"
)

// reservedPrefix starts a reservation's event, before its product id.
const reservedPrefix = `{"type":"reserved","expires_at":`

// parseSale reads an event laid out exactly as purchase.lua publishes it:
// {"product_id":…,"buyer":…,"remaining":N,"timestamp":N,"order_id":…,"quantity":N}
// for a sale, and the same after {"type":"reserved","expires_at":N, for a
// reservation.
func parseSale(b []byte) (id []byte, remaining, quantity int64, ok bool) {
	p := eventParser{b: b, ok: true}
	if bytes.HasPrefix(b, []byte(reservedPrefix)) {
		p.lit(reservedPrefix)
		p.int()
		p.lit(`,"product_id":"`)
	} else {
		p.lit(`{"product_id":"`)
	}
	id = p.plainString()
	p.lit(`,"buyer":`)
	p.skipString()
	p.lit(`,"remaining":`)
	remaining = p.int()
	p.lit(`,"timestamp":`)
	p.int()
	p.lit(`,"order_id":`)
	p.skipString()
	p.lit(`,"quantity":`)
	quantity = p.int()
	p.lit(`}`)
	return id, remaining, quantity, p.ok && len(p.b) == 0 && len(id) > 0
}

// eventParser consumes b; after the first mismatch ok is false and every
// step does nothing.
type eventParser struct {
	b  []byte
	ok bool
}

func (p *eventParser) lit(s string) {
	if p.ok && len(p.b) >= len(s) && string(p.b[:len(s)]) == s {
		p.b = p.b[len(s):]
		return
	}
	p.ok = false
}

// plainString reads the rest of a string whose opening quote was consumed,
// refusing escapes (the fallback decodes those).
func (p *eventParser) plainString() []byte {
	if !p.ok {
		return nil
	}
	i := bytes.IndexByte(p.b, '"')
	if i < 0 || bytes.IndexByte(p.b[:i], '\\') >= 0 {
		p.ok = false
		return nil
	}
	s := p.b[:i]
	p.b = p.b[i+1:]
	return s
}

// skipString consumes one JSON string, escapes included.
func (p *eventParser) skipString() {
	if !p.ok || len(p.b) == 0 || p.b[0] != '"' {
		p.ok = false
		return
	}
	for i := 1; i < len(p.b); i++ {
		switch p.b[i] {
		case '\\':
			i++
		case '"':
			p.b = p.b[i+1:]
			return
		}
	}
	p.ok = false
}

func (p *eventParser) int() int64 {
	if !p.ok {
		return 0
	}
	i := 0
	for i < len(p.b) && (p.b[i] == '-' || p.b[i] >= '0' && p.b[i] <= '9') {
		i++
	}
	n, err := strconv.ParseInt(string(p.b[:i]), 10, 64)
	if err != nil {
		p.ok = false
		return 0
	}
	p.b = p.b[i:]
	return n
}
