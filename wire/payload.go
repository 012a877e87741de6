package wire

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrInvalidJSON is returned when a payload is not the JSON object its
// message type expects. Its text is what the client is told.
var ErrInvalidJSON = errors.New("invalid json")

// PurchaseRequest is the payload of ATTEMPT_PURCHASE:
//
//	{"product_id":"iphone15","user_id":"user_123"}
//	{"product_id":"iphone15","user_id":"user_123","quantity":2,"request_id":"c0ffee"}
//	{"product_id":"iphone15","user_id":"user_123","token":"…","expires":1764108000}
//	{"product_id":"iphone15","jwt":"eyJhbGciOiJIUzI1NiJ9.…"}
//
// Quantity 0 (or absent) means 1. An empty RequestID means the request
// cannot be retried exactly. Token and Expires (Unix seconds) prove the
// user id when the server requires customer tokens; JWT (a JSON Web Token
// whose sub is the user id, which may then be left out) when it accepts
// the shop's JWTs.
type PurchaseRequest struct {
	ProductID string `json:"product_id"`
	UserID    string `json:"user_id"`
	Quantity  int64  `json:"quantity"`
	RequestID string `json:"request_id"`
	Token     string `json:"token"`
	Expires   int64  `json:"expires"`
	JWT       string `json:"jwt"`
	// Admission is the token a product's waiting room gave the customer
	// (QUEUE_STATUS answered ADMITTED): a product with a room sells only
	// with it.
	Admission string `json:"admission"`
}

// JoinRequest is the payload of JOIN_QUEUE: a customer joining a product's
// waiting room, with the same proofs as a purchase:
//
//	{"product_id":"iphone15","user_id":"user_123"}
type JoinRequest struct {
	ProductID string `json:"product_id"`
	UserID    string `json:"user_id"`
	Token     string `json:"token"`
	Expires   int64  `json:"expires"`
	JWT       string `json:"jwt"`
}

// DecodeJoin parses a JOIN_QUEUE payload into req, like DecodePurchase.
func DecodeJoin(p []byte, req *JoinRequest) error {
	*req = JoinRequest{}
	return scanObject(p, func(name []byte, v jsonValue) error {
		if ok, err := setCustomer(name, v, &req.ProductID, &req.UserID, &req.Token, &req.Expires, &req.JWT); ok {
			return err
		}
		return &FieldError{Field: string(name), Known: joinFields}
	})
}

// joinFields are the members of a JoinRequest, for FieldError.
var joinFields = []string{"product_id", "user_id", "token", "expires", "jwt"}

// AppendJoin appends the JSON payload of req; zero fields are omitted.
func AppendJoin(dst []byte, req JoinRequest) []byte {
	dst = append(dst, `{"product_id":`...)
	dst = AppendString(dst, req.ProductID)
	dst = append(dst, `,"user_id":`...)
	dst = AppendString(dst, req.UserID)
	return appendProof(dst, req.Token, req.Expires, req.JWT)
}

// StatusRequest is the payload of QUEUE_STATUS: where the holder of a
// waiting-room ticket stands.
//
//	{"product_id":"iphone15","ticket":"t2.aXBob25lMTU.dXNlcl8xMjM.…"}
type StatusRequest struct {
	ProductID string `json:"product_id"`
	Ticket    string `json:"ticket"`
}

// DecodeStatus parses a QUEUE_STATUS payload into req, like DecodePurchase.
func DecodeStatus(p []byte, req *StatusRequest) error {
	*req = StatusRequest{}
	return scanObject(p, func(name []byte, v jsonValue) error {
		switch string(name) {
		case "product_id":
			return setString(&req.ProductID, "product_id", v)
		case "ticket":
			return setString(&req.Ticket, "ticket", v)
		}
		return &FieldError{Field: string(name), Known: statusFields}
	})
}

// statusFields are the members of a StatusRequest, for FieldError.
var statusFields = []string{"product_id", "ticket"}

// AppendStatus appends the JSON payload of req.
func AppendStatus(dst []byte, req StatusRequest) []byte {
	dst = append(dst, `{"product_id":`...)
	dst = AppendString(dst, req.ProductID)
	dst = append(dst, `,"ticket":`...)
	dst = AppendString(dst, req.Ticket)
	return append(dst, '}')
}

