-- shard_drop.lua: remove every key of a shard, its transfers included
-- (request records expire by themselves); but a shard in use (any order,
-- unit held, customer or orders-stream entry) only when forced, checked in
-- this same call so no sale slips between.
-- KEYS[1] stock  KEYS[2] buyers  KEYS[3] meta  KEYS[4] holders
-- KEYS[5] orders KEYS[6] released  KEYS[7] holds  KEYS[8] reservations
-- KEYS[9] transfers out  KEYS[10] transfers in
-- ARGV[1] control channel  ARGV[2] product id
-- ARGV[3] force ('1': remove a shard in use; else refuse it)
-- Reply: {0 (removed) or -3 (refused: in use), orders not released,
--         units held, customers holding units, orders stream entries}:
--         what was cleared, or would have been.
-- Every change that can turn a sold-out product back on is announced on the
-- control channel, so servers drop their cached SOLD_OUT.
--#include books.lua
local used = books_used(KEYS)
if ARGV[3] ~= '1' and used[1] + used[2] + used[3] + used[4] > 0 then
  return {-3, used[1], used[2], used[3], used[4]}
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10])
redis.call('PUBLISH', ARGV[1], ARGV[2])
return {0, used[1], used[2], used[3], used[4]}
