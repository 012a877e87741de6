package engine

// SetTransferHook makes every transfer between shards call hook after its
// debit (an error stops the transfer there, as a crash would), until the
// returned function is called.
func SetTransferHook(hook func(tid string) error) (restore func()) {
	transferHook = hook
	return func() { transferHook = nil }
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

// PurchaseResult decodes the reply to one purchase.
func PurchaseResult(v any) (Result, error) { return purchaseResult(v) }
