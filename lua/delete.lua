-- delete.lua: remove every key of a product.
-- KEYS[1] stock   KEYS[2] buyers   KEYS[3] meta
return redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
