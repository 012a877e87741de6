package engine

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/flashsale/flashsale/wire"
)

// The waiting room. A product given a room (SetRoom) sells only to
// customers it admitted: each joins (Join: a ticket, and a place in the
// product's one line in Redis), polls (Poll) until their turn, and then
// gets an admission to buy with (Request.Admission) for AdmissionTTL, as
// many units as the per-customer limit allows. Those who join before the
// opening get their places at the opening in a uniformly random order;
// those after, in the order they arrive. The room admits places at its
// rate, the same for every server (Redis's clock); it tells everyone
// SOLD_OUT while the product has no unit left, and resumes when units come
// back. See lua/room.lua.
//
// Tickets and admissions are unforgeable: each is signed with the sale's
// room key (checked here, before Redis is asked: see room_token.go), and
// carries a 128-bit random nonce the room keeps in Redis for that customer
// of that product, honoured only when the nonce matches (the purchase
// script checks an admission's, in the same call that sells).

// AdmissionTTL is how long an admission lets its customer buy.
const AdmissionTTL = 2 * time.Minute

// MaxRoomRate caps a room's admissions per second.
const MaxRoomRate = 1_000_000

// Errors of the waiting room.
var (
	// ErrNotAdmitted: a purchase of a product with a room, without a valid
	// admission; the wrapping error says why.
	ErrNotAdmitted = errors.New("not admitted")
	// ErrNoRoom: the product has no waiting room.
	ErrNoRoom = errors.New("the product has no waiting room")
	// ErrUnknownTicket: a ticket this room did not issue.
	ErrUnknownTicket = errors.New("unknown ticket")
	// ErrRoomSharded: rooms are for products of one key set.
	ErrRoomSharded = errors.New("a waiting room needs a product that is not spread over shards")
)

// notAdmitted is the error of a refused admission, the purchase script's
// why (1 none, 2 not the one issued, 3 expired).
func notAdmitted(why int64) error {
	switch why {
	case 1:
		return fmt.Errorf("%w: the product has a waiting room: join it and buy with the admission it gives", ErrNotAdmitted)
	case 3:
		return fmt.Errorf("%w: the admission expired", ErrNotAdmitted)
	}
	return fmt.Errorf("%w: the admission is not the one the room issued this customer", ErrNotAdmitted)
}

// Room is a product's waiting room, as SetRoom makes it.
type Room struct {
	OpensAt time.Time // zero: now (SetRoom), or unchanged for a live room
	Rate    int64     // places admitted a second
}

// RoomState is what SetRoom answers.
type RoomState struct {
	Created bool // a new room (else a live one changed)
	OpensAt time.Time
	Rate    int64
	Joined  int64 // customers in the room
}

// SetRoom gives product id a waiting room, or changes the opening (until
// it has passed) or the rate of its live one. From then on the product
// sells only to purchases with an admission.
func (e *Engine) SetRoom(ctx context.Context, id string, r Room) (RoomState, error) {
	if err := ValidateProductID(id); err != nil {
		return RoomState{}, err
	}
	if r.Rate < 1 || r.Rate > MaxRoomRate {
		return RoomState{}, invalidError(fmt.Sprintf("the rate must be between 1 and %d admissions a second", MaxRoomRate))
	}
	l, err := e.layoutOf(ctx, id, false)
	if err != nil {
		return RoomState{}, err
	}
	if _, ok := l.(plainProduct); !ok {
		return RoomState{}, fmt.Errorf("%s: %w", id, ErrRoomSharded)
	}
	opens := ""
	if !r.OpensAt.IsZero() {
		opens = strconv.FormatInt(r.OpensAt.UnixMilli(), 10)
	}
	n, err := e.evalInts(ctx, roomSetScript, KeysFor(id), opens, r.Rate, ControlChannel, id)
	switch {
	case err != nil:
		return RoomState{}, fmt.Errorf("room %s: %w", id, err)
	case len(n) == 1 && n[0] == replyUnknownProduct:
		return RoomState{}, fmt.Errorf("%s: %w", id, ErrUnknownProduct)
	case len(n) != 4:
		return RoomState{}, fmt.Errorf("room %s: unexpected reply %v", id, n)
	}
	return RoomState{Created: n[0] == 1, OpensAt: time.UnixMilli(n[1]).UTC(), Rate: n[2], Joined: n[3]}, nil
}