// OrderRequest is the payload of CONFIRM_ORDER and CANCEL_ORDER: the
// reservation a purchase answered RESERVED, named by its order id, and
// its customer, with the same proofs as a purchase:
//
//	{"product_id":"iphone15","user_id":"user_123","order_id":"1764108000123-0"}
type OrderRequest struct {
	ProductID string `json:"product_id"`
	UserID    string `json:"user_id"`
	OrderID   string `json:"order_id"`
	Token     string `json:"token"`
	Expires   int64  `json:"expires"`
	JWT       string `json:"jwt"`
}

// DecodeOrder parses a CONFIRM_ORDER or CANCEL_ORDER payload into req, like
// DecodePurchase.
func DecodeOrder(p []byte, req *OrderRequest) error {
	*req = OrderRequest{}
	return scanObject(p, func(name []byte, v jsonValue) error {
		if ok, err := setCustomer(name, v, &req.ProductID, &req.UserID, &req.Token, &req.Expires, &req.JWT); ok {
			return err
		}
		if string(name) == "order_id" {
			return setString(&req.OrderID, "order_id", v)
		}
		return &FieldError{Field: string(name), Known: orderFields}
	})
}

// orderFields are the members of an OrderRequest, for FieldError.
var orderFields = []string{"product_id", "user_id", "order_id", "token", "expires", "jwt"}

// AppendOrder appends the JSON payload of req; zero fields are omitted.
func AppendOrder(dst []byte, req OrderRequest) []byte {
	dst = append(dst, `{"product_id":`...)
	dst = AppendString(dst, req.ProductID)
	dst = append(dst, `,"user_id":`...)
	dst = AppendString(dst, req.UserID)
	dst = append(dst, `,"order_id":`...)
	dst = AppendString(dst, req.OrderID)
	return appendProof(dst, req.Token, req.Expires, req.JWT)
}

// appendProof appends a request's proofs of its user id (those set) and
// closes the object.
func appendProof(dst []byte, token string, expires int64, jwt string) []byte {
	if token != "" {
		dst = append(dst, `,"token":`...)
		dst = AppendString(dst, token)
	}
	if expires != 0 {
		dst = append(dst, `,"expires":`...)
		dst = strconv.AppendInt(dst, expires, 10)
	}
	if jwt != "" {
		dst = append(dst, `,"jwt":`...)
		dst = AppendString(dst, jwt)
	}
	return append(dst, '}')
}

// QueryRequest is the payload of QUERY_STOCK: {"product_id":"iphone15"}.
type QueryRequest struct {
	ProductID string `json:"product_id"`
}

// DecodePurchase parses an ATTEMPT_PURCHASE payload into req. It checks the
// JSON shape only; which ids are acceptable is the engine's decision.
//
// It is reflection-free and allocates nothing for strings without escapes:
// those fields are views of p, valid only as long as p is left unchanged.
// A caller that reuses p must copy it first (the server copies each
// payload into its request slot). A member of another name, or of the
// wrong type, is a *FieldError that names it (a client's "qty" must not
// buy 1 unit as if all was well); null leaves a field unset, as with
// encoding/json; member names must match exactly (encoding/json also
// accepts other letter cases). A syntax error anywhere is ErrInvalidJSON
// itself.
func DecodePurchase(p []byte, req *PurchaseRequest) error {
	*req = PurchaseRequest{}
	return scanObject(p, func(name []byte, v jsonValue) error {
		// Its own switch, not setCustomer: this is the hot path, and a call
		// per member costs about 8% of the decode.
		switch string(name) {
		case "product_id":
			return setString(&req.ProductID, "product_id", v)
		case "user_id":
			return setString(&req.UserID, "user_id", v)
		case "request_id":
			return setString(&req.RequestID, "request_id", v)
		case "token":
			return setString(&req.Token, "token", v)
		case "jwt":
			return setString(&req.JWT, "jwt", v)
		case "admission":
			return setString(&req.Admission, "admission", v)
		case "quantity":
			return setInt(&req.Quantity, "quantity", v)
		case "expires":
			return setInt(&req.Expires, "expires", v)
		}
		return &FieldError{Field: string(name), Known: purchaseFields}
	})
}

