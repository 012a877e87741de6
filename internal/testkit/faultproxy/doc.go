// Package faultproxy puts a network fault proxy between a test's server and
// its Redis: Shopify's toxiproxy, run in the test's own process (no daemon,
// no HTTP API), listening on a loopback port and forwarding to the Redis.
// A test points the server at Proxy.Addr and keeps talking to Redis
// directly for its own checks; toxics added to the proxy degrade the
// traffic between the two (latency with jitter, a bandwidth cap, a
// connection reset, a blackhole) until they are removed.
package faultproxy
