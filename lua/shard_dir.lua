-- shard_dir.lua: read the directory of a product spread over shards.
-- KEYS[1] the product's meta
-- Reply: {shard ids comma-separated ('' when the product is not sharded),
--         initial, restocked}
local m = redis.call('HMGET', KEYS[1], 'shards', 'initial', 'restocked')
return {m[1] or '', tonumber(m[2]) or 0, tonumber(m[3]) or 0}
