-- transfer_debit.lua: step one of moving units between two shards of a
-- product: take them out of the source shard and record the debit under
-- its transfer id, atomically. The units are then in transit until
-- transfer_credit.lua adds them to the target; the record (read by any
-- server, or admin verify --repair) is what makes a crash between the two
-- steps recoverable. The shard's initial shrinks by as much, so that the
-- shard's own books (initial == remaining + held) still balance.
-- KEYS[1] stock  KEYS[2] meta  KEYS[3] transfers out (hash: id -> "target units")
-- ARGV[1] transfer id  ARGV[2] target shard id  ARGV[3] units wanted (>= 1)
-- ARGV[4] 'exact' to move the units wanted (at most all), else ''
-- Moves half the stock (rounded up), or the units wanted if more, at most
-- all of it; with 'exact', the units wanted, at most all of it.
-- Reply: {units moved (0: the shard is empty)}
local done = redis.call('HGET', KEYS[3], ARGV[1])
if done then
  return {tonumber(string.match(done, ' (%d+)$'))}
end
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n <= 0 then
  return {0}
end
local units = math.min(n, tonumber(ARGV[3]))
if ARGV[4] ~= 'exact' then
  units = math.max(math.ceil(n / 2), units)
end
redis.call('DECRBY', KEYS[1], units)
redis.call('HINCRBY', KEYS[2], 'initial', -units)
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2] .. ' ' .. units)
return {units}
