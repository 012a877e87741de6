-- purchase.lua: one atomic purchase attempt. Every check of the sale (window,
-- stock, per-user limit) runs before any write of the sale. The one write
-- before them is the rate limiter's: an attempt it admits counts against the
-- customer's rate whatever its outcome (hammering a sold-out or not yet open
-- sale is still hammering), and an attempt it refuses writes nothing. A replay
-- (a request_id already answered) is answered before the limiter and does
-- not count.
-- KEYS[1] stock    KEYS[2] buyers   KEYS[3] meta   KEYS[4] holders
-- KEYS[5] orders   KEYS[6] this request's record (product:{ID}:req:<request_id>)
-- KEYS[7] this customer's rate limiter (product:{ID}:rate:<user id>)
-- KEYS[8] released orders
-- ARGV[1] product id   ARGV[2] user id   ARGV[3] quantity (>= 1)
-- ARGV[4] request id ('' for none)       ARGV[5] request record TTL (ms)
-- ARGV[6] event channel
-- ARGV[7] rate limit: ms between attempts (0 = no limit)   ARGV[8] burst
-- Reply, first element the outcome:
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
local stock = redis.call('GET', KEYS[1])
if not stock then
  return {-1}
end
local user, qty, rid = ARGV[2], tonumber(ARGV[3]), ARGV[4]
local meta = redis.call('HMGET', KEYS[3], 'limit', 'start', 'end', 'epoch')
local epoch = meta[4] or ''
local fingerprint = user .. '\n' .. ARGV[3]
if rid ~= '' then
  -- A record from before the last init or reset (another epoch) is stale.
  local rec = redis.call('HMGET', KEYS[6], 'fp', 'remaining', 'order_id', 'epoch')
  if rec[1] and (rec[4] or '') == epoch then
    if rec[1] ~= fingerprint then
      return {6}
    end
    if redis.call('HEXISTS', KEYS[8], rec[3]) == 1 then
      return {8, rec[3]}
    end
    return {1, tonumber(rec[2]), rec[3], qty}
  end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- Rate limit (GCRA): one key per customer holding the theoretical arrival
-- time; an attempt is allowed when it is at most burst intervals early.
-- Its TTL is set with the value, in one SET, so no key outlives its use.
local interval, burst = tonumber(ARGV[7]), tonumber(ARGV[8])
if interval > 0 then
  local tat = tonumber(redis.call('GET', KEYS[7]) or '0')
  if tat < now then
    tat = now
  end
  local allow_at = tat + interval - burst * interval
  if now < allow_at then
    return {7, allow_at - now}
  end
  redis.call('SET', KEYS[7], tat + interval, 'PX', tat + interval - now)
end
if meta[2] and now < tonumber(meta[2]) then
  return {4, tonumber(meta[2])}
end
if meta[3] and now >= tonumber(meta[3]) then
  return {5, tonumber(meta[3])}
end
local n = tonumber(stock)
if n == nil then
  return redis.error_reply('ERR stock of ' .. ARGV[1] .. ' is not a number')
end
if n <= 0 then
  return {0}
end
local limit = tonumber(meta[1] or '0')
if limit > 0 then
  local held = tonumber(redis.call('HGET', KEYS[4], user) or '0')
  if held + qty > limit then
    return {3, held, limit}
  end
end
if n < qty then
  return {2, n}
end
local remaining = redis.call('DECRBY', KEYS[1], qty)
redis.call('HINCRBY', KEYS[4], user, qty)
redis.call('HINCRBY', KEYS[3], 'held', qty)
redis.call('RPUSH', KEYS[2], user)
local oid = redis.call('XADD', KEYS[5], '*', 'type', 'sale', 'user_id', user,
  'quantity', qty, 'remaining', remaining, 'time', now)
if rid ~= '' then
  redis.call('HSET', KEYS[6], 'fp', fingerprint, 'remaining', remaining, 'order_id', oid,
    'epoch', epoch)
  redis.call('PEXPIRE', KEYS[6], ARGV[5])
end
redis.call('PUBLISH', ARGV[6], '{"product_id":' .. cjson.encode(ARGV[1]) ..
  ',"buyer":' .. cjson.encode(user) ..
  ',"remaining":' .. string.format('%d', remaining) ..
  ',"timestamp":' .. t[1] ..
  ',"order_id":"' .. oid .. '","quantity":' .. string.format('%d', qty) .. '}')
return {1, remaining, oid, qty}
