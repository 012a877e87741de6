-- purchase.lua: one atomic purchase attempt.
-- KEYS[1] product:{ID}:stock   KEYS[2] product:{ID}:buyers
-- ARGV[1] product id           ARGV[2] user id          ARGV[3] event channel
-- Reply: {1, remaining} sold one unit, {0, 0} sold out, {-1, 0} unknown product.
local stock = redis.call('GET', KEYS[1])
if not stock then
  return {-1, 0}
end
local n = tonumber(stock)
if n == nil then
  return redis.error_reply('ERR stock of ' .. ARGV[1] .. ' is not a number')
end
if n <= 0 then
  return {0, 0}
end
local remaining = redis.call('DECR', KEYS[1])
redis.call('RPUSH', KEYS[2], ARGV[2])
local now = redis.call('TIME')
redis.call('PUBLISH', ARGV[3], '{"product_id":' .. cjson.encode(ARGV[1]) ..
  ',"buyer":' .. cjson.encode(ARGV[2]) ..
  ',"remaining":' .. string.format('%d', remaining) ..
  ',"timestamp":' .. now[1] .. '}')
return {1, remaining}
