-- reset.lua: stock back to its initial value; buyers, holders, orders and
-- releases cleared, and reservations; earlier request ids forgotten.
-- Limit, window and hold stay.
-- KEYS[1] stock  KEYS[2] buyers  KEYS[3] meta  KEYS[4] holders
-- KEYS[5] orders KEYS[6] released  KEYS[7] holds  KEYS[8] reservations
-- ARGV[1] control channel  ARGV[2] product id
-- Reply: {initial stock, orders not released, units held, customers
--         holding units, orders stream entries} (what was cleared), or
--         {-1} when the product does not exist.
-- Every change that can turn a sold-out product back on is announced on the
-- control channel, so servers drop their cached SOLD_OUT.
--#include books.lua
local initial = redis.call('HGET', KEYS[3], 'initial')
if not initial then
  return {-1}
end
local used = books_used(KEYS)
local cleared = {tonumber(initial), used[1], used[2], used[3], used[4]}
redis.call('SET', KEYS[1], initial)
redis.call('DEL', KEYS[2], KEYS[4], KEYS[6], KEYS[7], KEYS[8])
redis.call('HDEL', KEYS[3], 'reserved', 'paid', 'expired', 'cancelled', 'due', 'cursor', 'fifo_at')
-- Emptied, not deleted: the stream keeps its last id, so no order id of
-- the product's past is ever given again.
redis.call('XTRIM', KEYS[5], 'MAXLEN', 0)
local t = redis.call('TIME')
-- A new epoch: every request record before it is stale, and those of
-- this epoch live in the hashes only (see purchase.lua).
redis.call('HDEL', KEYS[3], 'held') -- a counter products once kept (see books.lua)
redis.call('HSET', KEYS[3], 'epoch', t[1] .. string.format('%06d', tonumber(t[2])), 'records', 'hash')
redis.call('PUBLISH', ARGV[1], ARGV[2])
return cleared
