-- delete.lua: remove every key of a product (request records expire by themselves).
-- KEYS[1] stock  KEYS[2] buyers  KEYS[3] meta  KEYS[4] holders
-- KEYS[5] orders KEYS[6] released  KEYS[7] holds  KEYS[8] reservations
-- KEYS[9..12] the waiting room: room, tickets, line, admitted
-- ARGV[1] control channel  ARGV[2] product id
-- Reply: the number of keys removed.
-- Every change that can turn a sold-out product back on is announced on the
-- control channel, so servers drop their cached SOLD_OUT.
local n = redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8],
  KEYS[9], KEYS[10], KEYS[11], KEYS[12])
redis.call('PUBLISH', ARGV[1], ARGV[2])
return n
