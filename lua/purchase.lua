local UNKNOWN_PRODUCT, SOLD_OUT, SOLD, INSUFFICIENT, OVER_LIMIT, NOT_STARTED, ENDED, REQUEST_REUSED, RATE_LIMITED, RELEASED, RESERVED, NOT_ADMITTED = -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
-- purchase.lua: M purchase attempts of one product (M >= 1), judged one
-- after the other in the order given, atomically. Each attempt gets
-- exactly the checks and answer it would get alone, in a call of its own,
-- after the attempts before it; a call with M = 1 is a single purchase.
-- Stock, meta and TIME are read once per call (meta's request record
-- fields once more in a call with a request id), and so are the request
-- records (one HMGET per request hash), rate limiters (MGET) and holdings
-- (HMGET) of all its attempts. Every check of every attempt runs before
-- any write; then the writes, folded where the data allows: one DECRBY of
-- stock, one RPUSH of buyers, one HSET of
-- holders, one SET per rate-limited customer, one HSET of the request
-- records and its PEXPIRE (and of meta's rgen fields when they change);
-- per sale one XADD (its order id) and one PUBLISH.
-- Rate limit: an attempt the limiter admits counts against the customer's
-- rate whatever its outcome (hammering a sold-out or not yet open sale is
-- still hammering); an attempt it refuses counts nothing. A replay (a
-- request_id already answered, in an earlier call or earlier in this one) is
-- answered before the limiter and does not count.
--
-- The full form (a merged call's with a rate limit):
-- KEYS[1] stock   KEYS[2] buyers   KEYS[3] meta   KEYS[4] holders
-- KEYS[5] orders  KEYS[6] released orders
-- KEYS[7], KEYS[8] the request records (two hashes, see below)
-- KEYS[9] holds  KEYS[10] reservations (see reservation.lua)
-- KEYS[11] the waiting room's admissions (see room.lua)
-- then per attempt i = 1..M:
--   KEYS[10+2i] its request record of the former formats
--              (product:{ID}:req:<request_id>), read only for a product
--              created before records went into KEYS[7..8]
--   KEYS[11+2i] its customer's rate limiter (product:{ID}:rate:<user id>)
-- ARGV[1] product id   ARGV[2] request record TTL (ms)   ARGV[3] event channel
-- ARGV[4] rate limit: ms between attempts (0 = no limit)   ARGV[5] burst
-- ARGV[6] control channel
-- then per attempt i: ARGV[3+4i] user id   ARGV[4+4i] quantity (>= 1)
--   ARGV[5+4i] request id ('' for none)
--   ARGV[6+4i] the nonce of its waiting-room admission ('' for none)
-- The compact form (a merged call's, or any call's, with no rate limit):
-- the full form without the keys of attempts (the engine does not send
-- what the script does not touch: its 11 keys tell it), and two arguments
-- more at the end: ARGV[7+4M], the prefix of the request record keys of
-- the former formats (the key of request id r is the prefix .. r), and
-- ARGV[8+4M], '1' when the product id and every user id of the call need
-- no escaping in JSON (the script then writes them into events as they
-- are, where it otherwise spells them with cjson.encode), else '0'.
-- The lone form: one purchase with no request id, rate limit or
-- admission nonce may come with only what the lean path below needs (five
-- keys tell it), which spares Redis making the rest:
--   KEYS[1..5] as above; ARGV[1] product id, ARGV[2] event channel,
--   ARGV[3] user id, ARGV[4] quantity.
-- When the lean path does not serve it (a room, reservations to release,
-- or a shortened hold: they need keys it has not), the call answers the
-- error NOTLEAN before it writes anything, and the engine's transport
-- sends it again in the compact form (engine.MergeSpec.LoneRefusal).
-- Request records: a hash field per request id, its value
-- epoch|expires_ms|remaining|order_id|fingerprint, in one of two hashes
-- that take turns (meta's rgen says which is being written since rgen_at,
-- in ms). A record counts until its own expiry (written + ARGV[2]); once
-- the hash being written is as old as the longest TTL any call gave
-- (meta's rttl), every record in the other one has expired: that one is
-- emptied and written from then on. So a record lives at most two TTLs,
-- and a call writes its records with one HSET, where a key per record
-- needed one SET ... PX each.
-- Holds: a product whose meta has a hold (ms) reserves instead of selling
-- (RESERVED; see reservation.lua): its orders-stream entry is the open
-- reservation, and nothing else is written of it but the reserved counter
-- (and meta's due and cursor when nothing was open), unless a shrunk hold
-- needs the holds set meanwhile (meta's fifo_at). Before it judges
-- anything the call releases the product's reservations whose hold has
-- expired, so no buyer is told SOLD_OUT while expired reservations hold
-- the last units, even with no server sweeping. Meta's due (see res_due)
-- says when that may be, so a call where nothing can have expired reads
-- nothing of the queues.
-- Waiting room: a product whose meta has room sells only to an attempt
-- whose admission nonce is the one its room issued the customer (the
-- admitted hash), before that admission expires (NOT_ADMITTED else).
-- Reply: one flat array of 4 elements per attempt, elements 4i-3 .. 4i for
-- attempt i: its outcome, then up to three values, 0 in the places an
-- outcome has no value for (a flat array because Redis turns each nested
-- table of a reply into an array at a cost, about 1 us an attempt). The
-- outcomes are the locals of the first line, which the engine checks is
-- the line engine/contract.go generates (the reply carries the numbers):
--   SOLD, remaining, order_id, quantity  sold (or the replay of an earlier sale)
--   SOLD_OUT, 0, 0, 0                 sold out
--   UNKNOWN_PRODUCT, 0, 0, 0          unknown product
--   INSUFFICIENT, remaining, 0, 0     fewer units left than asked
--   OVER_LIMIT, held, limit, 0        the customer would exceed the per-user limit
--   NOT_STARTED, start_ms, 0, 0       the sale has not started
--   ENDED, end_ms, 0, 0               the sale has ended
--   REQUEST_REUSED, 0, 0, 0           request id reused with a different payload
--   RATE_LIMITED, retry_after_ms, 0, 0  the customer is over the rate limit
--   RELEASED, order_id, 0, 0          the replayed request's order was released since
--   RESERVED, remaining, order_id, expires_ms  reserved (or the replay of an earlier reservation)
--   NOT_ADMITTED, why, 0, 0           a waiting room's product without a valid admission:
--                                     why is 1 none given, 2 not the one issued, 3 expired
-- KEYS and ARGV as locals: a local is a register, a global a lookup.
local KEYS, ARGV = KEYS, ARGV
local lone, compact = #KEYS == 5, #KEYS == 11
local m = lone and 1 or compact and (#ARGV - 8) / 4 or (#KEYS - 11) / 2
-- plain: the ids need no escaping in JSON (the lone form's never do).
local plain = lone or compact and ARGV[#ARGV] == '1'
local stock = redis.call('GET', KEYS[1])
if not stock then
  local out = {}
  for b = 1, 4 * m, 4 do
    out[b], out[b + 1], out[b + 2], out[b + 3] = UNKNOWN_PRODUCT, 0, 0, 0
  end
  return out
end
local left = tonumber(stock)
if left == nil then
  return redis.error_reply('ERR stock of ' .. ARGV[1] .. ' is not a number')
end
-- Meta, what every call needs: the first fields decide whether the call
-- is a lone purchase (below); a call with a request id reads the fields
-- of its records too (see the reads).
local meta = redis.call('HMGET', KEYS[3], 'limit', 'start', 'end', 'hold', 'reserved', 'due', 'room', 'fifo_at')
-- (tonumber only for the fields that are set: most are not.)
local limit = meta[1] and tonumber(meta[1]) or 0
local start_ms, end_ms = meta[2] and tonumber(meta[2]), meta[3] and tonumber(meta[3])
local hold = meta[4] and tonumber(meta[4]) or 0
local t = redis.call('TIME')
-- now, in ms. A lone sale of a product with no window, hold,
-- reservations or room needs the time only as the text of its record
-- (at, in the lean path), which costs less than the number.
local now
if not lone or meta[2] or meta[3] or meta[4] or meta[5] or meta[7] or meta[8] then
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local interval, burst = 0, 0
if not lone then
  interval, burst = tonumber(ARGV[4]), tonumber(ARGV[5])
  if compact and interval > 0 then
    return redis.error_reply('ERR a rate-limited purchase needs its rate limiter keys (the full form)')
  end
end
local room = meta[7] == '1'
-- reserving: the product has (or had) reservations, which a replay may
-- name. due: some may have expired (meta's due is at most the earliest
-- expiry of an open reservation; see res_sweep), to be released first.
local reserving = hold > 0 or meta[5]
-- due_at: meta's due as a number (nil when unset), read once.
local due_at = meta[6] and tonumber(meta[6])
-- (meta's reserved is HINCRBY's integer text, never negative: '0' is none.)
local due = meta[5] and meta[5] ~= '0' and (due_at or 0) <= now
-- queued: a reservation needs no queue but the orders stream (see
-- reservation.lua), unless a shrunk hold's reservations may still expire
-- before those made before them (meta's fifo_at).
local queued = not meta[8] or tonumber(meta[8]) <= now

-- The lean path: one purchase, with no request id, rate limit, room or
-- expired reservation to care for, is judged and written here, with the
-- same checks, answer and records as below, and none of the machinery of
-- a merged call (its tables and functions are not even made).
if lone and (room or due or hold > 0 and not queued) then
  return redis.error_reply('NOTLEAN this purchase needs the compact form (a room, reservations due, or a shortened hold)')
end
if (lone or m == 1 and ARGV[9] == '' and interval == 0) and not room and not due then
  local user, q, product, events, holds, reservations
  if lone then -- (a shortened hold, which needs the last two, went above)
    user, q, product, events = ARGV[3], ARGV[4], ARGV[1], ARGV[2]
  else
    user, q, product, events, holds, reservations = ARGV[7], ARGV[8], ARGV[1], ARGV[3], KEYS[9], KEYS[10]
  end
  -- (A quantity of 1, nearly every purchase's, needs no tonumber: the
  -- comparison of interned strings is a pointer's.)
  local qty = q == '1' and 1 or tonumber(q)
  if start_ms and now < start_ms then
    return {NOT_STARTED, start_ms, 0, 0}
  elseif end_ms and now >= end_ms then
    return {ENDED, end_ms, 0, 0}
  elseif left <= 0 then
    return {SOLD_OUT, 0, 0, 0}
  elseif left < qty and limit == 0 then
    return {INSUFFICIENT, left, 0, 0}
  end
  -- The holding is added first and taken back if a check fails: a sale
  -- then reads and writes it in one command.
  local h = redis.call('HINCRBY', KEYS[4], user, q)
  if limit > 0 and (h > limit or left < qty) then
    if h == qty then
      redis.call('HDEL', KEYS[4], user)
    else
      redis.call('HINCRBY', KEYS[4], user, -qty)
    end
    if h > limit then
      return {OVER_LIMIT, h - qty, limit, 0}
    end
    return {INSUFFICIENT, left, 0, 0}
  end
  -- %d: Lua's number format would write 1e+15.
  local remaining = string.format('%d', redis.call('DECRBY', KEYS[1], q))
  redis.call('RPUSH', KEYS[2], user)
  -- The time as text: Redis spells a number argument with %.17g, which
  -- costs more than this. Without now, from TIME's two texts: seconds,
  -- then the first three of six digits of microseconds.
  local at
  if now then
    at = string.format('%d', now)
  else
    local us = t[2]
    at = t[1] .. (#us > 3 and string.rep('0', 6 - #us) .. string.sub(us, 1, -4) or '000')
  end
  local event, oid = '{"product_id":'
  if hold > 0 then
    local exp = string.format('%d', now + hold)
    oid = redis.call('XADD', KEYS[5], '*', 'type', 'reserved', 'user_id', user,
      'quantity', q, 'remaining', remaining, 'expires', exp, 'time', at)
    if not queued then
      -- The record as res_record (reservation.lua) writes it.
      redis.call('HSET', reservations, oid, exp .. '|' .. q .. '|R|' .. user)
      redis.call('ZADD', holds, exp, oid)
    end
    redis.call('HINCRBY', KEYS[3], 'reserved', q)
    if not due_at then
      -- Nothing was open: the stream queue starts here.
      redis.call('HSET', KEYS[3], 'due', exp, 'cursor', oid)
    elseif due_at > now + hold then
      redis.call('HSET', KEYS[3], 'due', exp)
    end
    event = '{"type":"reserved","expires_at":' .. exp .. ',"product_id":'
  else
    oid = redis.call('XADD', KEYS[5], '*', 'type', 'sale', 'user_id', user,
      'quantity', q, 'remaining', remaining, 'time', at)
  end
  -- The ids as JSON strings: as they are when plain, else as
  -- cjson.encode writes them.
  if plain then
    event = event .. '"' .. product .. '","buyer":"' .. user .. '"'
  else
    event = event .. cjson.encode(product) .. ',"buyer":' .. cjson.encode(user)
  end
  redis.call('PUBLISH', events, event .. ',"remaining":' .. remaining .. ',"timestamp":' .. t[1] ..
    ',"order_id":"' .. oid .. '","quantity":' .. q .. '}')
  if hold > 0 then
    return {RESERVED, left - qty, oid, now + hold}
  end
  return {SOLD, left - qty, oid, qty}
end

--#include reservation.lua
local out = {}
local K = {stock = KEYS[1], buyers = KEYS[2], meta = KEYS[3], holders = KEYS[4], orders = KEYS[5],
  released = KEYS[6], holds = KEYS[9], reservations = KEYS[10], events = ARGV[3], product = ARGV[1]}
if due then
  local units, next = res_sweep(K, now, 100)
  -- The sweep kept meta's due: what this call's reservations compare with.
  due_at = next >= 0 and next or nil
  if units > 0 then
    left = left + units
    redis.call('PUBLISH', ARGV[6], ARGV[1])
  end
end

-- The fields of the request records, for a call with a request id.
local epoch, former, rgen, rgen_at, rttl, with_rid = '', false, 0, nil, 0, false
for i = 1, m do
  if ARGV[5 + 4 * i] ~= '' then
    with_rid = true
    local f = redis.call('HMGET', KEYS[3], 'epoch', 'records', 'rgen', 'rgen_at', 'rttl')
    epoch = f[1] or ''
    -- A product created (or reset) since records went into hashes has no
    -- record of its epoch in the former per-request keys.
    former = f[2] ~= 'hash'
    rgen, rgen_at, rttl = tonumber(f[3] or '0'), tonumber(f[4] or ''), tonumber(f[5] or '0')
    break
  end
end

-- What this call has learnt or decided so far, by key: the writes to make.
local held = {}    -- user -> units held (read once, then this call's sales added)
local admissions = {} -- user -> {expires_ms, nonce} of their admission (with a room)
local tat, dirty  -- rate limiter key -> theoretical arrival time; -> true once an attempt was admitted
if interval > 0 then
  tat, dirty = {}, {}
end
local records = {} -- request id -> {fp, remaining, order id, released} read back
-- The sales of this call, in order, in tables of numbers (a table a
-- sale would cost Redis an allocation and the collector's time): sale n
-- is attempt sale_at[n], which left sale_left[n] units; replays[n] lists
-- the places in out of its replays in this call, if any.
local sale_at, sale_left, replays, n_sales = {}, {}, {}, 0
local pending = {} -- request id -> its sale's number in this call
-- The customers sold to, once each, in the order of their first sale,
-- and the text of each one's new holding when it is the quantity of
-- their one sale in this call on no earlier holding (false else).
local buyers, held_text = {}, {}
local sold = 0
-- int spells a count exactly (Lua's default number format has 14 digits).
local function int(x)
  return string.format('%d', x)
end
-- found is a request record read back: false unless it is of this epoch
-- (one from before the last init or reset is stale), else {fingerprint,
-- remaining, order id, released}.
local function found(e, rem, oid, fp)
  if not fp or e ~= epoch then
    return false
  end
  return {fp, tonumber(rem), oid, redis.call('HEXISTS', KEYS[6], oid) == 1}
end
-- record parses a request record of the hashes (false when there is none
-- or it expired).
local function record(r)
  if not r then
    return false
  end
  local e, exp, rem, oid, fp = string.match(r, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|(.*)$')
  if not exp or tonumber(exp) <= now then
    return false
  end
  return found(e, rem, oid, fp)
end
-- formerRecord parses a request record of the former string format,
-- epoch|remaining|order_id|fingerprint (false when there is none).
local function formerRecord(r)
  if not r then
    return false
  end
  return found(string.match(r, '^([^|]*)|([^|]*)|([^|]*)|(.*)$'))
end
-- distinct returns, in order and once each, the values src[base + step * i]
-- of the attempts i = 1..m; seen[v] is set to mark for each (and a value
-- already in seen is left out).
local function distinct(src, base, step, seen, mark)
  local list = {}
  for i = 1, m do
    local v = src[base + step * i]
    if seen[v] == nil then
      seen[v] = mark
      list[#list + 1] = v
    end
  end
  return list
end

-- The reads every attempt may need, one command each for the whole call:
-- the request records (MGET), the rate limiters (MGET, when on), and when
-- units are left the customers' holdings (HMGET).
do
  if interval > 0 then
    local lkeys = distinct(KEYS, 11, 2, {}, true)
    local got = redis.call('MGET', unpack(lkeys))
    for j, lkey in ipairs(lkeys) do
      tat[lkey] = tonumber(got[j] or '0')
    end
  end
  if with_rid then
    local rids, attempt = {}, {} -- the request ids once each; -> its first attempt
    for i = 1, m do
      local rid = ARGV[5 + 4 * i]
      if rid ~= '' and not attempt[rid] then
        attempt[rid] = i
        rids[#rids + 1] = rid
      end
    end
    local cur = redis.call('HMGET', KEYS[7 + rgen], unpack(rids))
    local old = redis.call('HMGET', KEYS[8 - rgen], unpack(rids))
    local missing = {}
    for j, rid in ipairs(rids) do
      records[rid] = record(cur[j]) or record(old[j])
      if not records[rid] and former then
        missing[#missing + 1] = rid
      end
    end
    -- A product from before: its records may still be keys of their own,
    -- strings (MGET), or older still hashes (MGET answers nil for those:
    -- EXISTS finds whether there is any, in one call).
    if #missing > 0 then
      local rkeys = {}
      for j, rid in ipairs(missing) do
        rkeys[j] = compact and ARGV[#ARGV - 1] .. rid or KEYS[10 + 2 * attempt[rid]]
      end
      local got, hashes = redis.call('MGET', unpack(rkeys)), {}
      for j, rid in ipairs(missing) do
        records[rid] = formerRecord(got[j])
        if got[j] == false then
          hashes[#hashes + 1] = j
        end
      end
      if #hashes > 0 then
        local hkeys = {}
        for n, j in ipairs(hashes) do
          hkeys[n] = rkeys[j]
        end
        if redis.call('EXISTS', unpack(hkeys)) > 0 then
          for _, j in ipairs(hashes) do
            local r = redis.call('HMGET', rkeys[j], 'epoch', 'remaining', 'order_id', 'fp')
            records[missing[j]] = found(r[1] or '', r[2], r[3], r[4])
          end
        end
      end
    end
  end
  if left > 0 or room then
    -- (held is the set of customers seen here; each holds 0 until read.)
    local users = distinct(ARGV, 3, 4, held, 0)
    if left > 0 then
      local h = redis.call('HMGET', KEYS[4], unpack(users))
      for j, user in ipairs(users) do
        local v = h[j]
        if v then
          held[user] = tonumber(v)
        end
      end
    end
    if room then
      local a = redis.call('HMGET', KEYS[11], unpack(users))
      for j, user in ipairs(users) do
        if a[j] then
          local exp, nonce = string.match(a[j], '^([^|]*)|(.*)$')
          admissions[user] = {tonumber(exp), nonce}
        end
      end
    end
  end
end

-- judge returns attempt i's answer (its four elements), and records a
-- sale's writes (its order id goes into out, at 4i - 1, once the writes
-- give it).
local function judge(i)
  local user, q, rid = ARGV[3 + 4 * i], ARGV[4 + 4 * i], ARGV[5 + 4 * i]
  -- (A quantity of 1 needs no tonumber: see the lean path.)
  local qty = q == '1' and 1 or tonumber(q)
  if rid ~= '' then
    local n = pending[rid]
    if n then -- a sale of this call: its id comes with the writes
      local j = sale_at[n]
      if ARGV[3 + 4 * j] ~= user or ARGV[4 + 4 * j] ~= q then
        return REQUEST_REUSED, 0, 0, 0
      end
      local r = replays[n]
      if not r then
        r = {}
        replays[n] = r
      end
      r[#r + 1] = 4 * i - 3
      if hold > 0 then
        return RESERVED, sale_left[n], 0, now + hold
      end
      return SOLD, sale_left[n], 0, qty
    end
    local rec = records[rid]
    if rec then
      if rec[1] ~= user .. '\n' .. q then
        return REQUEST_REUSED, 0, 0, 0
      end
      if rec[4] then
        return RELEASED, rec[3], 0, 0
      end
      local oid = rec[3]
      if reserving then
        local exp = res_get(K, oid)
        if exp then
          return RESERVED, rec[2], oid, exp
        end
      end
      return SOLD, rec[2], oid, qty
    end
  end
  if room then
    local adm, given = admissions[user], ARGV[6 + 4 * i]
    if given == '' then
      return NOT_ADMITTED, 1, 0, 0
    elseif not adm or adm[2] ~= given then
      return NOT_ADMITTED, 2, 0, 0
    elseif adm[1] <= now then
      return NOT_ADMITTED, 3, 0, 0
    end
  end
  -- Rate limit (GCRA): one key per customer holding the theoretical arrival
  -- time; an attempt is allowed when it is at most burst intervals early.
  if interval > 0 then
    local lkey = KEYS[11 + 2 * i]
    local at = tat[lkey]
    if at < now then
      at = now
    end
    tat[lkey] = at
    local allow_at = at + interval - burst * interval
    if now < allow_at then
      return RATE_LIMITED, allow_at - now, 0, 0
    end
    tat[lkey], dirty[lkey] = at + interval, true
  end
  if start_ms and now < start_ms then
    return NOT_STARTED, start_ms, 0, 0
  end
  if end_ms and now >= end_ms then
    return ENDED, end_ms, 0, 0
  end
  if left <= 0 then
    return SOLD_OUT, 0, 0, 0
  end
  local h = held[user]
  if limit > 0 and h + qty > limit then
    return OVER_LIMIT, h, limit, 0
  end
  if left < qty then
    return INSUFFICIENT, left, 0, 0
  end
  held[user] = h + qty
  left = left - qty
  sold = sold + qty
  if held_text[user] == nil then
    buyers[#buyers + 1] = user
    held_text[user] = h == 0 and q
  else
    held_text[user] = false
  end
  n_sales = n_sales + 1
  sale_at[n_sales], sale_left[n_sales] = i, left
  if rid ~= '' then
    pending[rid] = n_sales
  end
  if hold > 0 then
    return RESERVED, left, 0, now + hold
  end
  return SOLD, left, 0, qty
end

for i = 1, m do
  local b = 4 * i - 3
  out[b], out[b + 1], out[b + 2], out[b + 3] = judge(i)
end

-- The writes.
for lkey in pairs(dirty or {}) do
  redis.call('SET', lkey, int(tat[lkey]), 'PX', int(tat[lkey] - now))
end
if sold == 0 then
  return out
end
redis.call('DECRBY', KEYS[1], int(sold))
if n_sales == 1 then
  redis.call('RPUSH', KEYS[2], ARGV[3 + 4 * sale_at[1]])
else
  local list = {}
  for n = 1, n_sales do
    list[n] = ARGV[3 + 4 * sale_at[n]]
  end
  redis.call('RPUSH', KEYS[2], unpack(list))
end
-- Every customer's holding is known: one HSET of the new values.
local fields = {}
for j, u in ipairs(buyers) do
  fields[2 * j - 1], fields[2 * j] = u, held_text[u] or int(held[u])
end
redis.call('HSET', KEYS[4], unpack(fields))
local recs, expires, at, secs = {}, int(now + tonumber(ARGV[2])), int(now), t[1]
-- The event's ids: as they are between quotes when plain, else as
-- cjson.encode spells them (quotes included).
local quote = plain and '"' or ''
local event = '{"product_id":' .. quote .. (plain and ARGV[1] or cjson.encode(ARGV[1])) .. quote .. ',"buyer":' .. quote
-- A reservation: its entry says when it expires, and its record and
-- place in holds are written with one HSET and one ZADD for the call.
local kind, until_ms, hset, zadd, first = 'sale', '', {}, {}, nil
if hold > 0 then
  until_ms = int(now + hold)
  kind, event = 'reserved', '{"type":"reserved","expires_at":' .. until_ms .. ',' .. string.sub(event, 2)
end
for n = 1, n_sales do
  local i = sale_at[n]
  local user, q, rid, remaining = ARGV[3 + 4 * i], ARGV[4 + 4 * i], ARGV[5 + 4 * i], int(sale_left[n])
  local oid
  if hold > 0 then
    oid = redis.call('XADD', KEYS[5], '*', 'type', kind, 'user_id', user,
      'quantity', q, 'remaining', remaining, 'expires', until_ms, 'time', at)
    if not queued then
      local z = #hset
      hset[z + 1], hset[z + 2] = oid, res_record(now + hold, tonumber(q), 'R', user)
      zadd[z + 1], zadd[z + 2] = until_ms, oid
    end
    first = first or oid
  else
    oid = redis.call('XADD', KEYS[5], '*', 'type', kind, 'user_id', user,
      'quantity', q, 'remaining', remaining, 'time', at)
  end
  out[4 * i - 1] = oid
  local r = replays[n]
  if r then -- its replays in this call
    for _, b in ipairs(r) do
      out[b + 2] = oid
    end
  end
  if rid ~= '' then
    local z = #recs
    recs[z + 1], recs[z + 2] = rid, epoch .. '|' .. expires .. '|' .. remaining .. '|' .. oid .. '|' .. user .. '\n' .. q
  end
  redis.call('PUBLISH', ARGV[3], event .. (plain and user or cjson.encode(user)) .. quote ..
    ',"remaining":' .. remaining ..
    ',"timestamp":' .. secs ..
    ',"order_id":"' .. oid .. '","quantity":' .. q .. '}')
end
if hold > 0 then
  if #hset > 0 then
    redis.call('HSET', KEYS[10], unpack(hset))
    redis.call('ZADD', KEYS[9], unpack(zadd))
  end
  redis.call('HINCRBY', KEYS[3], 'reserved', int(sold))
  if not due_at then
    redis.call('HSET', KEYS[3], 'due', until_ms, 'cursor', first) -- as in the lean path
  elseif due_at > now + hold then
    redis.call('HSET', KEYS[3], 'due', until_ms)
  end
end
if #recs > 0 then
  local ttl = tonumber(ARGV[2])
  local turn = not rgen_at or ttl > rttl -- meta's rgen fields change
  rttl = math.max(rttl, ttl)
  if not rgen_at then
    rgen_at = now
  elseif now - rgen_at >= rttl then
    -- Everything in the other hash was written before rgen_at, so more
    -- than rttl ago: all of it has expired.
    rgen, rgen_at, turn = 1 - rgen, now, true
    redis.call('DEL', KEYS[7 + rgen])
  end
  if turn then
    redis.call('HSET', KEYS[3], 'rgen', rgen, 'rgen_at', int(rgen_at), 'rttl', int(rttl))
  end
  redis.call('HSET', KEYS[7 + rgen], unpack(recs))
  -- The hash outlives its last record, and goes once the sale goes quiet.
  redis.call('PEXPIRE', KEYS[7 + rgen], int(rttl))
end
return out
