package engine_test

import (
	"errors"
	"testing"
	"time"

	"github.com/flashsale/flashsale/engine"
)

// TestRoomInfo reads a room before and after its opening, and once sold
// out; a product without one answers ErrNoRoom.
func TestRoomInfo(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	ctx := testContext(t)
	if _, err := eng.RoomInfo(ctx, newProduct(t, eng, 1)); !errors.Is(err, engine.ErrNoRoom) {
		t.Errorf("no room: %v, want ErrNoRoom", err)
	}
	if _, err := eng.RoomInfo(ctx, "no-such-product"); !errors.Is(err, engine.ErrUnknownProduct) {
		t.Errorf("unknown product: %v, want ErrUnknownProduct", err)
	}
	id := newProduct(t, eng, 1)
	opens := time.Now().Add(time.Hour)
	if _, err := eng.SetRoom(ctx, id, engine.Room{Rate: 50, OpensAt: opens}); err != nil {
		t.Fatal(err)
	}
	join(t, eng, id, "u1")
	join(t, eng, id, "u2")
	info := func(name string, want func(engine.RoomInfo) bool) {
		t.Helper()
		r, err := eng.RoomInfo(ctx, id)
		if err != nil || !want(r) {
			t.Errorf("%s: %+v %v", name, r, err)
		}
	}
	info("before the opening", func(r engine.RoomInfo) bool {
		return !r.Open() && r.Rate == 50 && r.Joined == 2 && r.Cursor == 0 && r.OpensAt.Equal(opens.Truncate(time.Millisecond))
	})
	if _, err := eng.SetRoom(ctx, id, engine.Room{Rate: 1000, OpensAt: time.Now().Add(-time.Second)}); err != nil {
		t.Fatal(err)
	}
	a := waitAdmitted(t, eng, id, join(t, eng, id, "u1").Ticket)
	// The cursor moves one place a millisecond from the new opening: by now
	// it has reached u1's place, and at most the line's end.
	info("open", func(r engine.RoomInfo) bool {
		return r.Open() && r.Admitted == 1 && r.Cursor >= 1 && r.Cursor <= 2 && !r.Paused
	})
	if r := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: "u1", Admission: a.Admission}); r.Err != nil {
		t.Fatal(r.Err)
	}
	eng.Join(ctx, engine.JoinRequest{ProductID: id, UserID: "u3"}) // SOLD_OUT: the room pauses
	info("sold out", func(r engine.RoomInfo) bool { return r.Paused })
}

// TestRoomOpenedStays: a room whose opening has passed is open, though
// no one joined or polled since; moving its opening later keeps it open.
func TestRoomOpenedStays(t *testing.T) {
	t.Parallel()
	eng, _ := newEngine(t)
	ctx := testContext(t)
	id := newProduct(t, eng, 1)
	if _, err := eng.SetRoom(ctx, id, engine.Room{Rate: 10, OpensAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	st, err := eng.SetRoom(ctx, id, engine.Room{Rate: 10, OpensAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if st.OpensAt.After(time.Now()) {
		t.Errorf("opening moved to %v after the room had opened", st.OpensAt)
	}
	if r, err := eng.RoomInfo(ctx, id); err != nil || !r.Open() {
		t.Errorf("room info %+v %v, want open", r, err)
	}
}
