package engine

import "slices"

// SetTransferHook makes every transfer between shards that engines run
// call hook after its debit, and every restock of a sharded product
// before the credit of each part (an error stops the transfer or restock
// there, as a crash would), until the returned function is called.
func SetTransferHook(hook func(tid string) error, engines ...*Engine) (restore func()) {
	for _, e := range engines {
		e.transferHook.Store(&hook)
	}
	return func() {
		for _, e := range engines {
			e.transferHook.Store(nil)
		}
	}
}

// Hooks for the external tests of the purchase script's merged form.

// PurchaseScript is the purchase script.
var PurchaseScript = purchaseScript

// PurchaseArgs returns the purchase script's keys and arguments for req as
// e sends them; ok is false when e answers req without Redis.
func PurchaseArgs(e *Engine, req Request) (args []any, ok bool) {
	args, _, ok = e.preparePurchase(&req)
	return args, ok
}

// PurchaseArgsAdmitted is PurchaseArgs for req with the admission nonce
// nonce, as a checked Admission gives it.
func PurchaseArgsAdmitted(e *Engine, req Request, nonce string) (args []any, ok bool) {
	args, ok = PurchaseArgs(e, req)
	if ok {
		args[purchaseKeys+len(purchaseSharedArgs)+slices.Index(purchaseOwnArgs, "admission nonce")] = nonce
	}
	return args, ok
}

// PurchaseResult decodes the reply to one purchase.
func PurchaseResult(v any) (Result, error) { return purchaseResult(v) }

// FillLowest is how a restock of a sharded product splits units over
// shards holding stocks.
func FillLowest(stocks []int64, units int64) []int64 { return fillLowest(stocks, units) }

// RedisOf is the Redis e runs on.
func RedisOf(e *Engine) Redis { return e.redis }

// PurchaseFullForm is the purchase script without its lone form: a call
// of it alone goes to Redis with every key and argument.
var PurchaseFullForm = newScript(purchaseScript.name, purchaseScript.src, purchaseScript.KeyCount())
