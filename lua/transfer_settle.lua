-- transfer_settle.lua: step three of a transfer, after its credit: forget
-- the debit in the source shard, so that the shard has no pending transfer.
-- KEYS[1] transfers out  ARGV[1] transfer id
-- Reply: 1 forgotten now, 0 already.
return redis.call('HDEL', KEYS[1], ARGV[1])
