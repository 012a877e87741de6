-- purchase.lua: M purchase attempts of one product (M >= 1), judged one
-- after the other in the order given, atomically. Each attempt gets
-- exactly the checks and answer it would get alone, in a call of its own,
-- after the attempts before it; a call with M = 1 is a single purchase.
-- Stock, meta and TIME are read once per call. Every check of every attempt
-- runs before any write; then the writes, folded where the data allows:
-- one DECRBY of stock, one HINCRBY of meta's held, one RPUSH of buyers, one
-- HSET (per-user limit) or one HINCRBY per customer of holders, one SET per
-- rate-limited customer; per sale one XADD (its order id), one PUBLISH, and
-- with a request_id one HSET + PEXPIRE of its record.
-- Rate limit: an attempt the limiter admits counts against the customer's
-- rate whatever its outcome (hammering a sold-out or not yet open sale is
-- still hammering); an attempt it refuses counts nothing. A replay (a
-- request_id already answered, in an earlier call or earlier in this one) is
-- answered before the limiter and does not count.
--
-- KEYS[1] stock   KEYS[2] buyers   KEYS[3] meta   KEYS[4] holders
-- KEYS[5] orders  KEYS[6] released orders
-- then per attempt i = 1..M:
--   KEYS[5+2i] its request record (product:{ID}:req:<request_id>)
--   KEYS[6+2i] its customer's rate limiter (product:{ID}:rate:<user id>)
-- ARGV[1] product id   ARGV[2] request record TTL (ms)   ARGV[3] event channel
-- ARGV[4] rate limit: ms between attempts (0 = no limit)   ARGV[5] burst
-- then per attempt i: ARGV[3+3i] user id   ARGV[4+3i] quantity (>= 1)
--   ARGV[5+3i] request id ('' for none)
-- Reply: an array of M answers, the i-th for attempt i, each an array whose
-- first element is the outcome:
--   {1, remaining, order_id, quantity}  sold (or the replay of an earlier sale)
--   {0}                       sold out
--   {-1}                      unknown product
--   {2, remaining}            fewer units left than asked
--   {3, held, limit}          the customer would exceed the per-user limit
--   {4, start_ms}             the sale has not started
--   {5, end_ms}               the sale has ended
--   {6}                       request id reused with a different payload
--   {7, retry_after_ms}       the customer is over the rate limit
--   {8, order_id}             the replayed request's order was released since
local m = (#KEYS - 6) / 2
local out = {}
local stock = redis.call('GET', KEYS[1])
if not stock then
  for i = 1, m do
    out[i] = {-1}
  end
  return out
end
local left = tonumber(stock)
if left == nil then
  return redis.error_reply('ERR stock of ' .. ARGV[1] .. ' is not a number')
end
local meta = redis.call('HMGET', KEYS[3], 'limit', 'start', 'end', 'epoch')
local limit = tonumber(meta[1] or '0')
local start_ms, end_ms = tonumber(meta[2] or ''), tonumber(meta[3] or '')
local epoch = meta[4] or ''
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval, burst = tonumber(ARGV[4]), tonumber(ARGV[5])

-- What this call has learnt or decided so far, by key: the writes to make.
local held = {}    -- user -> units held (read once, then this call's sales added)
local added = {}   -- user -> units this call sells them
local users = {}   -- users in order of their first sale, for the holders write
local tat = {}     -- rate limiter key -> theoretical arrival time
local admitted = {} -- rate limiter keys in order of their first admitted attempt
local counted = {} -- rate limiter key -> true once in admitted
local records = {} -- request key -> {fp, remaining, order_id (a sale of this call), released}
local sales = {}   -- {user, qty, remaining, request key, fingerprint, answers}
local sold = 0
-- int spells a count exactly (Lua's default number format has 14 digits).
local function int(x)
  return string.format('%d', x)
end

-- judge returns attempt i's answer, and records a sale's writes.
local function judge(i)
  local rkey, lkey = KEYS[5 + 2 * i], KEYS[6 + 2 * i]
  local user, q, rid = ARGV[3 + 3 * i], ARGV[4 + 3 * i], ARGV[5 + 3 * i]
  local qty = tonumber(q)
  local fingerprint = user .. '\n' .. q
  if rid ~= '' then
    local rec = records[rkey]
    if rec == nil then
      -- A record from before the last init or reset (another epoch) is stale.
      local r = redis.call('HMGET', rkey, 'fp', 'remaining', 'order_id', 'epoch')
      rec = false
      if r[1] and (r[4] or '') == epoch then
        rec = {r[1], tonumber(r[2]), r[3], redis.call('HEXISTS', KEYS[6], r[3]) == 1}
      end
      records[rkey] = rec
    end
    if rec then
      if rec[1] ~= fingerprint then
        return {6}
      end
      if rec[4] then
        return {8, rec[3]}
      end
      local a = {1, rec[2], rec[3], qty}
      if type(rec[3]) == 'table' then -- a sale of this call: its id comes with the writes
        table.insert(rec[3], a)
      end
      return a
    end
  end
  -- Rate limit (GCRA): one key per customer holding the theoretical arrival
  -- time; an attempt is allowed when it is at most burst intervals early.
  if interval > 0 then
    local at = tat[lkey]
    if at == nil then
      at = tonumber(redis.call('GET', lkey) or '0')
    end
    if at < now then
      at = now
    end
    local allow_at = at + interval - burst * interval
    if now < allow_at then
      tat[lkey] = at
      return {7, allow_at - now}
    end
    if not counted[lkey] then
      counted[lkey] = true
      table.insert(admitted, lkey)
    end
    tat[lkey] = at + interval
  end
  if start_ms and now < start_ms then
    return {4, start_ms}
  end
  if end_ms and now >= end_ms then
    return {5, end_ms}
  end
  if left <= 0 then
    return {0}
  end
  local h = held[user]
  if limit > 0 then
    if h == nil then
      h = tonumber(redis.call('HGET', KEYS[4], user) or '0')
      held[user] = h
    end
    if h + qty > limit then
      return {3, h, limit}
    end
  end
  if left < qty then
    return {2, left}
  end
  left = left - qty
  sold = sold + qty
  if added[user] == nil then
    added[user] = 0
    table.insert(users, user)
  end
  added[user] = added[user] + qty
  if h then
    held[user] = h + qty
  end
  local a = {1, left, false, qty}
  local answers = {a}
  table.insert(sales, {user, qty, left, rkey, fingerprint, answers, rid})
  if rid ~= '' then
    records[rkey] = {fingerprint, left, answers, false}
  end
  return a
end

for i = 1, m do
  out[i] = judge(i)
end

-- The writes.
for _, lkey in ipairs(admitted) do
  redis.call('SET', lkey, int(tat[lkey]), 'PX', int(tat[lkey] - now))
end
if sold == 0 then
  return out
end
redis.call('DECRBY', KEYS[1], int(sold))
redis.call('HINCRBY', KEYS[3], 'held', int(sold))
local buyers, holders = {}, {}
for _, s in ipairs(sales) do
  table.insert(buyers, s[1])
end
redis.call('RPUSH', KEYS[2], unpack(buyers))
if limit > 0 then
  for _, u in ipairs(users) do
    table.insert(holders, u)
    table.insert(holders, int(held[u]))
  end
  redis.call('HSET', KEYS[4], unpack(holders))
else
  for _, u in ipairs(users) do
    redis.call('HINCRBY', KEYS[4], u, int(added[u]))
  end
end
for _, s in ipairs(sales) do
  local user, qty, remaining = s[1], s[2], s[3]
  local oid = redis.call('XADD', KEYS[5], '*', 'type', 'sale', 'user_id', user,
    'quantity', int(qty), 'remaining', int(remaining), 'time', int(now))
  for _, a in ipairs(s[6]) do
    a[3] = oid
  end
  if s[7] ~= '' then
    redis.call('HSET', s[4], 'fp', s[5], 'remaining', int(remaining), 'order_id', oid,
      'epoch', epoch)
    redis.call('PEXPIRE', s[4], ARGV[2])
  end
  redis.call('PUBLISH', ARGV[3], '{"product_id":' .. cjson.encode(ARGV[1]) ..
    ',"buyer":' .. cjson.encode(user) ..
    ',"remaining":' .. int(remaining) ..
    ',"timestamp":' .. t[1] ..
    ',"order_id":"' .. oid .. '","quantity":' .. int(qty) .. '}')
end
return out
