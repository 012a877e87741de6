-- init.lua: create or re-create a product with ARGV[1] units.
-- KEYS[1] stock   KEYS[2] buyers   KEYS[3] meta
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('SET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[3], 'initial', ARGV[1])
return redis.status_reply('OK')
