// Package engine owns what a sale means: sale semantics over a small Redis
// interface of its own. It validates requests, decides which purchases must
// prove their user id and what a refusal answers (package auth checks the
// proofs, through the TokenVerifier and JWTVerifier interfaces engine
// defines), lays out a product's keys (KeysFor), declares the Lua scripts'
// contract (contract.go: each script's keys and arguments by name, the
// purchase outcomes shared with the reply decoder), and runs purchases, the
// sold-out cache, the admin operations and the audit on it.
//
// Redis is reached only through the Redis interface (redis.go): run one
// of the engine's Scripts, scan, subscribe, ping, and say which slot and
// master a key lives on; an AsyncRedis also runs a script without a
// waiting goroutine. Replies are read by the engine's own helpers
// (reply.go); no driver type appears in its API. The transport package
// implements both interfaces; engine never opens a socket (the listeners
// live in package server, the connections in package transport), and
// callers reach Redis through the engine (Ping, Subscribe).
//
// Every key of a product lives under its {ID} hash tag, and every script
// touches one product only (but room_secret.lua, on the sale's one other
// key, under a fixed tag: see room_token.go), so the layout is ready for
// Redis Cluster. A
// hot product may be spread over K shards, each a product-like key set
// under its own {ID#j} tag (shards.go): customers have a home shard that
// holds their limit and retry records, and units move between shards by
// idempotent two-step transfers. Each admin operation resolves a
// product's layout, plain or sharded, once (layout.go) and runs on it. A
// Script may declare a merge form (Script.Merge): the transport then sends
// the purchases of one product (or shard) that wait together as one script
// call, and each still gets the answer it would get alone.
//
// One purchase: a listener decodes a request → Engine.PurchaseAsync
// validates it, answers from the sold-out cache when it can, else hands the
// purchase script to the transport, on the product or its home shard → the
// reply is decoded into a Result (with a follow-up only when a shard needs
// units or the product's layout changed) → the listener writes the answer.
package engine
