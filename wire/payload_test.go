package wire_test

import (
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/flashsale/flashsale/wire"
)

func TestDecodePurchase(t *testing.T) {
	for _, tt := range []struct {
		name    string
		payload string
		want    wire.PurchaseRequest
		err     error
	}{
		{"good", purchase, wire.PurchaseRequest{ProductID: "iphone15", UserID: "user_123"}, nil},
		{"reordered-and-spaced", " {\"user_id\" : \"user_123\",\n\"product_id\":\"iphone15\"}\r\n", wire.PurchaseRequest{ProductID: "iphone15", UserID: "user_123"}, nil},
		{"escapes", `{"product_id":"caf\u00e9 \"x\"","user_id":"a\\b\n\u2028"}`, wire.PurchaseRequest{ProductID: "café \"x\"", UserID: "a\\b\n\u2028"}, nil},
		{"empty-object", `{}`, wire.PurchaseRequest{}, nil},
		{"missing-user", `{"product_id":"iphone15"}`, wire.PurchaseRequest{ProductID: "iphone15"}, nil},
		{"null-field", `{"product_id":null,"user_id":"user_123"}`, wire.PurchaseRequest{UserID: "user_123"}, nil},
		{"signed", `{"product_id":"iphone15","user_id":"user_123","token":"Zm9v-_YmFy","expires":1764108000}`, wire.PurchaseRequest{ProductID: "iphone15", UserID: "user_123", Token: "Zm9v-_YmFy", Expires: 1764108000}, nil},
		{"jwt", `{"product_id":"iphone15","jwt":"` + sampleJWT + `"}`, wire.PurchaseRequest{ProductID: "iphone15", JWT: sampleJWT}, nil},
		{"jwt-null", `{"product_id":"iphone15","user_id":"u","jwt":null}`, wire.PurchaseRequest{ProductID: "iphone15", UserID: "u"}, nil},

		{"empty", ``, wire.PurchaseRequest{}, wire.ErrInvalidJSON},
		{"whitespace", " \n", wire.PurchaseRequest{}, wire.ErrInvalidJSON},
		{"not-json", `product_id=iphone15`, wire.PurchaseRequest{}, wire.ErrInvalidJSON},
		{"unterminated", `{"product_id":"iphone15"`, wire.PurchaseRequest{}, wire.ErrInvalidJSON},
		{"trailing-garbage", purchase + `x`, wire.PurchaseRequest{}, wire.ErrInvalidJSON},
		{"two-objects", purchase + purchase, wire.PurchaseRequest{}, wire.ErrInvalidJSON},
		{"trailing-comma", `{"product_id":"iphone15",}`, wire.PurchaseRequest{}, wire.ErrInvalidJSON},
		{"single-quotes", `{'product_id':'iphone15'}`, wire.PurchaseRequest{}, wire.ErrInvalidJSON},

		{"array", `[]`, wire.PurchaseRequest{}, wire.ErrInvalidJSON},
		{"array-of-object", `[` + purchase + `]`, wire.PurchaseRequest{}, wire.ErrInvalidJSON},
		{"string", `"iphone15"`, wire.PurchaseRequest{}, wire.ErrInvalidJSON},
		{"number", `42`, wire.PurchaseRequest{}, wire.ErrInvalidJSON},
		{"bool", `true`, wire.PurchaseRequest{}, wire.ErrInvalidJSON},
		{"null", `null`, wire.PurchaseRequest{}, wire.ErrInvalidJSON},
		{"null-spaced", ` null `, wire.PurchaseRequest{}, wire.ErrInvalidJSON},

		{"number-product", `{"product_id":15,"user_id":"user_123"}`, wire.PurchaseRequest{}, wire.ErrInvalidJSON},
		{"array-user", `{"product_id":"iphone15","user_id":["user_123"]}`, wire.PurchaseRequest{}, wire.ErrInvalidJSON},
		{"object-product", `{"product_id":{},"user_id":"user_123"}`, wire.PurchaseRequest{}, wire.ErrInvalidJSON},
		{"bool-user", `{"product_id":"iphone15","user_id":true}`, wire.PurchaseRequest{}, wire.ErrInvalidJSON},
		{"string-expires", `{"product_id":"iphone15","user_id":"user_123","expires":"1764108000"}`, wire.PurchaseRequest{}, wire.ErrInvalidJSON},
		{"object-jwt", `{"product_id":"iphone15","jwt":{"alg":"none"}}`, wire.PurchaseRequest{}, wire.ErrInvalidJSON},
		{"unknown-field", `{"product_id":"iphone15","user_id":"user_123","qty":2}`, wire.PurchaseRequest{}, wire.ErrInvalidJSON},
		{"unknown-null-field", `{"product_id":"iphone15","user_id":"user_123","coupon":null}`, wire.PurchaseRequest{}, wire.ErrInvalidJSON},
		{"other-letter-case", `{"Product_ID":"iphone15","user_id":"user_123"}`, wire.PurchaseRequest{}, wire.ErrInvalidJSON},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// Start from a filled request: DecodePurchase must not keep old fields.
			req := wire.PurchaseRequest{ProductID: "stale", UserID: "stale"}
			err := wire.DecodePurchase([]byte(tt.payload), &req)
			if !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Fatalf("DecodePurchase(%q) error = %v, want %v", tt.payload, err, tt.err)
			}
			if err == nil && req != tt.want {
				t.Fatalf("DecodePurchase(%q) = %+v, want %+v", tt.payload, req, tt.want)
			}
		})
	}
}

