// Package loadgen generates purchase load against flashsale servers and
// counts what comes back: closed loop (each connection keeps Pipeline
// requests in flight) or open loop (requests due at a fixed rate, latency
// counted from when each was due, so a stalled server shows in the latency
// instead of slowing the load), over one or several servers, with
// latency histograms, the order ids of every SUCCESS, and an optional
// timeline of answers for a plot. Against a product with a hold, a
// Payer settles the reservations the load makes (Config.OnReserved): a
// share of the winners confirm after a delay, a share cancel, the rest
// abandon theirs. Against a product with a waiting room, RunRoom is a
// crowd of buyers who join, poll and buy once admitted (some aggressive:
// more connections, faster polls), with probes that buy without an
// admission.
//
// It speaks the protocol through package client's raw pieces (Stream,
// PurchaseEncoder, ScanAnswer): one writer and one reader per connection,
// no goroutine or allocation per request. It is a package of its own so
// that the bench and demo commands keep to flags and output; the verdict
// on the sale (the oversell check) is theirs, from Redis.
package loadgen
