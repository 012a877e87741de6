package engine

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/flashsale/flashsale/lua"
)

// The Go ↔ Lua contract. Every script is declared once here as a spec:
// its keys by name (built from KeysFor), its arguments by name, and, for
// the purchase script, its outcomes. The script's key count comes from
// its key list, every call builds its keys from that list, and the
// purchase outcomes are Lua constants on purchase.lua's first line, which
// must be the line generated from the table the reply decoder reads (see
// purchasePrelude): neither side can count or number differently from
// the other. contract_test.go loads
// every script on a real Redis and calls it by its spec.

// key is one of a product's keys, by the name the scripts' headers give it.
type key struct {
	name string
	of   func(Keys) string
}

var (
	keyStock        = key{"stock", func(k Keys) string { return k.Stock }}
	keyBuyers       = key{"buyers", func(k Keys) string { return k.Buyers }}
	keyMeta         = key{"meta", func(k Keys) string { return k.Meta }}
	keyHolders      = key{"holders", func(k Keys) string { return k.Holders }}
	keyOrders       = key{"orders", func(k Keys) string { return k.Orders }}
	keyReleased     = key{"released", func(k Keys) string { return k.Released }}
	keyHolds        = key{"holds", func(k Keys) string { return k.Holds }}
	keyReservations = key{"reservations", func(k Keys) string { return k.Reservations }}
	keyRoom         = key{"room", func(k Keys) string { return k.Room }}
	keyTickets      = key{"tickets", func(k Keys) string { return k.Tickets }}
	keyLine         = key{"line", func(k Keys) string { return k.Line }}
	keyAdmitted     = key{"admitted", func(k Keys) string { return k.Admitted }}
	keyRequests0    = key{"requests:0", func(k Keys) string { return k.Requests[0] }}
	keyRequests1    = key{"requests:1", func(k Keys) string { return k.Requests[1] }}
	keyTransfersOut = key{"transfers out", Keys.TransfersOut}
	keyTransfersIn  = key{"transfers in", Keys.TransfersIn}
	// keyRoomSecret is the sale's, not a product's: its name is fixed.
	keyRoomSecret = key{"room secret", func(Keys) string { return roomSecretKey }}
)

// productKeys are every key of a product's state, in the order of the
// scripts that create, reset, release or remove it.
var productKeys = []key{keyStock, keyBuyers, keyMeta, keyHolders, keyOrders, keyReleased,
	keyHolds, keyReservations}

// allProductKeys are productKeys and the waiting room's, which init and
// delete remove too.
var allProductKeys = append(slices.Clip(productKeys), keyRoom, keyTickets, keyLine, keyAdmitted)

// roomKeys are the keys of a product's waiting room scripts.
var roomKeys = []key{keyStock, keyMeta, keyRoom, keyTickets, keyLine, keyAdmitted}

// variadic, last in a spec's arguments, stands for any number more.
const variadic = "..."

// spec is a script with its declared keys and arguments.
type spec struct {
	*Script
	keys []key
	args []string // by name, in ARGV order; variadic last: any more
}

// declare is the spec of script name (its source src) taking keys, then
// args.
func declare(name, src string, keys []key, args ...string) *spec {
	return &spec{Script: newScript(name, src, len(keys)), keys: keys, args: args}
}

// readOnly marks s as never writing.
func (s *spec) readOnly() *spec {
	s.ReadOnly = true
	return s
}

// call is the keysAndArgs of a call of s on the keys k: s's keys, then
// args, which must be the arguments s declares.
func (s *spec) call(k Keys, args ...any) []any {
	n := len(s.args)
	if len(args) != n && (n == 0 || s.args[n-1] != variadic || len(args) < n-1) {
		panic(fmt.Sprintf("script %s takes %d arguments (%s), given %d", s.name, n, strings.Join(s.args, ", "), len(args)))
	}
	out := make([]any, 0, len(s.keys)+len(args))
	for _, key := range s.keys {
		out = append(out, key.of(k))
	}
	return append(out, args...)
}

