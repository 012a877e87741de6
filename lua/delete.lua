-- delete.lua: remove every key of a product (request records expire by themselves).
-- KEYS[1] stock  KEYS[2] buyers  KEYS[3] meta  KEYS[4] holders
-- KEYS[5] orders KEYS[6] released
-- Reply: the number of keys removed.
return redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
