package engine

import "time"

// RoomObserver hears what happens in waiting rooms, for metrics. Its
// methods must not block.
type RoomObserver interface {
	// Joined is called for every join answered WAITING (a customer
	// joining again included: they keep their place).
	Joined()
	// Admitted is called when a poll admitted its customer, with the time
	// from their join to the admission (Redis's clock); once per ticket.
	Admitted(waited time.Duration)
	// Polled is called for every poll answered: fromCache when a server
	// answered it from its cache of recent answers (see CachedPoll), else
	// after the poll script ran.
	Polled(fromCache bool)
}

// WithRoomObserver sets the observer of waiting rooms.
func WithRoomObserver(o RoomObserver) Option { return func(e *Engine) { e.roomObserver = o } }

// CachedPoll tells the room observer of a poll a server answered from its
// cache, without calling Poll.
func (e *Engine) CachedPoll() {
	if e.roomObserver != nil {
		e.roomObserver.Polled(true)
	}
}

// observeJoin tells the room observer of a join answered WAITING.
func (e *Engine) observeJoin() {
	if e.roomObserver != nil {
		e.roomObserver.Joined()
	}
}

// observePoll tells the room observer of a poll the script answered, and
// of the admission it made, if any (admitted).
func (e *Engine) observePoll(admitted bool, waited time.Duration) {
	if e.roomObserver == nil {
		return
	}
	e.roomObserver.Polled(false)
	if admitted {
		e.roomObserver.Admitted(waited)
	}
}
