-- release.lua: an admin releases an order. Its units go back to stock, the
-- customer's allowance is freed, and the release is recorded in the orders
-- stream. Releasing an order twice changes nothing the second time. A
-- reservation is released as its customer's cancel would (see
-- reservation.lua), unless it is paid.
-- KEYS[1] stock  KEYS[2] buyers  KEYS[3] meta  KEYS[4] holders
-- KEYS[5] orders KEYS[6] released  KEYS[7] holds  KEYS[8] reservations
-- ARGV[1] order id (a stream entry id)  ARGV[2] control channel  ARGV[3] product id
-- ARGV[4] event channel
-- Every change that can turn a sold-out product back on is announced on the
-- control channel, so servers drop their cached SOLD_OUT.
-- Reply: {-1} unknown product, {-2} no such sale, {-5} a paid reservation, else
--        {1 released now | 0 released before, remaining, quantity, user id}
--#include reservation.lua
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {-1}
end
local K = {stock = KEYS[1], buyers = KEYS[2], meta = KEYS[3], holders = KEYS[4], orders = KEYS[5],
  released = KEYS[6], holds = KEYS[7], reservations = KEYS[8], events = ARGV[4], product = ARGV[3]}
local exp, qty, state, user = res_get(K, ARGV[1])
if exp then
  if state == 'P' then
    return {-5}
  elseif state ~= 'R' then
    return {0, tonumber(redis.call('GET', KEYS[1])), qty, user}
  end
  local t = redis.call('TIME')
  local remaining = res_release(K, ARGV[1], exp, qty, user, 'A',
    tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
  redis.call('PUBLISH', ARGV[2], ARGV[3])
  return {1, remaining, qty, user}
end
local e = redis.call('XRANGE', KEYS[5], ARGV[1], ARGV[1])
if #e == 0 then
  return {-2}
end
local f = {}
for i = 1, #e[1][2], 2 do
  f[e[1][2][i]] = e[1][2][i + 1]
end
if f['type'] ~= 'sale' then
  return {-2}
end
local qty, user = tonumber(f['quantity']), f['user_id']
if redis.call('HEXISTS', KEYS[6], ARGV[1]) == 1 then
  return {0, tonumber(redis.call('GET', KEYS[1])), qty, user}
end
local remaining = redis.call('INCRBY', KEYS[1], qty)
if redis.call('HINCRBY', KEYS[4], user, -qty) <= 0 then
  redis.call('HDEL', KEYS[4], user)
end
redis.call('LREM', KEYS[2], -1, user)
local t = redis.call('TIME')
local rel = redis.call('XADD', KEYS[5], '*', 'type', 'release', 'order_id', ARGV[1],
  'user_id', user, 'quantity', qty, 'remaining', remaining,
  'time', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
redis.call('HSET', KEYS[6], ARGV[1], rel)
redis.call('PUBLISH', ARGV[2], ARGV[3])
return {1, remaining, qty, user}
