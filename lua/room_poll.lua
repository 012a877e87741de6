-- room_poll.lua: where a customer in a product's waiting room stands, in
-- O(1) (the first poll after the opening of one who joined before it
-- reads their rank once, O(log N)). In their turn the customer is
-- admitted, once: the admission (its expiry and nonce) is kept, and the
-- purchase script checks it; a later poll answers the same one.
-- KEYS[1] stock  KEYS[2] meta  KEYS[3] room  KEYS[4] tickets  KEYS[5] line
-- KEYS[6] admitted
-- ARGV[1] user id  ARGV[2] the ticket's nonce
-- ARGV[3] a random nonce (the admission's, if this poll admits)
-- ARGV[4] how long an admission lasts (ms)
-- Reply: {-1} unknown product, {-6} no room, {-7} no such ticket, else
--   {0 sold out}, {1 waiting, places ahead (-1 before the opening), eta ms
--   (-1 unknown: the sale is paused)} or {2 admitted, expires ms, the
--   admission's nonce, ms waited from the join to the admission}
--#include room.lua
local K, r, fail = room_begin({stock = KEYS[1], room = KEYS[3], tickets = KEYS[4], line = KEYS[5],
  admitted = KEYS[6]})
if fail then
  return fail
end
local user = ARGV[1]
local rec = redis.call('HGET', KEYS[4], user)
if not rec then
  return {-7}
end
local _, joined, nonce = room_ticket(rec)
if nonce ~= ARGV[2] then
  return {-7}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- Nobody waits for nothing: while no unit is left, an admitted customer
-- too is told SOLD_OUT (their admission stays, and is answered again once
-- units come back).
if not room_left(K, r, now) then
  return {0}
end
local adm = redis.call('HGET', KEYS[6], user)
if adm then
  local exp, anonce = string.match(adm, '^([^|]*)|(.*)$')
  return {2, tonumber(exp), anonce, -1}
end
if not room_open(K, r, now) then
  return {1, -1, r.opens - now}
end
local ahead = room_place(K, user, rec) - room_cursor(r, now)
if ahead > 0 then
  return {1, ahead, math.ceil(ahead * 1000 / r.rate)}
end
local exp = now + tonumber(ARGV[4])
redis.call('HSET', KEYS[6], user, exp .. '|' .. ARGV[3])
redis.call('HINCRBY', KEYS[3], 'admitted', 1)
return {2, exp, ARGV[3], now - joined}
