package commands

import (
	"strconv"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/wire"
)

// purchaseEncoder writes the purchase frames of a run. Without tokens it
// writes exactly what wire.AppendPurchase would, without building the user
// id string: the JSON up to the user number is computed once.
type purchaseEncoder struct {
	cfg  loadConfig
	head []byte // {"product_id":"…","user_id":"PREFIX_  (the id's string left open)
	tail []byte // "  ,"quantity":Q  }
}

func newPurchaseEncoder(cfg loadConfig) *purchaseEncoder {
	e := &purchaseEncoder{cfg: cfg}
	e.head = append(e.head, `{"product_id":`...)
	e.head = wire.AppendString(e.head, cfg.Product)
	e.head = append(e.head, `,"user_id":`...)
	// The prefix ends in '_', so its escaping does not depend on the digits
	// that follow: drop the closing quote and append them later.
	e.head = wire.AppendString(e.head, cfg.UserPrefix+"_")
	e.head = e.head[:len(e.head)-1]
	e.tail = append(e.tail, '"')
	if q := e.quantity(); q != 0 {
		e.tail = append(e.tail, `,"quantity":`...)
		e.tail = strconv.AppendInt(e.tail, q, 10)
	}
	e.tail = append(e.tail, '}')
	return e
}

// quantity is the payload's quantity: absent (0) for the default of 1.
func (e *purchaseEncoder) quantity() int64 {
	if e.cfg.Quantity == 1 {
		return 0
	}
	return e.cfg.Quantity
}

// user is the customer number of request k.
func (e *purchaseEncoder) user(k int64) int64 {
	if e.cfg.Users > 0 {
		return k % int64(e.cfg.Users)
	}
	return k
}

// appendFrame appends the ATTEMPT_PURCHASE frame of request k.
func (e *purchaseEncoder) appendFrame(dst []byte, k int64) []byte {
	user := e.user(k)
	start := len(dst)
	dst = wire.AppendHeader(dst, wire.TypePurchase, 0)
	if e.cfg.Tokens != nil {
		// Signing costs far more than the id string.
		req := wire.PurchaseRequest{
			ProductID: e.cfg.Product,
			UserID:    e.cfg.UserPrefix + "_" + strconv.FormatInt(user, 10),
			Quantity:  e.quantity(),
		}
		e.cfg.Tokens.sign(&req, user)
		dst = wire.AppendPurchase(dst, req)
	} else {
		dst = append(dst, e.head...)
		dst = strconv.AppendInt(dst, user, 10)
		dst = append(dst, e.tail...)
	}
	// The header again, now that the length is known, in place.
	wire.AppendHeader(dst[:start], wire.TypePurchase, len(dst)-start-wire.HeaderSize)
	return dst
}

// statusNames are the wire strings of the statuses, by Status.
var statusNames = func() []string {
	all := engine.Statuses()
	names := make([]string, len(all))
	for i, s := range all {
		names[i] = s.String()
	}
	return names
}()

// Answer fields and the JSON kinds their values must have.
const (
	fieldOther    = iota // a known field bench does not need
	fieldStatus          // the string bench needs
	fieldQuantity        // the integer bench needs
)

// quickAnswer reads the status and quantity of a response payload
// without allocating. It handles the flat objects the server writes: known
// fields only, strings without escapes, integers, no white space. For
// anything else, an ERROR, or a status it does not know, it returns ok
// false and the caller decodes with wire.DecodeResponse, which has the last
// word: quickAnswer only accepts what DecodeResponse reads the same way.
func quickAnswer(p []byte) (status engine.Status, quantity int64, ok bool) {
	if len(p) < 2 || p[0] != '{' {
		return 0, 0, false
	}
	var (
		st     []byte
		haveSt bool
	)
	i := 1
	for {
		key, j, good := quickString(p, i)
		if !good || j >= len(p) || p[j] != ':' {
			return 0, 0, false
		}
		i = j + 1
		var isString bool
		field := fieldOther
		switch string(key) {
		case "status":
			field, isString = fieldStatus, true
		case "order_id", "state", "start", "end", "redis", "code", "error":
			isString = true
		case "quantity":
			field = fieldQuantity
		case "remaining_stock", "initial", "held", "limit", "retry_after_ms":
		default:
			// Unknown, or only matching case-insensitively as encoding/json does.
			return 0, 0, false
		}
		if isString {
			v, j, good := quickString(p, i)
			if !good {
				return 0, 0, false
			}
			if field == fieldStatus {
				st, haveSt = v, true
			}
			i = j
		} else {
			v, j, good := quickInt(p, i)
			if !good {
				return 0, 0, false
			}
			if field == fieldQuantity {
				quantity = v
			}
			i = j
		}
		if i >= len(p) {
			return 0, 0, false
		}
		if p[i] == '}' {
			i++
			break
		}
		if p[i] != ',' {
			return 0, 0, false
		}
		i++
	}
	if i != len(p) || !haveSt {
		return 0, 0, false
	}
	for s, name := range statusNames {
		if string(st) == name {
			if engine.Status(s) == engine.StatusError {
				return 0, 0, false
			}
			return engine.Status(s), quantity, true
		}
	}
	return 0, 0, false
}

// quickString reads the JSON string at p[i], which must need no unescaping.
// It returns its contents and the index after it.
func quickString(p []byte, i int) (s []byte, next int, ok bool) {
	if i >= len(p) || p[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(p); j++ {
		switch c := p[j]; {
		case c == '"':
			return p[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// quickInt reads the JSON integer at p[i]: -?(0|[1-9][0-9]*), at most 18
// digits so it cannot overflow, and not followed by a fraction or exponent.
func quickInt(p []byte, i int) (v int64, next int, ok bool) {
	neg := i < len(p) && p[i] == '-'
	if neg {
		i++
	}
	j := i
	for j < len(p) && p[j] >= '0' && p[j] <= '9' {
		v = v*10 + int64(p[j]-'0')
		j++
	}
	switch n := j - i; {
	case n == 0 || n > 18 || (n > 1 && p[i] == '0'):
		return 0, 0, false
	case j < len(p) && (p[j] == '.' || p[j] == 'e' || p[j] == 'E'):
		return 0, 0, false
	}
	if neg {
		v = -v
	}
	return v, j, true
}
