-- reservation.lua: the one place a reservation is released. It is not a
-- script of its own: the scripts that release reservations (purchase,
-- sweep, order, release) include it where their source says
-- `--#include reservation.lua` (see include in lua/doc.go), so they share
-- these functions and none of them writes a release its own way.
--
-- A product sold with a hold (meta's hold, in ms) reserves instead of
-- selling: the sale's entry in the orders stream is of type 'reserved', and
-- the reservation is a field of the reservations hash,
--   order id -> expires_ms|quantity|state|user id
-- where state is R (reserved), P (paid), E (released on expiry), C
-- (cancelled by its customer) or A (released by an admin), and, while it is
-- R, a member of the holds sorted set scored by its expiry. Meta counts the
-- units reserved, paid, expired and cancelled (admin releases count as
-- cancelled). The units of a reservation are taken from stock at once and
-- count in the customer's holding, as a sale's do, so a
-- reservation can never oversell; releasing one gives them back.
--
-- K names the keys: stock, buyers, meta, holders, orders, released, holds,
-- reservations; and events, the event channel, and product, the product
-- id its events name. Every function takes now, Redis's clock in ms.

-- res_parse reads a reservation record: expires_ms, quantity, state, user.
local function res_parse(r)
  local exp, qty, state, user = string.match(r, '^(%d+)|(%d+)|(%u)|(.*)$')
  return tonumber(exp), tonumber(qty), state, user
end

-- res_record is the text of a reservation record.
local function res_record(exp, qty, state, user)
  return string.format('%d|%d|%s|%s', exp, qty, state, user)
end

-- res_counter is meta's counter of the units released into state.
local res_counter = {E = 'expired', C = 'cancelled', A = 'cancelled'}
-- res_reason is the reason a release entry gives for state.
local res_reason = {E = 'expired', C = 'cancelled', A = 'admin'}

-- res_release releases reservation oid (its record's expiry, quantity
-- and customer), which is R, into state E, C or A: its units go back to
-- stock, the customer's allowance is freed, and the release is recorded (a
-- 'released' entry in the orders stream, the released hash, the record)
-- and published as an event. It returns the units left in stock after it.
-- The caller announces it on the control channel (once per call).
local function res_release(K, oid, exp, qty, user, state, now)
  local remaining = redis.call('INCRBY', K.stock, qty)
  if redis.call('HINCRBY', K.holders, user, -qty) <= 0 then
    redis.call('HDEL', K.holders, user)
  end
  redis.call('HINCRBY', K.meta, 'reserved', -qty)
  redis.call('HINCRBY', K.meta, res_counter[state], qty)
  redis.call('LREM', K.buyers, -1, user)
  local rel = redis.call('XADD', K.orders, '*', 'type', 'released', 'order_id', oid,
    'user_id', user, 'quantity', qty, 'remaining', remaining, 'reason', res_reason[state],
    'time', now)
  redis.call('HSET', K.released, oid, rel)
  redis.call('HSET', K.reservations, oid, res_record(exp, qty, state, user))
  redis.call('ZREM', K.holds, oid)
  redis.call('PUBLISH', K.events, '{"type":"released","product_id":' .. cjson.encode(K.product) ..
    ',"buyer":' .. cjson.encode(user) .. ',"remaining":' .. remaining ..
    ',"timestamp":' .. math.floor(now / 1000) .. ',"order_id":"' .. oid ..
    '","quantity":' .. qty .. ',"reason":"' .. res_reason[state] .. '"}')
  return remaining
end

-- res_due keeps meta's due, a bound a purchase reads to know whether any
-- reservation may have expired: at most the earliest expiry of an open
-- reservation (a reservation sets it when it is sooner; a release or
-- payment leaves it, a bound still), absent while none is open. It sets it
-- to the earliest expiry in holds, and returns it (-1 for none).
local function res_due(K)
  local first = redis.call('ZRANGE', K.holds, 0, 0, 'WITHSCORES')
  if first[2] then
    redis.call('HSET', K.meta, 'due', first[2])
    return tonumber(first[2])
  end
  redis.call('HDEL', K.meta, 'due')
  return -1
end

-- res_sweep releases, oldest first, up to limit reservations whose expiry
-- has passed, and keeps meta's due (res_due). It returns the units
-- released, the earliest expiry left (-1 for none), and per reservation
-- released how late it was (ms past its expiry).
local function res_sweep(K, now, limit)
  local due = redis.call('ZRANGEBYSCORE', K.holds, '-inf', now, 'LIMIT', 0, limit)
  local units, lags = 0, {}
  if #due == 0 then
    return units, res_due(K), lags
  end
  local recs = redis.call('HMGET', K.reservations, unpack(due))
  for j, oid in ipairs(due) do
    local exp, qty, state, user = res_parse(recs[j] or '')
    if state == 'R' then
      res_release(K, oid, exp, qty, user, 'E', now)
      units = units + qty
      lags[#lags + 1] = now - exp
    else
      redis.call('ZREM', K.holds, oid) -- settled already: not due
    end
  end
  return units, res_due(K), lags
end