// setCustomer sets the member name of a request naming a product and a
// customer with their proof (product_id, user_id, token, expires, jwt),
// which every request of a customer shares; ok false for another name.
func setCustomer(name []byte, v jsonValue, product, user, token *string, expires *int64, jwt *string) (ok bool, err error) {
	switch string(name) {
	case "product_id":
		return true, setString(product, "product_id", v)
	case "user_id":
		return true, setString(user, "user_id", v)
	case "token":
		return true, setString(token, "token", v)
	case "jwt":
		return true, setString(jwt, "jwt", v)
	case "expires":
		return true, setInt(expires, "expires", v)
	}
	return false, nil
}

// purchaseFields are the members of a PurchaseRequest, for FieldError.
var purchaseFields = []string{"product_id", "user_id", "quantity", "request_id", "token", "expires", "jwt", "admission"}

// DecodeQuery parses a QUERY_STOCK payload into req, like DecodePurchase.
func DecodeQuery(p []byte, req *QueryRequest) error {
	*req = QueryRequest{}
	return scanObject(p, func(name []byte, v jsonValue) error {
		if string(name) == "product_id" {
			return setString(&req.ProductID, "product_id", v)
		}
		return &FieldError{Field: string(name), Known: queryFields}
	})
}

// queryFields are the members of a QueryRequest, for FieldError.
var queryFields = []string{"product_id"}

// FieldError is a member of a request payload that the decoder refuses:
// one of a name it does not know, or a value of the wrong type. It is an
// ErrInvalidJSON (errors.Is); its text, which names the member, is what
// the client is told:
//
//	unknown field "qty" (the fields are product_id, user_id, quantity, …)
//	quantity: want a number, got a string
type FieldError struct {
	Field string   // the member's name, as sent
	Known []string // for an unknown member: the names there are
	Want  string   // for a known member: what it takes, "a string"
	Got   string   // and what it was given, "a number" (or the number)
}

func (e *FieldError) Error() string {
	if e.Want == "" {
		return "unknown field " + strconv.Quote(e.Field) + " (the fields are " + strings.Join(e.Known, ", ") + ")"
	}
	return e.Field + ": want " + e.Want + ", got " + e.Got
}

// Unwrap makes a FieldError an ErrInvalidJSON.
func (e *FieldError) Unwrap() error { return ErrInvalidJSON }

// setString sets *dst from a string value; null leaves it, anything else
// is a type error.
func setString(dst *string, field string, v jsonValue) error {
	switch v.kind {
	case jsonString:
		*dst = v.text()
	case jsonNull:
	default:
		return &FieldError{Field: field, Want: "a string", Got: kindNames[v.kind]}
	}
	return nil
}

// setInt sets *dst from an integer value; null leaves it.
func setInt(dst *int64, field string, v jsonValue) error {
	switch v.kind {
	case jsonNull:
		return nil
	case jsonNumber:
		n, ok := v.int64()
		if !ok {
			return &FieldError{Field: field, Want: "a 64-bit integer", Got: numberText(v.raw)}
		}
		*dst = n
		return nil
	}
	return &FieldError{Field: field, Want: "a number", Got: kindNames[v.kind]}
}

// numberText is a number token for an error message, cut to 32 bytes.
func numberText(raw []byte) string {
	const most = 32
	if len(raw) > most {
		return string(raw[:most]) + "…"
	}
	return string(raw)
}

// AppendPurchase appends the JSON payload of req; zero fields are omitted.
func AppendPurchase(dst []byte, req PurchaseRequest) []byte {
	dst = append(dst, `{"product_id":`...)
	dst = AppendString(dst, req.ProductID)
	dst = append(dst, `,"user_id":`...)
	dst = AppendString(dst, req.UserID)
	if req.Quantity != 0 {
		dst = append(dst, `,"quantity":`...)
		dst = strconv.AppendInt(dst, req.Quantity, 10)
	}
	if req.RequestID != "" {
		dst = append(dst, `,"request_id":`...)
		dst = AppendString(dst, req.RequestID)
	}
	if req.Admission != "" {
		dst = append(dst, `,"admission":`...)
		dst = AppendString(dst, req.Admission)
	}
	return appendProof(dst, req.Token, req.Expires, req.JWT)
}

