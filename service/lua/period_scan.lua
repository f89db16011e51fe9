-- One scheduler pass, under a short lock so that one replica scans per
-- tick (the lock only saves work: every claim is a ZADD NX of its own).
-- KEYS[1] {pw}:scheduler:lock  KEYS[2] {pw}:seq  KEYS[3] {pw}:retries
-- KEYS[4] {pw}:retry-jobs  KEYS[5] {pw}:promo-fresh  KEYS[6] {pw}:sched:pass
-- KEYS[7] {pw}:promo-gen  KEYS[8] {pw}:occurrences
-- and for the i-th hook of ARGV[4] (i from 1), at k = 8 + 3 * (i - 1):
-- KEYS[k + 1] its mark {pw}:sched:<W>:<start|end>  KEYS[k + 2] its company's
-- {pw}:promo:<c>  KEYS[k + 3] its date index {pw}:promo-<start|end>:<c>
-- ARGV[1] now ms  ARGV[2] now (RFC 3339)  ARGV[3] lock ms
-- ARGV[4] the hooks, a JSON array of [webhookId, companyId, "start"|"end",
--         event name, period name, period value, P ms]
-- ARGV[5] the most occurrences to claim in this pass
--
-- An occurrence (W, X, start|end, S) is due while now < S <= now + P
-- (S - P <= now < S). Each hook has a mark, {pw}:sched:<W>:<start|end> =
-- "<pass>:<P>:<done>:<gen>": every S <= done, and every date set up to
-- generation gen, was looked at. A hook whose mark is from the previous
-- pass with the same P looks only at S in (max(done, now), now + P] in the
-- date index, and at the dates set after gen ({pw}:promo-fresh is ordered by
-- generation) that are at or below done, which that range does not cover.
-- Any other hook (new, enabled again, period changed, or left out of a
-- pass by a replica whose cache lagged, which may have emptied
-- {pw}:promo-fresh) looks at its whole window. So a pass costs
-- O(hooks * log n) plus the dates set since the last pass plus the
-- occurrences that became due; a hook seen for the first time pays
-- O(log n + m) for its window.
--
-- At most ARGV[5] claims per pass, so that Redis is not held for long
-- (a webhook created over a day's worth of promotions): the pass stops
-- there, the hook it stopped in records how far it got, the hooks after
-- it keep their marks as they were (or none), and {pw}:promo-fresh is left
-- for the next pass, which goes on from there. Only a pass that finished
-- every hook empties {pw}:promo-fresh.
--
-- A claim is ZADD NX of "<W>:<X>:<start|end>:<S>" to {pw}:occurrences,
-- scored with S + a day (when S can no longer be due: each pass drops the
-- members whose score has passed), then a retry due now whose record is
-- the occurrence's plain fields (webhookId, companyId, promotionId, date
-- start|end, at = S, occurredAt, event, period, periodValue, data), which
-- retryjob.c turns into the retry job, message id included (sign.c), when
-- it is claimed: the pipeline's retry path delivers it under the failure
-- rule and the retry schedule, on whichever replica claims it, and after
-- any crash. Its retry id is "<W>:<now ms>:<{pw}:seq>" as every retry id.
-- Numbers go through '%.0f' (exact below 2^53), never Lua's '%.14g'. An
-- occurrence whose promotion state is gone (only a foreign writer could do
-- that) stays claimed, undelivered.
-- Answers {"ok", claimed} or {"skipped"}.

if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[3]) then
  return {'skipped'}
end
local now = tonumber(ARGV[1])
local hooks = cjson.decode(ARGV[4])
local budget = tonumber(ARGV[5])
local pass = redis.call('INCR', KEYS[6])
local gen0 = tonumber(redis.call('GET', KEYS[7]) or '0')
redis.call('ZREMRANGEBYSCORE', KEYS[8], '-inf', now)
local fresh = {}
local all = redis.call('ZRANGE', KEYS[5], 0, -1, 'WITHSCORES')
for i = 1, #all, 2 do
  local c, x = string.match(all[i], '^([^\n]*)\n(.*)$')
  if c then
    local l = fresh[c]
    if not l then
      l = {}
      fresh[c] = l
    end
    l[#l + 1] = {tonumber(all[i + 1]), x}
  end
end
local scores = {}
local function score(idx, x)
  local m = scores[idx]
  if not m then
    m = {}
    scores[idx] = m
  end
  local s = m[x]
  if s == nil then
    s = tonumber(redis.call('ZSCORE', idx, x)) or false
    m[x] = s
  end
  return s
end
local function num(v)
  return string.format('%.0f', v)
end
local claimed = 0
local function claim(h, promo, x, s)
  local sk = num(s)
  local occ = h[1] .. ':' .. x .. ':' .. h[3] .. ':' .. sk
  if redis.call('ZADD', KEYS[8], 'NX', num(s + 86400000), occ) == 0 then
    return
  end
  local raw = redis.call('HGET', promo, x)
  if not raw then
    return
  end
  local ok, st = pcall(cjson.decode, raw)
  if not ok or type(st) ~= 'table' or st.deleted == true or
     type(st.data) ~= 'string' then
    return
  end
  local occurrence = cjson.encode({
    webhookId = h[1],
    companyId = h[2],
    promotionId = x,
    date = h[3],
    at = sk,
    occurredAt = ARGV[2],
    event = h[4],
    period = h[5],
    periodValue = h[6],
    data = st.data,
  })
  local rid = h[1] .. ':' .. ARGV[1] .. ':' .. num(redis.call('INCR', KEYS[2]))
  redis.call('HSET', KEYS[4], rid, occurrence)
  redis.call('ZADD', KEYS[3], ARGV[1], rid)
  claimed = claimed + 1
end
local cut = false
for n, h in ipairs(hooks) do
  local k = 8 + 3 * (n - 1)
  local mark, promo, idx = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3]
  local p = h[7]
  local hi = now + p
  local done, gen
  local w = redis.call('GET', mark)
  if w then
    local wpass, wp, wdone, wgen = string.match(w, '^(%d+):(%d+):(%d+):(%d+)$')
    if wpass and tonumber(wpass) == pass - 1 and tonumber(wp) == p then
      done = tonumber(wdone)
      gen = tonumber(wgen)
    end
  end
  if not cut and done then
    local l = fresh[h[2]] or {}
    local top = math.min(done, hi)
    local a, b = 1, #l + 1
    while a < b do
      local mid = math.floor((a + b) / 2)
      if l[mid][1] > gen then
        b = mid
      else
        a = mid + 1
      end
    end
    for i = a, #l do
      local s = score(idx, l[i][2])
      if s and s > now and s <= top then
        claim(h, promo, l[i][2], s)
        if claimed >= budget then
          cut = true
          gen = l[i][1]
          break
        end
      end
    end
    if not cut then
      gen = gen0
    end
  elseif not cut then
    done = now
    gen = gen0
  end
  if not cut and done < hi then
    local r = redis.call('ZRANGEBYSCORE', idx, '(' .. num(math.max(done, now)),
                         num(hi), 'WITHSCORES')
    local reached = hi
    for i = 1, #r, 2 do
      local s = tonumber(r[i + 1])
      claim(h, promo, r[i], s)
      if claimed >= budget then
        cut = true
        reached = s - 1
        break
      end
    end
    done = math.max(done, reached)
  end
  if done then
    redis.call('SET', mark, num(pass) .. ':' .. num(p) .. ':' .. num(done) ..
               ':' .. num(gen), 'PX', 86400000)
  end
end
if not cut then
  redis.call('DEL', KEYS[5])
end
return {'ok', claimed}
