-- shard_peek.lua: a shard's stock, its transfers out not yet settled, the
-- transfers it was credited (a count that only grows), and its
-- reservations whose hold has expired but which no one released yet (their
-- units are back on sale once swept: see refill in engine/shards.go).
-- KEYS[1] stock  KEYS[2] transfers out  KEYS[3] transfers in  KEYS[4] holds
-- Reply: {stock (-1 when the shard is missing), pending transfers out,
--   credits, expired reservations not yet released}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return {tonumber(redis.call('GET', KEYS[1]) or '-1'), redis.call('HLEN', KEYS[2]),
  redis.call('HLEN', KEYS[3]), redis.call('ZCOUNT', KEYS[4], '-inf', now)}
