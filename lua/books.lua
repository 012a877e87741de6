-- books.lua: what a product's keys hold, for the scripts that clear them
-- (init, reset, shard_base, shard_drop include it where their source says
-- `--#include books.lua`). Units held by customers are not counted on
-- their own: they are initial - stock, as the books balance (verify.lua
-- checks it against the holders).

-- books_used is what keys k (k[1] stock, k[2] buyers, k[3] meta, k[4]
-- holders, k[5] orders) hold: {orders not released, units held,
-- customers holding units, orders stream entries}. Keys without stock (a
-- sharded product's directory) hold no units.
local function books_used(k)
  local stock, held = redis.call('GET', k[1]), 0
  if stock then
    held = (tonumber(redis.call('HGET', k[3], 'initial')) or 0) - (tonumber(stock) or 0)
  end
  return {redis.call('LLEN', k[2]), held, redis.call('HLEN', k[4]), redis.call('XLEN', k[5])}
end
