package engine_test

import (
	"testing"
	"time"

	"github.com/flashsale/flashsale/auth"
	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
	"github.com/flashsale/flashsale/wire"
)

// The engine's side of customer proofs: which purchases need one and what
// a refusal answers. Package auth's tests check the proofs themselves.

var (
	jwtSecret  = saletest.JWTSecret
	jwtNow     = saletest.JWTNow
	shopConfig = auth.JWTConfig{Issuer: saletest.JWTIssuer, Audience: saletest.JWTAudience}
)

// newSigner is the shop's token signer.
func newSigner(t testing.TB) *auth.Signer {
	t.Helper()
	s, err := auth.NewSigner([]byte("shop-secret-0123456789"))
	if err != nil {
		t.Fatalf("NewSigner: %v", err)
	}
	return s
}

// claims are a valid token's claims at jwtNow for sub, changed by edits.
func claims(sub string, edits map[string]any) map[string]any {
	return saletest.Claims(sub, jwtNow, edits)
}

func hs256(t testing.TB, c map[string]any) string {
	return saletest.JWT(t, jwtSecret, map[string]any{"alg": "HS256", "typ": "JWT"}, c)
}

// TestPurchaseSigned runs purchases through an engine that requires
// tokens: failures change nothing in Redis, a good token buys.
func TestPurchaseSigned(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	s := newSigner(t)
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	eng := engine.New(pool, engine.WithSigner(s), engine.WithClock(func() time.Time { return now }))
	ctx := testContext(t)
	id := newProduct(t, eng, 3)
	exp := now.Add(time.Hour)
	good := s.Mint("ann", exp)

	for _, tt := range []struct {
		name string
		req  engine.Request
		msg  string
	}{
		{"missing", engine.Request{ProductID: id, UserID: "ann"}, "missing token"},
		{"forged", engine.Request{ProductID: id, UserID: "bob", Token: good, Expires: exp.Unix()}, "bad token"},
		{"expired", engine.Request{ProductID: id, UserID: "ann", Token: s.Mint("ann", now.Add(-time.Second)), Expires: now.Add(-time.Second).Unix()}, "token expired"},
		{"too far ahead", engine.Request{ProductID: id, UserID: "ann", Token: s.Mint("ann", now.AddDate(0, 2, 0)), Expires: now.AddDate(0, 2, 0).Unix()}, "bad token"},
		// The token is checked before Redis: an unknown product is not revealed.
		{"unknown product", engine.Request{ProductID: id + "-nope", UserID: "ann"}, "missing token"},
	} {
		res := eng.Purchase(ctx, tt.req)
		if want := (engine.Result{Status: wire.StatusUnauthorized, Message: tt.msg}); res != want {
			t.Errorf("%s: Purchase = %+v, want %+v", tt.name, res, want)
		}
	}
	// Validation still comes first.
	if res := eng.Purchase(ctx, engine.Request{ProductID: id}); res.Status != wire.StatusError || res.Code != engine.CodeInvalidRequest {
		t.Errorf("purchase without user_id = %+v, want ERROR INVALID_REQUEST", res)
	}

	st, err := eng.Status(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	total, buyers, err := eng.Buyers(ctx, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	if st.Remaining != 3 || st.Held != 0 || st.Orders != 0 || total != 0 || len(buyers) != 0 {
		t.Fatalf("after refused purchases: %+v, buyers %d %q; want nothing changed", st, total, buyers)
	}

	res := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "ann", Token: good, Expires: exp.Unix()})
	if res.Status != wire.StatusSuccess || res.Remaining != 2 || res.Quantity != 1 {
		t.Fatalf("signed purchase = %+v, want SUCCESS with 2 left", res)
	}
	if total, buyers, err := eng.Buyers(ctx, id, 0); err != nil || total != 1 || len(buyers) != 1 || buyers[0] != "ann" {
		t.Errorf("buyers = %d %q, %v; want [ann]", total, buyers, err)
	}

	// The engine's clock decides expiry: an hour and a second later the
	// same token is refused.
	later := engine.New(pool, engine.WithSigner(s), engine.WithClock(func() time.Time { return exp.Add(time.Second) }))
	if res := later.Purchase(ctx, engine.Request{ProductID: id, UserID: "ann", Token: good, Expires: exp.Unix()}); res.Status != wire.StatusUnauthorized || res.Message != "token expired" {
		t.Errorf("purchase after expiry = %+v, want UNAUTHORIZED token expired", res)
	}
	// Without a signer, tokens are ignored.
	if res := engine.New(pool).Purchase(ctx, engine.Request{ProductID: id, UserID: "bob", Token: "junk"}); res.Status != wire.StatusSuccess {
		t.Errorf("unsigned engine with a junk token = %+v, want SUCCESS", res)
	}
}

