// Package transport is the path from flashsale to Redis: connection pools,
// the batcher that pipelines the scripts of every client on a few
// dedicated connections, durability waits (WAIT, WAITAOF), script loading
// and the NOSCRIPT retry, and the classification of failures into
// engine.ErrUnavailable and engine.ErrOutcomeUnknown.
//
// It implements engine.Redis and engine.AsyncRedis and knows nothing of
// what a purchase means: it runs the scripts engine gives it. It is its
// own package so that engine stays about sale semantics and a new way to
// reach Redis (a cluster router, one batcher per node) replaces this one
// without touching them. A Batcher serves one Redis node and holds
// everything per node: its lanes (connections), their health, their
// deadlines; a router over several needs nothing more from it. Cluster is
// that router: a Redis Cluster as one engine.AsyncRedis, a Batcher per
// master, each script routed by its product's slot, redirects followed.
package transport
