package wire

import (
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// A small JSON reader for the request payloads: flat objects whose members
// the caller picks by name. It validates the whole document as
// encoding/json does, but allocates nothing for the common case: a string
// without escapes is returned as a view of the payload. The differences
// from encoding/json are deliberate and documented on DecodePurchase:
// member names match exactly (encoding/json also accepts other letter
// cases).

// maxJSONDepth is encoding/json's nesting limit.
const maxJSONDepth = 10000

type jsonKind uint8

const (
	jsonString jsonKind = iota + 1
	jsonNumber
	jsonLiteral // true, false
	jsonNull
	jsonObject // skipped
	jsonArray  // skipped
)

// kindNames name each kind for an error message: "got a string".
var kindNames = [...]string{
	jsonString:  "a string",
	jsonNumber:  "a number",
	jsonLiteral: "a boolean",
	jsonNull:    "null",
	jsonObject:  "an object",
	jsonArray:   "an array",
}

// jsonValue is one member's value, not yet converted.
type jsonValue struct {
	kind jsonKind
	raw  []byte // string: the contents between the quotes, still escaped; number: the token
	// plain is true when a string has no escapes and is valid UTF-8, so raw
	// is its value as it stands.
	plain bool
}

// text returns the value of a string. Plain strings alias the payload
// (no copy); others are unescaped into new memory.
func (v jsonValue) text() string {
	if v.plain {
		return unsafe.String(unsafe.SliceData(v.raw), len(v.raw))
	}
	return string(unescape(v.raw))
}

// int64 returns the value of an integer number as encoding/json would
// decode it into an int64: no fraction, no exponent, no overflow.
func (v jsonValue) int64() (int64, bool) {
	if v.kind != jsonNumber {
		return 0, false
	}
	n, err := strconv.ParseInt(unsafe.String(unsafe.SliceData(v.raw), len(v.raw)), 10, 64)
	return n, err == nil
}

type jsonReader struct {
	p []byte
	i int
}

// scanObject reads p as one JSON object and calls member for each of its
// members in order, until member returns an error. A syntax error, a value
// other than an object, or trailing bytes give ErrInvalidJSON, wherever
// they are; else the first error from member is returned.
func scanObject(p []byte, member func(name []byte, v jsonValue) error) error {
	var refused error
	r := jsonReader{p: p}
	r.space()
	if !r.eat('{') {
		return ErrInvalidJSON
	}
	r.space()
	if !r.eat('}') {
		for {
			r.space()
			name, ok := r.str()
			if !ok {
				return ErrInvalidJSON
			}
			if !name.plain {
				name.raw = unescape(name.raw)
			}
			r.space()
			if !r.eat(':') {
				return ErrInvalidJSON
			}
			r.space()
			v, ok := r.value(1)
			if !ok {
				return ErrInvalidJSON
			}
			if refused == nil {
				refused = member(name.raw, v)
			}
			r.space()
			if r.eat('}') {
				break
			}
			if !r.eat(',') {
				return ErrInvalidJSON
			}
		}
	}
	r.space()
	if r.i != len(r.p) {
		return ErrInvalidJSON
	}
	return refused
}

func (r *jsonReader) space() {
	for r.i < len(r.p) {
		switch r.p[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

func (r *jsonReader) eat(c byte) bool {
	if r.i < len(r.p) && r.p[r.i] == c {
		r.i++
		return true
	}
	return false
}

// value reads any JSON value at nesting depth.
func (r *jsonReader) value(depth int) (jsonValue, bool) {
	if r.i >= len(r.p) {
		return jsonValue{}, false
	}
	switch c := r.p[r.i]; {
	case c == '"':
		return r.str()
	case c == '-' || c >= '0' && c <= '9':
		start := r.i
		if !r.number() {
			return jsonValue{}, false
		}
		return jsonValue{kind: jsonNumber, raw: r.p[start:r.i]}, true
	case c == 't':
		return jsonValue{kind: jsonLiteral}, r.literal("true")
	case c == 'f':
		return jsonValue{kind: jsonLiteral}, r.literal("false")
	case c == 'n':
		return jsonValue{kind: jsonNull}, r.literal("null")
	case c == '{':
		return jsonValue{kind: jsonObject}, r.composite(depth + 1)
	case c == '[':
		return jsonValue{kind: jsonArray}, r.composite(depth + 1)
	}
	return jsonValue{}, false
}

func (r *jsonReader) literal(lit string) bool {
	if len(r.p)-r.i < len(lit) || string(r.p[r.i:r.i+len(lit)]) != lit {
		return false
	}
	r.i += len(lit)
	return true
}

// number reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (r *jsonReader) number() bool {
	r.eat('-')
	if r.eat('0') {
	} else if !r.digits() {
		return false
	}
	if r.eat('.') && !r.digits() {
		return false
	}
	if r.eat('e') || r.eat('E') {
		if !r.eat('+') {
			r.eat('-')
		}
		if !r.digits() {
			return false
		}
	}
	return true
}

func (r *jsonReader) digits() bool {
	start := r.i
	for r.i < len(r.p) && r.p[r.i] >= '0' && r.p[r.i] <= '9' {
		r.i++
	}
	return r.i > start
}

// str reads a string, checking its escapes and noting whether it can be
// used as it stands.
func (r *jsonReader) str() (jsonValue, bool) {
	if !r.eat('"') {
		return jsonValue{}, false
	}
	start, plain := r.i, true
	for r.i < len(r.p) {
		c := r.p[r.i]
		switch {
		case c == '"':
			v := jsonValue{kind: jsonString, raw: r.p[start:r.i], plain: plain}
			r.i++
			return v, true
		case c < 0x20:
			return jsonValue{}, false
		case c == '\\':
			plain = false
			r.i++
			if r.i >= len(r.p) {
				return jsonValue{}, false
			}
			switch r.p[r.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				r.i++
			case 'u':
				if len(r.p)-r.i < 5 || !isHex4(r.p[r.i+1:r.i+5]) {
					return jsonValue{}, false
				}
				r.i += 5
			default:
				return jsonValue{}, false
			}
		case c < utf8.RuneSelf:
			r.i++
		default:
			ru, size := utf8.DecodeRune(r.p[r.i:])
			if ru == utf8.RuneError && size == 1 {
				plain = false // becomes U+FFFD, as encoding/json does
			}
			r.i += size
		}
	}
	return jsonValue{}, false
}

func isHex4(b []byte) bool {
	for _, c := range b[:4] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// composite skips an object or an array, checking its syntax.
func (r *jsonReader) composite(depth int) bool {
	if depth > maxJSONDepth {
		return false
	}
	open := r.p[r.i]
	r.i++
	r.space()
	end := byte(']')
	if open == '{' {
		end = '}'
	}
	if r.eat(end) {
		return true
	}
	for {
		r.space()
		if open == '{' {
			if _, ok := r.str(); !ok {
				return false
			}
			r.space()
			if !r.eat(':') {
				return false
			}
			r.space()
		}
		if _, ok := r.value(depth); !ok {
			return false
		}
		r.space()
		if r.eat(end) {
			return true
		}
		if !r.eat(',') {
			return false
		}
	}
}

// unescape decodes the contents of a string that str accepted: escapes,
// UTF-16 surrogate pairs, and invalid UTF-8 or lone surrogates as U+FFFD,
// all as encoding/json does.
func unescape(s []byte) []byte {
	out := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			i++
			switch e := s[i]; e {
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				ru := rune(hex4(s[i+1:]))
				i += 4
				if utf16.IsSurrogate(ru) {
					// A high surrogate pairs with a following \uXXXX low one.
					if i+6 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' {
						if pair := utf16.DecodeRune(ru, rune(hex4(s[i+3:]))); pair != utf8.RuneError {
							ru = pair
							i += 6
						} else {
							ru = utf8.RuneError
						}
					} else {
						ru = utf8.RuneError
					}
				}
				out = utf8.AppendRune(out, ru)
			default: // '"', '\\', '/'
				out = append(out, e)
			}
			i++
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			ru, size := utf8.DecodeRune(s[i:])
			out = utf8.AppendRune(out, ru)
			i += size
		}
	}
	return out
}

func hex4(b []byte) uint16 {
	var n uint16
	for _, c := range b[:4] {
		n <<= 4
		switch {
		case c >= '0' && c <= '9':
			n |= uint16(c - '0')
		case c >= 'a' && c <= 'f':
			n |= uint16(c - 'a' + 10)
		default:
			n |= uint16(c - 'A' + 10)
		}
	}
	return n
}
