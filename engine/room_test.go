package engine_test

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/wire"
)

func join(t *testing.T, eng *engine.Engine, id, user string) engine.RoomAnswer {
	t.Helper()
	a := eng.Join(testContext(t), engine.JoinRequest{ProductID: id, UserID: user})
	if a.Status != wire.StatusWaiting || a.Ticket == "" {
		t.Fatalf("join of %s by %s = %+v, want WAITING with a ticket", id, user, a)
	}
	return a
}

// waitAdmitted polls until admitted, and fails the test past 5 s.
func waitAdmitted(t *testing.T, eng *engine.Engine, id, ticket string) engine.RoomAnswer {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		a := eng.Poll(testContext(t), id, ticket)
		switch {
		case a.Status == wire.StatusAdmitted:
			return a
		case a.Status != wire.StatusWaiting || time.Now().After(deadline):
			t.Fatalf("poll = %+v, want WAITING then ADMITTED", a)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRoomAdmitsInOrderAndGuardsPurchases(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	ctx := testContext(t)
	id := newProduct(t, eng, 3)
	if _, err := eng.SetRoom(ctx, id, engine.Room{Rate: 20}); err != nil {
		t.Fatal(err)
	}
	if r := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "u0"}); r.Code != engine.CodeNotAdmitted {
		t.Fatalf("purchase without admission = %+v, want NOT_ADMITTED", r)
	}
	first := join(t, eng, id, "u1")
	if again := join(t, eng, id, "u1"); again.Ticket != first.Ticket {
		t.Errorf("second join ticket %q, want the first %q", again.Ticket, first.Ticket)
	}
	second := join(t, eng, id, "u2")
	a1 := waitAdmitted(t, eng, id, first.Ticket)
	a2 := waitAdmitted(t, eng, id, second.Ticket)
	if !a1.AdmissionExpires.Before(a2.AdmissionExpires) {
		t.Errorf("u1 admitted at %s, u2 at %s: want u1 first", a1.AdmissionExpires, a2.AdmissionExpires)
	}
	if again := eng.Poll(ctx, id, first.Ticket); again.Admission != a1.Admission {
		t.Errorf("poll after admission = %+v, want the same admission", again)
	}
	forged := a1.Admission[:len(a1.Admission)-2] + "xx"
	for _, tc := range []struct {
		name, user, admission, why string
	}{
		{"forged", "u1", forged, "not the one the room issued"},
		{"another customer's", "u2", a1.Admission, "another customer's"},
		{"malformed", "u1", "nope", "malformed admission"},
	} {
		r := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: tc.user, Admission: tc.admission})
		if r.Code != engine.CodeNotAdmitted || !strings.Contains(r.Message, tc.why) {
			t.Errorf("%s: %+v, want NOT_ADMITTED saying %q", tc.name, r, tc.why)
		}
	}
	other := newProduct(t, eng, 1)
	if r := eng.Purchase(ctx, engine.Request{ProductID: other, UserID: "u1", Admission: a1.Admission}); r.Code != engine.CodeNotAdmitted {
		t.Errorf("admission of another product = %+v, want NOT_ADMITTED", r)
	}
	if r := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "u1", Admission: a1.Admission}); r.Status != wire.StatusSuccess {
		t.Errorf("admitted purchase = %+v, want SUCCESS", r)
	}
	if r := eng.Poll(ctx, id, "t1.dTk.bogus"); r.Code != engine.CodeUnknownTicket {
		t.Errorf("poll with a forged ticket = %+v, want UNKNOWN_TICKET", r)
	}
	if r := eng.Join(ctx, engine.JoinRequest{ProductID: other, UserID: "u1"}); r.Code != engine.CodeNoRoom {
		t.Errorf("join of a product without a room = %+v, want NO_ROOM", r)
	}
}

// TestRoomSoldOut: once the last unit is sold, the waiting are told
// SOLD_OUT and joins too; a unit back resumes admission.
func TestRoomSoldOut(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	ctx := testContext(t)
	id := newProduct(t, eng, 1)
	if _, err := eng.SetRoom(ctx, id, engine.Room{Rate: 1}); err != nil {
		t.Fatal(err)
	}
	a := join(t, eng, id, "u1")
	w := join(t, eng, id, "u2")
	adm := waitAdmitted(t, eng, id, a.Ticket)
	sale := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "u1", Admission: adm.Admission})
	if sale.Status != wire.StatusSuccess {
		t.Fatalf("purchase = %+v", sale)
	}
	if r := eng.Poll(ctx, id, w.Ticket); r.Status != wire.StatusSoldOut {
		t.Errorf("poll after the last sale = %+v, want SOLD_OUT", r)
	}
	if r := eng.Join(ctx, engine.JoinRequest{ProductID: id, UserID: "u3"}); r.Status != wire.StatusSoldOut {
		t.Errorf("join after the last sale = %+v, want SOLD_OUT", r)
	}
	if _, err := eng.Release(ctx, id, sale.OrderID); err != nil {
		t.Fatal(err)
	}
	waitAdmitted(t, eng, id, w.Ticket)
}

