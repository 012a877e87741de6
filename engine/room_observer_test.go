package engine_test

import (
	"sync"
	"testing"
	"time"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/wire"
)

// roomObserver records what a RoomObserver hears.
type roomObserver struct {
	mu                   sync.Mutex
	joins, polls, cached int
	waits                []time.Duration
}

func (o *roomObserver) Joined() { o.mu.Lock(); o.joins++; o.mu.Unlock() }

func (o *roomObserver) Admitted(w time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.waits = append(o.waits, w)
}

func (o *roomObserver) Polled(fromCache bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if fromCache {
		o.cached++
	} else {
		o.polls++
	}
}

// TestRoomObserverAndStatus follows a room step by step: what its observer
// hears, and what a status reading says of it.
func TestRoomObserverAndStatus(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	obs := &roomObserver{}
	eng := engine.New(pool, engine.WithRoomObserver(obs))
	ctx := testContext(t)
	id := newProduct(t, eng, 5)
	if st, err := eng.Status(ctx, id); err != nil || st.Room != (engine.RoomStatus{}) {
		t.Fatalf("status without a room = %+v, %v: want no room", st.Room, err)
	}
	if _, err := eng.SetRoom(ctx, id, engine.Room{Rate: 1000}); err != nil {
		t.Fatal(err)
	}
	tickets := map[string]string{}
	steps := []struct {
		name string
		do   func()
		// what the observer heard so far, and the room's status
		joins, polls, cached, admitted int
		room                           engine.RoomStatus
	}{
		{"u1 joins", func() { tickets["u1"] = join(t, eng, id, "u1").Ticket }, 1, 0, 0, 0,
			engine.RoomStatus{Rate: 1000, Joined: 1}},
		{"u1 joins again", func() { join(t, eng, id, "u1") }, 2, 0, 0, 0,
			engine.RoomStatus{Rate: 1000, Joined: 1}},
		{"u2 joins", func() { tickets["u2"] = join(t, eng, id, "u2").Ticket }, 3, 0, 0, 0,
			engine.RoomStatus{Rate: 1000, Joined: 2}},
		{"u1 is admitted", func() {
			// A place comes up every ms: u1's has by now.
			time.Sleep(20 * time.Millisecond)
			if a := eng.Poll(ctx, id, tickets["u1"]); a.Status != wire.StatusAdmitted {
				t.Fatalf("poll of u1 = %+v, want ADMITTED", a)
			}
		}, 3, 1, 0, 1,
			engine.RoomStatus{Rate: 1000, Joined: 2, Admitted: 1}},
		{"u1 polls again", func() { eng.Poll(ctx, id, tickets["u1"]) }, 3, 2, 0, 1,
			engine.RoomStatus{Rate: 1000, Joined: 2, Admitted: 1}},
		{"a cached poll", eng.CachedPoll, 3, 2, 1, 1, engine.RoomStatus{Rate: 1000, Joined: 2, Admitted: 1}},
	}
	for _, s := range steps {
		s.do()
		obs.mu.Lock()
		heard := [4]int{obs.joins, obs.polls, obs.cached, len(obs.waits)}
		obs.mu.Unlock()
		if want := [4]int{s.joins, s.polls, s.cached, s.admitted}; heard != want {
			t.Errorf("%s: heard joins, polls, cached polls, admissions %v, want %v", s.name, heard, want)
		}
		st, err := eng.Status(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if st.Room != s.room {
			t.Errorf("%s: status room %+v, want %+v", s.name, st.Room, s.room)
		}
		if w := s.room.Joined - s.room.Admitted; st.Room.Waiting() != w {
			t.Errorf("%s: waiting %d, want %d", s.name, st.Room.Waiting(), w)
		}
	}
	if len(obs.waits) == 1 && (obs.waits[0] < 0 || obs.waits[0] > 5*time.Second) {
		t.Errorf("u1 waited %s, want between 0 and 5s", obs.waits[0])
	}
}
