package wire_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/flashsale/flashsale/wire"
)

// fuzzMax is the reader limit in FuzzReader: small enough that the fuzzer
// reaches both sides of it.
const fuzzMax = 64

func FuzzReader(f *testing.F) {
	for _, b := range readFrameBins(f) {
		f.Add(b)
	}
	f.Add(wire.AppendFrame(nil, wire.TypePurchase, make([]byte, fuzzMax)))   // at the limit
	f.Add(wire.AppendFrame(nil, wire.TypePurchase, make([]byte, fuzzMax+1))) // one above
	f.Add(wire.AppendFrame(wire.AppendFrame(nil, 0xff, nil), 0x00, []byte("x")))

	f.Fuzz(func(t *testing.T, data []byte) {
		r := wire.NewReader(bytes.NewReader(data), fuzzMax)
		var consumed []byte // the frames returned so far, re-encoded
		var err error
		for {
			var fr wire.Frame
			fr, err = r.Next()
			if err != nil {
				break
			}
			if len(fr.Payload) > fuzzMax {
				t.Fatalf("payload of %d bytes above limit %d", len(fr.Payload), fuzzMax)
			}
			consumed = wire.AppendFrame(consumed, fr.Type, fr.Payload)
			if !bytes.HasPrefix(data, consumed) {
				t.Fatalf("frames re-encode to % x, which is not a prefix of the input % x", consumed, data)
			}
		}

		// The error must describe exactly what is left of the input.
		rest := data[len(consumed):]
		var tle *wire.FrameTooLargeError
		switch {
		case err == io.EOF:
			if len(rest) != 0 {
				t.Fatalf("io.EOF with %d bytes unread", len(rest))
			}
		case err == io.ErrUnexpectedEOF:
			if len(rest) == 0 {
				t.Fatal("io.ErrUnexpectedEOF at a frame boundary")
			}
			if len(rest) >= wire.HeaderSize {
				if n := be32(rest[1:]); n > fuzzMax || int(n) <= len(rest)-wire.HeaderSize {
					t.Fatalf("io.ErrUnexpectedEOF for a header announcing %d bytes with %d present", n, len(rest)-wire.HeaderSize)
				}
			}
		case errors.As(err, &tle):
			if !errors.Is(err, wire.ErrFrameTooLarge) {
				t.Fatalf("%v does not match ErrFrameTooLarge", err)
			}
			if len(rest) < wire.HeaderSize {
				t.Fatalf("frame too large with only %d bytes left", len(rest))
			}
			want := wire.FrameTooLargeError{Type: wire.Type(rest[0]), Length: be32(rest[1:]), Max: fuzzMax}
			if *tle != want || want.Length <= fuzzMax {
				t.Fatalf("got %+v for header % x, want %+v", *tle, rest[:wire.HeaderSize], want)
			}
		default:
			t.Fatalf("unexpected error %v", err)
		}
	})
}

