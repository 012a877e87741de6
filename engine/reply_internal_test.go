package engine

import (
	"errors"
	"testing"
	"time"

	"github.com/flashsale/flashsale/wire"
	"github.com/gomodule/redigo/redis"
)

// TestPurchaseResult decodes every answer documented in lua/purchase.lua,
// as redigo returns them (integers as int64, strings as []byte): a single
// purchase's reply is its answer's four elements, written short in the
// table (padded with int64(0) to four unless whole), and replies of the
// wrong shape, which must be errors and never a sale.
func TestPurchaseResult(t *testing.T) {
	t.Parallel()
	const startMs, endMs = 1764108000123, 1764111600456
	tests := []struct {
		name    string
		reply   any
		want    Result
		wantErr error // for ERROR results: what Err wraps
		bad     bool  // the reply is malformed: an error, no Result
		whole   bool  // reply is the whole reply, not padded
	}{
		// Malformed replies around the answer.
		{name: "whole reply nil", reply: nil, bad: true, whole: true},
		{name: "whole reply empty", reply: []any{}, bad: true, whole: true},
		{name: "whole reply an answer, unpadded", reply: []any{int64(0)}, bad: true, whole: true},
		{name: "whole reply of two answers", reply: []any{int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), int64(0)}, bad: true, whole: true},
		{name: "whole reply an answer nested", reply: []any{[]any{int64(0), int64(0), int64(0), int64(0)}}, bad: true, whole: true},

		// Documented replies.
		{name: "sold", reply: []any{int64(1), int64(41), []byte("1764108000123-0"), int64(2)},
			want: Result{Status: wire.StatusSuccess, Remaining: 41, OrderID: "1764108000123-0", Quantity: 2}},
		{name: "sold the last unit", reply: []any{int64(1), int64(0), []byte("1-1"), int64(1)},
			want: Result{Status: wire.StatusSuccess, Remaining: 0, OrderID: "1-1", Quantity: 1}},
		{name: "sold, exact large remaining", reply: []any{int64(1), int64(MaxUnits - 1), []byte("2-0"), int64(1)},
			want: Result{Status: wire.StatusSuccess, Remaining: MaxUnits - 1, OrderID: "2-0", Quantity: 1}},
		{name: "sold out", reply: []any{int64(0)},
			want: Result{Status: wire.StatusSoldOut}},
		{name: "unknown product", reply: []any{int64(-1)},
			want:    Result{Status: wire.StatusError, Code: CodeUnknownProduct, Message: "unknown product"},
			wantErr: ErrUnknownProduct},
		{name: "insufficient stock", reply: []any{int64(2), int64(3)},
			want: Result{Status: wire.StatusInsufficientStock, Remaining: 3}},
		{name: "already purchased", reply: []any{int64(3), int64(1), int64(1)},
			want: Result{Status: wire.StatusAlreadyPurchased, Held: 1, Limit: 1}},
		{name: "above the limit, nothing held", reply: []any{int64(3), int64(0), int64(3)},
			want: Result{Status: wire.StatusAlreadyPurchased, Held: 0, Limit: 3}},
		{name: "not started", reply: []any{int64(4), int64(startMs)},
			want: Result{Status: wire.StatusNotStarted, Start: time.UnixMilli(startMs).UTC()}},
		{name: "ended", reply: []any{int64(5), int64(endMs)},
			want: Result{Status: wire.StatusEnded, End: time.UnixMilli(endMs).UTC()}},
		{name: "request id reused", reply: []any{int64(6)},
			want:    Result{Status: wire.StatusError, Code: CodeRequestReused, Message: ErrRequestReused.Error()},
			wantErr: ErrRequestReused},
		{name: "rate limited", reply: []any{int64(7), int64(250)},
			want: Result{Status: wire.StatusRateLimited, RetryAfter: 250 * time.Millisecond}},
		{name: "order released since", reply: []any{int64(8), []byte("1764108000123-0")},
			want: Result{Status: wire.StatusError, Code: CodeOrderReleased,
				Message: "the order of this request_id was released: order 1764108000123-0"},
			wantErr: ErrOrderReleased},
		// Integers sent as bulk strings still decode (redigo converts).
		{name: "sold, numbers as bulk strings", reply: []any{[]byte("1"), []byte("7"), []byte("3-0"), []byte("1")},
			want: Result{Status: wire.StatusSuccess, Remaining: 7, OrderID: "3-0", Quantity: 1}},

		// Malformed replies.
		{name: "nil", reply: nil, bad: true},
		{name: "not an array", reply: int64(1), bad: true},
		{name: "a string", reply: []byte("OK"), bad: true},
		{name: "released, no order id", reply: []any{int64(8)}, bad: true},
		{name: "released, a second value", reply: []any{int64(8), []byte("1-0"), int64(1)}, bad: true},
		{name: "released, order id not a string", reply: []any{int64(8), int64(3)}, bad: true},
		{name: "unknown kind 9", reply: []any{int64(9)}, bad: true},
		{name: "unknown kind 100", reply: []any{int64(100), int64(1)}, bad: true},
		{name: "unknown kind -2", reply: []any{int64(-2)}, bad: true},
		{name: "kind not an integer", reply: []any{[]byte("x")}, bad: true},
		{name: "kind nil", reply: []any{nil}, bad: true},
		{name: "kind an error", reply: []any{redis.Error("ERR boom")}, bad: true},
		{name: "sold, no quantity", reply: []any{int64(1), int64(5), []byte("1-0")}, bad: true},
		{name: "sold, three elements", reply: []any{int64(1), int64(5), []byte("1-0")}, bad: true, whole: true},
		{name: "sold, only kind", reply: []any{int64(1)}, bad: true},
		{name: "sold, too long", reply: []any{int64(1), int64(5), []byte("1-0"), int64(1), int64(9)}, bad: true, whole: true},
		{name: "sold, remaining not an integer", reply: []any{int64(1), []byte("five"), []byte("1-0"), int64(1)}, bad: true},
		{name: "sold, order id not a string", reply: []any{int64(1), int64(5), int64(10), int64(1)}, bad: true},
		{name: "sold, order id nil", reply: []any{int64(1), int64(5), nil, int64(1)}, bad: true},
		{name: "sold, quantity not an integer", reply: []any{int64(1), int64(5), []byte("1-0"), []byte("one")}, bad: true},
		{name: "sold out, a value", reply: []any{int64(0), int64(5)}, bad: true},
		{name: "sold out, a nil value", reply: []any{int64(0), nil}, bad: true},
		{name: "sold out, five elements", reply: []any{int64(0), int64(0), int64(0), int64(0), int64(0)}, bad: true, whole: true},
		{name: "unknown product, a value", reply: []any{int64(-1), int64(0), int64(1)}, bad: true},
		{name: "reused, a value", reply: []any{int64(6), int64(1)}, bad: true},
		{name: "insufficient, remaining nil", reply: []any{int64(2), nil}, bad: true},
		{name: "insufficient, two values", reply: []any{int64(2), int64(3), int64(4)}, bad: true},
		{name: "insufficient, remaining not an integer", reply: []any{int64(2), []byte("x")}, bad: true},
		{name: "already purchased, limit nil", reply: []any{int64(3), int64(1), nil}, bad: true},
		{name: "already purchased, held nil", reply: []any{int64(3), nil, int64(1)}, bad: true},
		{name: "already purchased, three values", reply: []any{int64(3), int64(1), int64(1), int64(1)}, bad: true},
		{name: "already purchased, limit not an integer", reply: []any{int64(3), int64(1), []byte("x")}, bad: true},
		{name: "not started, start nil", reply: []any{int64(4), nil}, bad: true},
		{name: "not started, start not an integer", reply: []any{int64(4), []byte("soon")}, bad: true},
		{name: "ended, end nil", reply: []any{int64(5), nil}, bad: true},
		{name: "rate limited, delay nil", reply: []any{int64(7), nil}, bad: true},
		{name: "rate limited, two values", reply: []any{int64(7), int64(1), int64(2)}, bad: true},
		{name: "rate limited, delay not an integer", reply: []any{int64(7), []byte("soon")}, bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var (
				got Result
				err error
			)
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("purchaseResult(%#v) panicked: %v", tt.reply, r)
					}
				}()
				reply := tt.reply
				if a, ok := reply.([]any); ok && !tt.whole {
					for len(a) < answerLen {
						a = append(a, int64(0))
					}
					reply = a
				}
				got, err = purchaseResult(reply)
			}()
			if tt.bad {
				if err == nil {
					t.Fatalf("purchaseResult(%#v) = %+v, nil; want an error", tt.reply, got)
				}
				if got.Status == wire.StatusSuccess {
					t.Errorf("purchaseResult(%#v) reports SUCCESS with its error", tt.reply)
				}
				return
			}
			if err != nil {
				t.Fatalf("purchaseResult(%#v): %v", tt.reply, err)
			}
			if tt.wantErr != nil {
				if !errors.Is(got.Err, tt.wantErr) {
					t.Errorf("purchaseResult(%#v).Err = %v, want %v", tt.reply, got.Err, tt.wantErr)
				}
				got.Err = nil
			} else if got.Err != nil {
				t.Errorf("purchaseResult(%#v).Err = %v, want nil", tt.reply, got.Err)
			}
			if got.Start != tt.want.Start || got.End != tt.want.End {
				t.Errorf("purchaseResult(%#v) Start/End = %v/%v, want %v/%v (UTC)",
					tt.reply, got.Start, got.End, tt.want.Start, tt.want.End)
			}
			if got != tt.want {
				t.Errorf("purchaseResult(%#v) = %+v, want %+v", tt.reply, got, tt.want)
			}
		})
	}
}
