// Package wire is the flashsale TCP protocol: frames and their payloads.
//
// A frame is a 1-byte message type, a 4-byte big-endian payload length and
// that many bytes of payload:
//
//	+------+----------------+------------------+
//	| TYPE | LENGTH (BE u32) | PAYLOAD (LENGTH) |
//	+------+----------------+------------------+
//
// Requests use types below 0x80. Every request frame is answered by exactly
// one response frame, in order, on the same connection; the response type is
// the request type with the high bit set (ATTEMPT_PURCHASE 0x01 is answered
// by 0x81). A request of an unknown type is answered by an ERROR payload in a
// frame of its type with the high bit set.
//
// The package owns the byte layout, the size limits, the payload
// encodings and the statuses an answer can carry (Status: one table of
// their wire names, which the engine, the client and the load generator
// share). It knows nothing about Redis or about what a purchase means.
// A Reader reuses its buffers and the Append functions write into the
// caller's, so the steady state allocates nothing per frame; the payload
// returned by Reader.Next is valid only until the next call.
package wire
