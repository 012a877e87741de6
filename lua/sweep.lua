-- sweep.lua: release, oldest first, the reservations of one product whose
-- hold has expired. Any number of servers may run it at once for the same
-- product: each reservation is released by the first call that finds it
-- due, and is no longer due for the next (see reservation.lua).
-- KEYS[1] stock  KEYS[2] buyers  KEYS[3] meta  KEYS[4] holders
-- KEYS[5] orders KEYS[6] released  KEYS[7] holds  KEYS[8] reservations
-- ARGV[1] the most reservations to release  ARGV[2] event channel
-- ARGV[3] control channel  ARGV[4] product id
-- Reply: {-1} unknown product, else {units released, the next expiry (ms,
--        -1 when nothing is reserved), now (ms), then per reservation
--        released how late it was (ms past its expiry)}.
-- A release that can turn a sold-out product back on is announced on the
-- control channel, so servers drop their cached SOLD_OUT.
--#include reservation.lua
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {-1}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local K = {stock = KEYS[1], buyers = KEYS[2], meta = KEYS[3], holders = KEYS[4], orders = KEYS[5],
  released = KEYS[6], holds = KEYS[7], reservations = KEYS[8], events = ARGV[2], product = ARGV[4]}
local units, first, lags = res_sweep(K, now, tonumber(ARGV[1]))
if units > 0 then
  redis.call('PUBLISH', ARGV[3], ARGV[4])
end
local out = {units, first, now}
for _, lag in ipairs(lags) do
  out[#out + 1] = lag
end
return out
