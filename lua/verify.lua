-- verify.lua: audit one product's books, atomically. It reads every order,
-- customer and buyer, so it costs O(orders) and blocks Redis meanwhile
-- (roughly a second per million orders): run it when the sale is quiet.
-- KEYS[1] stock  KEYS[2] buyers  KEYS[3] meta  KEYS[4] holders  KEYS[5] orders
-- KEYS[6] holds  KEYS[7] reservations
-- Reply: {-1} unknown product, else
--   {1, {discrepancy, ...}, {initial, remaining, held, units sold, units released, orders, customers,
--    units reserved, units paid}}
-- Reservations (see reservation.lua) balance too: initial = remaining +
-- reserved + paid + units sold outright; each reservation is in exactly one
-- state, the orders stream agrees (one 'paid' entry for a paid one, one
-- 'released' for a released one, never both), holds lists exactly the
-- reserved ones with a record, and every other reserved one is at or after
-- the sweep's cursor.
local stock = redis.call('GET', KEYS[1])
if not stock then
  return {-1}
end
local problems = {}
local function bad(msg)
  if #problems < 20 then
    problems[#problems + 1] = msg
  elseif #problems == 20 then
    problems[21] = 'more discrepancies not shown'
  end
end
local remaining = tonumber(stock)
local m = redis.call('HMGET', KEYS[3], 'initial', 'limit')
local initial, limit = tonumber(m[1]) or 0, tonumber(m[2]) or 0
if remaining < 0 then
  bad('stock is negative: ' .. remaining)
end

-- Per-customer records.
local held, customers, held_sum = {}, 0, 0
local h = redis.call('HGETALL', KEYS[4])
for i = 1, #h, 2 do
  local u, q = h[i], tonumber(h[i + 1])
  held[u] = q
  customers = customers + 1
  held_sum = held_sum + q
  if q <= 0 then
    bad('customer ' .. u .. ' holds ' .. q .. ' units')
  end
  if limit > 0 and q > limit then
    bad('customer ' .. u .. ' holds ' .. q .. ' units, above the limit of ' .. limit)
  end
end
if initial ~= remaining + held_sum then
  bad('initial ' .. initial .. ' != remaining ' .. remaining .. ' + units held ' .. held_sum)
end

-- The orders stream: sales minus releases, per customer.
local units, orders = {}, {}
local sold, released, active = 0, 0, 0
local settled = {} -- reservation order id -> 'p' and 'r' for its paid and released entries
local resv = {}    -- the reservations, in stream order: {order id, expires_ms, quantity}
local from = '-'
while true do
  local page = redis.call('XRANGE', KEYS[5], from, '+', 'COUNT', 1000)
  for _, e in ipairs(page) do
    local f = {}
    for i = 1, #e[2], 2 do
      f[e[2][i]] = e[2][i + 1]
    end
    local u, q = f['user_id'], tonumber(f['quantity'])
    local kind = f['type']
    if kind == 'reserved' then
      resv[#resv + 1] = {e[1], tonumber(f['expires']), q}
    end
    if kind == 'sale' or kind == 'reserved' then
      units[u] = (units[u] or 0) + q
      orders[u] = (orders[u] or 0) + 1
      sold, active = sold + q, active + 1
    elseif kind == 'release' or kind == 'released' then
      units[u] = (units[u] or 0) - q
      orders[u] = (orders[u] or 0) - 1
      released, active = released + q, active - 1
    end
    if kind == 'paid' or kind == 'released' then
      local oid = f['order_id']
      settled[oid] = (settled[oid] or '') .. kind:sub(1, 1)
    end
  end
  if #page < 1000 then
    break
  end
  from = '(' .. page[#page][1]
end
if sold - released ~= held_sum then
  bad('orders stream holds ' .. (sold - released) .. ' units (sold ' .. sold .. ' - released ' ..
    released .. ') but customers hold ' .. held_sum)
end
for u, q in pairs(units) do
  if q ~= (held[u] or 0) then
    bad('customer ' .. u .. ': orders stream says ' .. q .. ' units, record says ' .. (held[u] or 0))
  end
end
for u, q in pairs(held) do
  if units[u] == nil then
    bad('customer ' .. u .. ' holds ' .. q .. ' units with no order in the stream')
  end
end

-- The buyers list: one entry per order not released.
local listed, n = {}, 0
local len = redis.call('LLEN', KEYS[2])
for i = 0, len - 1, 1000 do
  for _, u in ipairs(redis.call('LRANGE', KEYS[2], i, i + 999)) do
    listed[u] = (listed[u] or 0) + 1
    n = n + 1
  end
end
if n ~= active then
  bad('buyers list has ' .. n .. ' entries for ' .. active .. ' orders not released')
end
for u, c in pairs(listed) do
  if c ~= (orders[u] or 0) then
    bad('customer ' .. u .. ' is listed ' .. c .. ' times as a buyer for ' .. (orders[u] or 0) .. ' orders')
  end
end
for u, c in pairs(orders) do
  if c > 0 and listed[u] == nil then
    bad('customer ' .. u .. ' has ' .. c .. ' orders but is not in the buyers list')
  end
end
-- Reservations: each 'reserved' entry of the stream is one, R unless its
-- record (the reservations hash) says it was settled; one R in the hash
-- is one of the holds (see reservation.lua).
local mr = redis.call('HMGET', KEYS[3], 'reserved', 'paid', 'cursor')
local reserved_counter, paid_counter = tonumber(mr[1]) or 0, tonumber(mr[2]) or 0
local want = {R = '', P = 'p', E = 'r', C = 'r', A = 'r'}
local units_in = {R = 0, P = 0}
local records, in_holds = {}, 0
local cursor = '0'
repeat
  local page = redis.call('HSCAN', KEYS[7], cursor, 'COUNT', 1000)
  cursor = page[1]
  for i = 1, #page[2], 2 do
    records[page[2][i]] = page[2][i + 1]
  end
until cursor == '0'
-- before reports whether stream id a comes before the sweep's cursor c
-- (an id, or '(' id: just after it).
local function before(a, c)
  local after = string.sub(c, 1, 1) == '('
  if after then
    c = string.sub(c, 2)
  end
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local cm, cs = string.match(c, '^(%d+)-(%d+)$')
  am, as, cm, cs = tonumber(am), tonumber(as), tonumber(cm), tonumber(cs)
  if am ~= cm then
    return am < cm
  end
  return as < cs or (after and as == cs)
end
-- (A product with no cursor yet is swept from engine.MaxHold back.)
local t = redis.call('TIME')
local scan_from = mr[3] or string.format('%d-0', math.max(tonumber(t[1]) * 1000 - 604800000, 0))
for _, r in ipairs(resv) do
  local oid, exp, q = r[1], r[2], r[3]
  local rec, state = records[oid], 'R'
  if rec then
    local rexp, rq
    rexp, rq, state = string.match(rec, '^(%d+)|(%d+)|(%u)|')
    if not want[state] or tonumber(rexp) ~= exp or tonumber(rq) ~= q then
      bad('reservation ' .. oid .. ' has a record that is not its entry\'s: ' .. rec)
      state = want[state] and state or 'R'
    end
  end
  if (settled[oid] or '') ~= want[state] then
    bad('reservation ' .. oid .. ' is ' .. state .. ' but the orders stream has "' ..
      (settled[oid] or '') .. '" (p paid, r released) for it')
  end
  units_in[state] = (units_in[state] or 0) + q
  if state == 'R' and rec then
    in_holds = in_holds + 1
    if tonumber(redis.call('ZSCORE', KEYS[6], oid) or '-1') ~= exp then
      bad('reservation ' .. oid .. ' is reserved but not in holds at its expiry')
    end
  elseif state == 'R' and before(oid, scan_from) then
    bad('reservation ' .. oid .. ' is reserved but the sweep\'s cursor (' .. scan_from ..
      ') has passed it')
  end
  records[oid], settled[oid] = nil, nil
end
for oid, rec in pairs(records) do
  bad('record ' .. oid .. ' (' .. rec .. ') is of no reservation in the orders stream')
end
for oid, s in pairs(settled) do
  bad('order ' .. oid .. ' has "' .. s .. '" entries (p paid, r released) but no reservation')
end
if redis.call('ZCARD', KEYS[6]) ~= in_holds then
  bad('holds lists ' .. redis.call('ZCARD', KEYS[6]) .. ' reservations for ' .. in_holds .. ' reserved there')
end
if reserved_counter ~= units_in.R then
  bad('reserved counter ' .. reserved_counter .. ' != units of reservations reserved ' .. units_in.R)
end
if paid_counter ~= units_in.P then
  bad('paid counter ' .. paid_counter .. ' != units of reservations paid ' .. units_in.P)
end
if units_in.R + units_in.P > held_sum then
  bad('units reserved ' .. units_in.R .. ' + paid ' .. units_in.P .. ' > units held ' .. held_sum)
end
return {1, problems, {initial, remaining, held_sum, sold, released, active, customers, units_in.R, units_in.P}}
