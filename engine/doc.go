// Package engine owns what a purchase means: request validation and
// customer tokens, the Redis key layout, the Lua scripts' calling
// conventions (SCRIPT LOAD once, EVALSHA, reload on NOSCRIPT), the admin
// operations and audit, and the TCP server that puts them behind the wire
// protocol.
//
// Every key of a product lives under its {ID} hash tag (see KeysFor), and
// every script touches one product only, so the layout is ready for Redis
// Cluster. Redis itself is reached through the small Redis interface: Pool
// runs each script on a pooled redigo connection; Batcher pipelines the
// scripts of every client connection in batches on a few dedicated ones
// and completes them without a waiting goroutine (AsyncRedis). A
// cluster-routing implementation can replace either without touching
// purchase semantics.
//
// One purchase: conn.read decodes a frame → Engine.PurchaseAsync validates
// it, answers from the sold-out cache when it can, else queues the purchase
// script → the Batcher sends it with its batch → the batch reader decodes
// the reply into a Result → the connection's writer sends the answer, in
// arrival order.
package engine
