// Package metrics is flashsale's Prometheus instrumentation: the
// collectors, the /metrics handler, and the small nil-safe methods the
// listeners call on every request and connection.
//
// It is a package of its own so that the listeners (TLV and HTTP) and the
// batcher report through one set of collectors, on one registry of its
// own (not the process-global one, so tests and several servers in one
// process do not collide), and so that none of them imports client_golang.
// The methods on the request path index series resolved once in New: no
// label lookup and no allocation per request.
package metrics
