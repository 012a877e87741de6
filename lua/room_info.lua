-- room_info.lua: a read of a product's waiting room, for operators; it
-- writes nothing.
-- KEYS[1] stock  KEYS[2] meta  KEYS[3] room  KEYS[4] tickets  KEYS[5] line
-- KEYS[6] admitted
-- Reply: {-1} unknown product, {-6} no room, else {1, opens ms, rate,
--   customers who joined (tickets), tickets admitted, places admitted by
--   now (the cursor, at most the line's length), paused (1 while sold
--   out), now ms}
--#include room.lua
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {-1}
end
local r = room_read({room = KEYS[3]})
if not r then
  return {-6}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local pre = r.pre
if pre < 0 then
  pre = redis.call('ZCARD', KEYS[5])
end
local cursor = 0
if now >= r.opens then
  cursor = math.min(room_cursor(r, now), pre + r.seq)
end
return {1, r.opens, r.rate, redis.call('HLEN', KEYS[4]),
  tonumber(redis.call('HGET', KEYS[3], 'admitted') or '0'), cursor, r.paused and 1 or 0, now}
