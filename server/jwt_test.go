package server_test

import (
	"testing"
	"time"

	"github.com/flashsale/flashsale/auth"
	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
	"github.com/flashsale/flashsale/server"
	"github.com/flashsale/flashsale/transport"
	"github.com/flashsale/flashsale/wire"
)

// TestServerPurchaseJWT buys over TLV with a "jwt" member, through the
// batcher to the test Redis: sub is the buyer, refusals are UNAUTHORIZED
// and leave Redis unchanged. The token is minted by hand (saletest.JWT).
func TestServerPurchaseJWT(t *testing.T) {
	t.Parallel()
	secret := []byte("server-test-jwt-secret-of-32-byt")
	v, err := auth.NewJWTSecretVerifier(secret, auth.JWTConfig{Audience: "flashsale"})
	if err != nil {
		t.Fatal(err)
	}
	pool, addr := saletest.Pool(t)
	b := transport.NewBatcher(pool, transport.BatcherConfig{})
	t.Cleanup(func() { b.Close() })
	eng := engine.New(b, engine.WithJWT(v))
	id := newProduct(t, eng, 1)
	srv := startServer(t, eng, server.Config{})

	mint := func(sub string, exp time.Time) string {
		return saletest.JWT(t, secret, map[string]any{"alg": "HS256", "typ": "JWT"},
			map[string]any{"sub": sub, "aud": "flashsale", "exp": exp.Unix()})
	}
	frame := func(req wire.PurchaseRequest) []byte {
		return wire.AppendFrame(nil, wire.TypePurchase, wire.AppendPurchase(nil, req))
	}
	c := dial(t, srv.addr)
	c.send(frame(wire.PurchaseRequest{ProductID: id, JWT: mint("ann", time.Now().Add(-time.Hour))}))
	expectFrame(t, c.mustNext(), wire.TypePurchaseResponse, `{"status":"UNAUTHORIZED","error":"token expired"}`)
	c.send(frame(wire.PurchaseRequest{ProductID: id, UserID: "bob", JWT: mint("ann", time.Now().Add(time.Hour))}))
	expectFrame(t, c.mustNext(), wire.TypePurchaseResponse, `{"status":"UNAUTHORIZED","error":"token is for another user_id"}`)
	c.send(purchaseFrame(id, "ann"))
	expectFrame(t, c.mustNext(), wire.TypePurchaseResponse, `{"status":"UNAUTHORIZED","error":"missing token"}`)

	c.send(frame(wire.PurchaseRequest{ProductID: id, JWT: mint("ann", time.Now().Add(time.Hour))}))
	expectSuccess(t, c.mustNext(), 0)
	checkSoldOut(t, addr, id, 1, []int64{0}, map[string]bool{"ann": true})
}
