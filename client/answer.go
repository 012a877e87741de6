package client

// Answer is what a load generator needs of a purchase answer. Its slices
// are views of the payload it was scanned from.
type Answer struct {
	Status   []byte // "SUCCESS", "SOLD_OUT", …
	Quantity int64
	OrderID  []byte
}

// Answer fields and the JSON kinds their values must have.
const (
	fieldOther    = iota // a known field the scan does not keep
	fieldStatus          // strings it keeps
	fieldOrderID         //
	fieldQuantity        // the integer it keeps
)

// ScanAnswer reads the status, quantity and order id of an answer payload
// without allocating. It handles the flat objects the server writes: known
// fields only, strings without escapes, integers, no white space. For
// anything else it returns ok false and the caller decodes with
// wire.DecodeResponse, which has the last word: ScanAnswer only accepts
// what DecodeResponse reads the same way.
func ScanAnswer(p []byte) (a Answer, ok bool) {
	if len(p) < 2 || p[0] != '{' {
		return Answer{}, false
	}
	i := 1
	for {
		key, j, good := scanString(p, i)
		if !good || j >= len(p) || p[j] != ':' {
			return Answer{}, false
		}
		i = j + 1
		var isString bool
		field := fieldOther
		switch string(key) {
		case "status":
			field, isString = fieldStatus, true
		case "order_id":
			field, isString = fieldOrderID, true
		case "state", "start", "end", "redis", "code", "error", "ticket", "admission":
			isString = true
		case "quantity":
			field = fieldQuantity
		case "remaining_stock", "initial", "held", "limit", "retry_after_ms", "expires_at", "reserved", "paid", "released",
			"position", "eta_ms":
		default:
			// Unknown, or only matching case-insensitively as encoding/json does.
			return Answer{}, false
		}
		if isString {
			v, j, good := scanString(p, i)
			if !good {
				return Answer{}, false
			}
			switch field {
			case fieldStatus:
				if len(v) == 0 {
					return Answer{}, false
				}
				a.Status = v
			case fieldOrderID:
				a.OrderID = v
			}
			i = j
		} else {
			v, j, good := scanInt(p, i)
			if !good {
				return Answer{}, false
			}
			if field == fieldQuantity {
				a.Quantity = v
			}
			i = j
		}
		if i >= len(p) {
			return Answer{}, false
		}
		if p[i] == '}' {
			i++
			break
		}
		if p[i] != ',' {
			return Answer{}, false
		}
		i++
	}
	if i != len(p) || a.Status == nil {
		return Answer{}, false
	}
	return a, true
}

// scanString reads the JSON string at p[i], which must need no unescaping.
// It returns its contents and the index after it.
func scanString(p []byte, i int) (s []byte, next int, ok bool) {
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

// scanInt reads the JSON integer at p[i]: -?(0|[1-9][0-9]*), at most 18
// digits so it cannot overflow, and not followed by a fraction or exponent.
func scanInt(p []byte, i int) (v int64, next int, ok bool) {
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
