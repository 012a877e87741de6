package engine

import (
	"context"
	"fmt"
	"time"
)

// RoomInfo is a product's waiting room as RoomInfo reads it.
type RoomInfo struct {
	OpensAt time.Time
	Rate    int64 // places admitted a second
	// Joined is how many customers hold a ticket; Admitted how many of
	// them a poll has admitted so far.
	Joined, Admitted int64
	// Cursor is how many places are admitted by now: the front of the
	// line (at most its length; 0 before the opening).
	Cursor int64
	// Paused: the product has no unit left, so admission waits for units
	// to come back (the room answers SOLD_OUT meanwhile).
	Paused bool
	// Now is Redis's clock at the read.
	Now time.Time
}

// Open is whether the room has opened by the read.
func (r RoomInfo) Open() bool { return !r.Now.Before(r.OpensAt) }

// RoomInfo reads product id's waiting room in O(1), writing nothing:
// ErrNoRoom when it has none.
func (e *Engine) RoomInfo(ctx context.Context, id string) (RoomInfo, error) {
	if err := ValidateProductID(id); err != nil {
		return RoomInfo{}, err
	}
	n, err := e.evalInts(ctx, roomInfoScript, KeysFor(id))
	switch {
	case err != nil:
		return RoomInfo{}, fmt.Errorf("room of %s: %w", id, err)
	case len(n) == 1 && n[0] == replyUnknownProduct:
		return RoomInfo{}, fmt.Errorf("%s: %w", id, ErrUnknownProduct)
	case len(n) == 1 && n[0] == replyNoRoom:
		return RoomInfo{}, fmt.Errorf("%s: %w", id, ErrNoRoom)
	case len(n) != 8:
		return RoomInfo{}, fmt.Errorf("room of %s: unexpected reply %v", id, n)
	}
	return RoomInfo{OpensAt: time.UnixMilli(n[1]).UTC(), Rate: n[2], Joined: n[3], Admitted: n[4],
		Cursor: n[5], Paused: n[6] == 1, Now: time.UnixMilli(n[7]).UTC()}, nil
}
