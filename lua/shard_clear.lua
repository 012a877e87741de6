-- shard_clear.lua: forget a shard's transfers, before it is initialised.
-- KEYS[1] transfers out  KEYS[2] transfers in
return redis.call('DEL', KEYS[1], KEYS[2])
