-- transfer_credit.lua: step two of a transfer: add the units debited from
-- the source shard to the target, once. The transfer id is remembered, so a
-- second credit of the same id (a repair racing the server that started
-- the transfer) adds nothing.
-- KEYS[1] stock  KEYS[2] meta  KEYS[3] transfers in (hash: id -> units)
-- ARGV[1] transfer id  ARGV[2] units
-- Reply: 1 credited now, 0 credited before, -1 the target shard is missing.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
if redis.call('HSETNX', KEYS[3], ARGV[1], ARGV[2]) == 0 then
  return 0
end
redis.call('INCRBY', KEYS[1], ARGV[2])
redis.call('HINCRBY', KEYS[2], 'initial', ARGV[2])
return 1