// The scripts, hashed once. Every product operation is one of them (or,
// for a product spread over shards, one per shard), so each is atomic and
// touches one product's (or shard's) keys only.
var (
	initScript = declare("init", lua.Init, allProductKeys,
		"units", "per-user limit", "start ms", "end ms", "control channel", "product id", "force", "hold ms")
	resetScript  = declare("reset", lua.Reset, productKeys, "control channel", "product id")
	deleteScript = declare("delete", lua.Delete, allProductKeys, "control channel", "product id")
	statusScript = declare("status", lua.Status,
		[]key{keyStock, keyBuyers, keyMeta, keyOrders, keyHolders, keyRoom, keyTickets}).readOnly()
	buyersScript  = declare("buyers", lua.Buyers, []key{keyStock, keyBuyers}, "limit").readOnly()
	windowScript  = declare("window", lua.Window, []key{keyStock, keyMeta}, "op", "control channel", "product id")
	restockScript = declare("restock", lua.Restock, []key{keyStock, keyMeta, keyOrders},
		"units", "control channel", "product id")
	releaseScript = declare("release", lua.Release, productKeys, "order id", "control channel", "product id",
		"event channel")
	verifyScript = declare("verify", lua.Verify,
		[]key{keyStock, keyBuyers, keyMeta, keyHolders, keyOrders, keyHolds, keyReservations}).readOnly()
	sweepScript = declare("sweep", lua.Sweep, productKeys,
		"limit", "event channel", "control channel", "product id")
	orderScript = declare("order", lua.Order, productKeys,
		"op", "order id", "user id", "event channel", "control channel", "product id")
	holdScript     = declare("hold", lua.Hold, []key{keyStock, keyMeta}, "hold ms")
	roomSetScript  = declare("room_set", lua.RoomSet, roomKeys, "opens ms", "rate", "control channel", "product id")
	roomJoinScript = declare("room_join", lua.RoomJoin, []key{keyStock, keyRoom, keyTickets, keyLine},
		"user id", "score", "nonce")
	roomPollScript = declare("room_poll", lua.RoomPoll, roomKeys, "user id", "ticket nonce", "nonce", "admission ms")
	roomInfoScript = declare("room_info", lua.RoomInfo, roomKeys).readOnly()
	// room_secret runs on no product: call it with the zero Keys.
	roomSecretScript = declare("room_secret", lua.RoomSecret, []key{keyRoomSecret}, "secret")
	ordersScript     = declare("orders", lua.Orders, []key{keyStock, keyOrders}, "limit").readOnly()

	shardBaseScript = declare("shard_base", lua.ShardBase, productKeys,
		"shard ids", "units", "per-user limit", "start ms", "end ms", "control channel", "product id", "force")
	shardDirScript  = declare("shard_dir", lua.ShardDir, []key{keyMeta}).readOnly()
	shardPeekScript = declare("shard_peek", lua.ShardPeek,
		[]key{keyStock, keyTransfersOut, keyTransfersIn, keyHolds, keyMeta}).readOnly()
	shardClearScript = declare("shard_clear", lua.ShardClear, []key{keyTransfersOut, keyTransfersIn})
	shardDropScript  = declare("shard_drop", lua.ShardDrop,
		append(slices.Clip(productKeys), keyTransfersOut, keyTransfersIn), "control channel", "product id", "force")
	debitScript = declare("transfer_debit", lua.TransferDebit, []key{keyStock, keyMeta, keyTransfersOut},
		"transfer id", "target shard id", "units", "mode")
	creditScript = declare("transfer_credit", lua.TransferCredit,
		[]key{keyStock, keyMeta, keyTransfersIn, keyOrders},
		"transfer id", "units", "kind", "control channel", "product id")
	settleScript       = declare("transfer_settle", lua.TransferSettle, []key{keyTransfersOut}, "transfer id")
	shardRestockScript = declare("shard_restock", lua.ShardRestock, []key{keyMeta, keyTransfersOut},
		"units", variadic)
	orderUserScript = declare("order_user", lua.OrderUser, []key{keyOrders}, "order id").readOnly()
	// hash_read reads either transfer hash: one script, a spec for each.
	readOutScript = declare("hash_read", lua.HashRead, []key{keyTransfersOut}, "field").readOnly()
	readInScript  = &spec{Script: readOutScript.Script, keys: []key{keyTransfersIn}, args: readOutScript.args}
)

