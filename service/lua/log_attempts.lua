-- Attempt log entries, coalesced per webhook; a deleted webhook's are skipped.
-- KEYS[1] {pw}:webhooks  KEYS[1+i] {pw}:attempts:<id of webhook i>
-- ARGV[1] TTL ms  ARGV[2] attempt log length
-- then per webhook i: its id, the count n of its entries, n entries (oldest
-- first: the newest ends at the head of the list)

local a = 3
for i = 2, #KEYS do
  local id, n = ARGV[a], tonumber(ARGV[a + 1])
  if redis.call('HEXISTS', KEYS[1], id) == 1 then
    redis.call('LPUSH', KEYS[i], unpack(ARGV, a + 2, a + 1 + n))
    redis.call('LTRIM', KEYS[i], 0, tonumber(ARGV[2]) - 1)
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
  end
  a = a + 2 + n
end
return #KEYS - 1
