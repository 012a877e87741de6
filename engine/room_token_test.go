package engine_test

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/wire"
)

// withField is token with its field i (0: the version) replaced by v.
func withField(token string, i int, v string) string {
	f := strings.Split(token, ".")
	f[i] = v
	return strings.Join(f, ".")
}

var b64 = base64.RawURLEncoding.EncodeToString

// roomedProduct is a new product of units with an open room admitting
// fast.
func roomedProduct(t *testing.T, eng *engine.Engine, units int64) string {
	t.Helper()
	id := newProduct(t, eng, units)
	if _, err := eng.SetRoom(testContext(t), id, engine.Room{Rate: 1000}); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestRoomTokensSigned: a ticket or admission whose signature fails (a
// field changed, another key) is refused with the code of its kind, and
// without a call to Redis; a genuine one of another product or customer
// is refused too.
func TestRoomTokensSigned(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	ctx := testContext(t)
	counter := &countingRedis{Redis: pool}
	eng := engine.New(counter, engine.WithRoomSecret([]byte("a shop secret of 32 bytes, or so")))
	id, other := roomedProduct(t, eng, 5), roomedProduct(t, eng, 5)
	tk := join(t, eng, id, "ann").Ticket
	adm := waitAdmitted(t, eng, id, tk)
	otherTicket := join(t, eng, other, "ann").Ticket
	later := strconv.FormatInt(adm.AdmissionExpires.Add(time.Hour).UnixMilli(), 10)
	stranger := engine.New(pool, engine.WithRoomSecret([]byte("another shop's secret, 32 bytes.")))

	for _, tc := range []struct {
		name, product, ticket string
		redis                 bool // the refusal comes from Redis
	}{
		{"forged signature", id, withField(tk, 4, "AAAAAAAAAAAAAAAAAAAAAA"), false},
		{"product changed", other, withField(tk, 1, b64([]byte(other))), false},
		{"customer changed", id, withField(tk, 2, b64([]byte("bob"))), false},
		{"nonce changed", id, withField(tk, 3, "AAAAAAAAAAAAAAAAAAAAAA"), false},
		{"of another product", other, tk, true},
		{"of another product's room", id, otherTicket, true},
	} {
		before := counter.count()
		if a := eng.Poll(ctx, tc.product, tc.ticket); a.Code != engine.CodeUnknownTicket {
			t.Errorf("poll with a ticket, %s: %+v, want UNKNOWN_TICKET", tc.name, a)
		} else if !tc.redis && !strings.Contains(a.Message, "not signed by this sale's servers") {
			t.Errorf("poll with a ticket, %s: %q, want it not signed", tc.name, a.Message)
		}
		if calls := counter.count() - before; tc.redis != (calls > 0) {
			t.Errorf("poll with a ticket, %s: %d Redis calls", tc.name, calls)
		}
	}
	if a := stranger.Poll(ctx, id, tk); a.Code != engine.CodeUnknownTicket {
		t.Errorf("poll on servers with another secret = %+v, want UNKNOWN_TICKET", a)
	}

	for _, tc := range []struct {
		name, product, user, admission, why string
	}{
		{"forged signature", id, "ann", withField(adm.Admission, 5, "AAAAAAAAAAAAAAAAAAAAAA"), "not signed by this sale's servers"},
		{"expiry changed", id, "ann", withField(adm.Admission, 3, later), "not signed by this sale's servers"},
		{"product changed", other, "ann", withField(adm.Admission, 1, b64([]byte(other))), "not signed by this sale's servers"},
		{"customer changed", id, "bob", withField(adm.Admission, 2, b64([]byte("bob"))), "not signed by this sale's servers"},
		{"nonce changed", id, "ann", withField(adm.Admission, 4, "AAAAAAAAAAAAAAAAAAAAAA"), "not signed by this sale's servers"},
		{"of another product", other, "ann", adm.Admission, "for another product"},
		{"another customer's", id, "bob", adm.Admission, "another customer's"},
	} {
		before := counter.count()
		r := eng.Purchase(ctx, engine.Request{ProductID: tc.product, UserID: tc.user, Admission: tc.admission})
		if r.Code != engine.CodeNotAdmitted || !strings.Contains(r.Message, tc.why) {
			t.Errorf("purchase with an admission, %s: %+v, want NOT_ADMITTED saying %q", tc.name, r, tc.why)
		}
		if calls := counter.count() - before; calls != 0 {
			t.Errorf("purchase with an admission, %s: %d Redis calls, want none", tc.name, calls)
		}
	}
	if r := stranger.Purchase(ctx, engine.Request{ProductID: id, UserID: "ann", Admission: adm.Admission}); r.Code != engine.CodeNotAdmitted {
		t.Errorf("purchase on servers with another secret = %+v, want NOT_ADMITTED", r)
	}

	// Expired by its signed expiry: refused here, before Redis.
	clock := adm.AdmissionExpires.Add(time.Second)
	expired := engine.New(counter, engine.WithRoomSecret([]byte("a shop secret of 32 bytes, or so")),
		engine.WithClock(func() time.Time { return clock }))
	before := counter.count()
	if r := expired.Purchase(ctx, engine.Request{ProductID: id, UserID: "ann", Admission: adm.Admission}); r.Code != engine.CodeNotAdmitted || !strings.Contains(r.Message, "expired") {
		t.Errorf("purchase with an expired admission = %+v, want NOT_ADMITTED, expired", r)
	}
	if calls := counter.count() - before; calls != 0 {
		t.Errorf("purchase with an expired admission: %d Redis calls, want none", calls)
	}
	// The same secret after a restart: the tokens still hold.
	restarted := engine.New(pool, engine.WithRoomSecret([]byte("a shop secret of 32 bytes, or so")))
	if a := restarted.Poll(ctx, id, tk); a.Admission != adm.Admission {
		t.Errorf("poll after a restart = %+v, want the same admission", a)
	}
	if r := restarted.Purchase(ctx, engine.Request{ProductID: id, UserID: "ann", Admission: adm.Admission}); r.Status != wire.StatusSuccess {
		t.Errorf("purchase after a restart = %+v, want SUCCESS", r)
	}
}

// TestRoomSecretKeptInRedis: servers given no secret share the one the
// first of them kept in Redis, a restarted one too; a bad signature is
// refused without Redis once a server has read it.
func TestRoomSecretKeptInRedis(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	ctx := testContext(t)
	first := engine.New(pool)
	id := roomedProduct(t, first, 5)
	tk := join(t, first, id, "ann").Ticket

	counter := &countingRedis{Redis: pool}
	second := engine.New(counter) // as a server started later
	adm := waitAdmitted(t, second, id, tk)
	before := counter.count()
	if a := second.Poll(ctx, id, withField(tk, 4, "AAAAAAAAAAAAAAAAAAAAAA")); a.Code != engine.CodeUnknownTicket {
		t.Errorf("poll with a forged ticket = %+v, want UNKNOWN_TICKET", a)
	}
	if calls := counter.count() - before; calls != 0 {
		t.Errorf("poll with a forged ticket: %d Redis calls, want none", calls)
	}
	// A purchase is the first need of a third server's key.
	if r := engine.New(pool).Purchase(ctx, engine.Request{ProductID: id, UserID: "ann", Admission: adm.Admission}); r.Status != wire.StatusSuccess {
		t.Errorf("purchase on a third server = %+v, want SUCCESS", r)
	}
	if a := first.Poll(ctx, id, tk); a.Admission != adm.Admission {
		t.Errorf("poll on the first server = %+v, want the admission the second gave", a)
	}
	configured := engine.New(pool, engine.WithRoomSecret([]byte("a shop secret of 32 bytes, or so")))
	if a := configured.Poll(ctx, id, tk); a.Code != engine.CodeUnknownTicket {
		t.Errorf("poll on a server with a secret of its own = %+v, want UNKNOWN_TICKET", a)
	}
}

// TestRoomSecretOnCluster: on Redis Cluster the servers share the secret
// too (its key is in one slot), for products on every master.
func TestRoomSecretOnCluster(t *testing.T) {
	c := redistest.StartCluster(t, redistest.ClusterConfig{Masters: 3})
	engs := shardServers(t, c, 2)
	for i := range 6 { // spread over the masters
		id := fmt.Sprintf("room-%d", i)
		if err := engs[0].Init(testContext(t), id, 1); err != nil {
			t.Fatal(err)
		}
		if _, err := engs[0].SetRoom(testContext(t), id, engine.Room{Rate: 1000}); err != nil {
			t.Fatal(err)
		}
		adm := waitAdmitted(t, engs[1], id, join(t, engs[0], id, "ann").Ticket)
		if r := engs[0].Purchase(testContext(t), engine.Request{ProductID: id, UserID: "ann", Admission: adm.Admission}); r.Status != wire.StatusSuccess {
			t.Errorf("%s: purchase = %+v, want SUCCESS", id, r)
		}
	}
}
