-- shard_base.lua: create or re-create the directory of a product spread
-- over shards. The product's own keys ({ID}) hold no stock: its meta names
-- the shards (each a product-like key set under its own hash tag {ID#j})
-- and remembers the units the product was given. Run after every shard is
-- initialised, so no purchase sees a shard that is not there yet. A plain
-- product it replaces is wiped; but one in use (any order, unit held,
-- customer or orders-stream entry) only when forced, checked in this same
-- call so no sale slips between.
-- KEYS[1] stock  KEYS[2] buyers  KEYS[3] meta  KEYS[4] holders
-- KEYS[5] orders KEYS[6] released  KEYS[7] holds  KEYS[8] reservations
-- ARGV[1] shard ids, comma-separated   ARGV[2] units   ARGV[3] per-user limit
-- ARGV[4] start (ms, '' none)  ARGV[5] end (ms, '' none)
-- ARGV[6] control channel      ARGV[7] product id
-- ARGV[8] force ('1': wipe a plain product in use; else refuse it)
-- Reply: {0 (written) or -3 (refused: in use), orders not released,
--         units held, customers holding units, orders stream entries}:
--         what was cleared of the product's own keys, or would have been.
--#include books.lua
local used = books_used(KEYS)
if ARGV[8] ~= '1' and used[1] + used[2] + used[3] + used[4] > 0 then
  return {-3, used[1], used[2], used[3], used[4]}
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8])
redis.call('HSET', KEYS[3], 'shards', ARGV[1], 'initial', ARGV[2], 'limit', ARGV[3],
  'restocked', 0)
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[3], 'start', ARGV[4])
end
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[3], 'end', ARGV[5])
end
redis.call('PUBLISH', ARGV[6], ARGV[7])
return {0, used[1], used[2], used[3], used[4]}