// TestDecodeErrorText: what the client is told names the member and, for
// a wrong type, what it takes; a syntax error is the sentinel itself.
func TestDecodeErrorText(t *testing.T) {
	const fields = " (the fields are product_id, user_id, quantity, request_id, token, expires, jwt, admission)"
	for _, tt := range []struct {
		name, payload, want string
	}{
		{"unknown", `{"product_id":"p","user_id":"u","qty":2}`, `unknown field "qty"` + fields},
		{"unknown-escaped", `{"product_id":"p","q\"ty":2}`, `unknown field "q\"ty"` + fields},
		{"first-refusal", `{"qty":2,"quantity":"2"}`, `unknown field "qty"` + fields},
		{"string-quantity", `{"product_id":"p","user_id":"u","quantity":"2"}`, "quantity: want a number, got a string"},
		{"bool-expires", `{"expires":true}`, "expires: want a number, got a boolean"},
		{"array-quantity", `{"quantity":[2]}`, "quantity: want a number, got an array"},
		{"fraction", `{"quantity":1.5}`, "quantity: want a 64-bit integer, got 1.5"},
		{"exponent", `{"quantity":1e2}`, "quantity: want a 64-bit integer, got 1e2"},
		{"overflow", `{"quantity":123456789012345678901234567890123456789}`, "quantity: want a 64-bit integer, got 12345678901234567890123456789012…"},
		{"number-product", `{"product_id":15}`, "product_id: want a string, got a number"},
		{"object-jwt", `{"jwt":{"alg":"none"}}`, "jwt: want a string, got an object"},
		{"bool-user", `{"user_id":false}`, "user_id: want a string, got a boolean"},
		{"syntax-wins", `{"qty":2`, "invalid json"},
		{"syntax-after-refusal", `{"quantity":"2",}`, "invalid json"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var req wire.PurchaseRequest
			err := wire.DecodePurchase([]byte(tt.payload), &req)
			if err == nil || err.Error() != tt.want || !errors.Is(err, wire.ErrInvalidJSON) {
				t.Fatalf("DecodePurchase(%s) error = %v, want %q (an ErrInvalidJSON)", tt.payload, err, tt.want)
			}
		})
	}
	var q wire.QueryRequest
	err := wire.DecodeQuery([]byte(`{"product_id":"p","user_id":"u"}`), &q)
	if want := `unknown field "user_id" (the fields are product_id)`; err == nil || err.Error() != want {
		t.Fatalf("DecodeQuery error = %v, want %q", err, want)
	}
}

