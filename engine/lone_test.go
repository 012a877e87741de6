package engine_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/lua"
)

// fullForm runs req alone in the purchase script's full form (every key
// and argument), as a call that has no lone form goes.
func fullForm(ctx context.Context, t *testing.T, eng *engine.Engine, req engine.Request) engine.Result {
	t.Helper()
	args, ok := engine.PurchaseArgs(eng, req)
	if !ok {
		t.Fatalf("%+v answered without Redis", req)
	}
	v, err := engine.RedisOf(eng).Eval(ctx, engine.PurchaseFullForm, args...)
	if err != nil {
		t.Fatalf("full form: %v", err)
	}
	res, err := engine.PurchaseResult(v)
	if err != nil {
		t.Fatalf("full form reply %v: %v", v, err)
	}
	return res
}

// TestLoneFormEqualsFullForm: purchases sent alone in the script's lone
// form (no request id, no rate limit, ids plain in JSON) get the same
// answers, and leave the same books, as in its full form: per-user limits,
// quantities, windows, holds with reservations falling due (the lean path
// hands those to the general one), a waiting room, and ids the lone form
// does not take (they go in the full form).
func TestLoneFormEqualsFullForm(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	users := []string{"u0", "u1", "u2", "u3", `u"quote`, "u/slash", "ü"}
	for seed := range uint64(16) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			rng := rand.New(rand.NewPCG(seed, 11))
			opts := []engine.InitOption{engine.WithPerUserLimit(int64(rng.IntN(4)))}
			hold := seed%4 == 1
			if hold {
				opts = append(opts, engine.WithHold(40*time.Millisecond))
			}
			switch seed % 8 {
			case 2:
				opts = append(opts, engine.WithWindow(time.Now().Add(time.Hour), time.Time{}))
			case 6:
				opts = append(opts, engine.WithWindow(time.Now().Add(-time.Hour), time.Now().Add(-time.Minute)))
			}
			units := int64(1 + rng.IntN(12))
			lone, full := newProduct(t, eng, units, opts...), newProduct(t, eng, units, opts...)
			if seed%4 == 3 {
				for _, id := range []string{lone, full} {
					if _, err := eng.SetRoom(ctx, id, engine.Room{Rate: 10}); err != nil {
						t.Fatal(err)
					}
				}
			}
			var got, want []string
			for range 1 + rng.IntN(24) {
				req := engine.Request{UserID: users[rng.IntN(len(users))], Quantity: 1 + rng.Int64N(3)}
				if hold && rng.IntN(4) == 0 {
					time.Sleep(50 * time.Millisecond) // the reservations so far fall due
				}
				req.ProductID = lone
				got = append(got, summary(eng.Purchase(ctx, req)))
				req.ProductID = full
				want = append(want, summary(fullForm(ctx, t, eng, req)))
			}
			if !slices.Equal(got, want) {
				t.Fatalf("lone form %q\nfull form %q", got, want)
			}
			booksAlike(ctx, t, eng, lone, full)
		})
	}
}

