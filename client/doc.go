// Package client is a Go client of the flashsale TLV protocol: it dials a
// server (TCP or TLS), sends purchases, stock queries and pings, and reads
// the answers. The requests and every answer they can get are described in
// docs/protocol.md; this is how to use them from Go.
//
// # Dial
//
// Dial connects to a flashsale serve at host:port. Zero Options dial plain
// TCP with the defaults: DefaultTimeout (5 s) per call and a PING after
// about half of DefaultKeepAlive (30 s) of silence. A failed dial is a
// *DialError: nothing was sent.
//
//	conn, err := client.Dial(ctx, "127.0.0.1:8080", client.Options{})
//	if err != nil {
//		return err // *client.DialError: nothing was sent
//	}
//	defer conn.Close()
//
// # Buy
//
// Purchase sends one ATTEMPT_PURCHASE. Request and Response are the
// protocol's payloads. An answer the server gave, ERROR included, is a
// Response with a nil error: SOLD_OUT, ALREADY_PURCHASED, NOT_STARTED and
// the rest are answers, to be read from Response.Status (and, for an
// ERROR, Response.Code and Response.Error). Only a missing answer is an
// error.
//
//	r, err := conn.Purchase(ctx, client.Request{ProductID: "iphone15", UserID: "user_123", RequestID: "c0ffee-1"})
//	switch {
//	case err != nil:
//		// no answer: the outcome is unknown; retry with the same RequestID
//	case r.Status == "SUCCESS":
//		fmt.Println("order", r.OrderID, "remaining", r.RemainingStock)
//	default:
//		fmt.Println("not sold:", r.Status, r.Code, r.Error) // SOLD_OUT, ALREADY_PURCHASED, ERROR …
//	}
//
// # Retry with a request id
//
// A purchase whose answer never came (a timeout, a dead connection, or an
// ERROR UNAVAILABLE saying the outcome is unknown) may or may not have
// sold. Give every purchase a RequestID and retry with the same one, on
// this connection or another, to any server of the sale: the server
// answers with the original answer (the same OrderID) and never takes
// stock twice. The same RequestID with another UserID or Quantity is an
// ERROR REQUEST_ID_REUSED; after admin release of its order the retry is
// an ERROR ORDER_RELEASED. An ERROR UNAVAILABLE saying the request did
// not run, or an ERROR STORE_FULL (Redis is out of memory), sold nothing:
// retry it later.
//
// # TLS
//
// Options.TLS makes the connection TLS with that configuration; its
// ServerName defaults to the host of the address. Add a client certificate
// to it for a server with --tls-client-ca (mutual TLS). DialTimeout bounds
// the connect and the handshake.
//
// # Concurrency and pipelining
//
// A Conn is safe for concurrent use: goroutines share one connection,
// their requests are pipelined on it and each call gets its own answer
// (the server answers in order, so the client keeps a FIFO of waiters and
// that is all the matching needed). Every call has a deadline: its
// context's, or Options.Timeout. When the connection dies every waiting
// call fails at once, with ErrClosed wrapping the cause; Err says why.
// While idle it sends a PING every Options.KeepAlive / 2, so that a buyer
// who connects before the sale opens is not dropped by the server's
// --idle-timeout; keep KeepAlive below it.
//
// # Load generators
//
// Stream (a raw connection: write many frames, read the answers in
// order), PurchaseEncoder (purchase frames without an allocation) and
// ScanAnswer (the status, quantity and order id of an answer without an
// allocation) are the lower-level pieces Conn is built from, for load
// generators that keep thousands of requests in flight and cannot afford
// a goroutine handoff or an allocation per request: flashsale bench is
// built on them.
//
// The package is its own because a client needs the protocol (package
// wire) and nothing of the server: no engine, no Redis, no sockets of the
// listener.
package client