func TestErrInvalidJSONText(t *testing.T) {
	if got := wire.ErrInvalidJSON.Error(); got != "invalid json" {
		t.Fatalf("ErrInvalidJSON = %q, want %q", got, "invalid json")
	}
}

// purchaseRequests are requests whose ids need every kind of escaping.
var purchaseRequests = []wire.PurchaseRequest{
	{ProductID: "iphone15", UserID: "user_123"},
	{},
	{ProductID: `quote " and backslash \`, UserID: "tab\tnewline\ncr\r"},
	{ProductID: "\x00\x01\x1f\x7f", UserID: "<script>&amp;</script>"},
	{ProductID: "日本語 café 🚀", UserID: "\u2028\u2029"},
	{ProductID: "\ufffd", UserID: "/slash/"},
	{ProductID: "iphone15", UserID: "user_123", Quantity: 2, RequestID: "c0ffee", Token: "Zm9v-_YmFy", Expires: 1764108000},
	{ProductID: "iphone15", JWT: sampleJWT},
	{ProductID: "iphone15", UserID: "user_123", RequestID: "r1", JWT: "a.b.c"},
}

// sampleJWT is the shape of a JWT (HS256, sub user_123); the codec never
// checks it.
const sampleJWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyXzEyMyIsImV4cCI6MTc2NDEwODAwMH0.c2lnbmF0dXJlLW9mLTMyLWJ5dGVzLXh4eHh4eHh4eHh4"

// TestDecodePurchaseZeroAlloc: a request with every field, a JWT included,
// decodes into views of the payload.
func TestDecodePurchaseZeroAlloc(t *testing.T) {
	p := wire.AppendPurchase(nil, wire.PurchaseRequest{ProductID: "iphone15", UserID: "user_123", Quantity: 2,
		RequestID: "c0ffee", Token: "Zm9v-_YmFy", Expires: 1764108000, JWT: sampleJWT})
	var req wire.PurchaseRequest
	allocs := testing.AllocsPerRun(100, func() {
		if err := wire.DecodePurchase(p, &req); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("DecodePurchase allocated %v times, want 0", allocs)
	}
	if req.JWT != sampleJWT {
		t.Fatalf("JWT = %q, want %q", req.JWT, sampleJWT)
	}
}

func TestAppendPurchase(t *testing.T) {
	got := string(wire.AppendPurchase([]byte("prefix:"), wire.PurchaseRequest{ProductID: "iphone15", UserID: "user_123"}))
	if want := "prefix:" + purchase; got != want {
		t.Fatalf("AppendPurchase = %s, want %s", got, want)
	}

	for _, req := range purchaseRequests {
		p := wire.AppendPurchase(nil, req)
		if !json.Valid(p) {
			t.Errorf("AppendPurchase(%+v) = %s, not valid JSON", req, p)
			continue
		}
		var got wire.PurchaseRequest
		if err := wire.DecodePurchase(p, &got); err != nil {
			t.Errorf("DecodePurchase(%s): %v", p, err)
			continue
		}
		if got != req {
			t.Errorf("round trip of %+v gave %+v via %s", req, got, p)
		}
	}
}

// responses are golden encodings of Response.
var responses = []struct {
	name string
	r    wire.Response
	json string
}{
	{"success", wire.Response{Status: "SUCCESS", RemainingStock: 42, Has: wire.FieldRemaining}, `{"status":"SUCCESS","remaining_stock":42}`},
	{"success-last", wire.Response{Status: "SUCCESS", RemainingStock: 0, Has: wire.FieldRemaining}, `{"status":"SUCCESS","remaining_stock":0}`},
	{"negative-stock", wire.Response{Status: "SUCCESS", RemainingStock: -1, Has: wire.FieldRemaining}, `{"status":"SUCCESS","remaining_stock":-1}`},
	{"max-stock", wire.Response{Status: "SUCCESS", RemainingStock: 1<<63 - 1, Has: wire.FieldRemaining}, `{"status":"SUCCESS","remaining_stock":9223372036854775807}`},
	{"sold-out", wire.Response{Status: "SOLD_OUT"}, `{"status":"SOLD_OUT"}`},
	{"error", wire.Response{Status: "ERROR", Code: "INVALID_REQUEST", Error: "invalid json"}, `{"status":"ERROR","code":"INVALID_REQUEST","error":"invalid json"}`},
	{"error-code-only", wire.Response{Status: "ERROR", Code: "INTERNAL"}, `{"status":"ERROR","code":"INTERNAL"}`},
	{"error-escaped", wire.Response{Status: "ERROR", Code: "INTERNAL", Error: "redis: \"EVALSHA\"\nfailed"}, `{"status":"ERROR","code":"INTERNAL","error":"redis: \"EVALSHA\"\nfailed"}`},
}

func TestAppendResponse(t *testing.T) {
	for _, tt := range responses {
		t.Run(tt.name, func(t *testing.T) {
			got := wire.AppendResponse([]byte("prefix:"), &tt.r)
			if string(got) != "prefix:"+tt.json {
				t.Fatalf("AppendResponse = %s, want %s", got[len("prefix:"):], tt.json)
			}
			if !json.Valid(got[len("prefix:"):]) {
				t.Fatalf("AppendResponse = %s, not valid JSON", got)
			}
		})
	}

	// RemainingStock is only written when Has includes FieldRemaining.
	r := wire.Response{Status: "SOLD_OUT", RemainingStock: 7}
	if got, want := string(wire.AppendResponse(nil, &r)), `{"status":"SOLD_OUT"}`; got != want {
		t.Fatalf("AppendResponse without FieldRemaining = %s, want %s", got, want)
	}
}

func TestAppendResponseDoesNotAllocate(t *testing.T) {
	buf := make([]byte, 0, 256)
	for _, tt := range responses {
		allocs := testing.AllocsPerRun(100, func() {
			buf = wire.AppendResponse(buf[:0], &tt.r)
		})
		if allocs != 0 {
			t.Errorf("%s: AppendResponse allocated %v times, want 0", tt.name, allocs)
		}
	}
}

func TestDecodeResponse(t *testing.T) {
	for _, tt := range responses {
		t.Run(tt.name, func(t *testing.T) {
			var got wire.Response
			if err := wire.DecodeResponse([]byte(tt.json), &got); err != nil {
				t.Fatalf("DecodeResponse(%s): %v", tt.json, err)
			}
			if got != tt.r {
				t.Fatalf("DecodeResponse(%s) = %+v, want %+v", tt.json, got, tt.r)
			}
			// And back again, byte for byte.
			if again := string(wire.AppendResponse(nil, &got)); again != tt.json {
				t.Fatalf("AppendResponse(DecodeResponse(%s)) = %s", tt.json, again)
			}
		})
	}

	for _, tt := range []struct {
		name    string
		payload string
		want    wire.Response
		err     error
	}{
		{"null-stock-is-absent", `{"status":"SUCCESS","remaining_stock":null}`, wire.Response{Status: "SUCCESS"}, nil},
		{"unknown-fields-ignored", `{"status":"SOLD_OUT","retry_after":3}`, wire.Response{Status: "SOLD_OUT"}, nil},
		{"no-status", `{"remaining_stock":1}`, wire.Response{}, wire.ErrInvalidJSON},
		{"empty-status", `{"status":""}`, wire.Response{}, wire.ErrInvalidJSON},
		{"empty-object", `{}`, wire.Response{}, wire.ErrInvalidJSON},
		{"null", `null`, wire.Response{}, wire.ErrInvalidJSON},
		{"array", `[]`, wire.Response{}, wire.ErrInvalidJSON},
		{"malformed", `{"status":`, wire.Response{}, wire.ErrInvalidJSON},
		{"number-status", `{"status":1}`, wire.Response{}, wire.ErrInvalidJSON},
		{"string-stock", `{"status":"SUCCESS","remaining_stock":"42"}`, wire.Response{}, wire.ErrInvalidJSON},
		{"fractional-stock", `{"status":"SUCCESS","remaining_stock":1.5}`, wire.Response{}, wire.ErrInvalidJSON},
		{"overflowing-stock", `{"status":"SUCCESS","remaining_stock":9223372036854775808}`, wire.Response{}, wire.ErrInvalidJSON},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := wire.Response{Status: "stale", RemainingStock: 9, Has: wire.FieldRemaining, Code: "stale", Error: "stale"}
			err := wire.DecodeResponse([]byte(tt.payload), &got)
			if err != tt.err {
				t.Fatalf("DecodeResponse(%s) error = %v, want %v", tt.payload, err, tt.err)
			}
			if err == nil && got != tt.want {
				t.Fatalf("DecodeResponse(%s) = %+v, want %+v", tt.payload, got, tt.want)
			}
		})
	}
}

// appendStringCases are golden AppendString encodings.
var appendStringCases = []struct {
	name string
	in   string
	want string
}{
	{"empty", "", `""`},
	{"plain", "user_123", `"user_123"`},
	{"quote", `a"b`, `"a\"b"`},
	{"backslash", `a\b`, `"a\\b"`},
	{"short-escapes", "\n\r\t", `"\n\r\t"`},
	{"other-controls", "\x00\x01\x08\x0c\x1f", `"\u0000\u0001\u0008\u000c\u001f"`},
	{"del-is-raw", "\x7f", "\"\x7f\""},
	{"slash-and-html-raw", "</a>&", `"</a>&"`},
	{"multibyte", "café 日本 🚀", `"café 日本 🚀"`},
	{"line-separators", "a\u2028b\u2029c", `"a\u2028b\u2029c"`},
	{"replacement-char-raw", "\ufffd", "\"\ufffd\""},
	{"invalid-byte", "a\xffb", `"a\ufffdb"`},
	{"truncated-rune", "a\xe6\x97", `"a\ufffd\ufffd"`},
	{"surrogate-bytes", "\xed\xa0\x80", `"\ufffd\ufffd\ufffd"`},
	{"overlong", "\xc0\xaf", `"\ufffd\ufffd"`},
	{"escape-at-end", "abc\"", `"abc\""`},
}

func TestAppendString(t *testing.T) {
	for _, tt := range appendStringCases {
		t.Run(tt.name, func(t *testing.T) {
			got := wire.AppendString([]byte("x"), tt.in)
			if string(got) != "x"+tt.want {
				t.Fatalf("AppendString(%q) = %s, want %s", tt.in, got[1:], tt.want)
			}
			checkAppendString(t, tt.in, got[1:])
		})
	}
}

// checkAppendString checks out, the encoding of in, against encoding/json:
// it must be valid JSON, decode to in when in is valid UTF-8, and decode to
// the same string as json.Marshal's encoding of in otherwise.
func checkAppendString(t *testing.T, in string, out []byte) {
	t.Helper()
	if !json.Valid(out) {
		t.Fatalf("AppendString(%q) = %s, not valid JSON", in, out)
	}
	var got string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("json.Unmarshal(%s): %v", out, err)
	}
	if utf8.ValidString(in) && got != in {
		t.Fatalf("AppendString(%q) = %s, decodes to %q", in, out, got)
	}
	marshaled, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var want string
	if err := json.Unmarshal(marshaled, &want); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("AppendString(%q) = %s decodes to %q; json.Marshal gives %s, which decodes to %q", in, out, got, marshaled, want)
	}
}

func TestAppendStringDoesNotAllocate(t *testing.T) {
	buf := make([]byte, 0, 256)
	s := "user_\"123\"\n\xff\u2028"
	allocs := testing.AllocsPerRun(100, func() {
		buf = wire.AppendString(buf[:0], s)
	})
	if allocs != 0 {
		t.Fatalf("AppendString allocated %v times, want 0", allocs)
	}
}
