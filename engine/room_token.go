package engine

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Tickets and admissions. Each is signed: an HMAC-SHA256, truncated to
// 128 bits, over its version, product, customer, (for an admission) its
// expiry and its nonce, keyed with the sale's room key. A token whose
// signature fails is refused here, before Redis is asked; one that passes
// is honoured only while its nonce is the one Redis keeps for that
// customer of that product (so a customer is admitted once, and a re-init
// revokes every token of the product).
//
// The room key is derived from the secret WithRoomSecret gives (serve's
// customer-token secret); without one it is derived from a random 256-bit
// secret kept in Redis (roomSecretKey), which the first server to need it
// creates and every other reads, and which each server reads again every
// roomKeyRefresh (so that servers agree again soon if the key was lost).

// The forms of tickets and admissions: a version, then base64url fields
// separated by dots, the signature last.
//
//	ticket    t2.<product>.<customer>.<nonce>.<signature>
//	admission a2.<product>.<customer>.<expiry ms, decimal>.<nonce>.<signature>
const (
	ticketVersion    = "t2"
	admissionVersion = "a2"
	// oldTicketVersion is the former, unsigned form t1.<customer>.<nonce>:
	// such a ticket is refused as not signed (joining again gives the
	// same place, with a signed ticket).
	oldTicketVersion = "t1"
)

// roomKeyInfo is what a room key is derived from its secret with: the
// customer-token secret signs room tokens under a key of their own.
const roomKeyInfo = "flashsale-room-v1"

// roomKeyRefresh is how long a server trusts the room key it read from
// Redis before reading it again (in the background; the old one serves
// meanwhile).
const roomKeyRefresh = time.Minute

// roomKeyTimeout bounds a background read of the room key.
const roomKeyTimeout = 5 * time.Second

var b64 = base64.RawURLEncoding

// errNotSigned is the reason a token whose signature fails is refused.
var errNotSigned = errors.New("not signed by this sale's servers")

// WithRoomSecret signs waiting-room tickets and admissions with a key
// derived from secret, which every server of the sale must be given. An
// empty secret (the default) uses one kept in Redis instead.
func WithRoomSecret(secret []byte) Option {
	return func(e *Engine) {
		if len(secret) > 0 {
			e.roomSecret.fixed = deriveRoomKey(secret)
		}
	}
}

// deriveRoomKey is the room key of secret.
func deriveRoomKey(secret []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(roomKeyInfo))
	return h.Sum(nil)
}

// roomKeySource is where an engine's room key comes from.
type roomKeySource struct {
	fixed    []byte // from WithRoomSecret; nil: kept in Redis
	kept     atomic.Pointer[keptRoomKey]
	fetching chan struct{} // holds a token while a read of the kept key runs
}

// keptRoomKey is the room key read from Redis, and when.
type keptRoomKey struct {
	key []byte
	at  time.Time
}

// roomKey is the key tokens are signed with. Only the first call of an
// engine without WithRoomSecret asks Redis (and calls while it runs wait
// for it, until ctx ends).
func (e *Engine) roomKey(ctx context.Context) ([]byte, error) {
	if k, ok := e.cachedRoomKey(); ok {
		return k, nil
	}
	select {
	case e.roomSecret.fetching <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("room secret: %w: %w", ErrUnavailable, ctx.Err())
	}
	defer func() { <-e.roomSecret.fetching }()
	if k, ok := e.cachedRoomKey(); ok { // read while this call waited
		return k, nil
	}
	return e.readRoomKey(ctx)
}

// cachedRoomKey is the room key if the engine has it, without asking
// Redis; a kept one older than roomKeyRefresh is read again in the
// background.
func (e *Engine) cachedRoomKey() ([]byte, bool) {
	if e.roomSecret.fixed != nil {
		return e.roomSecret.fixed, true
	}
	k := e.roomSecret.kept.Load()
	if k == nil {
		return nil, false
	}
	if time.Since(k.at) > roomKeyRefresh {
		select {
		case e.roomSecret.fetching <- struct{}{}:
			go e.refreshRoomKey()
		default: // a read runs
		}
	}
	return k.key, true
}

// refreshRoomKey reads the kept room key again, holding the fetching
// token its caller took; on failure the old key stays, and the next use
// tries again.
func (e *Engine) refreshRoomKey() {
	defer func() { <-e.roomSecret.fetching }()
	ctx, cancel := context.WithTimeout(context.Background(), roomKeyTimeout)
	defer cancel()
	_, _ = e.readRoomKey(ctx)
}

