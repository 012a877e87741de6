-- status.lua: one consistent read of a product.
-- KEYS[1] stock   KEYS[2] buyers   KEYS[3] meta
-- Reply: {exists (0|1), remaining, initial, buyers}.
local stock = redis.call('GET', KEYS[1])
local initial = redis.call('HGET', KEYS[3], 'initial')
if not stock and not initial then
  return {0, 0, 0, 0}
end
return {1, tonumber(stock) or 0, tonumber(initial) or 0, redis.call('LLEN', KEYS[2])}
