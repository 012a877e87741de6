-- buyers.lua: the buyers of a product, in purchase order.
-- KEYS[1] stock   KEYS[2] buyers
-- ARGV[1] how many to return, 0 for all, -1 for none (the total only).
-- Reply: {exists (0|1), total, {user ids...}}.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {0, 0, {}}
end
local limit = tonumber(ARGV[1])
if limit < 0 then
  return {1, redis.call('LLEN', KEYS[2]), {}}
end
return {1, redis.call('LLEN', KEYS[2]), redis.call('LRANGE', KEYS[2], 0, limit - 1)}
