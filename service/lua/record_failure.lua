-- One failed attempt, one atomic step (contract section 5): the attempt
-- log, the failure window, the retry being finished, and the next retry
-- while the webhook stays under the threshold. Reaching the threshold is
-- answered, not acted on: the disable is written by the C side
-- (webhook_disable) with webhook_disable.lua, which also queues the notice.
-- KEYS[1] {pw}:webhooks  KEYS[2] {pw}:attempts:<id>  KEYS[3] {pw}:failures:<id>
-- KEYS[4] {pw}:retries  KEYS[5] {pw}:retry-jobs  KEYS[6] {pw}:settings
-- KEYS[7] {pw}:seq  KEYS[8] {pw}:retry-claims
-- KEYS[9] {pw}:recorded:<attempt id> (used when ARGV[13] is "1")
-- ARGV[1] id  ARGV[2] attempt log entry  ARGV[3] its TTL ms  ARGV[4] at ms
-- ARGV[5] the failure member after its id:
-- "\"at\":...,\"status\":...,\"error\":...}"  ARGV[6] window ms
-- ARGV[7] threshold  ARGV[8] retry id being finished or ""  ARGV[9] next
-- retry job or ""  ARGV[10] its due time ms  ARGV[11] attempt log length
-- ARGV[12] the claim token of the retry being finished
-- ARGV[13] "1" when KEYS[9] names the attempt, else ""
--
-- {pw}:seq makes every failure member unique (two failures in one
-- millisecond are two failures) and is zero-padded so that failures of
-- one millisecond sort in the order they were recorded. Retry ids begin
-- with "<webhookId>:", which the retry claim relies on, and carry a time as
-- well as the sequence, so that an id cannot come back after a Redis wipe
-- restarted {pw}:seq. A deleted webhook gets no log entry and keeps no
-- keys: nobody could read them.
-- An outcome under a claim that is no longer current (the lease ended and
-- the retry was claimed again) changes nothing: {"stale"}.
-- The same attempt recorded twice (its first send was carried out but its
-- answer lost) changes nothing the second time: {"duplicate"}.
-- Answers {"counted"}, {"over", count, the stored document, the company's
-- stored settings or "", the failure members oldest first...},
-- {"inactive"} or {"unreadable"}.

local id = ARGV[1]
-- Stale first: a stale send changes nothing, not even the duplicate mark,
-- so that the same attempt sent again under the replica's newer claim
-- (claimed again while this send was on its way) is recorded.
if ARGV[8] ~= '' and redis.call('HGET', KEYS[8], ARGV[8]) ~= ARGV[12] then
  return {'stale'}
end
if ARGV[13] == '1' and not redis.call('SET', KEYS[9], '1', 'NX', 'PX', ARGV[6]) then
  return {'duplicate'}
end
if ARGV[8] ~= '' then
  redis.call('ZREM', KEYS[4], ARGV[8])
  redis.call('HDEL', KEYS[5], ARGV[8])
  redis.call('HDEL', KEYS[8], ARGV[8])
end
local cur = redis.call('HGET', KEYS[1], id)
if not cur then
  redis.call('DEL', KEYS[2], KEYS[3])
  return {'inactive'}
end
redis.call('LPUSH', KEYS[2], ARGV[2])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[11]) - 1)
redis.call('PEXPIRE', KEYS[2], ARGV[3])
local ok, doc = pcall(cjson.decode, cur)
if not ok or type(doc) ~= 'table' then
  return {'unreadable'}
end
if doc.enabled ~= true then
  return {'inactive'}
end
local at = tonumber(ARGV[4])
local window = tonumber(ARGV[6])
local seq = redis.call('INCR', KEYS[7])
local member = '{"id":"' .. string.format('%020d', seq) .. '",' .. ARGV[5]
redis.call('ZADD', KEYS[3], at, member)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', at - window)
redis.call('PEXPIRE', KEYS[3], window)
local count = redis.call('ZCARD', KEYS[3])
if count < tonumber(ARGV[7]) then
  if ARGV[9] ~= '' then
    local rid = id .. ':' .. ARGV[10] .. ':' .. seq
    redis.call('HSET', KEYS[5], rid, ARGV[9])
    redis.call('ZADD', KEYS[4], ARGV[10], rid)
  end
  return {'counted'}
end
local out = {'over', count, cur, type(doc.companyId) == 'string' and
  redis.call('HGET', KEYS[6], doc.companyId) or ''}
for _, m in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  out[#out + 1] = m
end
return out
