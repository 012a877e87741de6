package lua

import _ "embed"

// The scripts of a product spread over shards (see engine/shards.go). Each
// touches one shard's keys, or the product's own.
var (
	//go:embed shard_base.lua
	shardBase string
	// ShardBase writes the directory of a sharded product.
	ShardBase = withBooks(shardBase)

	// ShardDir reads the directory of a sharded product.
	//go:embed shard_dir.lua
	ShardDir string

	// ShardPeek reads a shard's stock and pending transfers.
	//go:embed shard_peek.lua
	ShardPeek string

	// ShardClear forgets a shard's transfers.
	//go:embed shard_clear.lua
	ShardClear string

	//go:embed shard_drop.lua
	shardDrop string
	// ShardDrop removes a shard, refusing one in use unless forced.
	ShardDrop = withBooks(shardDrop)

	// TransferDebit takes units out of a shard under a transfer id.
	//go:embed transfer_debit.lua
	TransferDebit string

	// TransferCredit adds a transfer's units to a shard, once.
	//go:embed transfer_credit.lua
	TransferCredit string

	// TransferSettle forgets a credited transfer's debit.
	//go:embed transfer_settle.lua
	TransferSettle string

	// ShardRestock records a restock's parts in a sharded product's
	// directory.
	//go:embed shard_restock.lua
	ShardRestock string

	// OrderUser finds the customer of a sale in an orders stream.
	//go:embed order_user.lua
	OrderUser string

	// HashRead reads a transfer hash.
	//go:embed hash_read.lua
	HashRead string
)