// AppendQuery appends the JSON payload of req.
func AppendQuery(dst []byte, req QueryRequest) []byte {
	dst = append(dst, `{"product_id":`...)
	dst = AppendString(dst, req.ProductID)
	return append(dst, '}')
}

// Field marks which numeric fields of a Response are present; a present
// zero (remaining_stock 0) differs from an absent field.
type Field uint16

// Numeric response fields.
const (
	FieldRemaining  Field = 1 << iota // remaining_stock
	FieldInitial                      // initial
	FieldQuantity                     // quantity
	FieldHeld                         // held
	FieldLimit                        // limit
	FieldRetryAfter                   // retry_after_ms
	FieldExpiresAt                    // expires_at
	FieldReserved                     // reserved
	FieldPaid                         // paid
	FieldReleased                     // released
	FieldPosition                     // position
	FieldETA                          // eta_ms
)

// Response is the payload of every response frame, for example:
//
//	{"status":"SUCCESS","remaining_stock":42,"quantity":1,"order_id":"1764108000123-0"}
//	{"status":"RESERVED","remaining_stock":41,"quantity":1,"order_id":"1764108000124-0","expires_at":1764108600124}
//	{"status":"SOLD_OUT"}
//	{"status":"ERROR","code":"INVALID_REQUEST","error":"invalid json"}
//
// Numeric fields are present when their bit is in Has; string fields when
// they are not empty.
type Response struct {
	Status         string
	Has            Field
	RemainingStock int64
	Initial        int64
	Quantity       int64
	Held           int64
	Limit          int64
	RetryAfterMS   int64
	ExpiresAt      int64  // RESERVED: Unix ms, Redis's clock
	Reserved       int64  // a stock query of a product with reservations: units reserved
	Paid           int64  // units of reservations paid
	Released       int64  // units of reservations released (expired or cancelled)
	Position       int64  // WAITING: places admitted before this customer's turn
	ETAMS          int64  // WAITING: an estimate of the wait, ms
	Ticket         string // WAITING: the waiting-room ticket to poll with
	Admission      string // ADMITTED: the token to buy with
	OrderID        string
	State          string
	Start          string // RFC 3339
	End            string // RFC 3339
	Redis          string // PONG: "up" or "down"
	Code           string
	Error          string
}

// AppendResponse appends the JSON payload of r without reflection.
func AppendResponse(dst []byte, r *Response) []byte {
	dst = append(dst, `{"status":`...)
	dst = AppendString(dst, r.Status)
	dst = appendInt(dst, r.Has&FieldRemaining != 0, `,"remaining_stock":`, r.RemainingStock)
	dst = appendInt(dst, r.Has&FieldInitial != 0, `,"initial":`, r.Initial)
	dst = appendInt(dst, r.Has&FieldQuantity != 0, `,"quantity":`, r.Quantity)
	dst = appendStr(dst, `,"order_id":`, r.OrderID)
	dst = appendInt(dst, r.Has&FieldHeld != 0, `,"held":`, r.Held)
	dst = appendInt(dst, r.Has&FieldLimit != 0, `,"limit":`, r.Limit)
	dst = appendInt(dst, r.Has&FieldRetryAfter != 0, `,"retry_after_ms":`, r.RetryAfterMS)
	dst = appendInt(dst, r.Has&FieldExpiresAt != 0, `,"expires_at":`, r.ExpiresAt)
	dst = appendInt(dst, r.Has&FieldReserved != 0, `,"reserved":`, r.Reserved)
	dst = appendInt(dst, r.Has&FieldPaid != 0, `,"paid":`, r.Paid)
	dst = appendInt(dst, r.Has&FieldReleased != 0, `,"released":`, r.Released)
	dst = appendStr(dst, `,"ticket":`, r.Ticket)
	dst = appendInt(dst, r.Has&FieldPosition != 0, `,"position":`, r.Position)
	dst = appendInt(dst, r.Has&FieldETA != 0, `,"eta_ms":`, r.ETAMS)
	dst = appendStr(dst, `,"admission":`, r.Admission)
	dst = appendStr(dst, `,"state":`, r.State)
	dst = appendStr(dst, `,"start":`, r.Start)
	dst = appendStr(dst, `,"end":`, r.End)
	dst = appendStr(dst, `,"redis":`, r.Redis)
	dst = appendStr(dst, `,"code":`, r.Code)
	dst = appendStr(dst, `,"error":`, r.Error)
	return append(dst, '}')
}

