package server_test

import (
	"testing"
	"time"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/server"
	"github.com/flashsale/flashsale/wire"
)

func orderJSON(product, user, order string) string {
	return string(wire.AppendOrder(nil, wire.OrderRequest{ProductID: product, UserID: user, OrderID: order}))
}

// TestHTTPOrders walks a reservation through its answers over HTTP: the
// status, the HTTP code and the fields of each.
func TestHTTPOrders(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	srv := startServer(t, eng, server.Config{})
	base := "http://" + srv.addr
	c := newHTTPClient(t, 2)
	id := newProduct(t, eng, 2, engine.WithHold(time.Minute))

	r := do(t, c, "POST", base+"/v1/purchase", purchaseJSON(id, "alice"), nil)
	if r.code != 200 || r.resp.Status != "RESERVED" || r.resp.Has&wire.FieldExpiresAt == 0 ||
		r.resp.OrderID == "" || r.resp.RemainingStock != 1 || r.resp.Quantity != 1 {
		t.Fatalf("purchase = %d %s, want 200 RESERVED with expires_at", r.code, r.body)
	}
	if d := time.Until(time.UnixMilli(r.resp.ExpiresAt)); d < 50*time.Second || d > 70*time.Second {
		t.Errorf("expires_at in %s, want about a minute", d)
	}
	alice := r.resp.OrderID
	b := do(t, c, "POST", base, purchaseJSON(id, "bob"), nil).resp.OrderID
	for _, tt := range []struct {
		name, path, body string
		code             int
		status           string // or for ERROR its code
	}{
		{"confirm", "/v1/orders/confirm", orderJSON(id, "alice", alice), 200, "PAID"},
		{"confirm again", "/v1/orders/confirm", orderJSON(id, "alice", alice), 200, "PAID"},
		{"cancel paid", "/v1/orders/cancel", orderJSON(id, "alice", alice), 409, "ALREADY_PAID"},
		{"another customer", "/v1/orders/cancel", orderJSON(id, "mallory", b), 403, engine.CodeForbidden},
		{"unknown order", "/v1/orders/confirm", orderJSON(id, "bob", "1-0"), 404, engine.CodeUnknownOrder},
		{"malformed order id", "/v1/orders/confirm", orderJSON(id, "bob", "nope"), 400, engine.CodeInvalidRequest},
		{"unknown field", "/v1/orders/confirm", `{"product_id":"` + id + `","user_id":"bob","order":"` + b + `"}`, 400, engine.CodeInvalidRequest},
		{"unknown product", "/v1/orders/confirm", orderJSON(id+"-none", "bob", b), 404, engine.CodeUnknownProduct},
		{"cancel", "/v1/orders/cancel", orderJSON(id, "bob", b), 200, "RELEASED"},
		{"cancel again", "/v1/orders/cancel", orderJSON(id, "bob", b), 200, "RELEASED"},
		{"confirm cancelled", "/v1/orders/confirm", orderJSON(id, "bob", b), 409, "RELEASED"},
	} {
		a := do(t, c, "POST", base+tt.path, tt.body, nil)
		got := a.resp.Status
		if got == "ERROR" {
			got = a.resp.Code
		}
		if a.code != tt.code || got != tt.status {
			t.Errorf("%s: %d %s, want %d %s", tt.name, a.code, a.body, tt.code, tt.status)
		}
	}
	p := do(t, c, "GET", base+"/v1/products/"+id, "", nil)
	if p.resp.Has&(wire.FieldReserved|wire.FieldPaid|wire.FieldReleased) == 0 ||
		p.resp.Reserved != 0 || p.resp.Paid != 1 || p.resp.Released != 1 || p.resp.RemainingStock != 1 {
		t.Errorf("product = %s, want 1 paid, 1 released, 1 left", p.body)
	}
	if a := do(t, c, "GET", base+"/v1/products/"+newProduct(t, eng, 1), "", nil); a.resp.Has&wire.FieldReserved != 0 {
		t.Errorf("product without a hold = %s, want no reservation figures", a.body)
	}
}

// TestTLVOrders confirms and cancels over TLV.
func TestTLVOrders(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	srv := startServer(t, eng, server.Config{})
	id := newProduct(t, eng, 2, engine.WithHold(time.Minute))
	c := dial(t, srv.addr)
	ask := func(typ wire.Type, payload []byte) wire.Response {
		t.Helper()
		c.send(wire.AppendFrame(nil, typ, payload))
		f := c.mustNext()
		if f.Type != typ.Response() {
			t.Fatalf("answer of type %s to %s", f.Type, typ)
		}
		var r wire.Response
		if err := wire.DecodeResponse(f.Payload, &r); err != nil {
			t.Fatalf("answer %q: %v", f.Payload, err)
		}
		return r
	}
	order := func(user, oid string) []byte {
		return wire.AppendOrder(nil, wire.OrderRequest{ProductID: id, UserID: user, OrderID: oid})
	}
	r := ask(wire.TypePurchase, wire.AppendPurchase(nil, wire.PurchaseRequest{ProductID: id, UserID: "alice"}))
	if r.Status != "RESERVED" || r.ExpiresAt == 0 {
		t.Fatalf("purchase = %+v, want RESERVED", r)
	}
	if a := ask(wire.TypeConfirm, order("alice", r.OrderID)); a.Status != "PAID" || a.OrderID != r.OrderID {
		t.Errorf("confirm = %+v, want PAID", a)
	}
	if a := ask(wire.TypeCancel, order("alice", r.OrderID)); a.Status != "ALREADY_PAID" {
		t.Errorf("cancel = %+v, want ALREADY_PAID", a)
	}
	if a := ask(wire.TypeCancel, []byte(`{"product_id":1}`)); a.Status != "ERROR" || a.Code != engine.CodeInvalidRequest {
		t.Errorf("malformed cancel = %+v, want INVALID_REQUEST", a)
	}
}
