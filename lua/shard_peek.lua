-- shard_peek.lua: a shard's stock, its transfers out not yet settled, the
-- transfers it was credited (a count that only grows), and whether
-- reservations whose hold has expired may hold units no one released yet
-- (they are back on sale once swept: see refill in engine/shards.go).
-- KEYS[1] stock  KEYS[2] transfers out  KEYS[3] transfers in  KEYS[4] holds
-- KEYS[5] meta
-- Reply: {stock (-1 when the shard is missing), pending transfers out,
--   credits, expired reservations of the holds not yet released (+ 1 when
--   meta's due, see reservation.lua, says the stream queue's may be)}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local m = redis.call('HMGET', KEYS[5], 'reserved', 'due')
local expired = redis.call('ZCOUNT', KEYS[4], '-inf', now)
if (tonumber(m[1]) or 0) > 0 and (tonumber(m[2]) or 0) <= now then
  expired = expired + 1
end
return {tonumber(redis.call('GET', KEYS[1]) or '-1'), redis.call('HLEN', KEYS[2]),
  redis.call('HLEN', KEYS[3]), expired}
