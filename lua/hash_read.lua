-- hash_read.lua: read a transfer hash of a shard: every field, or one.
-- KEYS[1] the hash  ARGV[1] a field ('' for all)
-- Reply: HGETALL's, or the field's value (nil when absent).
if ARGV[1] == '' then
  return redis.call('HGETALL', KEYS[1])
end
return redis.call('HGET', KEYS[1], ARGV[1])
