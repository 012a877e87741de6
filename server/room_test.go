package server_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/server"
	"github.com/flashsale/flashsale/wire"
)

// TestHTTPRoom joins a room, polls until admitted and buys with the
// admission over HTTP; without it the purchase is refused with 403.
func TestHTTPRoom(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	srv := startServer(t, eng, server.Config{PollInterval: 20 * time.Millisecond})
	base := "http://" + srv.addr
	c := newHTTPClient(t, 2)
	id := newProduct(t, eng, 2)
	if _, err := eng.SetRoom(testContext(t), id, engine.Room{Rate: 10}); err != nil {
		t.Fatal(err)
	}
	if a := do(t, c, "POST", base+"/v1/purchase", purchaseJSON(id, "alice"), nil); a.code != 403 || a.resp.Code != engine.CodeNotAdmitted {
		t.Fatalf("purchase without admission = %d %s, want 403 NOT_ADMITTED", a.code, a.body)
	}
	j := do(t, c, "POST", base+"/v1/queue/join", `{"product_id":"`+id+`","user_id":"alice"}`, nil)
	if j.code != 200 || j.resp.Status != "WAITING" || j.resp.Ticket == "" {
		t.Fatalf("join = %d %s, want 200 WAITING with a ticket", j.code, j.body)
	}
	status := base + "/v1/queue/status?product_id=" + url.QueryEscape(id) + "&ticket=" + url.QueryEscape(j.resp.Ticket)
	var adm wire.Response
	for deadline := time.Now().Add(5 * time.Second); ; {
		a := do(t, c, "GET", status, "", nil)
		if a.resp.Status == "ADMITTED" {
			adm = a.resp
			break
		}
		if a.resp.Status != "WAITING" || time.Now().After(deadline) {
			t.Fatalf("status = %d %s, want WAITING then ADMITTED", a.code, a.body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if adm.Admission == "" || adm.Has&wire.FieldExpiresAt == 0 {
		t.Fatalf("admitted answer %+v lacks its admission", adm)
	}
	buy := string(wire.AppendPurchase(nil, wire.PurchaseRequest{ProductID: id, UserID: "alice", Admission: adm.Admission}))
	if a := do(t, c, "POST", base+"/v1/purchase", buy, nil); a.code != 200 || a.resp.Status != "SUCCESS" {
		t.Errorf("admitted purchase = %d %s, want 200 SUCCESS", a.code, a.body)
	}
	if a := do(t, c, "GET", base+"/v1/queue/status?product_id="+url.QueryEscape(id)+"&ticket=t1.YQ.forged", "", nil); a.code != 403 || a.resp.Code != engine.CodeUnknownTicket {
		t.Errorf("forged ticket = %d %s, want 403 UNKNOWN_TICKET", a.code, a.body)
	}
	if a := do(t, c, "GET", status+"&x=1", "", nil); a.code != 400 {
		t.Errorf("unknown parameter = %d %s, want 400", a.code, a.body)
	}
}

// rawFrame is a frame written byte by byte: TYPE, LENGTH big-endian, the
// JSON payload.
func rawFrame(typ byte, payload string) []byte {
	n := len(payload)
	return append([]byte{typ, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}, payload...)
}

// TestTLVRoom speaks the waiting room in raw frames: JOIN_QUEUE (0x20) is
// answered in 0xA0 frames, QUEUE_STATUS (0x21) in 0xA1, as the protocol
// says, from a connection's first frame on and pipelined; a purchase
// with the admission sells, and the refusals carry their codes.
func TestTLVRoom(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	srv := startServer(t, eng, server.Config{PollInterval: 20 * time.Millisecond})
	id, plain := newProduct(t, eng, 1), newProduct(t, eng, 1)
	if _, err := eng.SetRoom(testContext(t), id, engine.Room{Rate: 1000}); err != nil {
		t.Fatal(err)
	}
	c := dial(t, srv.addr)
	ask := func(typ byte, payload string) wire.Response {
		t.Helper()
		c.send(rawFrame(typ, payload))
		f := c.mustNext()
		if byte(f.Type) != typ|0x80 {
			t.Fatalf("answer of type %#x to %#x %s", byte(f.Type), typ, payload)
		}
		var r wire.Response
		if err := wire.DecodeResponse(f.Payload, &r); err != nil {
			t.Fatalf("answer %q: %v", f.Payload, err)
		}
		return r
	}
	code := func(r wire.Response) string {
		if r.Status == "ERROR" {
			return r.Code
		}
		return r.Status
	}
	join := func(user string) string { return `{"product_id":"` + id + `","user_id":"` + user + `"}` }
	status := func(ticket string) string { return `{"product_id":"` + id + `","ticket":"` + ticket + `"}` }

	j := ask(0x20, join("alice"))
	if j.Status != "WAITING" || j.Ticket == "" {
		t.Fatalf("JOIN_QUEUE = %+v, want WAITING with a ticket", j)
	}
	if again := ask(0x20, join("alice")); again.Ticket != j.Ticket {
		t.Errorf("joining again = %+v, want the ticket %s", again, j.Ticket)
	}
	var adm wire.Response
	for deadline := time.Now().Add(5 * time.Second); adm.Status != "ADMITTED"; time.Sleep(5 * time.Millisecond) {
		if adm = ask(0x21, status(j.Ticket)); adm.Status != "WAITING" && adm.Status != "ADMITTED" || time.Now().After(deadline) {
			t.Fatalf("QUEUE_STATUS = %+v, want WAITING then ADMITTED", adm)
		}
	}
	if adm.Admission == "" || adm.Has&wire.FieldExpiresAt == 0 {
		t.Fatalf("ADMITTED = %+v, want an admission and expires_at", adm)
	}
	buy := func(user, admission string) string {
		return string(wire.AppendPurchase(nil, wire.PurchaseRequest{ProductID: id, UserID: user, Admission: admission}))
	}
	b := ask(0x20, join("bob")) // waits: the one unit goes to alice
	for _, tt := range []struct {
		name    string
		typ     byte
		payload string
		want    string // the status, or for ERROR its code
	}{
		{"purchase without an admission", 0x01, buy("alice", ""), engine.CodeNotAdmitted},
		{"another customer's admission", 0x01, buy("bob", adm.Admission), engine.CodeNotAdmitted},
		{"purchase with the admission", 0x01, buy("alice", adm.Admission), "SUCCESS"},
		{"status once sold out", 0x21, status(b.Ticket), "SOLD_OUT"},
		{"join once sold out", 0x20, join("carol"), "SOLD_OUT"},
		{"unknown ticket", 0x21, status("t1.YQ.forged"), engine.CodeUnknownTicket},
		{"malformed ticket", 0x21, status("forged"), engine.CodeInvalidRequest},
		{"no room", 0x20, `{"product_id":"` + plain + `","user_id":"alice"}`, engine.CodeNoRoom},
		{"unknown product", 0x20, `{"product_id":"none-` + id + `","user_id":"alice"}`, engine.CodeUnknownProduct},
		{"join: unknown field", 0x20, `{"product_id":"` + id + `","user":"alice"}`, engine.CodeInvalidRequest},
		{"status: unknown field", 0x21, `{"product_id":"` + id + `","ticket":"x","user_id":"alice"}`, engine.CodeInvalidRequest},
		{"join: not JSON", 0x20, `{"product_id":`, engine.CodeInvalidRequest},
	} {
		if r := ask(tt.typ, tt.payload); code(r) != tt.want {
			t.Errorf("%s: %#x %s = %+v, want %s", tt.name, tt.typ, tt.payload, r, tt.want)
		}
	}

	// A connection whose first frame is a JOIN_QUEUE, pipelined with a
	// QUEUE_STATUS: TLV, answered in order.
	fresh := dial(t, srv.addr)
	fresh.send(append(rawFrame(0x20, join("bob")), rawFrame(0x21, status(b.Ticket))...))
	for _, typ := range []wire.Type{0xA0, 0xA1} {
		expectFrame(t, fresh.mustNext(), typ, `{"status":"SOLD_OUT"}`)
	}
}
