-- Queues a chunk of a company's dates of one kind again, after its
-- period webhooks of that kind grew (period_hooks_sync.lua answered 2).
-- KEYS[1] {pw}:period-hooks:<c>:<start|end>  KEYS[2] {pw}:promo-<start|end>:<c>
-- KEYS[3] {pw}:period-due
-- ARGV[1] the lowest date of this chunk: "(<now ms>" first (dates ahead),
--         then what the previous chunk answered
-- ARGV[2] the due member prefix "<start|end>\n<c>\n"  ARGV[3] chunk size
--
-- Each date S of the chunk is queued at S - Pmax (Pmax: the longest period
-- of the company's hooks of that kind, read now), unless it is queued
-- earlier already (ZADD LT). A full chunk answers where the next starts:
-- at its last date again (dates of that same instant may follow; queueing
-- one twice is harmless), or past it when the whole chunk was one instant
-- (then every date of that instant is taken here).
-- Answers {"ok", next} or {"ok", ""} when done.

local top = redis.call('ZREVRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #top == 0 then
  return {'ok', ''}
end
local pmax = tonumber(top[2])
local limit = tonumber(ARGV[3])
local r = redis.call('ZRANGEBYSCORE', KEYS[2], ARGV[1], '+inf', 'WITHSCORES', 'LIMIT', 0, limit)
local nxt = ''
if #r / 2 >= limit then
  local last = r[#r]
  if r[2] == last then
    r = redis.call('ZRANGEBYSCORE', KEYS[2], last, last, 'WITHSCORES')
    nxt = '(' .. last
  else
    nxt = last
  end
end
local batch = {}
for i = 1, #r, 2 do
  batch[#batch + 1] = string.format('%.0f', tonumber(r[i + 1]) - pmax)
  batch[#batch + 1] = ARGV[2] .. r[i]
  if #batch >= 400 or i + 2 > #r then
    redis.call('ZADD', KEYS[3], 'LT', unpack(batch))
    batch = {}
  end
end
return {'ok', nxt}
