package engine

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// MaxIDLen caps product and user ids, in bytes.
const MaxIDLen = 128

// EventChannel is the pub/sub channel every sale is announced on.
const EventChannel = "flashsale_events"

// Keys are the Redis keys of one product. All of them carry the product id
// as a hash tag, so they live in one Redis Cluster slot.
type Keys struct {
	Stock  string // integer string: units left
	Buyers string // list of user ids, in purchase order
	Meta   string // hash: initial
}

// KeysFor returns the keys of product id. It is the only place key names are
// built.
func KeysFor(id string) Keys {
	prefix := "product:{" + id + "}:"
	return Keys{Stock: prefix + "stock", Buyers: prefix + "buyers", Meta: prefix + "meta"}
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
