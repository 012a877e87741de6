-- shard_peek.lua: a shard's stock, its transfers out not yet settled, and
-- the transfers it was credited (a count that only grows).
-- KEYS[1] stock  KEYS[2] transfers out  KEYS[3] transfers in
-- Reply: {stock (-1 when the shard is missing), pending transfers out, credits}
return {tonumber(redis.call('GET', KEYS[1]) or '-1'), redis.call('HLEN', KEYS[2]),
  redis.call('HLEN', KEYS[3])}
