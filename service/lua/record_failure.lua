-- One failed attempt, one atomic step (contract section 5).
-- KEYS[1] {pw}:webhooks  KEYS[2] {pw}:attempts:<id>  KEYS[3] {pw}:failures:<id>
-- KEYS[4] {pw}:retries  KEYS[5] {pw}:retry-jobs  KEYS[6] {pw}:version
-- KEYS[7] {pw}:settings  KEYS[8] {pw}:seq  KEYS[9] {pw}:notices  KEYS[10] {pw}:outbox
-- ARGV[1] id  ARGV[2] channel  ARGV[3] attempt log entry  ARGV[4] its TTL ms
-- ARGV[5] at ms  ARGV[6] at (RFC 3339)  ARGV[7] the failure member after its
-- id: "\"at\":...,\"status\":...,\"error\":...}"  ARGV[8] window ms
-- ARGV[9] threshold  ARGV[10] retry id being finished or ""  ARGV[11] next
-- retry job or ""  ARGV[12] its due time ms  ARGV[13] attempt log length
--
-- {pw}:seq makes every failure member unique (two failures in one
-- millisecond are two failures) and is zero-padded so that failures of
-- one millisecond sort in the order they were recorded. Retry and notice
-- ids begin with "<webhookId>:", which the claim scripts rely on (the
-- retry's webhook check, the notice's Kafka key), and carry a time as well
-- as the sequence, so that an id cannot come back after a Redis wipe
-- restarted {pw}:seq. cjson escapes '/' as "\/"; the gsub undoes that (every
-- '/' in cjson's output is escaped, so "\/" is always that escape), which
-- keeps stored documents and notices as the C side writes them. A deleted
-- webhook gets no log entry and keeps no keys: nobody could read them.
-- Answers {"counted"}, {"disabled", version, notice id or ""},
-- {"inactive"} or {"unreadable"}.

local id = ARGV[1]
if ARGV[10] ~= '' then
  redis.call('ZREM', KEYS[4], ARGV[10])
  redis.call('HDEL', KEYS[5], ARGV[10])
end
local cur = redis.call('HGET', KEYS[1], id)
if not cur then
  redis.call('DEL', KEYS[2], KEYS[3])
  return {'inactive'}
end
redis.call('LPUSH', KEYS[2], ARGV[3])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[13]) - 1)
redis.call('PEXPIRE', KEYS[2], ARGV[4])
local ok, doc = pcall(cjson.decode, cur)
if not ok or type(doc) ~= 'table' then
  return {'unreadable'}
end
if doc.enabled ~= true then
  return {'inactive'}
end
local at = tonumber(ARGV[5])
local window = tonumber(ARGV[8])
local seq = redis.call('INCR', KEYS[8])
local member = '{"id":"' .. string.format('%020d', seq) .. '",' .. ARGV[7]
redis.call('ZADD', KEYS[3], at, member)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', at - window)
redis.call('PEXPIRE', KEYS[3], window)
local count = redis.call('ZCARD', KEYS[3])
if count < tonumber(ARGV[9]) then
  if ARGV[11] ~= '' then
    local rid = id .. ':' .. ARGV[12] .. ':' .. seq
    redis.call('HSET', KEYS[5], rid, ARGV[11])
    redis.call('ZADD', KEYS[4], ARGV[12], rid)
  end
  return {'counted'}
end
local span
if window % 1000 == 0 then
  span = string.format('%d s', window / 1000)
else
  span = string.format('%d ms', window)
end
doc.enabled = false
doc.disabledAt = at
doc.disabledReason = string.format('%d failed deliveries within %s', count, span)
doc.revision = (tonumber(doc.revision) or 0) + 1
if type(doc.updatedAt) ~= 'number' or doc.updatedAt < at then
  doc.updatedAt = at
end
redis.call('HSET', KEYS[1], id, (string.gsub(cjson.encode(doc), '\\/', '/')))
local v = redis.call('INCR', KEYS[6])
redis.call('PUBLISH', ARGV[2], v .. ' webhook ' .. id)
local email
if type(doc.companyId) == 'string' then
  local raw = redis.call('HGET', KEYS[7], doc.companyId)
  if raw then
    local sok, s = pcall(cjson.decode, raw)
    if sok and type(s) == 'table' and
       type(s.webhookDisabledNotificationEmail) == 'string' and
       s.webhookDisabledNotificationEmail ~= '' then
      email = s.webhookDisabledNotificationEmail
    end
  end
end
if not email then
  return {'disabled', v, ''}
end
local failures = {}
for _, m in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  local fok, f = pcall(cjson.decode, m)
  if fok and type(f) == 'table' then
    failures[#failures + 1] = {at = f.at, status = f.status, error = f.error}
  end
end
local last = cjson.decode(member)
local why
if type(last.status) == 'number' and type(last.error) == 'string' then
  why = string.format('HTTP status %d (%s)', last.status, last.error)
elseif type(last.status) == 'number' then
  why = string.format('HTTP status %d', last.status)
elseif type(last.error) == 'string' then
  why = last.error
else
  why = 'unknown'
end
local event = tostring(doc.event)
local target = tostring(doc.target)
local notice = {
  type = 'WebhookDisabled',
  to = email,
  subject = 'Webhook disabled: ' .. event .. ' -> ' .. target,
  text = string.format('Your webhook %s for %s events to %s has been ' ..
    'disabled at %s after %d failed deliveries within %s. Last failure: ' ..
    '%s. Fix the receiver, then enable the webhook again (PATCH ' ..
    '/v1/companies/%s/webhooks/%s with {"enabled": true}); enabling it ' ..
    'clears its failure history.', id, event, target, ARGV[6], count,
    span, why, tostring(doc.companyId), id),
  companyId = doc.companyId,
  webhookId = id,
  event = doc.event,
  target = doc.target,
  disabledAt = ARGV[6],
  failures = failures,
}
local nid = id .. ':' .. ARGV[5] .. ':' .. seq
redis.call('HSET', KEYS[9], nid, (string.gsub(cjson.encode(notice), '\\/', '/')))
redis.call('ZADD', KEYS[10], at, nid)
return {'disabled', v, nid}