// Scripts lists every script the engine runs, for SCRIPT LOAD at start.
func Scripts() []*Script {
	out := []*Script{purchaseScript}
	for _, s := range specs() {
		out = append(out, s.Script)
	}
	return out
}

// specs lists the spec of every script but the purchase's (and
// readInScript, whose script is readOutScript's).
func specs() []*spec {
	return []*spec{initScript, resetScript, deleteScript, statusScript, buyersScript, windowScript,
		restockScript, releaseScript, verifyScript, ordersScript, shardBaseScript, shardDirScript,
		shardPeekScript, shardClearScript, shardDropScript, debitScript, creditScript, settleScript,
		shardRestockScript, orderUserScript, readOutScript, sweepScript, orderScript, holdScript,
		roomSetScript, roomJoinScript, roomPollScript, roomInfoScript, roomSecretScript}
}

// eval runs s on the keys k with args.
func (e *Engine) eval(ctx context.Context, s *spec, k Keys, args ...any) (any, error) {
	return e.redis.Eval(ctx, s.Script, s.call(k, args...)...)
}

// evalInt runs s and reads its integer reply.
func (e *Engine) evalInt(ctx context.Context, s *spec, k Keys, args ...any) (int64, error) {
	v, err := e.eval(ctx, s, k, args...)
	if err != nil {
		return 0, err
	}
	return replyInt(v)
}

// evalInts runs s and reads its reply, an array of integers.
func (e *Engine) evalInts(ctx context.Context, s *spec, k Keys, args ...any) ([]int64, error) {
	v, err := e.eval(ctx, s, k, args...)
	if err != nil {
		return nil, err
	}
	return replyInts(v)
}

// The failures the admin scripts answer with, as the first element of an
// array reply (or the whole integer reply).
const (
	replyUnknownProduct = -1 // the product (or shard) does not exist
	replyUnknownOrder   = -2 // release.lua, order.lua: no sale (or reservation) has that order id
	replyForbidden      = -4 // order.lua: the order is another customer's
	replyPaid           = -5 // release.lua: the order is a paid reservation
)

// The purchase script. Its keys and arguments are a purchase's shared
// ones (the same for every purchase of a product, or of one shard), then
// its own; a merged call has the shared ones once, then every purchase's
// own (see MergeSpec).
var (
	purchaseShared = []key{keyStock, keyBuyers, keyMeta, keyHolders, keyOrders, keyReleased,
		keyRequests0, keyRequests1, keyHolds, keyReservations, keyAdmitted}
	// A purchase's own keys: its request record of the former formats and
	// its customer's rate limiter (see productArgs).
	purchaseOwnKeys    = []string{"request", "rate"}
	purchaseSharedArgs = []string{"product id", "request ttl ms", "event channel", "rate interval ms", "rate burst",
		"control channel"}
	purchaseOwnArgs = []string{"user id", "quantity", "request id", "admission nonce"}
)

// The purchase script's lone form (see lua/purchase.lua): one purchase
// with no request id, rate limit or admission nonce, sent alone, passes
// only what its lean path needs, which spares Redis making the rest (see
// loneForm). A call the lean path cannot serve answers the error
// loneRefusal, having written nothing, and goes again in the compact
// form of one call.
var (
	purchaseLoneKeys = []key{keyStock, keyBuyers, keyMeta, keyHolders, keyOrders}
	purchaseLoneArgs = []string{"product id", "event channel", "user id", "quantity"}
)

// loneRefusal begins the error reply of a purchase in the lone form that
// needs the compact form.
const loneRefusal = "NOTLEAN"

// purchaseKeys is the key count of one purchase.
var purchaseKeys = len(purchaseShared) + len(purchaseOwnKeys)

// purchaseArgCount is the keys and arguments of one purchase.
var purchaseArgCount = purchaseKeys + len(purchaseSharedArgs) + len(purchaseOwnArgs)

// purchaseSource is purchase.lua, checked to begin with its prelude.
var purchaseSource = withPrelude(lua.Purchase)

