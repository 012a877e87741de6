-- orders.lua: the first entries of a product's orders stream.
-- KEYS[1] stock  KEYS[2] orders
-- ARGV[1] how many (0 for all)
-- Reply: {-1} unknown product, else {1, {entries...}} as XRANGE gives them.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {-1}
end
if tonumber(ARGV[1]) > 0 then
  return {1, redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', ARGV[1])}
end
return {1, redis.call('XRANGE', KEYS[2], '-', '+')}
