// Package client is a Go client of the flashsale TLV protocol: it dials a
// server (TCP or TLS), sends purchases, stock queries and pings, and reads
// the answers.
//
// Conn is the client for applications: safe for concurrent use, it
// pipelines every caller's request on one connection and hands each answer
// to its caller in request order (the protocol answers in order, so a FIFO
// of waiters is all the matching needed). Every call has a deadline (the
// context's, or Options.Timeout); a connection that fails fails every
// waiting call at once; while idle it pings the server so that a buyer who
// connects before the sale opens is not dropped by the server's idle
// timeout.
//
// Stream, PurchaseEncoder and ScanAnswer are the lower-level pieces Conn is
// built from, for load generators that keep thousands of requests in flight
// and cannot afford a goroutine handoff or an allocation per request
// (flashsale bench uses them).
//
// The package is its own because a client needs the protocol (package wire)
// and nothing of the server: no engine, no Redis, no sockets of the
// listener.
package client
