package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"
)

// ErrInvalidJSON is returned when a payload is not the JSON object its
// message type expects. Its text is what the client is told.
var ErrInvalidJSON = errors.New("invalid json")

// PurchaseRequest is the payload of ATTEMPT_PURCHASE:
//
//	{"product_id":"iphone15","user_id":"user_123"}
type PurchaseRequest struct {
	ProductID string `json:"product_id"`
	UserID    string `json:"user_id"`
}

// DecodePurchase parses an ATTEMPT_PURCHASE payload into req. It checks the
// JSON shape only; which ids are acceptable is the engine's decision.
func DecodePurchase(p []byte, req *PurchaseRequest) error {
	*req = PurchaseRequest{}
	// json.Unmarshal takes a bare null as an empty struct; only an object is
	// a request. After a successful Unmarshal p holds a value, so [0] exists.
	if err := json.Unmarshal(p, req); err != nil || bytes.TrimLeft(p, " \t\r\n")[0] != '{' {
		return ErrInvalidJSON
	}
	return nil
}

// AppendPurchase appends the JSON payload of req.
func AppendPurchase(dst []byte, req PurchaseRequest) []byte {
	dst = append(dst, `{"product_id":`...)
	dst = AppendString(dst, req.ProductID)
	dst = append(dst, `,"user_id":`...)
	dst = AppendString(dst, req.UserID)
	return append(dst, '}')
}

// Response is the payload of every response frame:
//
//	{"status":"SUCCESS","remaining_stock":42}
//	{"status":"SOLD_OUT"}
//	{"status":"ERROR","code":"INVALID_REQUEST","error":"invalid json"}
//
// Fields left at their zero value (and RemainingStock unless HasRemaining)
// are omitted.
type Response struct {
	Status         string `json:"status"`
	RemainingStock int64  `json:"remaining_stock"`
	HasRemaining   bool   `json:"-"`
	Code           string `json:"code,omitempty"`
	Error          string `json:"error,omitempty"`
}

// AppendResponse appends the JSON payload of r without reflection.
func AppendResponse(dst []byte, r *Response) []byte {
	dst = append(dst, `{"status":`...)
	dst = AppendString(dst, r.Status)
	if r.HasRemaining {
		dst = append(dst, `,"remaining_stock":`...)
		dst = strconv.AppendInt(dst, r.RemainingStock, 10)
	}
	if r.Code != "" {
		dst = append(dst, `,"code":`...)
		dst = AppendString(dst, r.Code)
	}
	if r.Error != "" {
		dst = append(dst, `,"error":`...)
		dst = AppendString(dst, r.Error)
	}
	return append(dst, '}')
}

// DecodeResponse parses a response payload, for clients.
func DecodeResponse(p []byte, r *Response) error {
	var raw struct {
		Status         string `json:"status"`
		RemainingStock *int64 `json:"remaining_stock"`
		Code           string `json:"code"`
		Error          string `json:"error"`
	}
	if err := json.Unmarshal(p, &raw); err != nil || raw.Status == "" {
		return ErrInvalidJSON
	}
	*r = Response{Status: raw.Status, Code: raw.Code, Error: raw.Error}
	if raw.RemainingStock != nil {
		r.RemainingStock, r.HasRemaining = *raw.RemainingStock, true
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
