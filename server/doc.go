// Package server is flashsale's listener: the accept loop, the limits that
// apply to every connection (max-conns, deadlines, in-flight caps, rate
// limits), the TLV connection with its read loop and on-demand writer, and
// the drain on shutdown.
//
// It turns requests into engine calls and engine results into answers; it
// never touches Redis or key names itself. It is a package of its own,
// beside engine, because sockets, deadlines and protocol framing are a
// different concern from sale semantics, and a newcomer should find each
// in one place.
package server
