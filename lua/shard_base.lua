-- shard_base.lua: create or re-create the directory of a product spread
-- over shards. The product's own keys ({ID}) hold no stock: its meta names
-- the shards (each a product-like key set under its own hash tag {ID#j})
-- and remembers the units the product was given. Run after every shard is
-- initialised, so no purchase sees a shard that is not there yet.
-- KEYS[1] stock  KEYS[2] buyers  KEYS[3] meta  KEYS[4] holders
-- KEYS[5] orders KEYS[6] released  KEYS[7] holds  KEYS[8] reservations
-- ARGV[1] shard ids, comma-separated   ARGV[2] units   ARGV[3] per-user limit
-- ARGV[4] start (ms, '' none)  ARGV[5] end (ms, '' none)
-- ARGV[6] control channel      ARGV[7] product id
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8])
redis.call('HSET', KEYS[3], 'shards', ARGV[1], 'initial', ARGV[2], 'limit', ARGV[3],
  'restocked', 0)
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[3], 'start', ARGV[4])
end
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[3], 'end', ARGV[5])
end
redis.call('PUBLISH', ARGV[6], ARGV[7])
return redis.status_reply('OK')
