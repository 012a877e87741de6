// Package engine owns what a purchase means: request validation, the Redis
// key layout, the Lua scripts' calling conventions (SCRIPT LOAD once, EVALSHA,
// reload on NOSCRIPT), the admin operations and the TCP server that puts
// them behind the wire protocol.
//
// Every key of a product lives under its {ID} hash tag (see Keys), and every
// script touches one product only, so the layout is ready for Redis Cluster.
// Redis itself is reached through the small Redis interface; Pool is the
// redigo implementation.
package engine