// withPrelude returns src, the purchase script, if its first line
// declares the outcomes as outcomes does; else the engine cannot work,
// and it panics as the program starts (every test fails), naming the
// line to write.
func withPrelude(src string) string {
	if p := purchasePrelude(); !strings.HasPrefix(src, p) {
		panic("lua/purchase.lua must begin with the line of engine/contract.go's outcomes:\n" + p)
	}
	return src
}

// purchaseScript is one purchase; calls of one product merge into one
// call of the same Lua (see lua/purchase.lua).
var purchaseScript = mergeable(newScript("purchase", purchaseSource, purchaseKeys), &MergeSpec{
	Script: newScript("purchase-merged", purchaseSource, -1), Max: MaxMergedPurchases,
	Keys: purchaseKeys, SharedKeys: len(purchaseShared), SharedArgs: len(purchaseSharedArgs),
	Stride: answerLen, Lone: loneForm, LoneRefusal: loneRefusal, Compact: compactForm,
})

// loneAt are the places in a purchase's keys and arguments of its lone
// form's keys, then its arguments.
var loneAt = func() []int {
	var at []int
	for _, k := range purchaseLoneKeys {
		at = append(at, slices.IndexFunc(purchaseShared, func(s key) bool { return s.name == k.name }))
	}
	args := slices.Concat(purchaseSharedArgs, purchaseOwnArgs)
	for _, a := range purchaseLoneArgs {
		at = append(at, purchaseKeys+slices.Index(args, a))
	}
	if slices.Contains(at, -1) || slices.Contains(at, purchaseKeys-1) { // a key, an argument not found
		panic("engine: the purchase's lone form names a key or argument the purchase has not")
	}
	return at
}()

// loneForm is the purchase script's MergeSpec.Lone: a purchase with no
// request id, no rate limit, no admission nonce, and a product and
// customer id that need no escaping in JSON (the lean path writes them
// into its event as they are) has the lone form; another with no rate
// limit, the compact form (see compactForm).
func loneForm(dst, keysAndArgs []any) ([]any, bool) {
	if len(keysAndArgs) != purchaseArgCount {
		return nil, false
	}
	interval, _ := keysAndArgs[loneTells.interval].(int64)
	rid, _ := keysAndArgs[loneTells.rid].(string)
	product, okP := keysAndArgs[loneTells.product].(string)
	user, okU := keysAndArgs[loneTells.user].(string)
	nonce, _ := keysAndArgs[loneTells.nonce].(string)
	if interval != 0 {
		return nil, false
	}
	if rid != "" || nonce != "" || !okP || !okU || !plainJSON(product) || !plainJSON(user) {
		return appendCompact(dst, 1, func(int) []any { return keysAndArgs })
	}
	dst = append(dst, len(purchaseLoneKeys))
	for _, i := range loneAt {
		dst = append(dst, keysAndArgs[i])
	}
	return dst, true
}

// compactForm is the purchase script's MergeSpec.Compact: purchases with
// no rate limit pass no keys of their own (the script reads a request
// record's key of the former formats only for a product from before, and
// builds it from the prefix the form ends with).
func compactForm(n int, call func(i int) []any) ([]any, bool) {
	return appendCompact(nil, n, call)
}

// appendCompact appends to dst the compact form of the purchases
// call(0..n-1): the key count, the shared keys, the shared arguments,
// every purchase's own arguments, the request key prefix, and "1" when
// the product id and every user id are plainJSON (else "0").
func appendCompact(dst []any, n int, call func(i int) []any) ([]any, bool) {
	first := call(0)
	if len(first) != purchaseArgCount {
		return nil, false
	}
	interval, _ := first[loneTells.interval].(int64)
	key, okK := first[loneTells.request].(string)
	rid, okR := first[loneTells.rid].(string)
	prefix, okP := strings.CutSuffix(key, rid)
	if interval != 0 || !okK || !okR || !okP {
		return nil, false
	}
	shared, ownAt := len(purchaseShared), purchaseKeys+len(purchaseSharedArgs)
	if dst == nil {
		dst = make([]any, 0, 3+shared+len(purchaseSharedArgs)+n*len(purchaseOwnArgs))
	}
	dst = append(dst, shared)
	dst = append(dst, first[:shared]...)
	dst = append(dst, first[purchaseKeys:ownAt]...)
	product, _ := first[loneTells.product].(string)
	plain := plainJSON(product)
	for i := range n {
		c := call(i)
		if plain {
			user, ok := c[loneTells.user].(string)
			plain = ok && plainJSON(user)
		}
		dst = append(dst, c[ownAt:]...)
	}
	flag := "0"
	if plain {
		flag = "1"
	}
	return append(dst, prefix, flag), true
}

