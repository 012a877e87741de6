// Package lua embeds the Redis scripts that own every write to a product.
//
// Each script touches the keys of exactly one product, all passed in KEYS
// (so they share the product's {ID} hash tag and a Redis Cluster slot), and
// checks everything before it writes anything. Key names are built by the
// engine package, never here.
package lua

import _ "embed"

// Purchase checks and decrements stock, records the buyer and publishes the
// sale. KEYS: stock, buyers. ARGV: product id, user id, event channel.
// Returns {1, remaining} on a sale, {0, 0} when sold out, {-1, 0} when the
// product does not exist.
//
//go:embed purchase.lua
var Purchase string

// Init creates or re-creates a product. KEYS: stock, buyers, meta.
// ARGV: initial stock.
//
//go:embed init.lua
var Init string

// Reset puts stock back to its initial value and clears the buyers.
// KEYS: stock, buyers, meta. Returns the initial stock, or -1 when the
// product does not exist.
//
//go:embed reset.lua
var Reset string

// Status reads a product in one atomic step. KEYS: stock, buyers, meta.
// Returns {exists, remaining, initial, buyers}.
//
//go:embed status.lua
var Status string

// Buyers lists buyers. KEYS: stock, buyers. ARGV: how many (0 for all).
// Returns {exists, total, {ids...}}.
//
//go:embed buyers.lua
var Buyers string

// Delete removes every key of a product. KEYS: stock, buyers, meta.
// Returns the number of keys removed.
//
//go:embed delete.lua
var Delete string