// RoomAnswer is what Join and Poll answer: WAITING (Ticket; Position and
// ETA once known), ADMITTED (Admission, until AdmissionExpires) or
// SOLD_OUT; or an ERROR, UNAUTHORIZED.
type RoomAnswer struct {
	Result
	Ticket string
	// Position is how many places are admitted before this customer's
	// turn comes (1: next), -1 while it is unknown (before the opening).
	Position         int64
	ETA              time.Duration // -1: unknown
	Admission        string
	AdmissionExpires time.Time
	// Waited is the time from the join to the admission, when this poll
	// admitted (else 0): for metrics.
	Waited time.Duration
}

// JoinRequest is a customer joining a product's room, with their proof as
// a purchase carries it.
type JoinRequest struct {
	ProductID, UserID string
	Token             string
	Expires           int64
	JWT               string
}

// Join puts the customer in product's waiting room: WAITING with their
// ticket. The same customer joining again gets the same ticket and place.
// Once the product has no unit left, SOLD_OUT, and no place is taken.
func (e *Engine) Join(ctx context.Context, req JoinRequest) RoomAnswer {
	p := Request{ProductID: req.ProductID, UserID: req.UserID, Token: req.Token, Expires: req.Expires, JWT: req.JWT}
	if a, ok := e.checkRoomRequest(&p); !ok {
		return a
	}
	key, err := e.roomKey(ctx)
	if err != nil {
		return RoomAnswer{Result: Fail(err)}
	}
	score, nonce := randomScore(), randomNonce()
	n, err := e.roomEval(ctx, roomJoinScript, p.ProductID, p.UserID, score, nonce)
	if err != nil {
		return RoomAnswer{Result: Fail(err)}
	}
	if n.kind == 0 {
		return RoomAnswer{Result: Result{Status: wire.StatusSoldOut}}
	}
	var pos, eta int64
	var ticketNonce string
	if err := scanReply(n.v, new(int64), &pos, &eta, &ticketNonce); err != nil {
		return RoomAnswer{Result: Fail(fmt.Errorf("join %s: unexpected reply %v: %w", p.ProductID, n.v, err))}
	}
	e.observeJoin()
	return RoomAnswer{Result: Result{Status: wire.StatusWaiting}, Ticket: ticketOf(key, p.ProductID, p.UserID, ticketNonce),
		Position: pos, ETA: msDuration(eta)}
}

// Poll tells the holder of ticket where they stand in product's room:
// WAITING with their position and an estimate of the wait, ADMITTED with
// the admission to buy with (the same one on every poll after), or
// SOLD_OUT while the product has no unit left.
func (e *Engine) Poll(ctx context.Context, product, ticket string) RoomAnswer {
	if err := ValidateProductID(product); err != nil {
		return RoomAnswer{Result: Fail(err)}
	}
	t, key, err := e.signedTicket(ctx, ticket)
	if err != nil {
		return RoomAnswer{Result: Fail(err)}
	}
	// A ticket of another product goes to this product's script too, which
	// has no such ticket (or no room): the answer a ticket of a product
	// gets does not depend on which product it came from.
	n, err := e.roomEval(ctx, roomPollScript, product, t.user, t.nonce, randomNonce(), AdmissionTTL.Milliseconds())
	if err != nil {
		return RoomAnswer{Result: Fail(err)}
	}
	a, admitted := RoomAnswer{Ticket: ticket}, false
	switch n.kind {
	case 0:
		a.Status = wire.StatusSoldOut
	case 1:
		var pos, eta int64
		if err := scanReply(n.v, new(int64), &pos, &eta); err != nil {
			return RoomAnswer{Result: Fail(fmt.Errorf("poll %s: unexpected reply %v: %w", product, n.v, err))}
		}
		a.Status, a.Position, a.ETA = wire.StatusWaiting, pos, msDuration(eta)
	case 2:
		var exp, waited int64
		var anonce string
		if err := scanReply(n.v, new(int64), &exp, &anonce, &waited); err != nil {
			return RoomAnswer{Result: Fail(fmt.Errorf("poll %s: unexpected reply %v: %w", product, n.v, err))}
		}
		a.Status, a.AdmissionExpires = wire.StatusAdmitted, time.UnixMilli(exp).UTC()
		a.Admission = admissionOf(key, product, t.user, exp, anonce)
		a.Waited, admitted = max(msDuration(waited), 0), waited >= 0
	}
	e.observePoll(admitted, a.Waited)
	return a
}

