-- room.lua: the line of a product's waiting room, shared by its scripts
-- (included where a script says `--#include room.lua`, see lua/doc.go).
--
-- One line per product, in its slot: every customer who joins gets a
-- place, a number n counted from 1. Those who join before the room opens
-- get theirs at the opening, in a uniformly random order: each joined the
-- line sorted set with a random score (drawn by the server, uniform in
-- [0, 2^52)), so their order by score is a uniform shuffle, fixed once the
-- room opens (no one joins it after), and a customer's place among them is
-- their rank + 1. Those who join after it get pre + 1, pre + 2, ... in the
-- order they arrive (pre: how many joined before it).
--
-- The room admits places in order at its rate: by now, the first
-- cursor(now) = a0 + floor((now - t0) * rate / 1000) places are admitted.
-- It is the same on every server (Redis's clock), needs no writer, and is
-- exact over any window. It pauses (a0 frozen) while the product has no
-- unit left (reserved units count as gone) and resumes when units come
-- back; it never runs ahead of the line: a customer who joins an empty
-- room is admitted at once, the next one 1/rate after (see room_join.lua).
--
-- The room hash: opens (ms), rate (places a second), a0, t0 (ms), paused
-- ('1' while sold out), pre (set at the opening), seq (joins after it),
-- admitted (tickets admitted so far). The tickets hash: user id ->
-- place|joined_ms|nonce, place 'p' until it is known. The admitted hash:
-- user id -> expires_ms|nonce of their admission.
-- K names the keys a script has: stock, room, tickets, line, admitted.

-- room_read reads the room hash, or nil when the product has no room.
-- (tonumber only for the fields that are set.)
local function room_read(K)
  local f = redis.call('HMGET', K.room, 'opens', 'rate', 'a0', 't0', 'paused', 'pre', 'seq')
  if not f[1] then
    return nil
  end
  local opens = tonumber(f[1])
  return {opens = opens, rate = tonumber(f[2]), a0 = f[3] and tonumber(f[3]) or 0,
    t0 = f[4] and tonumber(f[4]) or opens, paused = f[5] == '1', pre = f[6] and tonumber(f[6]) or -1,
    seq = f[7] and tonumber(f[7]) or 0}
end

-- room_begin opens a room script whose keys K names (stock, room,
-- tickets, line, and admitted when the script uses it): the room, with
-- the units in stock (r.left, read here once); or the failure to answer:
-- {-1} unknown product, {-6} no room.
local function room_begin(K)
  local stock = redis.call('GET', K.stock)
  if not stock then
    return nil, nil, {-1}
  end
  local r = room_read(K)
  if not r then
    return nil, nil, {-6}
  end
  r.left = tonumber(stock) or 0
  return K, r, nil
end

-- room_cursor is how many places are admitted by now.
local function room_cursor(r, now)
  if r.paused or now < r.t0 then
    return r.a0
  end
  return r.a0 + math.floor((now - r.t0) * r.rate / 1000)
end

-- room_open is false before the opening; at the first call after it, it
-- counts the customers who joined before (pre), so places are known.
local function room_open(K, r, now)
  if now < r.opens then
    return false
  end
  if r.pre < 0 then
    r.pre = redis.call('ZCARD', K.line)
    redis.call('HSET', K.room, 'pre', r.pre)
  end
  return true
end

-- room_left is whether the product has units left; the cursor pauses while
-- it has none and resumes when units come back.
local function room_left(K, r, now)
  if r.left <= 0 then
    if not r.paused and now >= r.opens then
      r.a0, r.paused = room_cursor(r, now), true
      redis.call('HSET', K.room, 'a0', r.a0, 'paused', '1')
    end
    return false
  end
  if r.paused then
    r.t0, r.paused = now, false
    redis.call('HSET', K.room, 't0', now, 'paused', '0')
  end
  return true
end

-- room_ticket parses a tickets record: place (nil while 'p'), joined_ms,
-- nonce.
local function room_ticket(rec)
  local place, joined, nonce = string.match(rec, '^([^|]*)|([^|]*)|(.*)$')
  return tonumber(place), tonumber(joined), nonce
end

-- room_place is user's place in line (rec their tickets record), once the
-- room is open: a place learnt from the line's order is written back, so
-- it is read in O(1) from then on.
local function room_place(K, user, rec)
  local place, joined, nonce = room_ticket(rec)
  if place then
    return place
  end
  place = redis.call('ZRANK', K.line, user) + 1
  redis.call('HSET', K.tickets, user, place .. '|' .. joined .. '|' .. nonce)
  return place
end
