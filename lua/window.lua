-- window.lua: open or close the sale window of a live product, by Redis's clock.
-- KEYS[1] stock  KEYS[2] meta
-- ARGV[1] 'open' (drop the start, and an end already passed) or 'close' (end now)
-- ARGV[2] control channel  ARGV[3] product id
-- Reply: -1 unknown product, else 1.
-- Every change that can turn a sold-out product back on is announced on the
-- control channel, so servers drop their cached SOLD_OUT.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[1] == 'open' then
  redis.call('HDEL', KEYS[2], 'start')
  local e = tonumber(redis.call('HGET', KEYS[2], 'end') or '')
  if e and e <= now then
    redis.call('HDEL', KEYS[2], 'end')
  end
else
  redis.call('HSET', KEYS[2], 'end', now)
end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
