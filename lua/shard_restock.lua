-- shard_restock.lua: step one of restocking a product spread over shards,
-- in its directory: the units given grow by the restock, and each shard's
-- part is recorded as a transfer out of the directory (the directory's
-- xfer_out hash, as a shard records a debit), atomically. The parts are
-- then in transit until transfer_credit.lua adds each to its shard, once;
-- the records are what makes a crash between the steps recoverable (any
-- server that finds every shard empty, or admin verify --repair, credits
-- them), and admin verify counts a part not yet credited as in transit.
-- KEYS[1] the product's meta (its directory)  KEYS[2] its transfers out
-- ARGV[1] units (>= 1), then pairs: transfer id, "target-shard-id units"
-- Reply: {-1} not a sharded product, else {initial + restocks}.
if not redis.call('HGET', KEYS[1], 'shards') then
  return {-1}
end
redis.call('HINCRBY', KEYS[1], 'restocked', ARGV[1])
for i = 2, #ARGV, 2 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
end
local m = redis.call('HMGET', KEYS[1], 'initial', 'restocked')
return {tonumber(m[1]) + tonumber(m[2])}