// loneTells are the places in a purchase's keys and arguments of what
// tells whether it has the lone form or the compact one, and of its
// request key (the compact form's prefix is that key without the id).
var loneTells = struct{ interval, rid, product, user, nonce, request int }{
	nonce:    purchaseKeys + len(purchaseSharedArgs) + slices.Index(purchaseOwnArgs, "admission nonce"),
	request:  len(purchaseShared) + slices.Index(purchaseOwnKeys, "request"),
	interval: purchaseKeys + slices.Index(purchaseSharedArgs, "rate interval ms"),
	product:  purchaseKeys + slices.Index(purchaseSharedArgs, "product id"),
	rid:      purchaseKeys + len(purchaseSharedArgs) + slices.Index(purchaseOwnArgs, "request id"),
	user:     purchaseKeys + len(purchaseSharedArgs) + slices.Index(purchaseOwnArgs, "user id"),
}

// plainJSON reports whether s is a JSON string as it is between quotes:
// nothing in it that cjson escapes (control characters, ", \, /) and,
// to be safe, nothing outside ASCII.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '/' {
			return false
		}
	}
	return true
}

// outcome is the kind of a purchase's answer: its first element.
type outcome int64

// The outcomes of a purchase (see lua/purchase.lua's reply).
const (
	outUnknownProduct outcome = iota - 1
	outSoldOut
	outSold
	outInsufficient
	outOverLimit
	outNotStarted
	outEnded
	outRequestReused
	outRateLimited
	outReleased
	outReserved
	outNotAdmitted
)

// outcomes are the purchase outcomes, by kind + 1: the constant
// purchase.lua knows the kind by, and how many values follow it in an
// answer. A new outcome is a line here, its case in purchaseResult, and
// its use in the Lua.
var outcomes = [...]struct {
	lua    string
	values int
}{
	outUnknownProduct + 1: {"UNKNOWN_PRODUCT", 0},
	outSoldOut + 1:        {"SOLD_OUT", 0},
	outSold + 1:           {"SOLD", 3},         // remaining, order id, quantity
	outInsufficient + 1:   {"INSUFFICIENT", 1}, // remaining
	outOverLimit + 1:      {"OVER_LIMIT", 2},   // held, limit
	outNotStarted + 1:     {"NOT_STARTED", 1},  // start ms
	outEnded + 1:          {"ENDED", 1},        // end ms
	outRequestReused + 1:  {"REQUEST_REUSED", 0},
	outRateLimited + 1:    {"RATE_LIMITED", 1}, // retry after ms
	outReleased + 1:       {"RELEASED", 1},     // order id
	outReserved + 1:       {"RESERVED", 3},     // remaining, order id, expires ms
	outNotAdmitted + 1:    {"NOT_ADMITTED", 1}, // why: 1 none, 2 not the one issued, 3 expired
}

// answerLen is the elements of one purchase's answer in the purchase
// script's flat reply: the outcome, then room for the most values any
// outcome has.
const answerLen = 4

// answerValues is how many values follow outcome kind in a purchase's
// answer, -1 for an outcome the script never gives.
func answerValues(kind int64) int {
	if kind < int64(outUnknownProduct) || kind+1 >= int64(len(outcomes)) {
		return -1
	}
	return outcomes[kind+1].values
}

// purchasePrelude is purchase.lua's first line: the outcomes as Lua
// locals. The file holds it (so the script is whole as it stands, for
// redis-cli and scripts/perf.sh); the engine checks it is this line.
func purchasePrelude() string {
	names := make([]string, len(outcomes))
	kinds := make([]string, len(outcomes))
	for i, o := range outcomes {
		names[i], kinds[i] = o.lua, strconv.Itoa(i-1)
	}
	return "local " + strings.Join(names, ", ") + " = " + strings.Join(kinds, ", ") + "\n"
}
