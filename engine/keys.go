package engine

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxIDLen caps product and user ids, in bytes.
const MaxIDLen = 128

// EventChannel is the pub/sub channel every sale is announced on.
const EventChannel = "flashsale_events"

// Event is what a sale publishes on EventChannel. A sale sells outright
// with no Type; a product sold with a hold publishes a "reserved" event
// (with ExpiresAt, Unix ms) for each reservation, then "paid" or
// "released" (with Reason: expired, cancelled or admin) for it.
type Event struct {
	Type      string `json:"type,omitempty"`
	ExpiresAt int64  `json:"expires_at,omitempty"`
	Reason    string `json:"reason,omitempty"`
	ProductID string `json:"product_id"`
	Buyer     string `json:"buyer"`
	Remaining int64  `json:"remaining"`
	Timestamp int64  `json:"timestamp"` // Redis's clock, Unix seconds
	OrderID   string `json:"order_id"`
	Quantity  int64  `json:"quantity"`
}

// ControlChannel carries the id of every product whose stock may have come
// back (init, reset, restock, release, open, delete), so that servers drop
// their cached SOLD_OUT for it.
const ControlChannel = "flashsale_control"

// roomSecretKey holds the secret waiting-room tokens are signed with when
// the servers are given none (see room_token.go): the sale's one key that
// is no product's, in one Redis Cluster slot by its hash tag.
const roomSecretKey = "flashsale:{room-secret}"

// Keys are the Redis keys of one product. All of them carry the product id
// as a hash tag, so they live in one Redis Cluster slot.
type Keys struct {
	Stock    string // integer string: units left
	Buyers   string // list: the user id of every order not released, in purchase order
	Meta     string // hash: initial, limit, held, start, end (ms), epoch
	Holders  string // hash: user id → units held
	Orders   string // stream: sale, reserved, paid, release(d) and restock entries; a sale's or reservation's entry id is its order id
	Released string // hash: order id → id of its release entry
	// Holds is a sorted set: the order id of every reservation not yet
	// paid or released, scored by its expiry (ms). Reservations is a hash:
	// order id → the reservation's record (see lua/reservation.lua).
	Holds, Reservations string
	// The waiting room (see lua/room.lua): Room is a hash of its settings
	// and cursor, Tickets a hash user id → place|joined|nonce, Line a
	// sorted set of those who joined before the opening (random scores),
	// Admitted a hash user id → expires|nonce of their admission.
	Room, Tickets, Line, Admitted string
	// Requests are two hashes, request id → record, that take turns (see
	// lua/purchase.lua).
	Requests [2]string
	prefix   string
}

// KeysFor returns the keys of product id. It is the only place key names are
// built.
func KeysFor(id string) Keys {
	p := "product:{" + id + "}:"
	return Keys{
		Stock: p + "stock", Buyers: p + "buyers", Meta: p + "meta",
		Holders: p + "holders", Orders: p + "orders", Released: p + "released",
		Holds: p + "holds", Reservations: p + "reservations",
		Room: p + "room", Tickets: p + "room:tickets", Line: p + "room:line", Admitted: p + "room:admitted",
		Requests: [2]string{p + "requests:0", p + "requests:1"},
		prefix:   p,
	}
}

// Request is the key of request id rid's record in the formats before
// records went into Requests: still read for a product created before.
func (k Keys) Request(rid string) string { return k.prefix + "req:" + rid }

// Rate is the key of customer user's rate limiter on this product.
func (k Keys) Rate(user string) string { return k.prefix + "rate:" + user }

// metaPattern matches the meta key of every product, for SCAN.
const metaPattern = "product:{*}:meta"

// productOfMeta returns the product id of a meta key, or "" if key is not one.
func productOfMeta(key string) string {
	const pre, suf = "product:{", "}:meta"
	if len(key) <= len(pre)+len(suf) || key[:len(pre)] != pre || key[len(key)-len(suf):] != suf {
		return ""
	}
	// A request record's key can end in "}:meta" too (request ids may hold
	// braces); what it yields then is no valid product id.
	if id := key[len(pre) : len(key)-len(suf)]; ValidateProductID(id) == nil {
		return id
	}
	return ""
}

// ErrInvalidRequest is wrapped by every validation failure; the wrapping
// error's text is what the client is told.
var ErrInvalidRequest = errors.New("invalid request")

type invalidError string

func (e invalidError) Error() string { return string(e) }
func (e invalidError) Unwrap() error { return ErrInvalidRequest }

// ValidateProductID reports why id cannot name a product: empty, longer
// than MaxIDLen, not UTF-8, with control characters, or with braces (which
// would break the {ID} hash tag).
func ValidateProductID(id string) error {
	return validateID("product_id", id, true)
}

// ValidateUserID reports why id cannot name a customer.
func ValidateUserID(id string) error {
	return validateID("user_id", id, false)
}

// ValidateRequestID reports why a non-empty id cannot name a request.
func ValidateRequestID(id string) error {
	return validateID("request_id", id, false)
}

// MaxQuantity caps the units of one purchase.
const MaxQuantity = 10000

// ValidateQuantity reports why q units cannot be bought in one purchase.
func ValidateQuantity(q int64) error {
	if q < 1 || q > MaxQuantity {
		return invalidError(fmt.Sprintf("quantity must be between 1 and %d", MaxQuantity))
	}
	return nil
}

// ValidateOrderID reports why id cannot be an order id (a stream entry id
// such as 1764108000123-0).
func ValidateOrderID(id string) error {
	ms, seq, ok := strings.Cut(id, "-")
	// Both parts must fit in 64 bits, or XRANGE refuses the id.
	_, errMs := strconv.ParseUint(ms, 10, 64)
	_, errSeq := strconv.ParseUint(seq, 10, 64)
	if !ok || !isDigits(ms) || !isDigits(seq) || errMs != nil || errSeq != nil || len(id) > 41 {
		return invalidError(fmt.Sprintf("order id %q is not of the form <ms>-<seq>", id))
	}
	return nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func validateID(field, id string, forKey bool) error {
	switch {
	case id == "":
		return invalidError("missing " + field)
	case len(id) > MaxIDLen:
		return invalidError(fmt.Sprintf("%s longer than %d bytes", field, MaxIDLen))
	case !utf8.ValidString(id):
		return invalidError(field + " is not valid UTF-8")
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f || (forKey && (r == '{' || r == '}')) {
			return invalidError(field + " contains a forbidden character")
		}
	}
	return nil
}