// TestPurchaseJWT runs purchases through engines that accept JWTs:
// refusals change nothing in Redis, sub is the buyer.
func TestPurchaseJWT(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	v, err := auth.NewJWTSecretVerifier(jwtSecret, shopConfig)
	if err != nil {
		t.Fatal(err)
	}
	clock := engine.WithClock(func() time.Time { return jwtNow })
	eng := engine.New(pool, engine.WithJWT(v), clock)
	ctx := testContext(t)
	id := newProduct(t, eng, 4, engine.WithPerUserLimit(0))
	ann := hs256(t, claims("ann", nil))
	unauthorized := func(msg string) engine.Result {
		return engine.Result{Status: wire.StatusUnauthorized, Message: msg}
	}

	for _, tt := range []struct {
		name string
		req  engine.Request
		want engine.Result
	}{
		{"no jwt", engine.Request{ProductID: id, UserID: "ann"}, unauthorized("missing token")},
		{"an HMAC token instead", engine.Request{ProductID: id, UserID: "ann", Token: "x", Expires: 1}, unauthorized("missing token")},
		{"sub is not user_id", engine.Request{ProductID: id, UserID: "bob", JWT: ann}, unauthorized("token is for another user_id")},
		{"expired", engine.Request{ProductID: id, JWT: hs256(t, claims("ann", map[string]any{"exp": jwtNow.Add(-time.Minute).Unix()}))}, unauthorized("token expired")},
		{"not yet valid", engine.Request{ProductID: id, JWT: hs256(t, claims("ann", map[string]any{"nbf": jwtNow.Add(time.Minute).Unix()}))}, unauthorized("token not valid yet")},
		{"wrong issuer", engine.Request{ProductID: id, JWT: hs256(t, claims("ann", map[string]any{"iss": "x"}))}, unauthorized("wrong token issuer")},
		{"wrong audience", engine.Request{ProductID: id, JWT: hs256(t, claims("ann", map[string]any{"aud": "x"}))}, unauthorized("wrong token audience")},
		{"alg none", engine.Request{ProductID: id, JWT: saletest.JWT(t, nil, map[string]any{"alg": "none"}, claims("ann", nil))}, unauthorized("bad token")},
		// The token is checked before Redis: an unknown product is not revealed.
		{"unknown product", engine.Request{ProductID: id + "-nope", UserID: "ann"}, unauthorized("missing token")},
		// A sub that cannot be a user id is an invalid request.
		{"sub with a control character", engine.Request{ProductID: id, JWT: hs256(t, claims("a\nb", nil))}, engine.Fail(engine.ValidateUserID("a\nb"))},
	} {
		res := eng.Purchase(ctx, tt.req)
		if res.Status != tt.want.Status || res.Message != tt.want.Message || res.Code != tt.want.Code {
			t.Errorf("%s: Purchase = %+v, want %+v", tt.name, res, tt.want)
		}
	}
	// Validation still comes first, and a user_id or a jwt is needed.
	if res := eng.Purchase(ctx, engine.Request{ProductID: id}); res.Status != wire.StatusError || res.Code != engine.CodeInvalidRequest {
		t.Errorf("purchase without user_id or jwt = %+v, want ERROR INVALID_REQUEST", res)
	}
	st, err := eng.Status(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.Remaining != 4 || st.Held != 0 || st.Orders != 0 {
		t.Fatalf("after refused purchases: %+v; want nothing changed", st)
	}

	// user_id absent: sub is the buyer; present and equal: accepted.
	for _, req := range []engine.Request{{ProductID: id, JWT: ann}, {ProductID: id, UserID: "ann", JWT: ann}} {
		if res := eng.Purchase(ctx, req); res.Status != wire.StatusSuccess {
			t.Fatalf("Purchase(%+v) = %+v, want SUCCESS", req, res)
		}
	}
	if total, buyers, err := eng.Buyers(ctx, id, 0); err != nil || total != 2 || buyers[0] != "ann" || buyers[1] != "ann" {
		t.Errorf("buyers = %d %q, %v; want [ann ann]", total, buyers, err)
	}

	// With an HMAC signer too, either proof buys; a request with a jwt is
	// judged by it alone.
	signer := newSigner(t)
	both := engine.New(pool, engine.WithJWT(v), engine.WithSigner(signer), clock)
	exp := jwtNow.Add(time.Hour)
	bob := signer.Mint("bob", exp)
	for _, tt := range []struct {
		name string
		req  engine.Request
		want wire.Status
		msg  string
	}{
		{"neither", engine.Request{ProductID: id, UserID: "bob"}, wire.StatusUnauthorized, "missing token"},
		{"bad jwt, good HMAC token", engine.Request{ProductID: id, UserID: "bob", Token: bob, Expires: exp.Unix(), JWT: hs256(t, claims("bob", map[string]any{"iss": "x"}))}, wire.StatusUnauthorized, "wrong token issuer"},
		{"HMAC token", engine.Request{ProductID: id, UserID: "bob", Token: bob, Expires: exp.Unix()}, wire.StatusSuccess, ""},
		{"jwt", engine.Request{ProductID: id, JWT: hs256(t, claims("cy", nil))}, wire.StatusSuccess, ""},
	} {
		if res := both.Purchase(ctx, tt.req); res.Status != tt.want || res.Message != tt.msg {
			t.Errorf("both, %s: Purchase = %+v, want %v %q", tt.name, res, tt.want, tt.msg)
		}
	}
	// Without a verifier a jwt is not read, so it cannot stand for user_id.
	if res := engine.New(pool).Purchase(ctx, engine.Request{ProductID: id, JWT: ann}); res.Status != wire.StatusError || res.Code != engine.CodeInvalidRequest {
		t.Errorf("no verifier, jwt without user_id = %+v, want ERROR INVALID_REQUEST", res)
	}
}
