// Package transport is flashsale's connections to Redis: a pool, a
// batcher that pipelines the scripts of every client on a few dedicated
// connections and merges a batch's purchases of one product into one
// script call, and a cluster router that runs each script on the master
// of its slot. It implements engine.Redis (Pool) and engine.AsyncRedis
// (Batcher, Cluster), and knows nothing of what a purchase means: it runs
// the scripts engine gives it, and says how each failed: ErrUnavailable
// (did not run), ErrRefused with it (an error reply that proves the script
// did not run: a *Refusal, by Cause), ErrOutcomeUnknown (sent, no reply),
// ErrNotDurable (ran, not yet durable).
//
// With PoolConfig.Sentinel a Pool finds its primary through Redis Sentinel
// and follows failovers; without, it dials PoolConfig.Addr.
//
// A Batcher serves one Redis node and holds everything per node: its
// lanes (connections), their health, their deadlines. A Cluster keeps a
// Pool, and for a server a Batcher, per master, and follows redirects.
// Failures that no caller hears of are logged to PoolConfig.Logger.
//
// The files:
//
//   - pool.go: Pool, one pooled connection per call; EVALSHA with the
//     NOSCRIPT retry, SCAN, SUBSCRIBE, SCRIPT LOAD; classify.
//   - batcher.go: the Batcher's API: its config, Eval and EvalAsync, a
//     call.
//   - group.go: a group of lanes sharing a queue, and whether Redis is
//     down for it (then queued calls are refused at once).
//   - lane.go: a lane: dialling, the writer that forms and sends batches,
//     the idle probe, the counting conn that proves a batch unsent.
//   - merge.go: the merge planner, which orders a batch so that calls
//     that may run as one merged call are adjacent.
//   - reader.go: the reader that matches replies (and durability waits)
//     to calls, splits merged replies, and retries NOSCRIPT.
//   - cluster.go: Cluster, the slot map, routing and redirects.
//   - durability.go: WAIT and WAITAOF after writes.
//   - sentinel.go: Redis Sentinel: asking the sentinels for the primary,
//     following +switch-master, moving a Pool (and its batcher's lanes)
//     to a new primary, the ROLE check of a new connection.
//   - script.go: the one place a script is sent or loaded.
//   - observer.go: what observers (metrics) hear; why calls are retried.
//   - refusal.go: the table of refusals (error replies that prove a call
//     did not run), their causes, logs and the readiness they imply; the
//     PING that checks a new connection.
//   - cpu.go: the CPU time of the Redis processes.
//   - log.go: the rate-limited logging.
package transport