// readRoomKey reads the room secret from Redis (creating it, if no server
// has yet) and keeps its key.
func (e *Engine) readRoomKey(ctx context.Context) ([]byte, error) {
	var fresh [32]byte
	rand.Read(fresh[:])
	v, err := e.eval(ctx, roomSecretScript, Keys{}, hex.EncodeToString(fresh[:]))
	if err != nil {
		return nil, fmt.Errorf("room secret: %w", err)
	}
	s, err := replyString(v)
	if err != nil {
		return nil, fmt.Errorf("room secret: %w", err)
	}
	secret, err := hex.DecodeString(s)
	if err != nil || len(secret) < len(fresh) {
		return nil, fmt.Errorf("room secret: %s holds no 256-bit hex secret", roomSecretKey)
	}
	k := &keptRoomKey{key: deriveRoomKey(secret), at: time.Now()}
	e.roomSecret.kept.Store(k)
	return k.key, nil
}

// tokenMAC is the signature of a token's fields under key: HMAC-SHA256
// over each field, length first, truncated to 128 bits, base64url.
func tokenMAC(key []byte, fields ...string) string {
	h := hmac.New(sha256.New, key)
	var n [binary.MaxVarintLen64]byte
	for _, f := range fields {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(f)))])
		h.Write([]byte(f))
	}
	return b64.EncodeToString(h.Sum(nil)[:16])
}

// validMAC reports whether sig is the signature of fields under key.
func validMAC(key []byte, sig string, fields ...string) bool {
	return hmac.Equal([]byte(sig), []byte(tokenMAC(key, fields...)))
}

// ticket is a parsed ticket.
type ticket struct{ product, user, nonce, sig string }

// ticketOf is the ticket text of user in product's room, signed with key.
func ticketOf(key []byte, product, user, nonce string) string {
	return strings.Join([]string{ticketVersion, b64.EncodeToString([]byte(product)), b64.EncodeToString([]byte(user)),
		nonce, tokenMAC(key, ticketVersion, product, user, nonce)}, ".")
}

// parseTicket reads a ticket; a ticket of the former, unsigned form is
// not signed.
func parseTicket(t string) (ticket, error) {
	parts := strings.Split(t, ".")
	if len(parts) == 3 && parts[0] == oldTicketVersion {
		return ticket{}, fmt.Errorf("%w: %w (a ticket of the former form: join again for the same place)", ErrUnknownTicket, errNotSigned)
	}
	bad := invalidError("malformed ticket: use the one join answered")
	if len(parts) != 5 || parts[0] != ticketVersion || parts[3] == "" {
		return ticket{}, bad
	}
	p, err1 := b64.DecodeString(parts[1])
	u, err2 := b64.DecodeString(parts[2])
	if err1 != nil || err2 != nil || ValidateUserID(string(u)) != nil {
		return ticket{}, bad
	}
	return ticket{product: string(p), user: string(u), nonce: parts[3], sig: parts[4]}, nil
}

// signed reports whether t was signed with key.
func (t ticket) signed(key []byte) bool {
	return validMAC(key, t.sig, ticketVersion, t.product, t.user, t.nonce)
}

// admission is a parsed admission.
type admission struct {
	product, user string
	exp           int64 // Unix ms
	nonce, sig    string
}

// admissionOf is the text of an admission of user to product until exp
// (Unix ms), signed with key.
func admissionOf(key []byte, product, user string, exp int64, nonce string) string {
	e := strconv.FormatInt(exp, 10)
	return strings.Join([]string{admissionVersion, b64.EncodeToString([]byte(product)), b64.EncodeToString([]byte(user)),
		e, nonce, tokenMAC(key, admissionVersion, product, user, e, nonce)}, ".")
}

// parseAdmission reads an admission.
func parseAdmission(a string) (admission, error) {
	parts := strings.Split(a, ".")
	bad := errors.New("malformed admission: use the one the room's poll answered")
	if len(parts) != 6 || parts[0] != admissionVersion || parts[4] == "" {
		return admission{}, bad
	}
	p, err1 := b64.DecodeString(parts[1])
	u, err2 := b64.DecodeString(parts[2])
	exp, err3 := strconv.ParseInt(parts[3], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || strconv.FormatInt(exp, 10) != parts[3] {
		return admission{}, bad
	}
	return admission{product: string(p), user: string(u), exp: exp, nonce: parts[4], sig: parts[5]}, nil
}

// signed reports whether a was signed with key.
func (a admission) signed(key []byte) bool {
	return validMAC(key, a.sig, admissionVersion, a.product, a.user, strconv.FormatInt(a.exp, 10), a.nonce)
}

// randomNonce is 128 random bits, base64url.
func randomNonce() string {
	var b [16]byte
	rand.Read(b[:])
	return b64.EncodeToString(b[:])
}