// checkRoomRequest validates a join and checks its customer's proof; on
// failure it returns the answer.
func (e *Engine) checkRoomRequest(p *Request) (RoomAnswer, bool) {
	if err := ValidateProductID(p.ProductID); err != nil {
		return RoomAnswer{Result: Fail(err)}, false
	}
	subOnly := p.UserID == "" && p.JWT != ""
	if !subOnly {
		if err := ValidateUserID(p.UserID); err != nil {
			return RoomAnswer{Result: Fail(err)}, false
		}
	}
	if err := e.authenticate(p); err != nil {
		return RoomAnswer{Result: Result{Status: wire.StatusUnauthorized, Message: err.Error()}}, false
	}
	if err := ValidateUserID(p.UserID); err != nil {
		return RoomAnswer{Result: Fail(err)}, false
	}
	return RoomAnswer{}, true
}

// roomReply is a room script's reply: its kind, and all of it.
type roomReply struct {
	kind int64
	v    any
}

// roomEval runs a room script on product for user.
func (e *Engine) roomEval(ctx context.Context, s *spec, product string, args ...any) (roomReply, error) {
	v, err := e.eval(ctx, s, KeysFor(product), args...)
	if err != nil {
		return roomReply{}, fmt.Errorf("%s %s: %w", s.name, product, err)
	}
	switch k := replyKind(v); k {
	case replyUnknownProduct:
		return roomReply{}, fmt.Errorf("%s: %w", product, ErrUnknownProduct)
	case replyNoRoom:
		return roomReply{}, fmt.Errorf("%s: %w: create it with 'flashsale admin room %s --admit N'", product, ErrNoRoom, product)
	case replyUnknownTicket:
		return roomReply{}, fmt.Errorf("%w: join the room of %s for one", ErrUnknownTicket, product)
	default:
		return roomReply{kind: k, v: v}, nil
	}
}

// The room scripts' failures.
const (
	replyNoRoom        = -6
	replyUnknownTicket = -7
)

// signedTicket reads ticket and checks its signature, before any Redis
// call but the first read of the room key; it returns the key too.
func (e *Engine) signedTicket(ctx context.Context, text string) (ticket, []byte, error) {
	t, err := parseTicket(text)
	if err != nil {
		return ticket{}, nil, err
	}
	key, err := e.roomKey(ctx)
	if err != nil {
		return ticket{}, nil, err
	}
	if !t.signed(key) {
		return ticket{}, nil, fmt.Errorf("%w: %w: join the room for one", ErrUnknownTicket, errNotSigned)
	}
	return t, key, nil
}

// checkAdmission reads req's Admission: it must be signed with the room
// key, for req's product and customer, and not expired; its nonce goes to
// the purchase script, which checks it is the one the room issued. No
// admission passes here (the script refuses it if the product has a
// room). The room key must be cached (see needsRoomKey).
func (e *Engine) checkAdmission(req *Request) error {
	if req.Admission == "" {
		req.admission = ""
		return nil
	}
	a, err := parseAdmission(req.Admission)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotAdmitted, err)
	}
	key, ok := e.cachedRoomKey()
	switch {
	case !ok:
		return fmt.Errorf("room secret: %w: not read yet", ErrUnavailable)
	case !a.signed(key):
		return fmt.Errorf("%w: the admission is not the one the room issued this customer: %w", ErrNotAdmitted, errNotSigned)
	case a.product != req.ProductID:
		return fmt.Errorf("%w: the admission is for another product", ErrNotAdmitted)
	case a.user != req.UserID:
		return fmt.Errorf("%w: the admission is another customer's", ErrNotAdmitted)
	case !e.now().Before(time.UnixMilli(a.exp)):
		return fmt.Errorf("%w: the admission expired", ErrNotAdmitted)
	}
	req.admission = a.nonce
	return nil
}

// needsRoomKey reports whether req carries an admission the engine cannot
// check until it has read the room key from Redis.
func (e *Engine) needsRoomKey(req *Request) bool {
	if req.Admission == "" {
		return false
	}
	_, ok := e.cachedRoomKey()
	return !ok
}

// randomScore is uniform in [0, 2^52): exact as a Redis sorted-set score.
func randomScore() int64 {
	var b [8]byte
	rand.Read(b[:])
	return int64(binary.BigEndian.Uint64(b[:]) >> 12)
}

// msDuration is ms milliseconds, -1 for -1 (unknown).
func msDuration(ms int64) time.Duration {
	if ms < 0 {
		return -1
	}
	return time.Duration(ms) * time.Millisecond
}
