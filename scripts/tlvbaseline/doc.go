// Command tlvbaseline is the TLV ceiling for scripts/perf.sh: a server that
// reads each frame with flashsale's own codec and answers SOLD_OUT to it,
// doing nothing else (no decoding, no Redis, no limits). What flashsale's
// sold-out path costs above it is flashsale's own.
//
//	go run ./scripts/tlvbaseline -listen 127.0.0.1:8098
package main
