package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Type is a frame's message type.
type Type byte

// Message types. Responses are the request type with ResponseBit set.
const (
	TypePurchase Type = 0x01 // ATTEMPT_PURCHASE: PurchaseRequest → Response
	TypeQuery    Type = 0x02 // QUERY_STOCK: QueryRequest → Response
	TypePing     Type = 0x03 // PING: any payload → Response {"status":"PONG"}
	TypeConfirm  Type = 0x10 // CONFIRM_ORDER: OrderRequest → Response (PAID, EXPIRED, RELEASED, ERROR)
	TypeCancel   Type = 0x11 // CANCEL_ORDER: OrderRequest → Response (RELEASED, ALREADY_PAID, ERROR)
	TypeJoin     Type = 0x20 // JOIN_QUEUE: JoinRequest → Response (WAITING with a ticket, SOLD_OUT, ERROR)
	TypeStatus   Type = 0x21 // QUEUE_STATUS: StatusRequest → Response (WAITING, ADMITTED, SOLD_OUT, ERROR)

	// ResponseBit marks a frame as a response.
	ResponseBit Type = 0x80
	// TypePurchaseResponse answers TypePurchase.
	TypePurchaseResponse = TypePurchase | ResponseBit
)

// Response returns the type of the frame that answers t.
func (t Type) Response() Type { return t | ResponseBit }

// IsResponse reports whether t is a response type.
func (t Type) IsResponse() bool { return t&ResponseBit != 0 }

// String names the type for logs.
func (t Type) String() string {
	name, ok := typeNames[t&^ResponseBit]
	switch {
	case !ok:
		return fmt.Sprintf("0x%02x", byte(t))
	case t.IsResponse():
		return name + "_RESPONSE"
	}
	return name
}

var typeNames = map[Type]string{
	TypePurchase: "ATTEMPT_PURCHASE",
	TypeQuery:    "QUERY_STOCK",
	TypePing:     "PING",
	TypeConfirm:  "CONFIRM_ORDER",
	TypeCancel:   "CANCEL_ORDER",
	TypeJoin:     "JOIN_QUEUE",
	TypeStatus:   "QUEUE_STATUS",
}

const (
	// HeaderSize is the size of a frame header: type and length.
	HeaderSize = 5
	// DefaultMaxPayload is the default limit on a payload's length.
	DefaultMaxPayload = 64 << 10
)

// ErrFrameTooLarge is returned by Reader.Next when a header announces a
// payload above the reader's limit. Nothing was allocated for it; the stream
// cannot be resynchronised, so the connection should be closed.
var ErrFrameTooLarge = errors.New("frame too large")

// FrameTooLargeError carries the header that broke the limit.
type FrameTooLargeError struct {
	Type   Type
	Length uint32
	Max    int
}

func (e *FrameTooLargeError) Error() string {
	return fmt.Sprintf("frame too large: %d bytes, limit %d", e.Length, e.Max)
}

// Unwrap makes errors.Is(err, ErrFrameTooLarge) hold.
func (e *FrameTooLargeError) Unwrap() error { return ErrFrameTooLarge }

// Frame is one decoded frame. Payload aliases the reader's buffer.
type Frame struct {
	Type    Type
	Payload []byte
}

// Reader decodes frames from a stream.
type Reader struct {
	br  *bufio.Reader
	max int
	buf []byte
}

// NewReader returns a Reader that refuses payloads longer than maxPayload
// (DefaultMaxPayload when maxPayload <= 0).
func NewReader(r io.Reader, maxPayload int) *Reader {
	return NewReaderSize(r, 16<<10, maxPayload)
}

// NewReaderSize is NewReader with a read buffer of size bytes: a server with
// many connections keeps it small. Payloads larger than the buffer are
// still read whole.
func NewReaderSize(r io.Reader, size, maxPayload int) *Reader {
	if maxPayload <= 0 {
		maxPayload = DefaultMaxPayload
	}
	return &Reader{br: bufio.NewReaderSize(r, max(size, HeaderSize)), max: maxPayload}
}

// Next reads one frame. The payload is valid until the next call. At a clean
// end of stream it returns io.EOF; a stream cut inside a frame gives
// io.ErrUnexpectedEOF; an oversized length gives a *FrameTooLargeError before
// anything is allocated or read past the header.
func (r *Reader) Next() (Frame, error) {
	hdr, err := r.br.Peek(HeaderSize)
	if err != nil {
		if err == io.EOF && len(hdr) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	t := Type(hdr[0])
	n := binary.BigEndian.Uint32(hdr[1:])
	if uint64(n) > uint64(r.max) {
		return Frame{Type: t}, &FrameTooLargeError{Type: t, Length: n, Max: r.max}
	}
	if _, err := r.br.Discard(HeaderSize); err != nil {
		return Frame{}, err
	}
	if cap(r.buf) < int(n) {
		r.buf = make([]byte, n, max(int(n), 512))
	}
	p := r.buf[:n]
	if _, err := io.ReadFull(r.br, p); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	return Frame{Type: t, Payload: p}, nil
}

// Shrink drops the payload buffer if it grew past n bytes (for a frame
// larger than most), so that a connection that once carried a large frame
// does not keep its size for ever. The last payload returned by Next is
// invalid after it.
func (r *Reader) Shrink(n int) {
	if cap(r.buf) > n {
		r.buf = nil
	}
}

// Buffered reports how many bytes can be read without touching the
// underlying stream. A server uses it to decide when to flush its answers.
func (r *Reader) Buffered() int { return r.br.Buffered() }

// Complete reports whether a whole frame is buffered, so that Next will
// not touch the underlying stream.
func (r *Reader) Complete() bool {
	n := r.br.Buffered()
	if n < HeaderSize {
		return false
	}
	hdr, _ := r.br.Peek(HeaderSize)
	return uint64(binary.BigEndian.Uint32(hdr[1:])) <= uint64(n-HeaderSize)
}

// Wait blocks until the next frame has started to arrive (at least one byte
// is buffered), so a server can apply an idle timeout to the wait and a
// shorter deadline to the frame itself. A clean end of stream gives io.EOF.
func (r *Reader) Wait() error {
	_, err := r.br.Peek(1)
	return err
}

// AppendHeader appends a frame header for a payload of length n.
func AppendHeader(dst []byte, t Type, n int) []byte {
	return binary.BigEndian.AppendUint32(append(dst, byte(t)), uint32(n))
}

// AppendFrame appends a whole frame.
func AppendFrame(dst []byte, t Type, payload []byte) []byte {
	return append(AppendHeader(dst, t, len(payload)), payload...)
}
