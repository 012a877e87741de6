-- reservation.lua: the one place a reservation is found and released. It
-- is not a script of its own: the scripts that settle or release
-- reservations (purchase, sweep, order, release) include it where their
-- source says `--#include reservation.lua` (see include in lua/doc.go), so
-- they share these functions and none of them writes a release its own
-- way.
--
-- A product sold with a hold (meta's hold, in ms) reserves instead of
-- selling: the sale's entry in the orders stream is of type 'reserved',
-- with its expiry ('expires', ms), customer and quantity; the order id is
-- the entry's id. That entry is the whole reservation while it is open:
-- reserving writes nothing else of it. Its state is R (reserved) until
-- it is settled, then P (paid), E (released on expiry), C (cancelled by
-- its customer) or A (released by an admin), kept in the reservations hash
--   order id -> expires_ms|quantity|state|user id
-- written when it is settled (a field with no entry in the hash is R).
-- Expiry needs no queue of its own: while the hold does not shrink, every
-- reservation expires after the ones before it, so the orders stream is
-- in expiry order, and a sweep reads it from meta's cursor (the entry to
-- read next, an id or '(' id), releases what has expired and stops at
-- the first open reservation that has not. A hold that shrinks breaks
-- that order until every reservation made before has expired (meta's
-- fifo_at, set by hold.lua): meanwhile reservations go to the holds sorted
-- set too, scored by expiry, with a record R in the hash, the queue the
-- sweep reads first (products of releases before the stream queue have
-- theirs there as well). Meta counts the units reserved, paid, expired and
-- cancelled (admin releases count as cancelled). The units of a
-- reservation are taken from stock at once and count in the customer's
-- holding, as a sale's do, so a reservation can never oversell; releasing
-- one gives them back.
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

-- res_fields reads a stream entry's fields into a table.
local function res_fields(f)
  local t = {}
  for i = 1, #f, 2 do
    t[f[i]] = f[i + 1]
  end
  return t
end

-- res_get finds reservation oid: its expiry, quantity, state and
-- customer (nothing when no reservation has that id): its record if it
-- has one, else its entry in the orders stream (open, R).
local function res_get(K, oid)
  local r = redis.call('HGET', K.reservations, oid)
  if r then
    return res_parse(r)
  end
  local e = redis.call('XRANGE', K.orders, oid, oid)
  if #e == 0 then
    return
  end
  local f = res_fields(e[1][2])
  if f.type ~= 'reserved' then
    return
  end
  return tonumber(f.expires), tonumber(f.quantity), 'R', f.user_id
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

-- res_max_hold is engine.MaxHold in ms: a product that has no cursor yet
-- (one made before the stream was its queue) is read from that far back.
local res_max_hold = 604800000

-- res_scan releases, in stream order, up to limit reservations of the
-- stream queue whose expiry has passed, from meta's cursor (moved past
-- them), and appends to lags how late each was. It returns the units
-- released and the expiry of the first open reservation it stopped at
-- (now when it read limit entries without reaching one; nil when it read
-- the whole stream). A reservation of the holds is left to them unless
-- it has expired.
local function res_scan(K, now, limit, lags)
  local cursor = redis.call('HGET', K.meta, 'cursor')
  local from, units, read = cursor or string.format('%d-0', math.max(now - res_max_hold, 0)), 0, 0
  local stop
  while not stop and read < limit do
    -- (An entry's type is its first field: every XADD writes it first.)
    local want = math.min(limit - read, 32)
    local page = redis.call('XRANGE', K.orders, from, '+', 'COUNT', want)
    local oids = {}
    for _, e in ipairs(page) do
      if e[2][2] == 'reserved' then
        oids[#oids + 1] = e[1]
      end
    end
    local recs = #oids > 0 and redis.call('HMGET', K.reservations, unpack(oids)) or {}
    local j = 0
    for _, e in ipairs(page) do
      local oid = e[1]
      if e[2][2] == 'reserved' then
        j = j + 1
        local state = recs[j] and select(3, res_parse(recs[j])) or 'R'
        if state == 'R' then
          local f = res_fields(e[2])
          local exp = tonumber(f.expires)
          if exp <= now then
            res_release(K, oid, exp, tonumber(f.quantity), f.user_id, 'E', now)
            units = units + tonumber(f.quantity)
            lags[#lags + 1] = now - exp
          elseif not recs[j] then
            stop = exp -- open, in the stream queue, not yet due: all after it expire later
            from = oid
            break
          end
        end
      end
      from, read = '(' .. oid, read + 1
    end
    if #page < want and not stop then
      break -- the end of the stream
    end
  end
  if from ~= cursor then
    redis.call('HSET', K.meta, 'cursor', from)
  end
  if not stop and read >= limit then
    stop = now
  end
  return units, stop
end

-- res_due keeps meta's due, a bound a purchase reads to know whether any
-- reservation may have expired: at most the earliest expiry of an open
-- reservation (a reservation sets it when it is sooner; a release or
-- payment leaves it, a bound still), absent while none is open. It sets it
-- to the sooner of next (the stream queue's, or nil) and the earliest
-- expiry in holds, and returns it (-1 for none).
local function res_due(K, next)
  local first = redis.call('ZRANGE', K.holds, 0, 0, 'WITHSCORES')
  if first[2] and (not next or tonumber(first[2]) < next) then
    next = tonumber(first[2])
  end
  if next then
    redis.call('HSET', K.meta, 'due', next)
    return next
  end
  redis.call('HDEL', K.meta, 'due')
  return -1
end

-- res_sweep releases, oldest first, up to limit reservations of the holds
-- and up to limit of the stream queue whose expiry has passed (none when
-- meta's reserved counter says none is open), and keeps meta's due
-- (res_due). It returns the units released, the earliest
-- expiry left (-1 for none), and per reservation released how late it was
-- (ms past its expiry).
local function res_sweep(K, now, limit)
  local units, lags = 0, {}
  if (tonumber(redis.call('HGET', K.meta, 'reserved')) or 0) <= 0 then
    return units, res_due(K, nil), lags -- nothing open: nothing to read
  end
  local due = redis.call('ZRANGEBYSCORE', K.holds, '-inf', now, 'LIMIT', 0, limit)
  if #due > 0 then
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
  end
  local more, next = res_scan(K, now, limit, lags)
  return units + more, res_due(K, next), lags
end
