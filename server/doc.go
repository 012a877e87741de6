// Package server is flashsale's listener: the accept loop, the limits that
// apply to every connection (max-conns, deadlines, in-flight caps, rate
// limits), the protocol sniff, the TLV connection with its read loop and
// its writes (from where an answer completes, or by an on-demand writer),
// the HTTP API, and the drain on shutdown.
//
// One port serves both protocols. The accept loop counts every connection
// against MaxConns (a refusal past it is answered on the accept loop
// itself, with no goroutine, and logged at most once a second); each
// accepted connection gets one goroutine that waits for its first byte,
// after the TLS handshake if any, each under a deadline of its own. TLV
// request types are 0x01 to 0x03 and an HTTP request starts with an
// upper-case method letter, so that byte decides: TLV connections are
// served by conn.go, HTTP ones are handed to a standard
// net/http Server (http.go) through a channel listener. The sniff reads
// as much as one read gives and replays it, so it costs no system call;
// a TLV connection reads on through the same buffer.
//
// Both protocols turn requests into the same engine calls (PurchaseAsync
// for purchases, so batching, the sold-out cache, rate limits and
// durability apply alike) and engine results into answers through one
// mapping (resultResponse, stockResponse); HTTP adds its status code from
// one table (httpStatus). The package reaches Redis only through the
// engine (Engine.Ping for PING and /readyz, the purchases and queries) and
// never names a key. It is a package of its own, beside engine, because sockets,
// deadlines and protocol framing are a different concern from sale
// semantics, and a newcomer should find each in one place.
package server
