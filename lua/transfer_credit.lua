-- transfer_credit.lua: step two of a transfer: add the units debited from
-- the source shard to the target, once. The transfer id is remembered, so a
-- second credit of the same id (a repair racing the server that started
-- the transfer) adds nothing. A restock's part (whose source is the
-- product's directory, see shard_restock.lua) is also recorded in the
-- target's orders stream and announced on the control channel, as
-- restock.lua does, so servers drop their cached SOLD_OUT.
-- KEYS[1] stock  KEYS[2] meta  KEYS[3] transfers in (hash: id -> units)
-- KEYS[4] orders
-- ARGV[1] transfer id  ARGV[2] units
-- ARGV[3] 'restock' for a restock's part, else ''
-- ARGV[4] control channel  ARGV[5] product id (for a restock's part)
-- Reply: 1 credited now, 0 credited before, -1 the target shard is missing.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
if redis.call('HSETNX', KEYS[3], ARGV[1], ARGV[2]) == 0 then
  return 0
end
local remaining = redis.call('INCRBY', KEYS[1], ARGV[2])
redis.call('HINCRBY', KEYS[2], 'initial', ARGV[2])
if ARGV[3] == 'restock' then
  local t = redis.call('TIME')
  redis.call('XADD', KEYS[4], '*', 'type', 'restock', 'quantity', ARGV[2],
    'remaining', remaining, 'time', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
  redis.call('PUBLISH', ARGV[4], ARGV[5])
end
return 1
