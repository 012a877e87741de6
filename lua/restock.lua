-- restock.lua: add units to a live product; initial grows by as much.
-- KEYS[1] stock  KEYS[2] meta  KEYS[3] orders
-- ARGV[1] units (>= 1)  ARGV[2] control channel  ARGV[3] product id
-- Every change that can turn a sold-out product back on is announced on the
-- control channel, so servers drop their cached SOLD_OUT.
-- Reply: {-1} unknown product, else {remaining, initial}.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {-1}
end
local remaining = redis.call('INCRBY', KEYS[1], ARGV[1])
local initial = redis.call('HINCRBY', KEYS[2], 'initial', ARGV[1])
local t = redis.call('TIME')
redis.call('XADD', KEYS[3], '*', 'type', 'restock', 'quantity', ARGV[1],
  'remaining', remaining, 'time', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
redis.call('PUBLISH', ARGV[2], ARGV[3])
return {remaining, initial}
