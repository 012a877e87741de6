// Package lua embeds the Redis scripts that own every write to a product.
//
// Each script touches the keys of exactly one product, all passed in KEYS
// (so they share the product's {ID} hash tag and a Redis Cluster slot),
// but room_secret.lua, which keeps the sale's one key that is no product's
// (under a fixed hash tag of its own); and each
// checks everything before it writes anything (purchase.lua too, for every
// purchase of a merged call, its rate limiter's state included: see its
// header). Key names are built by the engine package, never here; each
// script's header documents its KEYS, ARGV and reply, and the engine
// declares the same lists by name (engine/contract.go), checked by its
// tests. purchase.lua names its outcomes by constants on its first line,
// which the engine checks is the line it generates from its reply
// decoder's table (engine/contract.go, purchasePrelude).
//
// A script whose source has a line `--#include NAME.lua` gets that
// library's functions there (see include): reservation.lua, the one way a
// reservation is released, shared by every script that releases one; and
// room.lua, the cursor of a waiting room, shared by its scripts; and
// books.lua, what a product's keys hold, for the scripts that clear them.
package lua

import (
	_ "embed"
	"strings"
)

// The libraries scripts include.
var (
	//go:embed reservation.lua
	reservation string
	//go:embed room.lua
	room string
	//go:embed books.lua
	books string
)

// include returns src with lib (named name) in place of its include line.
func include(name, lib, src string) string {
	line := "--#include " + name + "\n"
	if !strings.Contains(src, line) {
		panic("lua: no line " + line + " in a script that needs it")
	}
	return strings.Replace(src, line, lib, 1)
}

// withReservations is src with reservation.lua included.
func withReservations(src string) string { return include("reservation.lua", reservation, src) }

// withBooks is src with books.lua included.
func withBooks(src string) string { return include("books.lua", books, src) }

// withRoom is src with room.lua included.
func withRoom(src string) string { return include("room.lua", room, src) }

// The sources of the scripts that include reservation.lua.
var (
	//go:embed purchase.lua
	purchase string
	//go:embed release.lua
	release string
	//go:embed sweep.lua
	sweep string
	//go:embed order.lua
	order string
)

// The scripts of waiting rooms.
var (
	//go:embed room_join.lua
	roomJoin string
	//go:embed room_poll.lua
	roomPoll string
	//go:embed room_info.lua
	roomInfo string

	// RoomJoin puts a customer in a product's waiting room, once.
	RoomJoin = withRoom(roomJoin)
	// RoomPoll tells a customer in the room where they stand, and admits
	// them in their turn.
	RoomPoll = withRoom(roomPoll)
	// RoomInfo reads a product's waiting room, for operators.
	RoomInfo = withRoom(roomInfo)
	// RoomSet creates or changes a product's waiting room.
	//go:embed room_set.lua
	RoomSet string
	// RoomSecret creates the secret waiting-room tokens are signed with,
	// once, and reads it.
	//go:embed room_secret.lua
	RoomSecret string
)

// The scripts that release reservations.
var (
	// Purchase judges M >= 1 purchases of one product in order (window,
	// stock, per-user limit, rate, retries), then sells or reserves:
	// stock, holders, buyers, orders stream, request records,
	// reservations, events. It first releases the product's expired
	// reservations.
	Purchase = withReservations(purchase)

	// Release returns an order's units to stock, once.
	Release = withReservations(release)

	// Sweep releases a product's expired reservations.
	Sweep = withReservations(sweep)

	// Order confirms (pays) or cancels a reservation, once.
	Order = withReservations(order)
)

// The scripts, by what they do.
var (
	// Hold changes how long a live product's reservations last.
	//go:embed hold.lua
	Hold string

	//go:embed init.lua
	initSrc string
	// Init creates or re-creates a product.
	Init = withBooks(initSrc)

	//go:embed reset.lua
	reset string
	// Reset puts stock back to its initial value and clears the sales.
	Reset = withBooks(reset)

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

	// Orders lists a product's orders stream.
	//go:embed orders.lua
	Orders string

	// Verify audits a product's books.
	//go:embed verify.lua
	Verify string
)