// AppendResponseFrame appends a whole response frame of type t carrying r,
// without an intermediate buffer.
func AppendResponseFrame(dst []byte, t Type, r *Response) []byte {
	start := len(dst)
	dst = AppendResponse(AppendHeader(dst, t, 0), r)
	binary.BigEndian.PutUint32(dst[start+1:], uint32(len(dst)-start-HeaderSize))
	return dst
}

func appendInt(dst []byte, present bool, key string, v int64) []byte {
	if !present {
		return dst
	}
	return strconv.AppendInt(append(dst, key...), v, 10)
}

func appendStr(dst []byte, key, v string) []byte {
	if v == "" {
		return dst
	}
	return AppendString(append(dst, key...), v)
}

// DecodeResponse parses a response payload, for clients.
func DecodeResponse(p []byte, r *Response) error {
	var raw struct {
		Status         string `json:"status"`
		RemainingStock *int64 `json:"remaining_stock"`
		Initial        *int64 `json:"initial"`
		Quantity       *int64 `json:"quantity"`
		Held           *int64 `json:"held"`
		Limit          *int64 `json:"limit"`
		RetryAfterMS   *int64 `json:"retry_after_ms"`
		ExpiresAt      *int64 `json:"expires_at"`
		Reserved       *int64 `json:"reserved"`
		Paid           *int64 `json:"paid"`
		Released       *int64 `json:"released"`
		Position       *int64 `json:"position"`
		ETAMS          *int64 `json:"eta_ms"`
		Ticket         string `json:"ticket"`
		Admission      string `json:"admission"`
		OrderID        string `json:"order_id"`
		State          string `json:"state"`
		Start          string `json:"start"`
		End            string `json:"end"`
		Redis          string `json:"redis"`
		Code           string `json:"code"`
		Error          string `json:"error"`
	}
	if err := json.Unmarshal(p, &raw); err != nil || raw.Status == "" {
		return ErrInvalidJSON
	}
	*r = Response{Status: raw.Status, OrderID: raw.OrderID, State: raw.State,
		Start: raw.Start, End: raw.End, Redis: raw.Redis, Code: raw.Code, Error: raw.Error,
		Ticket: raw.Ticket, Admission: raw.Admission}
	for _, f := range []struct {
		v   *int64
		dst *int64
		bit Field
	}{
		{raw.RemainingStock, &r.RemainingStock, FieldRemaining},
		{raw.Initial, &r.Initial, FieldInitial},
		{raw.Quantity, &r.Quantity, FieldQuantity},
		{raw.Held, &r.Held, FieldHeld},
		{raw.Limit, &r.Limit, FieldLimit},
		{raw.RetryAfterMS, &r.RetryAfterMS, FieldRetryAfter},
		{raw.ExpiresAt, &r.ExpiresAt, FieldExpiresAt},
		{raw.Reserved, &r.Reserved, FieldReserved},
		{raw.Paid, &r.Paid, FieldPaid},
		{raw.Released, &r.Released, FieldReleased},
		{raw.Position, &r.Position, FieldPosition},
		{raw.ETAMS, &r.ETAMS, FieldETA},
	} {
		if f.v != nil {
			*f.dst, r.Has = *f.v, r.Has|f.bit
		}
	}
	return nil
}

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string. Control characters, quotes and
// backslashes are escaped, invalid UTF-8 becomes U+FFFD, and U+2028/U+2029
// are escaped so the output is also safe to embed in JavaScript.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
