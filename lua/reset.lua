-- reset.lua: stock back to its initial value, buyers cleared, atomically.
-- KEYS[1] stock   KEYS[2] buyers   KEYS[3] meta
-- Reply: the initial stock, or -1 when the product does not exist.
local initial = redis.call('HGET', KEYS[3], 'initial')
if not initial then
  return -1
end
redis.call('SET', KEYS[1], initial)
redis.call('DEL', KEYS[2])
return tonumber(initial)
