-- init.lua: create or re-create a product. Everything it had is wiped:
-- buyers, holders, releases, and the orders stream emptied; but a product
-- in use (any order, unit held, customer or orders-stream entry) only when
-- forced, checked in this same call so no sale slips between.
-- KEYS[1] stock  KEYS[2] buyers  KEYS[3] meta  KEYS[4] holders
-- KEYS[5] orders KEYS[6] released  KEYS[7] holds  KEYS[8] reservations
-- KEYS[9..12] the waiting room: room, tickets, line, admitted (removed)
-- ARGV[1] units  ARGV[2] per-user limit (0 = none)
-- ARGV[3] start (ms since epoch, '' for none)  ARGV[4] end (ms, '' for none)
-- ARGV[5] control channel  ARGV[6] product id
-- ARGV[7] force ('1': wipe a product in use; else refuse it)
-- ARGV[8] hold (ms a reservation lasts; '' or 0: sell outright)
-- Reply: {0 (initialised) or -3 (refused: in use), orders not released,
--         units held, customers holding units, orders stream entries}:
--         what was cleared, or would have been.
-- Every change that can turn a sold-out product back on is announced on the
-- control channel, so servers drop their cached SOLD_OUT.
--#include books.lua
local used = books_used(KEYS)
if ARGV[7] ~= '1' and used[1] + used[2] + used[3] + used[4] > 0 then
  return {-3, used[1], used[2], used[3], used[4]}
end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11], KEYS[12])
-- Emptied, not deleted: the stream keeps its last id, so no order id of
-- the product's past is ever given again.
redis.call('XTRIM', KEYS[5], 'MAXLEN', 0)
redis.call('SET', KEYS[1], ARGV[1])
local t = redis.call('TIME')
-- epoch tells request records of this incarnation from older ones.
-- records: request records of this epoch live in the hashes only (see
-- purchase.lua).
redis.call('HSET', KEYS[3], 'initial', ARGV[1], 'limit', ARGV[2],
  'epoch', t[1] .. string.format('%06d', tonumber(t[2])), 'records', 'hash')
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[3], 'start', ARGV[3])
end
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[3], 'end', ARGV[4])
end
if (tonumber(ARGV[8]) or 0) > 0 then
  redis.call('HSET', KEYS[3], 'hold', ARGV[8])
end
redis.call('PUBLISH', ARGV[5], ARGV[6])
return {0, used[1], used[2], used[3], used[4]}
