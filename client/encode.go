package client

import (
	"strconv"

	"github.com/flashsale/flashsale/wire"
)

// PurchaseEncoder appends the ATTEMPT_PURCHASE frames of many numbered
// customers buying one product: customer n is UserPrefix_n. Without Sign it
// writes exactly what wire.AppendPurchase would, without building the user
// id string: the JSON around the customer number is computed once.
type PurchaseEncoder struct {
	product, prefix string
	quantity        int64 // the payload's quantity: 0 (absent) for 1
	sign            func(req *wire.PurchaseRequest, user int64)
	head            []byte // {"product_id":"…","user_id":"PREFIX_  (the id's string left open)
	tail            []byte // "  ,"quantity":Q  }
}

// NewPurchaseEncoder encodes purchases of quantity units of product by
// customers prefix_0, prefix_1, … When sign is set it is called on every
// request before it is encoded (to add a customer token), which costs an
// allocation per frame.
func NewPurchaseEncoder(product, prefix string, quantity int64, sign func(req *wire.PurchaseRequest, user int64)) *PurchaseEncoder {
	e := &PurchaseEncoder{product: product, prefix: prefix, sign: sign}
	if quantity != 1 {
		e.quantity = quantity
	}
	e.head = append(e.head, `{"product_id":`...)
	e.head = wire.AppendString(e.head, product)
	e.head = append(e.head, `,"user_id":`...)
	// The prefix ends in '_', so its escaping does not depend on the digits
	// that follow: drop the closing quote and append them later.
	e.head = wire.AppendString(e.head, prefix+"_")
	e.head = e.head[:len(e.head)-1]
	e.tail = append(e.tail, '"')
	if e.quantity != 0 {
		e.tail = append(e.tail, `,"quantity":`...)
		e.tail = strconv.AppendInt(e.tail, e.quantity, 10)
	}
	e.tail = append(e.tail, '}')
	return e
}

// AppendFrame appends the ATTEMPT_PURCHASE frame of customer user.
func (e *PurchaseEncoder) AppendFrame(dst []byte, user int64) []byte {
	start := len(dst)
	dst = wire.AppendHeader(dst, wire.TypePurchase, 0)
	if e.sign != nil {
		req := wire.PurchaseRequest{
			ProductID: e.product,
			UserID:    e.prefix + "_" + strconv.FormatInt(user, 10),
			Quantity:  e.quantity,
		}
		e.sign(&req, user)
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
