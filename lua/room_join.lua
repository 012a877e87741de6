-- room_join.lua: put a customer in a product's waiting room. A customer who
-- joined before keeps their place (and ticket). Once the product has no
-- unit left, a join answers SOLD_OUT and takes no place.
-- KEYS[1] stock  KEYS[2] room  KEYS[3] tickets  KEYS[4] line
-- ARGV[1] user id  ARGV[2] a random score, uniform in [0, 2^52) (the
-- customer's order among those who join before the opening)
-- ARGV[3] a random nonce (the ticket's, if this is the customer's first join)
-- Reply: {-1} unknown product, {-6} no room, else
--   {0 sold out} or {1 waiting, places ahead to admission (-1 before the
--   opening), eta ms (-1 unknown), the ticket's nonce}
--#include room.lua
local K, r, fail = room_begin({stock = KEYS[1], room = KEYS[2], tickets = KEYS[3], line = KEYS[4]})
if fail then
  return fail
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if not room_left(K, r, now) then
  return {0}
end
local user = ARGV[1]
local rec = redis.call('HGET', K.tickets, user)
-- place, nonce: a new customer's are known here, a returning one's are
-- read from their ticket.
local place, nonce
if not rec then
  if now < r.opens then
    redis.call('ZADD', K.line, ARGV[2], user)
    rec = 'p|' .. now .. '|' .. ARGV[3]
  else
    room_open(K, r, now)
    -- The room never runs ahead of its line: when the cursor has passed
    -- its last place, it is set back to it, so this customer's place
    -- comes up one step (1/rate) after the last one did, or now if that
    -- was longer ago.
    local total = r.pre + r.seq
    if not r.paused and room_cursor(r, now) >= total then
      local step = 1000 / r.rate
      r.a0, r.t0 = total, math.max(now - step, r.t0 + (total - r.a0) * step)
      redis.call('HSET', K.room, 'a0', r.a0, 't0', r.t0)
    end
    r.seq = redis.call('HINCRBY', K.room, 'seq', 1)
    place = r.pre + r.seq
    -- (%d: Lua's own number text costs a float formatting each.)
    rec = string.format('%d|%d|%s', place, now, ARGV[3])
  end
  nonce = ARGV[3]
  redis.call('HSET', K.tickets, user, rec)
else
  nonce = select(3, room_ticket(rec))
end
if not room_open(K, r, now) then
  return {1, -1, r.opens - now, nonce}
end
local ahead = math.max((place or room_place(K, user, rec)) - room_cursor(r, now), 0)
return {1, ahead, math.ceil(ahead * 1000 / r.rate), nonce}