func FuzzDecodePurchase(f *testing.F) {
	f.Add([]byte(purchase))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"product_id":1}`))
	f.Add([]byte(`{"PRODUCT_ID":"a","product_id":"b","user_id":"\ud800"}`))
	f.Add([]byte("{\"product_id\":\"\xff\",\"user_id\":\"\u2028\"}"))
	f.Add([]byte(`{"product_id":"a","jwt":"` + sampleJWT + `"}`))
	f.Add([]byte(`{"jwt":"a\u002eb.c","JWT":"x","jwt":null}`))
	for _, req := range purchaseRequests {
		f.Add(wire.AppendPurchase(nil, req))
	}

	f.Fuzz(func(t *testing.T, p []byte) {
		var req wire.PurchaseRequest
		if err := wire.DecodePurchase(p, &req); err != nil {
			if !errors.Is(err, wire.ErrInvalidJSON) {
				t.Fatalf("error %v, want ErrInvalidJSON", err)
			}
			return
		}
		if !json.Valid(p) {
			t.Fatalf("accepted invalid JSON %q", p)
		}
		enc := wire.AppendPurchase(nil, req)
		var again wire.PurchaseRequest
		if err := wire.DecodePurchase(enc, &again); err != nil {
			t.Fatalf("DecodePurchase(AppendPurchase(%+v) = %s): %v", req, enc, err)
		}
		if again != req {
			t.Fatalf("%q decoded to %+v, re-encoded as %s, decoded to %+v", p, req, enc, again)
		}
	})
}

func FuzzAppendString(f *testing.F) {
	for _, tt := range appendStringCases {
		f.Add(tt.in)
	}
	for _, req := range purchaseRequests {
		f.Add(req.ProductID)
		f.Add(req.UserID)
	}

	f.Fuzz(func(t *testing.T, s string) {
		out := wire.AppendString(nil, s)
		if !json.Valid(out) {
			t.Fatalf("AppendString(%q) = %s, not valid JSON", s, out)
		}
		if !utf8.Valid(out) {
			t.Fatalf("AppendString(%q) = %q, not valid UTF-8", s, out)
		}
		if bytes.ContainsAny(out, "\u2028\u2029") {
			t.Fatalf("AppendString(%q) = %q, contains a raw line separator", s, out)
		}
		checkAppendString(t, s, out)
	})
}

// FuzzDecodePurchaseMatchesJSON holds the hand-written decoder to
// encoding/json with DisallowUnknownFields: same acceptance, same fields.
// The one documented difference, member names matched in another letter
// case, is left out.
func FuzzDecodePurchaseMatchesJSON(f *testing.F) {
	f.Add([]byte(purchase))
	f.Add([]byte(`{"product_id":"a\u00e9\ud83d\ude00","user_id":"b\n","quantity":2,"request_id":null,"x":[1,{"y":[]}],"expires":-5,"token":"t"}`))
	f.Add([]byte(`{"quantity":1.0}`))
	f.Add([]byte(`{"quantity":1e2}`))
	f.Add([]byte(`{"quantity":99999999999999999999}`))
	f.Add([]byte(`{"product_id":"\ud800x"} `))
	f.Add([]byte(`{"product_id":"a","product_id":"b"}`))
	f.Add([]byte(" {\"user_id\" : \"\xed\xa0\x80\" } "))
	f.Add([]byte(`{"a":-0.5e-7,"b":true,"c":false,"d":null}`))
	f.Add([]byte(`{"a":01}`))
	f.Add([]byte(`{"product\u005fid":"escaped name"}`))
	f.Add([]byte(`{"product_id":"a","jwt":"` + sampleJWT + `"}`))
	f.Add([]byte(`{"jwt":"\u00e9.\ud800","Jwt":1}`))
	f.Add([]byte(`{"jwt":42}`))
	for _, req := range purchaseRequests {
		f.Add(wire.AppendPurchase(nil, req))
	}

	f.Fuzz(func(t *testing.T, p []byte) {
		var names map[string]json.RawMessage
		if json.Unmarshal(p, &names) == nil {
			for name := range names {
				for _, known := range []string{"product_id", "user_id", "quantity", "request_id", "token", "expires", "jwt"} {
					if name != known && strings.EqualFold(name, known) {
						t.Skip("a member name in another letter case: encoding/json matches it, DecodePurchase does not")
					}
				}
			}
		}
		var want wire.PurchaseRequest
		wantErr := unmarshalStrict(p, &want)
		if wantErr == nil && bytes.TrimLeft(p, " \t\r\n")[0] != '{' {
			wantErr = errors.New("not an object")
		}
		input := bytes.Clone(p)
		var got wire.PurchaseRequest
		gotErr := wire.DecodePurchase(input, &got)
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("DecodePurchase(%q) error = %v, encoding/json error = %v", p, gotErr, wantErr)
		}
		if gotErr == nil && got != want {
			t.Fatalf("DecodePurchase(%q) = %+v, encoding/json = %+v", p, got, want)
		}
	})
}

// unmarshalStrict is json.Unmarshal refusing unknown fields: one value,
// then nothing but white space.
func unmarshalStrict(p []byte, v any) error {
	if !json.Valid(p) {
		return errors.New("not valid JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
