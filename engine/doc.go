// Package engine owns what a purchase means: request validation, which
// purchases must prove their user id and what a refusal answers (package
// auth checks the proofs), the Redis key layout, the Lua scripts' calling
// conventions, the sold-out cache, the admin operations and the audit.
//
// Every key of a product lives under its {ID} hash tag (see KeysFor), and
// every script touches one product only, so the layout is ready for Redis
// Cluster. Redis itself is reached through the small Redis interface (and
// AsyncRedis, for callers that must not park a goroutine per request); the
// transport package implements both. engine never opens a socket: the
// listeners live in package server, the connections to Redis in package
// transport.
//
// A hot product may be spread over K shards, each a product-like key set
// under its own {ID#j} tag (shards.go): customers have a home shard that
// holds their limit and retry records, and units move between shards by
// idempotent two-step transfers. A Script may declare a merge form
// (Script.Merge): the transport then sends the purchases of one product (or
// shard) that wait together as one script call, and each still gets the
// answer it would get alone.
//
// One purchase: a listener decodes a request → Engine.PurchaseAsync
// validates it, answers from the sold-out cache when it can, else hands the
// purchase script to the transport → the reply is decoded into a Result →
// the listener writes the answer.
package engine
