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
