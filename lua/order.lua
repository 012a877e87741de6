-- order.lua: settle a reservation, once: confirm it (paid) or cancel it
-- (its units back in stock at once). A reservation whose hold has expired
-- is released here first, so a confirm racing the expiry ends in exactly
-- one of paid or released, whichever server runs either.
-- KEYS[1] stock  KEYS[2] buyers  KEYS[3] meta  KEYS[4] holders
-- KEYS[5] orders KEYS[6] released  KEYS[7] holds  KEYS[8] reservations
-- ARGV[1] 'confirm' or 'cancel'  ARGV[2] order id
-- ARGV[3] the customer asking ('' for an admin, who may cancel any order)
-- ARGV[4] event channel  ARGV[5] control channel  ARGV[6] product id
-- Reply: {-1} unknown product, {-2} no reservation has that order id,
--   {-4} the order is another customer's, else
--   {outcome, changed (1 when this call settled or released it), units left
--    in stock, quantity, the order's customer}, outcome one of
--   1 paid (now, or before: a retried confirm), 2 released on expiry,
--   3 released by a cancel (now or before), 4 paid (so a cancel changes nothing).
--#include reservation.lua
local oid = ARGV[2]
local K = {stock = KEYS[1], buyers = KEYS[2], meta = KEYS[3], holders = KEYS[4], orders = KEYS[5],
  released = KEYS[6], holds = KEYS[7], reservations = KEYS[8], events = ARGV[4], product = ARGV[6]}
local exp, qty, state, user = res_get(K, oid)
if not exp then
  if redis.call('EXISTS', KEYS[1]) == 0 then
    return {-1}
  end
  return {-2}
end
if ARGV[3] ~= '' and ARGV[3] ~= user then
  return {-4}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local changed = 0
local function release(into)
  res_release(K, oid, exp, qty, user, into, now)
  redis.call('PUBLISH', ARGV[5], ARGV[6])
  state, changed = into, 1
end
if state == 'R' and exp <= now then
  release('E')
end
local outcome
if ARGV[1] == 'confirm' then
  if state == 'R' then
    redis.call('HSET', KEYS[8], oid, res_record(exp, qty, 'P', user))
    redis.call('ZREM', KEYS[7], oid)
    redis.call('HINCRBY', KEYS[3], 'reserved', -qty)
    redis.call('HINCRBY', KEYS[3], 'paid', qty)
    redis.call('XADD', KEYS[5], '*', 'type', 'paid', 'order_id', oid, 'user_id', user,
      'quantity', qty, 'time', now)
    redis.call('PUBLISH', ARGV[4], '{"type":"paid","product_id":' .. cjson.encode(ARGV[6]) ..
      ',"buyer":' .. cjson.encode(user) .. ',"timestamp":' .. t[1] ..
      ',"order_id":"' .. oid .. '","quantity":' .. qty .. '}')
    state, changed = 'P', 1
  end
  outcome = ({P = 1, E = 2, C = 3, A = 3})[state]
else
  if state == 'R' then
    release(ARGV[3] == '' and 'A' or 'C')
  end
  outcome = ({P = 4, E = 2, C = 3, A = 3})[state]
end
return {outcome, changed, tonumber(redis.call('GET', KEYS[1]) or '0'), qty, user}