// TestRoomRate: places are admitted at the room's rate, in arrival order.
func TestRoomRate(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	ctx := testContext(t)
	id := newProduct(t, eng, 100)
	const rate = 50
	if _, err := eng.SetRoom(ctx, id, engine.Room{Rate: rate}); err != nil {
		t.Fatal(err)
	}
	tickets := make([]string, 40)
	for i := range tickets {
		tickets[i] = join(t, eng, id, fmt.Sprintf("u%02d", i)).Ticket
	}
	start := time.Now()
	admitted := make([]time.Duration, len(tickets))
	for i, tk := range tickets {
		waitAdmitted(t, eng, id, tk)
		admitted[i] = time.Since(start)
	}
	// The first joined an empty room (admitted at once); the 39 after it
	// come one every 1/rate.
	got := admitted[len(admitted)-1].Seconds()
	want := float64(len(tickets)-1) / rate
	if math.Abs(got-want) > 0.2*want {
		t.Errorf("the last of %d admitted after %.2fs, want %.2fs ±20%%", len(tickets), got, want)
	}
}

// TestRoomShuffle: those who join before the opening are admitted in a
// random order. Over many rooms, each customer's place is uniform: a
// chi-square test of first-place counts, which fails a fair shuffle once
// in about 10^4 runs.
func TestRoomShuffle(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	ctx := testContext(t)
	const people, rooms = 5, 200
	first := make([]int, people)
	for range rooms {
		id := newProduct(t, eng, 10)
		if _, err := eng.SetRoom(ctx, id, engine.Room{Rate: 1000, OpensAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		for i := range people {
			a := join(t, eng, id, fmt.Sprintf("u%d", i))
			if a.Position != -1 {
				t.Fatalf("join before the opening = %+v, want an unknown position", a)
			}
		}
		if _, err := eng.SetRoom(ctx, id, engine.Room{Rate: 1000, OpensAt: time.Now().Add(-time.Second)}); err != nil {
			t.Fatal(err)
		}
		places := make([]int, people)
		for i := range people {
			tk := eng.Join(ctx, engine.JoinRequest{ProductID: id, UserID: fmt.Sprintf("u%d", i)})
			places[i] = int(tk.Position)
		}
		best := 0
		for i := range places {
			if places[i] < places[best] {
				best = i
			}
		}
		first[best]++
	}
	chi := 0.0
	for _, n := range first {
		d := float64(n) - rooms/people
		chi += d * d / (rooms / people)
	}
	// 4 degrees of freedom: P(chi² > 23.5) ≈ 10^-4.
	if chi > 23.5 {
		t.Errorf("first places %v: chi² = %.1f, not uniform", first, chi)
	}
	sort.Ints(first)
	t.Logf("first-place counts %v, chi² %.1f", first, chi)
}

// TestAdmittedToldSoldOut: once no unit is left, an admitted customer who
// has not bought is told SOLD_OUT too; when units come back, their poll
// answers the same admission again.
func TestAdmittedToldSoldOut(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	ctx := testContext(t)
	id := newProduct(t, eng, 1)
	if _, err := eng.SetRoom(ctx, id, engine.Room{Rate: 1000}); err != nil {
		t.Fatal(err)
	}
	ta, tb := join(t, eng, id, "a").Ticket, join(t, eng, id, "b").Ticket
	a, b := waitAdmitted(t, eng, id, ta), waitAdmitted(t, eng, id, tb)
	if r := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "a", Admission: a.Admission}); r.Status != wire.StatusSuccess {
		t.Fatalf("a's purchase = %+v", r)
	}
	if p := eng.Poll(ctx, id, tb); p.Status != wire.StatusSoldOut {
		t.Errorf("b's poll once sold out = %+v, want SOLD_OUT", p)
	}
	if _, _, err := eng.Restock(ctx, id, 1); err != nil {
		t.Fatal(err)
	}
	if p := eng.Poll(ctx, id, tb); p.Status != wire.StatusAdmitted || p.Admission != b.Admission {
		t.Errorf("b's poll after a restock = %+v, want the admission %s again", p, b.Admission)
	}
}
