-- status.lua: one consistent read of a product, cheap enough to poll.
-- KEYS[1] stock  KEYS[2] buyers  KEYS[3] meta  KEYS[4] orders  KEYS[5] holders
-- KEYS[6] room  KEYS[7] tickets
-- Reply: {exists (0|1), remaining, initial, held, orders not released
--         (buyers list length), limit, start_ms (-1 none), end_ms (-1 none),
--         now_ms, orders stream length, customers holding units (holders
--         hash length), hold (ms, 0 none), units reserved, paid, released
--         on expiry, cancelled, the waiting room's rate (0: no room),
--         customers who joined it (tickets), customers it admitted}
local stock = redis.call('GET', KEYS[1])
local m = redis.call('HMGET', KEYS[3], 'initial', 'room', 'limit', 'start', 'end', 'hold', 'reserved',
  'paid', 'expired', 'cancelled')
if not stock and not m[1] then
  return {0}
end
local rate, joined, admitted = 0, 0, 0
if m[2] == '1' then
  local r = redis.call('HMGET', KEYS[6], 'rate', 'admitted')
  rate, joined, admitted = tonumber(r[1]) or 0, redis.call('HLEN', KEYS[7]), tonumber(r[2]) or 0
end
local t = redis.call('TIME')
-- Units held by customers: initial - stock, as the books balance (see
-- books.lua); keys without stock (a sharded product's directory) hold none.
local held = 0
if stock then
  held = (tonumber(m[1]) or 0) - (tonumber(stock) or 0)
end
return {1, tonumber(stock) or 0, tonumber(m[1]) or 0, held,
  redis.call('LLEN', KEYS[2]), tonumber(m[3]) or 0,
  tonumber(m[4]) or -1, tonumber(m[5]) or -1,
  tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000),
  redis.call('XLEN', KEYS[4]), redis.call('HLEN', KEYS[5]),
  tonumber(m[6]) or 0, tonumber(m[7]) or 0, tonumber(m[8]) or 0, tonumber(m[9]) or 0, tonumber(m[10]) or 0,
  rate, joined, admitted}
