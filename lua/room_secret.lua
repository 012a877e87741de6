-- room_secret.lua: the secret the servers of a sale sign waiting-room
-- tickets and admissions with when none is configured: the first server
-- to ask creates it, every other reads it. Its key is the sale's, not a
-- product's (one fixed hash tag, so one Redis Cluster slot).
-- KEYS[1] the secret
-- ARGV[1] a random 256-bit secret (hex), kept if there is none yet
-- Reply: the secret
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
