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
if tonumber(ARGV[1]) < was then
  -- A shorter hold: reservations made from now on may expire before those
  -- made before, which the orders stream then no longer lists in expiry
  -- order. Until all of those have expired (fifo_at), new ones go to the
  -- holds too (see reservation.lua).
  local t = redis.call('TIME')
  local at = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + was
  if at > tonumber(redis.call('HGET', KEYS[2], 'fifo_at') or '0') then
    redis.call('HSET', KEYS[2], 'fifo_at', at)
  end
end
if tonumber(ARGV[1]) > 0 then
  redis.call('HSET', KEYS[2], 'hold', ARGV[1])
else
  redis.call('HDEL', KEYS[2], 'hold')
end
return was
