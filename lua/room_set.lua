-- room_set.lua: give a product a waiting room, or change its opening or
-- rate. A product with a room sells only to purchases that carry the
-- admission its room issued (see purchase.lua and room_poll.lua). A new
-- room starts empty; changing a live one keeps its line and places, and
-- the places admitted so far: the new rate counts from now.
-- KEYS[1] stock  KEYS[2] meta  KEYS[3] room  KEYS[4] tickets  KEYS[5] line
-- KEYS[6] admitted
-- ARGV[1] opens (ms; '' to keep)  ARGV[2] rate (places a second)
-- ARGV[3] control channel  ARGV[4] product id
-- Reply: {-1} unknown product, else {1 created or 0 changed, opens ms, rate,
--         customers in line}.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {-1}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate = tonumber(ARGV[2])
local f = redis.call('HMGET', KEYS[3], 'opens', 'rate', 'a0', 't0', 'paused')
local created = 0
if not f[1] then
  created = 1
  redis.call('DEL', KEYS[4], KEYS[5], KEYS[6])
  local opens = tonumber(ARGV[1]) or now
  redis.call('HSET', KEYS[3], 'opens', opens, 'rate', rate, 'a0', 0, 't0', opens, 'paused', '0',
    'seq', 0, 'admitted', 0)
else
  local opens, old, a0, t0 = tonumber(f[1]), tonumber(f[2]), tonumber(f[3]), tonumber(f[4])
  -- The places admitted so far stay admitted; the new rate counts from now.
  if f[5] ~= '1' and now > t0 then
    a0 = a0 + math.floor((now - t0) * old / 1000)
    t0 = now
  end
  if ARGV[1] ~= '' and now < opens and redis.call('HEXISTS', KEYS[3], 'pre') == 0 then
    -- Before the old opening nothing counted yet (t0 was that opening):
    -- the new one counts from itself, or from now if it has passed. Once
    -- the old opening has passed the room is open, whether or not anyone
    -- has called since: its opening stays.
    opens = tonumber(ARGV[1])
    t0 = math.max(math.min(t0, now), opens)
  end
  redis.call('HSET', KEYS[3], 'opens', opens, 'rate', rate, 'a0', a0, 't0', t0)
end
redis.call('HSET', KEYS[2], 'room', '1')
redis.call('PUBLISH', ARGV[3], ARGV[4])
return {created, tonumber(redis.call('HGET', KEYS[3], 'opens')), rate,
  redis.call('HLEN', KEYS[4])}
