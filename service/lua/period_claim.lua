-- The second half of a scheduler pass: the due dates and the expired
-- promotion states period_due.lua answered, with their keys.
-- KEYS[1] {pw}:seq  KEYS[2] {pw}:retries  KEYS[3] {pw}:retry-jobs
-- KEYS[4] {pw}:period-due  KEYS[5] {pw}:occurrences  KEYS[6] {pw}:promo-expiry
-- then for the i-th due member (i from 1), at k = 6 + 3 * (i - 1):
-- KEYS[k + 1] {pw}:promo:<c>  KEYS[k + 2] {pw}:promo-<start|end>:<c>
-- KEYS[k + 3] {pw}:period-hooks:<c>:<start|end>
-- then for the j-th expired member, at k = 6 + 3 * ARGV[3] + 3 * (j - 1):
-- KEYS[k + 1] {pw}:promo:<c>  KEYS[k + 2] {pw}:promo-start:<c>
-- KEYS[k + 3] {pw}:promo-end:<c>
-- ARGV[1] now ms  ARGV[2] now (RFC 3339)  ARGV[3] the number of due members
-- ARGV[4] the most occurrences to claim  ARGV[5] the retention (ms)
-- ARGV[6 ...] the due members "<start|end>\n<c>\n<x>", then the expired
-- members "<c>\n<x>"
--
-- A due member still due (its score <= now: not moved meanwhile) whose
-- date S is still ahead claims every hook of the company and kind with
-- S - P <= now (P >= S - now: one range query on the hooks by P), then
-- waits for the next smaller P (score S - P) or leaves the queue. So a
-- pass costs what is due, not the number of hooks or promotions. Once ARGV[4]
-- claims are made the remaining members are left for the next round.
--
-- A claim is ZADD NX of "<W>:<X>:<start|end>:<S>" to {pw}:occurrences,
-- scored with S + a day (period_due.lua drops it then), then a retry due
-- now whose record is the occurrence's plain fields (webhookId, companyId,
-- promotionId, date start|end, at = S, occurredAt, event, period,
-- periodValue, data), which retryjob.c turns into the retry job, message
-- id included (sign.c), when it is claimed. Its retry id is
-- "<W>:<now ms>:<{pw}:seq>" as every retry id. Numbers go through '%.0f'
-- (exact below 2^53), never Lua's '%.14g'.
--
-- An expired member whose score is still <= now: a state with data (its
-- last date has passed) keeps only its time and dates, which order later
-- events and which occurrence_check.lua reads, until now + ARGV[5]; a
-- state without data (a tombstone, or a promotion with no date ahead) is
-- removed with its index entries and queued dates.
-- Answers {"ok", claimed, pruned}.

local now = tonumber(ARGV[1])
local nd = tonumber(ARGV[3])
local budget = tonumber(ARGV[4])
local events = {start = 'Promotion.StartingInPeriod', ['end'] = 'Promotion.EndingInPeriod'}
local function num(v)
  return string.format('%.0f', v)
end
local function state(promo, x)
  local raw = redis.call('HGET', promo, x)
  if not raw then
    return nil
  end
  local ok, st = pcall(cjson.decode, raw)
  if not ok or type(st) ~= 'table' then
    return nil
  end
  return st
end
local claimed = 0
local function claim(c, x, kind, s, hook, data)
  local w, period, value = string.match(hook, '^([^\n]*)\n([^\n]*)\n(.*)$')
  if not w then
    return
  end
  local sk = num(s)
  if redis.call('ZADD', KEYS[5], 'NX', num(s + 86400000),
                w .. ':' .. x .. ':' .. kind .. ':' .. sk) == 0 then
    return
  end
  local occurrence = cjson.encode({
    webhookId = w,
    companyId = c,
    promotionId = x,
    date = kind,
    at = sk,
    occurredAt = ARGV[2],
    event = events[kind],
    period = period,
    periodValue = tonumber(value),
    data = data,
  })
  local rid = w .. ':' .. ARGV[1] .. ':' .. num(redis.call('INCR', KEYS[1]))
  redis.call('HSET', KEYS[3], rid, occurrence)
  redis.call('ZADD', KEYS[2], ARGV[1], rid)
  claimed = claimed + 1
end

for i = 1, nd do
  if claimed >= budget then
    break
  end
  local m = ARGV[5 + i]
  local kind, c, x = string.match(m, '^([^\n]*)\n([^\n]*)\n(.*)$')
  local k = 6 + 3 * (i - 1)
  local due = tonumber(redis.call('ZSCORE', KEYS[4], m))
  if kind and due and due <= now then
    local s = tonumber(redis.call('ZSCORE', KEYS[k + 2], x))
    local st = state(KEYS[k + 1], x)
    local keep = false
    if s and s > now and st and st.deleted ~= true and st[kind] == s and
       type(st.data) == 'string' then
      local hooks = redis.call('ZRANGEBYSCORE', KEYS[k + 3], num(s - now), '+inf')
      for _, hook in ipairs(hooks) do
        claim(c, x, kind, s, hook, st.data)
      end
      local nx = redis.call('ZREVRANGEBYSCORE', KEYS[k + 3], '(' .. num(s - now), '-inf',
                            'WITHSCORES', 'LIMIT', 0, 1)
      if #nx > 0 then
        redis.call('ZADD', KEYS[4], num(s - tonumber(nx[2])), m)
        keep = true
      end
    end
    if not keep then
      redis.call('ZREM', KEYS[4], m)
    end
  end
end

local pruned = 0
local base = 6 + 3 * nd
for j = 1, #ARGV - 5 - nd do
  local m = ARGV[5 + nd + j]
  local c, x = string.match(m, '^([^\n]*)\n(.*)$')
  local k = base + 3 * (j - 1)
  local at = tonumber(redis.call('ZSCORE', KEYS[6], m))
  if c and at and at <= now then
    local st = state(KEYS[k + 1], x)
    redis.call('ZREM', KEYS[k + 2], x)
    redis.call('ZREM', KEYS[k + 3], x)
    redis.call('ZREM', KEYS[4], 'start\n' .. m, 'end\n' .. m)
    if st and st.deleted ~= true and st.data ~= nil and type(st.time) == 'number' then
      local function ms(v)
        return type(v) == 'number' and num(v) or 'null'
      end
      redis.call('HSET', KEYS[k + 1], x, '{"time":' .. num(st.time) .. ',"start":' ..
                 ms(st.start) .. ',"end":' .. ms(st['end']) .. '}')
      redis.call('ZADD', KEYS[6], num(now + tonumber(ARGV[5])), m)
    else
      redis.call('HDEL', KEYS[k + 1], x)
      redis.call('ZREM', KEYS[6], m)
    end
    pruned = pruned + 1
  end
end
return {'ok', claimed, pruned}