// TestLoneFormTaken: a purchase alone with no request id, no admission
// and plain ids goes in the lone form, five keys and four arguments; one
// with a request id, an admission or an id JSON escapes in the compact
// form, the 11 shared keys, the arguments, the request key prefix and
// whether the ids need no JSON escaping; one
// with a rate limit as it is.
func TestLoneFormTaken(t *testing.T) {
	t.Parallel()
	lone := engine.PurchaseScript.Merge.Lone
	rated := engine.New(nil, engine.WithUserRate(engine.Rate{Interval: time.Second, Burst: 1}))
	plain := engine.New(nil)
	tests := []struct {
		eng  *engine.Engine
		req  engine.Request
		keys int    // the form's key count, 0 for none
		flag string // the compact form's last argument
	}{
		{plain, engine.Request{ProductID: "p", UserID: "u"}, 5, ""},
		{plain, engine.Request{ProductID: "p", UserID: "u", Quantity: 3}, 5, ""},
		{plain, engine.Request{ProductID: "p", UserID: "u", Admission: "n"}, 11, "1"},
		{plain, engine.Request{ProductID: "p", UserID: "u", RequestID: "r"}, 11, "1"},
		{rated, engine.Request{ProductID: "p", UserID: "u"}, 0, ""},
		{rated, engine.Request{ProductID: "p", UserID: "u", RequestID: "r"}, 0, ""},
		{plain, engine.Request{ProductID: "p", UserID: `u"`}, 11, "0"},
		{plain, engine.Request{ProductID: "p/1", UserID: "u"}, 11, "0"},
		{plain, engine.Request{ProductID: "p", UserID: "ü"}, 11, "0"},
	}
	for _, tt := range tests {
		req, nonce := tt.req, tt.req.Admission
		req.Admission = "" // (a real one is signed: its nonce goes in as checked)
		args, ok := engine.PurchaseArgsAdmitted(tt.eng, req, nonce)
		if !ok {
			t.Fatalf("%+v answered without Redis", tt.req)
		}
		out, got := lone(nil, args)
		want := map[int]int{0: 0, 5: 1 + 5 + 4, 11: 1 + 11 + 6 + 4 + 2}[tt.keys]
		switch {
		case got != (tt.keys > 0):
			t.Errorf("%+v: a shorter form %v, want %v", tt.req, got, tt.keys > 0)
		case got && (len(out) != want || out[0] != tt.keys):
			t.Errorf("%+v: form %v, want the key count %d and %d elements", tt.req, out, tt.keys, want)
		case tt.keys == 11 && (out[len(out)-2] != engine.KeysFor(tt.req.ProductID).Request("") || out[len(out)-1] != tt.flag):
			t.Errorf("%+v: compact form ends %v, want the request key prefix and %q", tt.req, out[len(out)-2:], tt.flag)
		}
	}
}

// TestLoneFormOrderTime: a lone sale of a plain product writes its time
// from TIME's texts, not from a number; it must be the time of its entry
// (the stream id's milliseconds), whatever the microseconds' digits.
func TestLoneFormOrderTime(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	ctx := testContext(t)
	id := newProduct(t, eng, 200, engine.WithPerUserLimit(0))
	for i := range 200 {
		if r := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: fmt.Sprint("u", i)}); r.OrderID == "" {
			t.Fatalf("purchase %d: %+v", i, r)
		}
	}
	orders, err := eng.Orders(ctx, id, 0)
	if err != nil || len(orders) != 200 {
		t.Fatalf("orders: %d, %v", len(orders), err)
	}
	for _, o := range orders {
		var ms int64
		if _, err := fmt.Sscanf(o.ID, "%d-", &ms); err != nil {
			t.Fatalf("entry id %q: %v", o.ID, err)
		}
		if d := o.Time.UnixMilli() - ms; d < -5 || d > 5 {
			t.Errorf("entry %s: time %d ms, %d ms from its id", o.ID, o.Time.UnixMilli(), d)
		}
	}
}

// TestLoneFormTimeText runs the lean path's line that spells the time in
// ms from TIME's two texts, as purchase.lua has it, for microseconds of
// every length.
func TestLoneFormTimeText(t *testing.T) {
	t.Parallel()
	_, addr := newEngine(t)
	c := redistest.Conn(t, addr)
	var line string
	for l := range strings.Lines(lua.Purchase) {
		if strings.Contains(l, "at = t[1] ..") {
			line = l
		}
	}
	if line == "" {
		t.Fatal("purchase.lua has no line that spells at from t")
	}
	src := "local t = {ARGV[1], ARGV[2]}\nlocal us, at = t[2], nil\n" + line + "\nreturn at"
	for _, us := range []int64{0, 5, 999, 1000, 5123, 99999, 100000, 123456, 999999} {
		got, err := redis.String(c.Do("EVAL", src, 0, "1796688871", us))
		if want := fmt.Sprint(1796688871000 + us/1000); err != nil || got != want {
			t.Errorf("microseconds %d: at = %q (%v), want %s", us, got, err, want)
		}
	}
}
