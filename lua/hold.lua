-- hold.lua: change how long a live product's reservations last. New
-- purchases reserve for the new hold (0: they sell outright); reservations
-- already made keep their expiry.
-- KEYS[1] stock  KEYS[2] meta
-- ARGV[1] hold (ms, 0 for none)
-- Reply: -1 unknown product, else the hold it replaced (ms, 0 for none).
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
local was = tonumber(redis.call('HGET', KEYS[2], 'hold') or '0')
if tonumber(ARGV[1]) > 0 then
  redis.call('HSET', KEYS[2], 'hold', ARGV[1])
else
  redis.call('HDEL', KEYS[2], 'hold')
end
return was
