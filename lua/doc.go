// Package lua embeds the Redis scripts that own every write to a product.
//
// Each script touches the keys of exactly one product, all passed in KEYS
// (so they share the product's {ID} hash tag and a Redis Cluster slot), and
// checks everything before it writes anything (purchase.lua too, for every
// purchase of a merged call, its rate limiter's state included: see its
// header). Key names are built by the engine package, never here; each
// script's header documents its KEYS, ARGV and reply, and the engine
// declares the same lists by name (engine/contract.go), checked by its
// tests. purchase.lua names its outcomes by constants on its first line,
// which the engine checks is the line it generates from its reply
// decoder's table (engine/contract.go, purchasePrelude).
package lua

import _ "embed"

// The scripts, by what they do.
var (
	// Purchase judges M >= 1 purchases of one product in order (window,
	// stock, per-user limit, rate, retries), then sells: stock, holders,
	// buyers, orders stream, request records, events.
	//go:embed purchase.lua
	Purchase string

	// Init creates or re-creates a product.
	//go:embed init.lua
	Init string

	// Reset puts stock back to its initial value and clears the sales.
	//go:embed reset.lua
	Reset string

	// Status reads a product in one atomic step.
	//go:embed status.lua
	Status string

	// Buyers lists buyers in purchase order.
	//go:embed buyers.lua
	Buyers string

	// Delete removes every key of a product.
	//go:embed delete.lua
	Delete string

	// Window opens or closes the sale window by Redis's clock.
	//go:embed window.lua
	Window string

	// Restock adds units to a live product.
	//go:embed restock.lua
	Restock string

	// Release returns an order's units to stock, once.
	//go:embed release.lua
	Release string

	// Orders lists a product's orders stream.
	//go:embed orders.lua
	Orders string

	// Verify audits a product's books.
	//go:embed verify.lua
	Verify string
)
