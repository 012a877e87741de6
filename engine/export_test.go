package engine

// SetTransferHook makes every transfer between shards call hook after its
// debit (an error stops the transfer there, as a crash would), until the
// returned function is called.
func SetTransferHook(hook func(tid string) error) (restore func()) {
	transferHook = hook
	return func() { transferHook = nil }
}
