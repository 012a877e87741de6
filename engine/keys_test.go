package engine_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/flashsale/flashsale/engine"
)

func TestKeysFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		id     string
		prefix string
	}{
		{"iphone15", "product:{iphone15}:"},
		{"a:b c", "product:{a:b c}:"},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			t.Parallel()
			k := engine.KeysFor(tt.id)
			for _, f := range []struct{ name, got, want string }{
				{"Stock", k.Stock, tt.prefix + "stock"},
				{"Buyers", k.Buyers, tt.prefix + "buyers"},
				{"Meta", k.Meta, tt.prefix + "meta"},
				{"Holders", k.Holders, tt.prefix + "holders"},
				{"Orders", k.Orders, tt.prefix + "orders"},
				{"Released", k.Released, tt.prefix + "released"},
				{"Request", k.Request("r-1"), tt.prefix + "req:r-1"},
			} {
				if f.got != f.want {
					t.Errorf("KeysFor(%q).%s = %q, want %q", tt.id, f.name, f.got, f.want)
				}
			}
		})
	}
	// The layout the rest of the system (and operators) rely on.
	if k := engine.KeysFor("iphone15"); k.Stock != "product:{iphone15}:stock" ||
		k.Buyers != "product:{iphone15}:buyers" || k.Meta != "product:{iphone15}:meta" {
		t.Errorf("KeysFor(iphone15) = %+v", k)
	}
}

func TestValidateIDs(t *testing.T) {
	t.Parallel()
	const forbidden = " contains a forbidden character"
	tests := []struct {
		name    string
		id      string
		product string // want error text from ValidateProductID, "" for ok
		user    string // want error text from ValidateUserID, "" for ok
	}{
		{"empty", "", "missing product_id", "missing user_id"},
		{"plain", "iphone15", "", ""},
		{"one byte", "x", "", ""},
		{"128 bytes", strings.Repeat("a", 128), "", ""},
		{"129 bytes", strings.Repeat("a", 129), "product_id longer than 128 bytes", "user_id longer than 128 bytes"},
		{"128 bytes multibyte", strings.Repeat("é", 64), "", ""},
		{"129 bytes multibyte", "a" + strings.Repeat("é", 64), "product_id longer than 128 bytes", "user_id longer than 128 bytes"},
		{"unicode", "ユーザー_1", "", ""},
		{"spaces and punctuation", `a b:c/d "e"`, "", ""},
		{"open brace", "a{b", "product_id" + forbidden, ""},
		{"close brace", "a}b", "product_id" + forbidden, ""},
		{"hash tag", "{x}", "product_id" + forbidden, ""},
		{"NUL", "a\x00b", "product_id" + forbidden, "user_id" + forbidden},
		{"newline", "a\nb", "product_id" + forbidden, "user_id" + forbidden},
		{"tab", "\t", "product_id" + forbidden, "user_id" + forbidden},
		{"unit separator", "a\x1f", "product_id" + forbidden, "user_id" + forbidden},
		{"DEL", "a\x7f", "product_id" + forbidden, "user_id" + forbidden},
		{"invalid UTF-8", "a\xffb", "product_id is not valid UTF-8", "user_id is not valid UTF-8"},
		{"truncated UTF-8", "\xe3\x83", "product_id is not valid UTF-8", "user_id is not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			check := func(fn string, err error, want string) {
				t.Helper()
				if want == "" {
					if err != nil {
						t.Errorf("%s(%q) = %v, want nil", fn, tt.id, err)
					}
					return
				}
				if err == nil {
					t.Fatalf("%s(%q) = nil, want %q", fn, tt.id, want)
				}
				if err.Error() != want {
					t.Errorf("%s(%q) = %q, want %q", fn, tt.id, err.Error(), want)
				}
				if !errors.Is(err, engine.ErrInvalidRequest) {
					t.Errorf("%s(%q) = %v, does not wrap ErrInvalidRequest", fn, tt.id, err)
				}
			}
			check("ValidateProductID", engine.ValidateProductID(tt.id), tt.product)
			check("ValidateUserID", engine.ValidateUserID(tt.id), tt.user)
		})
	}
}
