-- order_user.lua: the customer of a sale or reservation in a product's
-- orders stream, to find which shard of a sharded product holds an order.
-- KEYS[1] orders  ARGV[1] order id (a stream entry id)
-- Reply: the user id of the sale or reservation with that entry id, or ''
-- when there is none.
local e = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #e == 0 then
  return ''
end
local f = {}
for i = 1, #e[1][2], 2 do
  f[e[1][2][i]] = e[1][2][i + 1]
end
if f['type'] ~= 'sale' and f['type'] ~= 'reserved' then
  return ''
end
return f['user_id']
