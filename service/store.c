/*
 * store: webhooks and company settings in Redis, and the change feed that
 * keeps every replica's cache current. The only file that includes hiredis.
 * See include/promo_webhooks/store.h for the layout and the conventions.
 *
 * Two connections share the libevent loop: "cmd" for commands and "sub" for
 * the pub/sub subscription (a subscribed connection can do nothing else).
 * hiredis 0.14.1 async has no timeouts, so a watchdog timer kills a
 * connection that takes too long to connect or to answer; killing (or any
 * disconnect) makes hiredis call every pending callback with a NULL reply,
 * which becomes STORE_UNAVAILABLE for the caller. A lost connection is
 * re-established with exponential backoff.
 *
 * Every operation is a struct store_op in one list: queued (waiting for the
 * cmd connection), sent (owned by hiredis until its callback) or failed
 * (waiting for the deferred-completion event, so that no callback ever runs
 * inside the call that started the operation).
 */
#include "promo_webhooks/store.h"
#include "promo_webhooks/buf.h"
#include "promo_webhooks/event.h"
#include "promo_webhooks/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libevent.h>

#define CONNECT_TIMEOUT_MS 2000  /* TCP connect plus handshake */
#define COMMAND_TIMEOUT_MS 5000  /* no reply progress for this long: dead */
#define QUEUE_TIMEOUT_MS 5000    /* longest wait for a connection */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define WATCHDOG_MS 100
#define OP_MAX_ARGS 32
#define OP_ARGS_MAX ((size_t)4 << 20) /* cap on one command's arguments */
#define ATTEMPTS_KEEP 100        /* entries of an attempt log */
#define ATTEMPTS_TTL_MS ((int64_t)30 * 86400 * 1000) /* an idle log's life */
#define LOG_BATCH_MAX 256        /* attempts in one store_log_attempts EVAL */
#define CLAIM_MAX 1000           /* retries or notices in one claim */
#define SCAN_CLAIM_MAX 1000      /* period occurrences claimed in one pass */

/* ---- Lua scripts: every write bumps pw:version and publishes ---- */

enum script_id {
	SCRIPT_CREATE,
	SCRIPT_REPLACE,
	SCRIPT_DELETE,
	SCRIPT_SETTINGS_PUT,
	SCRIPT_LIST,
	SCRIPT_LOAD_ALL,
	SCRIPT_RECORD_FAILURE,
	SCRIPT_RECORD_SUCCESS,
	SCRIPT_LOG_ATTEMPTS,
	SCRIPT_RETRY_CLAIM,
	SCRIPT_OUTBOX_CLAIM,
	SCRIPT_OUTBOX_ACK,
	SCRIPT_COUNTS,
	SCRIPT_PROMO_APPLY,
	SCRIPT_PERIOD_SCAN,
	SCRIPT_RETRY_DEFER,
	SCRIPT_COUNT
};

/*
 * KEYS[1] pw:webhooks  KEYS[2] pw:company:<c>:webhooks  KEYS[3] pw:version
 * ARGV[1] id  ARGV[2] document  ARGV[3] channel
 */
static const char lua_create[] =
	"if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then\n"
	"  return {'conflict'}\n"
	"end\n"
	"redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
	"redis.call('SADD', KEYS[2], ARGV[1])\n"
	"local v = redis.call('INCR', KEYS[3])\n"
	"redis.call('PUBLISH', ARGV[3], v .. ' webhook ' .. ARGV[1])\n"
	"return {'ok', v}\n";

/*
 * KEYS[1] pw:webhooks  KEYS[2] pw:company:<c>:webhooks  KEYS[3] pw:version
 * KEYS[4] pw:failures:<id>
 * ARGV[1] id  ARGV[2] document  ARGV[3] channel  ARGV[4] expected revision
 * ARGV[5] "1" to clear the failure history
 */
static const char lua_replace[] =
	"if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 0 then\n"
	"  return {'not_found'}\n"
	"end\n"
	"local cur = redis.call('HGET', KEYS[1], ARGV[1])\n"
	"if not cur then\n"
	"  return {'not_found'}\n"
	"end\n"
	"local ok, doc = pcall(cjson.decode, cur)\n"
	"if not ok or type(doc) ~= 'table' then\n"
	"  return {'conflict'}\n"
	"end\n"
	"local rev = tonumber(doc.revision) or 0\n"
	"if rev ~= tonumber(ARGV[4]) then\n"
	"  return {'conflict'}\n"
	"end\n"
	"redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
	"if ARGV[5] == '1' then\n"
	"  redis.call('DEL', KEYS[4])\n"
	"end\n"
	"local v = redis.call('INCR', KEYS[3])\n"
	"redis.call('PUBLISH', ARGV[3], v .. ' webhook ' .. ARGV[1])\n"
	"return {'ok', v}\n";

/*
 * KEYS[1] pw:webhooks  KEYS[2] pw:company:<c>:webhooks  KEYS[3] pw:version
 * KEYS[4] pw:failures:<id>  KEYS[5] pw:attempts:<id>
 * ARGV[1] id  ARGV[2] channel
 * (Its pending retries are dropped when claimed.)
 */
static const char lua_delete[] =
	"if redis.call('SREM', KEYS[2], ARGV[1]) == 0 then\n"
	"  return {'not_found'}\n"
	"end\n"
	"redis.call('HDEL', KEYS[1], ARGV[1])\n"
	"redis.call('DEL', KEYS[4], KEYS[5])\n"
	"local v = redis.call('INCR', KEYS[3])\n"
	"redis.call('PUBLISH', ARGV[2], v .. ' webhook ' .. ARGV[1])\n"
	"return {'ok', v}\n";

/*
 * KEYS[1] pw:settings  KEYS[2] pw:version
 * ARGV[1] company id  ARGV[2] document  ARGV[3] channel
 */
static const char lua_settings_put[] =
	"redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
	"local v = redis.call('INCR', KEYS[2])\n"
	"redis.call('PUBLISH', ARGV[3], v .. ' settings ' .. ARGV[1])\n"
	"return {'ok', v}\n";

/* KEYS[1] pw:company:<c>:webhooks  KEYS[2] pw:webhooks */
static const char lua_list[] =
	"local out = {}\n"
	"for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"
	"  local d = redis.call('HGET', KEYS[2], id)\n"
	"  if d then\n"
	"    out[#out + 1] = d\n"
	"  end\n"
	"end\n"
	"return out\n";

/* KEYS[1] pw:version  KEYS[2] pw:webhooks  KEYS[3] pw:settings */
static const char lua_load_all[] =
	"return {redis.call('GET', KEYS[1]) or '0',\n"
	"        redis.call('HVALS', KEYS[2]),\n"
	"        redis.call('HGETALL', KEYS[3])}\n";

/* ---- the failure rule (store.h: attempts, failures, retries, notices) ---- */

/*
 * One failed attempt, one atomic step (contract section 5).
 * KEYS[1] pw:webhooks  KEYS[2] pw:attempts:<id>  KEYS[3] pw:failures:<id>
 * KEYS[4] pw:retries  KEYS[5] pw:retry-jobs  KEYS[6] pw:version
 * KEYS[7] pw:settings  KEYS[8] pw:seq  KEYS[9] pw:notices  KEYS[10] pw:outbox
 * ARGV[1] id  ARGV[2] channel  ARGV[3] attempt log entry  ARGV[4] its TTL ms
 * ARGV[5] at ms  ARGV[6] at (RFC 3339)  ARGV[7] the failure member after its
 * id: "\"at\":...,\"status\":...,\"error\":...}"  ARGV[8] window ms
 * ARGV[9] threshold  ARGV[10] retry id being finished or ""  ARGV[11] next
 * retry job or ""  ARGV[12] its due time ms  ARGV[13] attempt log length
 *
 * pw:seq makes every failure member unique (two failures in one
 * millisecond are two failures) and is zero-padded so that failures of
 * one millisecond sort in the order they were recorded. Retry and notice
 * ids begin with "<webhookId>:", which the claim scripts rely on (the
 * retry's webhook check, the notice's Kafka key), and carry a time as well
 * as the sequence, so that an id cannot come back after a Redis wipe
 * restarted pw:seq. cjson escapes '/' as "\/"; the gsub undoes that (every
 * '/' in cjson's output is escaped, so "\/" is always that escape), which
 * keeps stored documents and notices as the C side writes them. A deleted
 * webhook gets no log entry and keeps no keys: nobody could read them.
 * Answers {"counted"}, {"disabled", version, notice id or ""},
 * {"inactive"} or {"unreadable"}.
 */
static const char lua_record_failure[] =
	"local id = ARGV[1]\n"
	"if ARGV[10] ~= '' then\n"
	"  redis.call('ZREM', KEYS[4], ARGV[10])\n"
	"  redis.call('HDEL', KEYS[5], ARGV[10])\n"
	"end\n"
	"local cur = redis.call('HGET', KEYS[1], id)\n"
	"if not cur then\n"
	"  redis.call('DEL', KEYS[2], KEYS[3])\n"
	"  return {'inactive'}\n"
	"end\n"
	"redis.call('LPUSH', KEYS[2], ARGV[3])\n"
	"redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[13]) - 1)\n"
	"redis.call('PEXPIRE', KEYS[2], ARGV[4])\n"
	"local ok, doc = pcall(cjson.decode, cur)\n"
	"if not ok or type(doc) ~= 'table' then\n"
	"  return {'unreadable'}\n"
	"end\n"
	"if doc.enabled ~= true then\n"
	"  return {'inactive'}\n"
	"end\n"
	"local at = tonumber(ARGV[5])\n"
	"local window = tonumber(ARGV[8])\n"
	"local seq = redis.call('INCR', KEYS[8])\n"
	"local member = '{\"id\":\"' .. string.format('%020d', seq) .. '\",' .. ARGV[7]\n"
	"redis.call('ZADD', KEYS[3], at, member)\n"
	"redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', at - window)\n"
	"redis.call('PEXPIRE', KEYS[3], window)\n"
	"local count = redis.call('ZCARD', KEYS[3])\n"
	"if count < tonumber(ARGV[9]) then\n"
	"  if ARGV[11] ~= '' then\n"
	"    local rid = id .. ':' .. ARGV[12] .. ':' .. seq\n"
	"    redis.call('HSET', KEYS[5], rid, ARGV[11])\n"
	"    redis.call('ZADD', KEYS[4], ARGV[12], rid)\n"
	"  end\n"
	"  return {'counted'}\n"
	"end\n"
	"local span\n"
	"if window % 1000 == 0 then\n"
	"  span = string.format('%d s', window / 1000)\n"
	"else\n"
	"  span = string.format('%d ms', window)\n"
	"end\n"
	"doc.enabled = false\n"
	"doc.disabledAt = at\n"
	"doc.disabledReason = string.format('%d failed deliveries within %s', count, span)\n"
	"doc.revision = (tonumber(doc.revision) or 0) + 1\n"
	"if type(doc.updatedAt) ~= 'number' or doc.updatedAt < at then\n"
	"  doc.updatedAt = at\n"
	"end\n"
	"redis.call('HSET', KEYS[1], id, (string.gsub(cjson.encode(doc), '\\\\/', '/')))\n"
	"local v = redis.call('INCR', KEYS[6])\n"
	"redis.call('PUBLISH', ARGV[2], v .. ' webhook ' .. id)\n"
	"local email\n"
	"if type(doc.companyId) == 'string' then\n"
	"  local raw = redis.call('HGET', KEYS[7], doc.companyId)\n"
	"  if raw then\n"
	"    local sok, s = pcall(cjson.decode, raw)\n"
	"    if sok and type(s) == 'table' and\n"
	"       type(s.webhookDisabledNotificationEmail) == 'string' and\n"
	"       s.webhookDisabledNotificationEmail ~= '' then\n"
	"      email = s.webhookDisabledNotificationEmail\n"
	"    end\n"
	"  end\n"
	"end\n"
	"if not email then\n"
	"  return {'disabled', v, ''}\n"
	"end\n"
	"local failures = {}\n"
	"for _, m in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do\n"
	"  local fok, f = pcall(cjson.decode, m)\n"
	"  if fok and type(f) == 'table' then\n"
	"    failures[#failures + 1] = {at = f.at, status = f.status, error = f.error}\n"
	"  end\n"
	"end\n"
	"local last = cjson.decode(member)\n"
	"local why\n"
	"if type(last.status) == 'number' and type(last.error) == 'string' then\n"
	"  why = string.format('HTTP status %d (%s)', last.status, last.error)\n"
	"elseif type(last.status) == 'number' then\n"
	"  why = string.format('HTTP status %d', last.status)\n"
	"elseif type(last.error) == 'string' then\n"
	"  why = last.error\n"
	"else\n"
	"  why = 'unknown'\n"
	"end\n"
	"local event = tostring(doc.event)\n"
	"local target = tostring(doc.target)\n"
	"local notice = {\n"
	"  type = 'WebhookDisabled',\n"
	"  to = email,\n"
	"  subject = 'Webhook disabled: ' .. event .. ' -> ' .. target,\n"
	"  text = string.format('Your webhook %s for %s events to %s has been ' ..\n"
	"    'disabled at %s after %d failed deliveries within %s. Last failure: ' ..\n"
	"    '%s. Fix the receiver, then enable the webhook again (PATCH ' ..\n"
	"    '/v1/companies/%s/webhooks/%s with {\"enabled\": true}); enabling it ' ..\n"
	"    'clears its failure history.', id, event, target, ARGV[6], count,\n"
	"    span, why, tostring(doc.companyId), id),\n"
	"  companyId = doc.companyId,\n"
	"  webhookId = id,\n"
	"  event = doc.event,\n"
	"  target = doc.target,\n"
	"  disabledAt = ARGV[6],\n"
	"  failures = failures,\n"
	"}\n"
	"local nid = id .. ':' .. ARGV[5] .. ':' .. seq\n"
	"redis.call('HSET', KEYS[9], nid, (string.gsub(cjson.encode(notice), '\\\\/', '/')))\n"
	"redis.call('ZADD', KEYS[10], at, nid)\n"
	"return {'disabled', v, nid}\n";

/*
 * KEYS[1] pw:webhooks  KEYS[2] pw:attempts:<id>  KEYS[3] pw:retries
 * KEYS[4] pw:retry-jobs
 * ARGV[1] id  ARGV[2] attempt log entry  ARGV[3] its TTL ms
 * ARGV[4] attempt log length  ARGV[5] retry id being finished or ""
 */
static const char lua_record_success[] =
	"if ARGV[5] ~= '' then\n"
	"  redis.call('ZREM', KEYS[3], ARGV[5])\n"
	"  redis.call('HDEL', KEYS[4], ARGV[5])\n"
	"end\n"
	"if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then\n"
	"  redis.call('LPUSH', KEYS[2], ARGV[2])\n"
	"  redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[4]) - 1)\n"
	"  redis.call('PEXPIRE', KEYS[2], ARGV[3])\n"
	"end\n"
	"return {'ok', 0}\n";

/*
 * A batch of attempt log entries; a deleted webhook's are skipped.
 * KEYS[1] pw:webhooks  KEYS[1+i] pw:attempts:<id of entry i>
 * ARGV[1] TTL ms  ARGV[2] attempt log length
 * ARGV[1+2i] the webhook id of entry i  ARGV[2+2i] entry i
 */
static const char lua_log_attempts[] =
	"for i = 2, #KEYS do\n"
	"  if redis.call('HEXISTS', KEYS[1], ARGV[2 * i - 1]) == 1 then\n"
	"    redis.call('LPUSH', KEYS[i], ARGV[2 * i])\n"
	"    redis.call('LTRIM', KEYS[i], 0, tonumber(ARGV[2]) - 1)\n"
	"    redis.call('PEXPIRE', KEYS[i], ARGV[1])\n"
	"  end\n"
	"end\n"
	"return #KEYS - 1\n";

/*
 * Claims due retries: each is pushed to now + lease (the lease), or dropped
 * when its job is gone or its webhook is deleted or disabled.
 * KEYS[1] pw:retries  KEYS[2] pw:retry-jobs  KEYS[3] pw:webhooks
 * ARGV[1] now ms  ARGV[2] lease ms  ARGV[3] max
 * Answers {id, job, "", ...}.
 */
static const char lua_retry_claim[] =
	"local now = tonumber(ARGV[1])\n"
	"local out = {}\n"
	"local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0,\n"
	"                       tonumber(ARGV[3]))\n"
	"for _, rid in ipairs(due) do\n"
	"  local job = redis.call('HGET', KEYS[2], rid)\n"
	"  local wid = string.match(rid, '^([^:]+):')\n"
	"  local live = false\n"
	"  if job and wid then\n"
	"    local raw = redis.call('HGET', KEYS[3], wid)\n"
	"    if raw then\n"
	"      local ok, doc = pcall(cjson.decode, raw)\n"
	"      live = ok and type(doc) == 'table' and doc.enabled == true\n"
	"    end\n"
	"  end\n"
	"  if live then\n"
	"    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), rid)\n"
	"    out[#out + 1] = rid\n"
	"    out[#out + 1] = job\n"
	"    out[#out + 1] = ''\n"
	"  else\n"
	"    redis.call('ZREM', KEYS[1], rid)\n"
	"    redis.call('HDEL', KEYS[2], rid)\n"
	"  end\n"
	"end\n"
	"return out\n";

/*
 * Claims due notices the same way; a notice id begins with its webhook id,
 * the Kafka key.
 * KEYS[1] pw:outbox  KEYS[2] pw:notices
 * ARGV[1] now ms  ARGV[2] lease ms  ARGV[3] max
 * Answers {id, notice, key, ...}.
 */
static const char lua_outbox_claim[] =
	"local now = tonumber(ARGV[1])\n"
	"local out = {}\n"
	"local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0,\n"
	"                       tonumber(ARGV[3]))\n"
	"for _, nid in ipairs(due) do\n"
	"  local notice = redis.call('HGET', KEYS[2], nid)\n"
	"  if notice then\n"
	"    local key = string.match(nid, '^([^:]+):') or ''\n"
	"    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), nid)\n"
	"    out[#out + 1] = nid\n"
	"    out[#out + 1] = notice\n"
	"    out[#out + 1] = key\n"
	"  else\n"
	"    redis.call('ZREM', KEYS[1], nid)\n"
	"  end\n"
	"end\n"
	"return out\n";

/* KEYS[1] pw:outbox  KEYS[2] pw:notices  ARGV[1] notice id */
static const char lua_outbox_ack[] =
	"redis.call('ZREM', KEYS[1], ARGV[1])\n"
	"redis.call('HDEL', KEYS[2], ARGV[1])\n"
	"return {'ok', 0}\n";

/*
 * A delivery put off without an attempt (its target's queue is full): a
 * retry job like any other, with the retry id format of every retry.
 * KEYS[1] pw:retries  KEYS[2] pw:retry-jobs  KEYS[3] pw:seq
 * ARGV[1] webhook id  ARGV[2] due ms  ARGV[3] the job
 */
static const char lua_retry_defer[] =
	"local rid = ARGV[1] .. ':' .. ARGV[2] .. ':' .. redis.call('INCR', KEYS[3])\n"
	"redis.call('HSET', KEYS[2], rid, ARGV[3])\n"
	"redis.call('ZADD', KEYS[1], ARGV[2], rid)\n"
	"return {'ok', 0}\n";

/* KEYS[1] pw:retries  KEYS[2] pw:outbox */
static const char lua_counts[] =
	"return {redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[2])}\n";

/* ---- promotions and their period occurrences (store.h) ---- */

/*
 * One promotion change. The caller built the new state (ARGV[4]); this
 * decides whether it is newer than the stored one and keeps the two date
 * indexes in step with it.
 * KEYS[1] pw:promo:<c>  KEYS[2] pw:promo-start:<c>  KEYS[3] pw:promo-end:<c>
 * KEYS[4] pw:promo-fresh  KEYS[5] pw:promo-gen
 * ARGV[1] promotion id  ARGV[2] event time ms  ARGV[3] "1" for a deletion
 * ARGV[4] the new state  ARGV[5] start ms or ""  ARGV[6] end ms or ""
 * ARGV[7] the pw:promo-fresh member: "<companyId>\n<promotionId>"
 *
 * A change older than the stored state (or tombstone) is ignored; at the
 * same millisecond a tombstone wins, so that a Deleted and an Updated of
 * one instant cannot resurrect the promotion whatever order they arrive
 * in; otherwise the same time applies (a redelivered event is harmless).
 * An unreadable stored state is overwritten. A date that is new or moved
 * puts the promotion in pw:promo-fresh, scored with the next pw:promo-gen,
 * for the scheduler (an S that lands inside a window already open is
 * found there, not by a pass's range query). Answers {"ok", 1} applied,
 * {"ok", 0} ignored.
 */
static const char lua_promo_apply[] =
	"local cur = redis.call('HGET', KEYS[1], ARGV[1])\n"
	"if cur then\n"
	"  local ok, st = pcall(cjson.decode, cur)\n"
	"  if ok and type(st) == 'table' and type(st.time) == 'number' then\n"
	"    local t = tonumber(ARGV[2])\n"
	"    if st.time > t or (st.time == t and st.deleted == true and ARGV[3] ~= '1') then\n"
	"      return {'ok', 0}\n"
	"    end\n"
	"  end\n"
	"end\n"
	"redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])\n"
	"local moved = 0\n"
	"if ARGV[5] ~= '' then\n"
	"  moved = moved + redis.call('ZADD', KEYS[2], 'CH', ARGV[5], ARGV[1])\n"
	"else\n"
	"  redis.call('ZREM', KEYS[2], ARGV[1])\n"
	"end\n"
	"if ARGV[6] ~= '' then\n"
	"  moved = moved + redis.call('ZADD', KEYS[3], 'CH', ARGV[6], ARGV[1])\n"
	"else\n"
	"  redis.call('ZREM', KEYS[3], ARGV[1])\n"
	"end\n"
	"if moved > 0 then\n"
	"  redis.call('ZADD', KEYS[4], redis.call('INCR', KEYS[5]), ARGV[7])\n"
	"end\n"
	"return {'ok', 1}\n";

/*
 * One scheduler pass, under a short lock so that one replica scans per
 * tick (the lock only saves work: every claim is a SET NX of its own).
 * KEYS[1] pw:scheduler:lock  KEYS[2] pw:seq  KEYS[3] pw:retries
 * KEYS[4] pw:retry-jobs  KEYS[5] pw:promo-fresh  KEYS[6] pw:sched:pass
 * KEYS[7] pw:promo-gen
 * ARGV[1] now ms  ARGV[2] now (RFC 3339)  ARGV[3] lock ms
 * ARGV[4] the hooks, a JSON array of [webhookId, companyId, "start"|"end",
 *         event name, period name, period value, P ms]
 * ARGV[5] the most occurrences to claim in this pass
 *
 * An occurrence (W, X, start|end, S) is due while now < S <= now + P
 * (S - P <= now < S). Each hook has a mark, pw:sched:<W>:<start|end> =
 * "<pass>:<P>:<done>:<gen>": every S <= done, and every date set up to
 * generation gen, was looked at. A hook whose mark is from the previous
 * pass with the same P looks only at S in (max(done, now), now + P] in the
 * date index, and at the dates set after gen (pw:promo-fresh is ordered by
 * generation) that are at or below done, which that range does not cover.
 * Any other hook (new, enabled again, period changed, or left out of a
 * pass by a replica whose cache lagged, which may have emptied
 * pw:promo-fresh) looks at its whole window. So a pass costs
 * O(hooks * log n) plus the dates set since the last pass plus the
 * occurrences that became due; a hook seen for the first time pays
 * O(log n + m) for its window.
 *
 * At most ARGV[5] claims per pass, so that Redis is not held for long
 * (a webhook created over a day's worth of promotions): the pass stops
 * there, the hook it stopped in records how far it got, the hooks after
 * it keep their marks as they were (or none), and pw:promo-fresh is left
 * for the next pass, which goes on from there. Only a pass that finished
 * every hook empties pw:promo-fresh.
 *
 * A claim is SET NX of pw:occ:<W>:<X>:<start|end>:<S> (kept until a day
 * after S, when S can no longer be due), then the retry job, in the format
 * of retryjob.h, due now: the pipeline's retry path delivers it under the
 * failure rule and the retry schedule, on whichever replica claims it, and
 * after any crash. Its message id is "msg_" and 32 hex digits of
 * SHA-1(W NUL X NUL start|end NUL S), the same for every attempt; its
 * retry id "<W>:<now ms>:<pw:seq>" as every retry id. Numbers go through
 * '%.0f' (exact below 2^53), never Lua's '%.14g'; the gsub undoes cjson's
 * "\/" as in lua_record_failure. An occurrence whose promotion state is
 * gone (only a foreign writer could do that) stays claimed, undelivered.
 * Answers {"ok", claimed} or {"skipped"}.
 */
static const char lua_period_scan[] =
	"if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[3]) then\n"
	"  return {'skipped'}\n"
	"end\n"
	"local now = tonumber(ARGV[1])\n"
	"local hooks = cjson.decode(ARGV[4])\n"
	"local budget = tonumber(ARGV[5])\n"
	"local pass = redis.call('INCR', KEYS[6])\n"
	"local gen0 = tonumber(redis.call('GET', KEYS[7]) or '0')\n"
	"local fresh = {}\n"
	"local all = redis.call('ZRANGE', KEYS[5], 0, -1, 'WITHSCORES')\n"
	"for i = 1, #all, 2 do\n"
	"  local c, x = string.match(all[i], '^([^\\n]*)\\n(.*)$')\n"
	"  if c then\n"
	"    local l = fresh[c]\n"
	"    if not l then\n"
	"      l = {}\n"
	"      fresh[c] = l\n"
	"    end\n"
	"    l[#l + 1] = {tonumber(all[i + 1]), x}\n"
	"  end\n"
	"end\n"
	"local scores = {}\n"
	"local function score(idx, x)\n"
	"  local m = scores[idx]\n"
	"  if not m then\n"
	"    m = {}\n"
	"    scores[idx] = m\n"
	"  end\n"
	"  local s = m[x]\n"
	"  if s == nil then\n"
	"    s = tonumber(redis.call('ZSCORE', idx, x)) or false\n"
	"    m[x] = s\n"
	"  end\n"
	"  return s\n"
	"end\n"
	"local function num(v)\n"
	"  return string.format('%.0f', v)\n"
	"end\n"
	"local claimed = 0\n"
	"local function claim(h, x, s)\n"
	"  local sk = num(s)\n"
	"  local occ = 'pw:occ:' .. h[1] .. ':' .. x .. ':' .. h[3] .. ':' .. sk\n"
	"  if not redis.call('SET', occ, '1', 'NX', 'PX', num(s - now + 86400000)) then\n"
	"    return\n"
	"  end\n"
	"  local raw = redis.call('HGET', 'pw:promo:' .. h[2], x)\n"
	"  if not raw then\n"
	"    return\n"
	"  end\n"
	"  local ok, st = pcall(cjson.decode, raw)\n"
	"  if not ok or type(st) ~= 'table' or st.deleted == true or\n"
	"     type(st.data) ~= 'string' then\n"
	"    return\n"
	"  end\n"
	"  local hash = redis.sha1hex(h[1] .. '\\0' .. x .. '\\0' .. h[3] .. '\\0' .. sk)\n"
	"  local job = cjson.encode({\n"
	"    webhookId = h[1],\n"
	"    messageId = 'msg_' .. string.sub(hash, 1, 32),\n"
	"    eventId = x .. ':' .. h[3] .. ':' .. sk,\n"
	"    event = h[4],\n"
	"    companyId = h[2],\n"
	"    occurredAt = ARGV[2],\n"
	"    period = h[5],\n"
	"    periodValue = h[6],\n"
	"    attempt = 1,\n"
	"    data = st.data,\n"
	"  })\n"
	"  local rid = h[1] .. ':' .. ARGV[1] .. ':' .. num(redis.call('INCR', KEYS[2]))\n"
	"  redis.call('HSET', KEYS[4], rid, (string.gsub(job, '\\\\/', '/')))\n"
	"  redis.call('ZADD', KEYS[3], ARGV[1], rid)\n"
	"  claimed = claimed + 1\n"
	"end\n"
	"local cut = false\n"
	"for _, h in ipairs(hooks) do\n"
	"  local idx = 'pw:promo-' .. h[3] .. ':' .. h[2]\n"
	"  local p = h[7]\n"
	"  local hi = now + p\n"
	"  local mark = 'pw:sched:' .. h[1] .. ':' .. h[3]\n"
	"  local done, gen\n"
	"  local w = redis.call('GET', mark)\n"
	"  if w then\n"
	"    local wpass, wp, wdone, wgen = string.match(w, '^(%d+):(%d+):(%d+):(%d+)$')\n"
	"    if wpass and tonumber(wpass) == pass - 1 and tonumber(wp) == p then\n"
	"      done = tonumber(wdone)\n"
	"      gen = tonumber(wgen)\n"
	"    end\n"
	"  end\n"
	"  if not cut and done then\n"
	"    local l = fresh[h[2]] or {}\n"
	"    local top = math.min(done, hi)\n"
	"    local a, b = 1, #l + 1\n"
	"    while a < b do\n"
	"      local mid = math.floor((a + b) / 2)\n"
	"      if l[mid][1] > gen then\n"
	"        b = mid\n"
	"      else\n"
	"        a = mid + 1\n"
	"      end\n"
	"    end\n"
	"    for i = a, #l do\n"
	"      local s = score(idx, l[i][2])\n"
	"      if s and s > now and s <= top then\n"
	"        claim(h, l[i][2], s)\n"
	"        if claimed >= budget then\n"
	"          cut = true\n"
	"          gen = l[i][1]\n"
	"          break\n"
	"        end\n"
	"      end\n"
	"    end\n"
	"    if not cut then\n"
	"      gen = gen0\n"
	"    end\n"
	"  elseif not cut then\n"
	"    done = now\n"
	"    gen = gen0\n"
	"  end\n"
	"  if not cut and done < hi then\n"
	"    local r = redis.call('ZRANGEBYSCORE', idx, '(' .. num(math.max(done, now)),\n"
	"                         num(hi), 'WITHSCORES')\n"
	"    local reached = hi\n"
	"    for i = 1, #r, 2 do\n"
	"      local s = tonumber(r[i + 1])\n"
	"      claim(h, r[i], s)\n"
	"      if claimed >= budget then\n"
	"        cut = true\n"
	"        reached = s - 1\n"
	"        break\n"
	"      end\n"
	"    end\n"
	"    done = math.max(done, reached)\n"
	"  end\n"
	"  if done then\n"
	"    redis.call('SET', mark, num(pass) .. ':' .. num(p) .. ':' .. num(done) ..\n"
	"               ':' .. num(gen), 'PX', 86400000)\n"
	"  end\n"
	"end\n"
	"if not cut then\n"
	"  redis.call('DEL', KEYS[5])\n"
	"end\n"
	"return {'ok', claimed}\n";

static const char *const script_src[SCRIPT_COUNT] = {
	lua_create, lua_replace, lua_delete, lua_settings_put, lua_list,
	lua_load_all, lua_record_failure, lua_record_success, lua_log_attempts,
	lua_retry_claim, lua_outbox_claim, lua_outbox_ack, lua_counts,
	lua_promo_apply, lua_period_scan, lua_retry_defer,
};

/* ---- types ---- */

enum op_kind {
	OP_CREATE,
	OP_GET,
	OP_LIST,
	OP_REPLACE,
	OP_DELETE,
	OP_SETTINGS_GET,
	OP_SETTINGS_PUT,
	OP_LOAD_ALL,
	OP_VERSION,
	OP_FAILURE,
	OP_SUCCESS,
	OP_ATTEMPTS,
	OP_RETRY_CLAIM,
	OP_OUTBOX_CLAIM,
	OP_OUTBOX_ACK,
	OP_COUNTS,
	OP_RETRY_DEFER,
	OP_PROMO_APPLY,
	OP_PERIOD_SCAN,
};

enum op_state {
	OP_QUEUED, /* waiting for the cmd connection */
	OP_SENT,   /* handed to hiredis: only its callback ends it */
	OP_FAILED, /* waiting for the deferred-completion event */
};

struct store_op {
	struct store_op *prev, *next; /* in st->ops, oldest first */
	struct store *st;
	enum op_kind kind;
	enum op_state state;
	union {
		store_webhook_cb *webhook;
		store_list_cb *list;
		store_write_cb *write;
		store_settings_cb *settings;
		store_snapshot_cb *snapshot;
		store_version_cb *version;
		store_failure_cb *failure;
		store_attempts_cb *attempts;
		store_claim_cb *claim;
		store_counts_cb *counts;
		store_scan_cb *scan;
	} cb;
	void *arg;
	int cancelled;         /* store_cancel: finish without calling back */
	int64_t deadline_ms;   /* while queued: fail after this */
	int script;            /* enum script_id, or -1 for a plain command */
	int eval_fallback;     /* resent as EVAL after NOSCRIPT */
	char *company_id;      /* OP_GET: the company it must belong to */
	const char *name;      /* command name for logs */
	int argc;              /* arguments in args, after EVAL/EVALSHA src */
	size_t argoff[OP_MAX_ARGS];
	size_t arglen[OP_MAX_ARGS];
	struct buf args;       /* the arguments, back to back */
};

enum conn_state {
	CONN_DOWN,       /* no context; retry_ev may be pending */
	CONN_CONNECTING, /* TCP connect in progress */
	CONN_HANDSHAKE,  /* AUTH / SELECT / SCRIPT LOAD or SUBSCRIBE sent */
	CONN_READY,      /* usable */
};

struct store_conn {
	struct store *st;
	const char *name;        /* "cmd" or "sub", for logs */
	int is_sub;              /* the subscriber connection */
	redisAsyncContext *ac;   /* NULL while down */
	enum conn_state state;
	int64_t state_since_ms;  /* monotonic time of the last state change */
	unsigned failures;       /* consecutive failed attempts, for backoff */
	int handshake_left;      /* handshake replies still expected */
	int kill_pending;        /* the watchdog drops it on its next tick */
	size_t n_sent;           /* commands awaiting replies */
	int64_t progress_ms;     /* last reply, or first send after idle */
	struct event *retry_ev;  /* reconnect timer */
};

struct store {
	struct event_base *base;
	const struct config *cfg;
	struct store_conn cmd;
	struct store_conn sub;
	char *channel;                     /* pw:changes:<db> */
	char sha[SCRIPT_COUNT][41];        /* from SCRIPT LOAD; "" if unknown */
	struct script_load {
		struct store_conn *conn;
		int script;
	} loads[SCRIPT_COUNT];             /* privdata of the SCRIPT LOADs */
	struct store_op *ops_head, *ops_tail;
	struct event *watchdog_ev;
	struct event *defer_ev;            /* completes OP_FAILED ops */
	store_change_cb *change_cb;
	void *change_arg;
	int closing;                       /* store_free in progress */
	int log_eval;                      /* next attempt batch as EVAL: the
					    * script cache lost it (NOSCRIPT) */
	unsigned long long log_dropped;    /* attempt log entries lost */
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *store_status_name(enum store_status status)
{
	switch (status) {
	case STORE_OK: return "ok";
	case STORE_NOT_FOUND: return "not_found";
	case STORE_CONFLICT: return "conflict";
	case STORE_UNAVAILABLE: return "unavailable";
	case STORE_ERROR: return "error";
	}
	return "unknown";
}

void store_snapshot_free(struct store_snapshot *snap)
{
	size_t i;

	if (!snap)
		return;
	for (i = 0; i < snap->n_hooks; i++)
		webhook_release(&snap->hooks[i]);
	free(snap->hooks);
	for (i = 0; i < snap->n_companies; i++) {
		free(snap->companies[i].company_id);
		company_settings_release(&snap->companies[i].settings);
	}
	free(snap->companies);
	free(snap);
}

/* ---- operation bookkeeping ---- */

static struct store_op *op_new(struct store *st, enum op_kind kind,
			       const char *name, int script, void *arg)
{
	struct store_op *op = calloc(1, sizeof(*op));

	if (!op)
		return NULL;
	op->st = st;
	op->kind = kind;
	op->name = name;
	op->script = script;
	op->arg = arg;
	buf_init(&op->args, OP_ARGS_MAX);
	return op;
}

static void op_free(struct store_op *op)
{
	buf_release(&op->args);
	free(op->company_id);
	free(op);
}

/* Appends one argument; errors are seen once by op_args_ok. */
static void op_arg(struct store_op *op, const char *p, size_t len)
{
	if (op->argc >= OP_MAX_ARGS) {
		op->args.failed = 1;
		return;
	}
	op->argoff[op->argc] = op->args.len;
	op->arglen[op->argc] = len;
	op->argc++;
	buf_add(&op->args, p, len);
}

static void op_args(struct store_op *op, const char *s)
{
	op_arg(op, s, strlen(s));
}

/* Appends "prefix<middle>suffix" as one argument (a key name). */
static void op_argkey(struct store_op *op, const char *prefix,
		      const char *middle, const char *suffix)
{
	struct buf k;

	buf_init(&k, OP_ARGS_MAX);
	buf_adds(&k, prefix);
	buf_adds(&k, middle);
	buf_adds(&k, suffix);
	if (k.failed)
		op->args.failed = 1;
	else
		op_arg(op, k.data, k.len);
	buf_release(&k);
}

static void op_link(struct store *st, struct store_op *op)
{
	op->prev = st->ops_tail;
	op->next = NULL;
	if (st->ops_tail)
		st->ops_tail->next = op;
	else
		st->ops_head = op;
	st->ops_tail = op;
}

static void op_unlink(struct store *st, struct store_op *op)
{
	if (op->prev)
		op->prev->next = op->next;
	else
		st->ops_head = op->next;
	if (op->next)
		op->next->prev = op->prev;
	else
		st->ops_tail = op->prev;
	op->prev = op->next = NULL;
}

/* Ends an operation without a result: unlinks, calls back, frees. */
static void op_fail(struct store_op *op, enum store_status status)
{
	struct store *st = op->st;

	op_unlink(st, op);
	if (!op->cancelled && !st->closing) {
		switch (op->kind) {
		case OP_GET:
			op->cb.webhook(op->arg, status, NULL);
			break;
		case OP_LIST:
			op->cb.list(op->arg, status, NULL, 0);
			break;
		case OP_CREATE:
		case OP_REPLACE:
		case OP_DELETE:
		case OP_SETTINGS_PUT:
		case OP_SUCCESS:
		case OP_OUTBOX_ACK:
		case OP_PROMO_APPLY:
		case OP_RETRY_DEFER:
			op->cb.write(op->arg, status, 0);
			break;
		case OP_SETTINGS_GET:
			op->cb.settings(op->arg, status, NULL);
			break;
		case OP_LOAD_ALL:
			op->cb.snapshot(op->arg, status, NULL);
			break;
		case OP_VERSION:
			op->cb.version(op->arg, status, 0);
			break;
		case OP_FAILURE:
			op->cb.failure(op->arg, status, STORE_FAILURE_INACTIVE);
			break;
		case OP_ATTEMPTS:
			op->cb.attempts(op->arg, status, NULL, NULL, 0);
			break;
		case OP_RETRY_CLAIM:
		case OP_OUTBOX_CLAIM:
			op->cb.claim(op->arg, status, NULL, 0);
			break;
		case OP_COUNTS:
			op->cb.counts(op->arg, status, 0, 0);
			break;
		case OP_PERIOD_SCAN:
			op->cb.scan(op->arg, status, 0, 0);
			break;
		}
	}
	op_free(op);
}

static void on_reply(redisAsyncContext *ac, void *r, void *privdata);

/* Hands a queued op to hiredis. Returns 0, or -1 when the context refused
 * (it is shutting down): the op stays queued. */
static int op_send(struct store *st, struct store_op *op)
{
	struct store_conn *conn = &st->cmd;
	const char *argv[OP_MAX_ARGS + 2];
	size_t argvlen[OP_MAX_ARGS + 2];
	int i, n = 0;

	if (op->script >= 0) {
		if (st->sha[op->script][0] && !op->eval_fallback) {
			argv[0] = "EVALSHA";
			argv[1] = st->sha[op->script];
		} else {
			argv[0] = "EVAL";
			argv[1] = script_src[op->script];
		}
		argvlen[0] = strlen(argv[0]);
		argvlen[1] = strlen(argv[1]);
		n = 2;
	}
	for (i = 0; i < op->argc; i++) {
		argv[n] = op->args.data + op->argoff[i];
		argvlen[n] = op->arglen[i];
		n++;
	}
	if (redisAsyncCommandArgv(conn->ac, on_reply, op, n, argv, argvlen) != REDIS_OK)
		return -1;
	op->state = OP_SENT;
	if (conn->n_sent++ == 0)
		conn->progress_ms = now_ms();
	return 0;
}

static void flush_queue(struct store *st)
{
	struct store_op *op, *next;

	for (op = st->ops_head; op; op = next) {
		next = op->next;
		if (op->state != OP_QUEUED)
			continue;
		if (st->cmd.state != CONN_READY || op_send(st, op) < 0)
			break;
	}
}

/* Starts an op built by a public function: queues it, sends it when the
 * connection is ready, or fails it (deferred) when Redis is known down. */
static int op_start(struct store *st, struct store_op *op)
{
	if (op->args.failed) {
		op_free(op);
		return -1;
	}
	op_link(st, op);
	op->state = OP_QUEUED;
	op->deadline_ms = now_ms() + QUEUE_TIMEOUT_MS;
	if (st->cmd.state == CONN_READY) {
		if (op_send(st, op) == 0)
			return 0;
	} else if (st->cmd.state == CONN_DOWN && st->cmd.failures > 0) {
		/* A reconnect attempt already failed: do not make the
		 * caller wait seconds for an answer it can have now. */
		op->state = OP_FAILED;
		event_active(st->defer_ev, EV_TIMEOUT, 0);
	}
	return 0;
}

static void defer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct store *st = arg;
	struct store_op *op, *next;

	/* Callbacks may start or cancel ops: restart the walk after each. */
	for (op = st->ops_head; op; op = next) {
		next = op->next;
		if (op->state == OP_FAILED) {
			op_fail(op, STORE_UNAVAILABLE);
			next = st->ops_head;
		}
	}
}

void store_cancel(struct store *st, void *arg)
{
	struct store_op *op;

	for (op = st->ops_head; op; op = op->next) {
		if (op->arg == arg)
			op->cancelled = 1;
	}
}

/* ---- reply parsing ---- */

/* Copies a bulk string into a NUL-terminated malloc'd string. */
static char *reply_strdup(const redisReply *r)
{
	char *s = malloc(r->len + 1);

	if (!s)
		return NULL;
	memcpy(s, r->str, r->len);
	s[r->len] = '\0';
	return s;
}

static int reply_int64(const redisReply *r, int64_t *out)
{
	char tmp[32], *end;
	long long v;

	if (r->type == REDIS_REPLY_INTEGER) {
		*out = r->integer;
		return 0;
	}
	if (r->type == REDIS_REPLY_NIL) {
		*out = 0;
		return 0;
	}
	if (r->type != REDIS_REPLY_STRING || r->len == 0 || r->len >= sizeof(tmp))
		return -1;
	memcpy(tmp, r->str, r->len);
	tmp[r->len] = '\0';
	errno = 0;
	v = strtoll(tmp, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

/* A write script's answer: {"ok", version} / {"not_found"} / {"conflict"}. */
static enum store_status parse_write(const redisReply *r, int64_t *version)
{
	const redisReply *s;

	*version = 0;
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 1)
		return STORE_ERROR;
	s = r->element[0];
	if (s->type != REDIS_REPLY_STRING)
		return STORE_ERROR;
	if (s->len == 2 && memcmp(s->str, "ok", 2) == 0) {
		if (r->elements < 2 || reply_int64(r->element[1], version) < 0)
			return STORE_ERROR;
		return STORE_OK;
	}
	if (s->len == 9 && memcmp(s->str, "not_found", 9) == 0)
		return STORE_NOT_FOUND;
	if (s->len == 8 && memcmp(s->str, "conflict", 8) == 0)
		return STORE_CONFLICT;
	return STORE_ERROR;
}

static int cmp_hooks_created(const void *a, const void *b)
{
	const struct webhook *x = a, *y = b;

	if (x->created_at_ms != y->created_at_ms)
		return x->created_at_ms < y->created_at_ms ? -1 : 1;
	return strcmp(x->id, y->id);
}

/* Parses an array of stored webhook documents; unreadable ones are logged
 * and skipped, so one bad document cannot hide every other webhook. */
static int parse_hooks(const redisReply *r, struct webhook **out, size_t *n)
{
	struct webhook *hooks;
	size_t i, k = 0;

	*out = NULL;
	*n = 0;
	if (r->type != REDIS_REPLY_ARRAY)
		return -1;
	if (r->elements == 0)
		return 0;
	hooks = calloc(r->elements, sizeof(*hooks));
	if (!hooks)
		return -1;
	for (i = 0; i < r->elements; i++) {
		const redisReply *e = r->element[i];

		webhook_init(&hooks[k]);
		if (e->type != REDIS_REPLY_STRING ||
		    webhook_from_storage(&hooks[k], e->str, e->len) < 0) {
			log_warn("stored webhook unreadable, skipped",
				 "index=%zu", i);
			continue;
		}
		k++;
	}
	*out = hooks;
	*n = k;
	return 0;
}

static void free_hooks(struct webhook *hooks, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		webhook_release(&hooks[i]);
	free(hooks);
}

static void finish_get(struct store_op *op, const redisReply *r)
{
	struct webhook wh;
	enum store_status status = STORE_OK;

	webhook_init(&wh);
	if (r->type == REDIS_REPLY_NIL) {
		status = STORE_NOT_FOUND;
	} else if (r->type != REDIS_REPLY_STRING ||
		   webhook_from_storage(&wh, r->str, r->len) < 0) {
		log_warn("stored webhook unreadable", "company=%s", op->company_id);
		status = STORE_ERROR;
	} else if (strcmp(wh.company_id, op->company_id) != 0) {
		/* Another company's webhook is not there for this one. */
		status = STORE_NOT_FOUND;
	}
	if (!op->cancelled)
		op->cb.webhook(op->arg, status, status == STORE_OK ? &wh : NULL);
	webhook_release(&wh);
}

static void finish_list(struct store_op *op, const redisReply *r)
{
	struct webhook *hooks;
	size_t n;

	if (parse_hooks(r, &hooks, &n) < 0) {
		if (!op->cancelled)
			op->cb.list(op->arg, STORE_ERROR, NULL, 0);
		return;
	}
	if (n > 1)
		qsort(hooks, n, sizeof(*hooks), cmp_hooks_created);
	if (!op->cancelled)
		op->cb.list(op->arg, STORE_OK, hooks, n);
	free_hooks(hooks, n);
}

static void finish_settings_get(struct store_op *op, const redisReply *r)
{
	struct company_settings s;
	enum store_status status = STORE_OK;

	company_settings_init(&s);
	if (r->type == REDIS_REPLY_STRING) {
		if (company_settings_from_json(&s, r->str, r->len) < 0) {
			log_warn("stored settings unreadable", "company=%s",
				 op->company_id);
			status = STORE_ERROR;
		}
	} else if (r->type != REDIS_REPLY_NIL) {
		status = STORE_ERROR;
	}
	if (!op->cancelled)
		op->cb.settings(op->arg, status, status == STORE_OK ? &s : NULL);
	company_settings_release(&s);
}

static struct store_snapshot *parse_snapshot(const redisReply *r)
{
	struct store_snapshot *snap;
	const redisReply *kv;
	size_t i;

	if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
	    r->element[2]->type != REDIS_REPLY_ARRAY)
		return NULL;
	snap = calloc(1, sizeof(*snap));
	if (!snap)
		return NULL;
	if (reply_int64(r->element[0], &snap->version) < 0 ||
	    parse_hooks(r->element[1], &snap->hooks, &snap->n_hooks) < 0)
		goto fail;
	kv = r->element[2];
	if (kv->elements / 2 > 0) {
		snap->companies = calloc(kv->elements / 2, sizeof(*snap->companies));
		if (!snap->companies)
			goto fail;
	}
	for (i = 0; i + 1 < kv->elements; i += 2) {
		const redisReply *k = kv->element[i], *v = kv->element[i + 1];
		struct store_company *c = &snap->companies[snap->n_companies];

		if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
			goto fail;
		company_settings_init(&c->settings);
		if (company_settings_from_json(&c->settings, v->str, v->len) < 0) {
			log_warn("stored settings unreadable, skipped", "index=%zu", i / 2);
			continue;
		}
		c->company_id = reply_strdup(k);
		if (!c->company_id) {
			company_settings_release(&c->settings);
			goto fail;
		}
		snap->n_companies++;
	}
	return snap;
fail:
	store_snapshot_free(snap);
	return NULL;
}

/* record_failure's answer: {"counted"} / {"disabled", v, nid} / ... */
static void finish_failure(struct store_op *op, const redisReply *r)
{
	enum store_failure_result result = STORE_FAILURE_INACTIVE;
	enum store_status status = STORE_ERROR;
	const redisReply *s = NULL;

	if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
	    r->element[0]->type == REDIS_REPLY_STRING)
		s = r->element[0];
	if (s && strcmp(s->str, "counted") == 0) {
		status = STORE_OK;
		result = STORE_FAILURE_COUNTED;
	} else if (s && strcmp(s->str, "disabled") == 0) {
		status = STORE_OK;
		result = STORE_FAILURE_DISABLED;
	} else if (s && strcmp(s->str, "inactive") == 0) {
		status = STORE_OK;
	} else if (s && strcmp(s->str, "unreadable") == 0) {
		log_warn("stored webhook unreadable", "op=%s", op->name);
	} else {
		log_warn("redis script answered unexpectedly", "op=%s", op->name);
	}
	if (!op->cancelled)
		op->cb.failure(op->arg, status, result);
}

/* LRANGE of an attempt log: bulk strings, newest first. */
static void finish_attempts(struct store_op *op, const redisReply *r)
{
	const char *items[ATTEMPTS_KEEP];
	size_t lens[ATTEMPTS_KEEP];
	size_t i, n = 0;

	if (r->type != REDIS_REPLY_ARRAY) {
		log_warn("redis answered unexpectedly", "op=%s", op->name);
		if (!op->cancelled)
			op->cb.attempts(op->arg, STORE_ERROR, NULL, NULL, 0);
		return;
	}
	for (i = 0; i < r->elements && n < ATTEMPTS_KEEP; i++) {
		if (r->element[i]->type != REDIS_REPLY_STRING)
			continue;
		items[n] = r->element[i]->str;
		lens[n] = r->element[i]->len;
		n++;
	}
	if (!op->cancelled)
		op->cb.attempts(op->arg, STORE_OK, items, lens, n);
}

/* A claim script's answer: {id, payload, key} triples ("" key = none).
 * hiredis NUL-terminates every string it returns. */
static void finish_claim(struct store_op *op, const redisReply *r)
{
	struct store_claimed *items = NULL;
	size_t i, n = 0;

	if (r->type != REDIS_REPLY_ARRAY || r->elements % 3 != 0) {
		log_warn("redis script answered unexpectedly", "op=%s", op->name);
		if (!op->cancelled)
			op->cb.claim(op->arg, STORE_ERROR, NULL, 0);
		return;
	}
	if (r->elements > 0) {
		items = calloc(r->elements / 3, sizeof(*items));
		if (!items) {
			/* The claims stand: their leases run out and they come
			 * back, so nothing is lost. */
			if (!op->cancelled)
				op->cb.claim(op->arg, STORE_ERROR, NULL, 0);
			return;
		}
	}
	for (i = 0; i + 2 < r->elements; i += 3) {
		const redisReply *id = r->element[i], *p = r->element[i + 1];
		const redisReply *key = r->element[i + 2];

		if (id->type != REDIS_REPLY_STRING || p->type != REDIS_REPLY_STRING ||
		    key->type != REDIS_REPLY_STRING)
			continue;
		items[n].id = id->str;
		items[n].payload = p->str;
		items[n].payload_len = p->len;
		items[n].key = key->len ? key->str : NULL;
		n++;
	}
	if (!op->cancelled)
		op->cb.claim(op->arg, STORE_OK, items, n);
	free(items);
}

static void finish_counts(struct store_op *op, const redisReply *r)
{
	int64_t retries = 0, notices = 0;
	enum store_status status = STORE_ERROR;

	if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
	    reply_int64(r->element[0], &retries) == 0 &&
	    reply_int64(r->element[1], &notices) == 0)
		status = STORE_OK;
	if (!op->cancelled)
		op->cb.counts(op->arg, status, retries, notices);
}

/* A period scan's answer: {"ok", claimed} or {"skipped"}. */
static void finish_scan(struct store_op *op, const redisReply *r)
{
	enum store_status status = STORE_ERROR;
	const redisReply *s = NULL;
	int64_t claimed = 0;
	int skipped = 0;

	if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
	    r->element[0]->type == REDIS_REPLY_STRING)
		s = r->element[0];
	if (s && strcmp(s->str, "skipped") == 0) {
		status = STORE_OK;
		skipped = 1;
	} else if (s && strcmp(s->str, "ok") == 0 && r->elements == 2 &&
		   reply_int64(r->element[1], &claimed) == 0 && claimed >= 0) {
		status = STORE_OK;
	} else {
		log_warn("redis script answered unexpectedly", "op=%s", op->name);
		claimed = 0;
	}
	if (!op->cancelled)
		op->cb.scan(op->arg, status, (size_t)claimed, skipped);
}

static void finish_op(struct store_op *op, const redisReply *r)
{
	struct store_snapshot *snap;
	enum store_status status;
	int64_t v;

	switch (op->kind) {
	case OP_GET:
		finish_get(op, r);
		break;
	case OP_LIST:
		finish_list(op, r);
		break;
	case OP_CREATE:
	case OP_REPLACE:
	case OP_DELETE:
	case OP_SETTINGS_PUT:
	case OP_SUCCESS:
	case OP_OUTBOX_ACK:
	case OP_PROMO_APPLY:
	case OP_RETRY_DEFER:
		status = parse_write(r, &v);
		if (status == STORE_ERROR)
			log_warn("redis script answered unexpectedly", "op=%s", op->name);
		if (!op->cancelled)
			op->cb.write(op->arg, status, v);
		break;
	case OP_SETTINGS_GET:
		finish_settings_get(op, r);
		break;
	case OP_LOAD_ALL:
		snap = parse_snapshot(r);
		if (!snap)
			log_warn("redis snapshot unreadable", "op=%s", op->name);
		if (!op->cancelled)
			op->cb.snapshot(op->arg, snap ? STORE_OK : STORE_ERROR, snap);
		else
			store_snapshot_free(snap);
		break;
	case OP_VERSION:
		status = reply_int64(r, &v) == 0 ? STORE_OK : STORE_ERROR;
		if (!op->cancelled)
			op->cb.version(op->arg, status, status == STORE_OK ? v : 0);
		break;
	case OP_FAILURE:
		finish_failure(op, r);
		break;
	case OP_ATTEMPTS:
		finish_attempts(op, r);
		break;
	case OP_RETRY_CLAIM:
	case OP_OUTBOX_CLAIM:
		finish_claim(op, r);
		break;
	case OP_COUNTS:
		finish_counts(op, r);
		break;
	case OP_PERIOD_SCAN:
		finish_scan(op, r);
		break;
	}
}

static void on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
	struct store_op *op = privdata;
	struct store *st = op->st;
	struct store_conn *conn = &st->cmd;
	redisReply *reply = r;

	if (conn->ac == ac && conn->n_sent > 0) {
		conn->n_sent--;
		conn->progress_ms = now_ms();
	}
	if (!reply) {
		/* The connection went away before the answer. */
		op_fail(op, STORE_UNAVAILABLE);
		return;
	}
	if (reply->type == REDIS_REPLY_ERROR) {
		if (op->script >= 0 && !op->eval_fallback &&
		    strncmp(reply->str, "NOSCRIPT", 8) == 0 && conn->ac == ac) {
			/* The script cache was flushed (restart, failover,
			 * SCRIPT FLUSH): send the source instead. */
			op->eval_fallback = 1;
			op->state = OP_QUEUED;
			if (op_send(st, op) == 0)
				return;
		}
		log_warn("redis command failed", "op=%s error=\"%.120s\"",
			 op->name, reply->str);
		op_fail(op, STORE_UNAVAILABLE);
		return;
	}
	op_unlink(st, op);
	if (!st->closing)
		finish_op(op, reply);
	op_free(op);
}

/* ---- connections ---- */

static void conn_connect(struct store_conn *conn);

static void conn_set_state(struct store_conn *conn, enum conn_state s)
{
	conn->state = s;
	conn->state_since_ms = now_ms();
}

/* After any loss of a connection: forget the context and schedule a new
 * attempt with exponential backoff. */
static void conn_lost(struct store_conn *conn, const char *why)
{
	struct store *st = conn->st;
	int64_t delay = BACKOFF_MIN_MS;
	struct timeval tv;
	unsigned i;

	if (conn->state == CONN_READY)
		log_warn("redis connection lost", "conn=%s reason=\"%s\"",
			 conn->name, why);
	else if (conn->failures < 3 || conn->failures % 12 == 0)
		log_warn("redis connect failed", "conn=%s attempt=%u reason=\"%s\"",
			 conn->name, conn->failures + 1, why);
	conn->ac = NULL;
	conn->n_sent = 0;
	conn->handshake_left = 0;
	conn->kill_pending = 0;
	conn_set_state(conn, CONN_DOWN);
	if (st->closing)
		return;
	for (i = 0; i < conn->failures && delay < BACKOFF_MAX_MS; i++)
		delay *= 2;
	if (delay > BACKOFF_MAX_MS)
		delay = BACKOFF_MAX_MS;
	conn->failures++;
	tv.tv_sec = (time_t)(delay / 1000);
	tv.tv_usec = (suseconds_t)(delay % 1000) * 1000;
	if (evtimer_add(conn->retry_ev, &tv) < 0)
		log_error("cannot arm redis reconnect timer", "conn=%s", conn->name);
	if (!conn->is_sub) {
		/* Whoever waits for the connection learns now that it is
		 * gone instead of at its deadline. */
		struct store_op *op;
		int any = 0;

		for (op = st->ops_head; op; op = op->next) {
			if (op->state == OP_QUEUED) {
				op->state = OP_FAILED;
				any = 1;
			}
		}
		if (any)
			event_active(st->defer_ev, EV_TIMEOUT, 0);
	}
}

/* Drops the connection on our side (timeout, bad handshake). Safe inside a
 * hiredis callback: hiredis then frees the context when it returns. */
static void conn_kill(struct store_conn *conn, const char *why)
{
	redisAsyncContext *ac = conn->ac;

	conn->ac = NULL;
	conn_lost(conn, why);
	if (ac)
		redisAsyncFree(ac);
}

static void conn_ready(struct store_conn *conn)
{
	struct store *st = conn->st;

	conn_set_state(conn, CONN_READY);
	if (conn->failures > 0)
		log_info("redis connected", "conn=%s after_attempts=%u",
			 conn->name, conn->failures);
	else
		log_info("redis connected", "conn=%s", conn->name);
	conn->failures = 0;
	if (!conn->is_sub) {
		flush_queue(st);
	} else if (st->change_cb) {
		struct store_change ch = { STORE_CHANGE_RESYNC, 0, NULL };

		st->change_cb(st->change_arg, &ch);
	}
}

/* Replies to AUTH, SELECT and SCRIPT LOAD on the cmd connection. privdata
 * is the conn; the script index rides in the reply order. */
static void on_handshake(redisAsyncContext *ac, void *r, void *privdata)
{
	struct store_conn *conn = privdata;
	redisReply *reply = r;

	if (conn->ac != ac || !reply)
		return; /* a dead context's leftovers */
	if (reply->type == REDIS_REPLY_ERROR) {
		char why[160];

		/* e.g. WRONGPASS: the error text names no secret */
		snprintf(why, sizeof(why), "handshake refused: %.120s", reply->str);
		conn_kill(conn, why);
		return;
	}
	/* The subscriber becomes ready with its subscribe confirmation. */
	if (--conn->handshake_left == 0 && !conn->is_sub)
		conn_ready(conn);
}

static void on_script_loaded(redisAsyncContext *ac, void *r, void *privdata)
{
	struct script_load *load = privdata;
	struct store_conn *conn = load->conn;
	struct store *st = conn->st;
	redisReply *reply = r;

	if (conn->ac != ac || !reply)
		return;
	/* Without a sha the script is sent as EVAL: slower, still right. */
	if (reply->type == REDIS_REPLY_STRING && reply->len == 40) {
		memcpy(st->sha[load->script], reply->str, 40);
		st->sha[load->script][40] = '\0';
	}
	on_handshake(ac, r, conn);
}

static void deliver_change(struct store *st, const char *p, size_t len)
{
	char msg[512], *sp1, *sp2, *end;
	struct store_change ch;
	long long v;

	if (len == 0 || len >= sizeof(msg))
		return;
	memcpy(msg, p, len);
	msg[len] = '\0';
	sp1 = strchr(msg, ' ');
	sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (!sp2)
		return;
	*sp1 = '\0';
	*sp2 = '\0';
	errno = 0;
	v = strtoll(msg, &end, 10);
	if (errno || *end || v < 0)
		return;
	if (strcmp(sp1 + 1, "webhook") == 0)
		ch.kind = STORE_CHANGE_WEBHOOK;
	else if (strcmp(sp1 + 1, "settings") == 0)
		ch.kind = STORE_CHANGE_SETTINGS;
	else
		return;
	ch.version = v;
	ch.id = sp2 + 1;
	if (st->change_cb)
		st->change_cb(st->change_arg, &ch);
}

/* Every reply of the subscription: the confirmation, then messages. */
static void on_sub_message(redisAsyncContext *ac, void *r, void *privdata)
{
	struct store_conn *conn = privdata;
	redisReply *reply = r;
	const redisReply *kind;

	if (conn->ac != ac || !reply)
		return;
	if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
	    reply->element[0]->type != REDIS_REPLY_STRING)
		return;
	kind = reply->element[0];
	if (kind->len == 9 && strncasecmp(kind->str, "subscribe", 9) == 0) {
		if (conn->state == CONN_HANDSHAKE)
			conn_ready(conn);
		return;
	}
	if (kind->len == 7 && strncasecmp(kind->str, "message", 7) == 0 &&
	    reply->element[2]->type == REDIS_REPLY_STRING)
		deliver_change(conn->st, reply->element[2]->str,
			       reply->element[2]->len);
}

/* Sends the handshake once TCP is up. Returns -1 when hiredis refused. */
static int conn_handshake(struct store_conn *conn)
{
	struct store *st = conn->st;
	const struct config *cfg = st->cfg;
	redisAsyncContext *ac = conn->ac;
	char db[16];
	int i;

	conn_set_state(conn, CONN_HANDSHAKE);
	conn->handshake_left = 0;
	if (cfg->redis_password) {
		const char *argv[2] = { "AUTH", cfg->redis_password };
		size_t argvlen[2] = { 4, strlen(cfg->redis_password) };

		if (redisAsyncCommandArgv(ac, on_handshake, conn, 2, argv, argvlen) != REDIS_OK)
			return -1;
		conn->handshake_left++;
	}
	/* The subscriber selects the database too, though pub/sub ignores
	 * it: then every connection of this store shows the same db in
	 * CLIENT LIST, which is how operators (and tests) find them. */
	snprintf(db, sizeof(db), "%d", cfg->redis_db);
	{
		const char *argv[2] = { "SELECT", db };
		size_t argvlen[2] = { 6, strlen(db) };

		if (redisAsyncCommandArgv(ac, on_handshake, conn, 2, argv, argvlen) != REDIS_OK)
			return -1;
		conn->handshake_left++;
	}
	if (conn->is_sub) {
		const char *argv[2] = { "SUBSCRIBE", st->channel };
		size_t argvlen[2] = { 9, strlen(st->channel) };

		/* Readiness comes with the subscribe confirmation, which
		 * hiredis routes to the subscription callback. */
		return redisAsyncCommandArgv(ac, on_sub_message, conn, 2, argv,
					     argvlen) == REDIS_OK ? 0 : -1;
	}
	for (i = 0; i < SCRIPT_COUNT; i++)
		st->sha[i][0] = '\0';
	for (i = 0; i < SCRIPT_COUNT; i++) {
		const char *argv[3] = { "SCRIPT", "LOAD", script_src[i] };
		size_t argvlen[3] = { 6, 4, strlen(script_src[i]) };

		st->loads[i].conn = conn;
		st->loads[i].script = i;
		if (redisAsyncCommandArgv(ac, on_script_loaded, &st->loads[i], 3,
					  argv, argvlen) != REDIS_OK)
			return -1;
		conn->handshake_left++;
	}
	return 0;
}

static void on_connect(const redisAsyncContext *cac, int status)
{
	struct store_conn *conn = cac->data;

	if (conn->ac != cac)
		return;
	if (status != REDIS_OK) {
		/* hiredis frees the context after this callback. */
		conn->ac = NULL;
		conn_lost(conn, cac->errstr);
		return;
	}
	/* Freeing the context here would pull it from under hiredis, which
	 * goes on using it after this callback: leave it to the watchdog. */
	if (conn_handshake(conn) < 0)
		conn->kill_pending = 1;
}

static void on_disconnect(const redisAsyncContext *cac, int status)
{
	struct store_conn *conn = cac->data;

	/* hiredis frees the context after this callback. A context we
	 * killed ourselves is no longer conn->ac. */
	if (conn->ac != cac)
		return;
	conn->ac = NULL;
	conn_lost(conn, status == REDIS_OK ? "closed" : cac->errstr);
}

static void conn_connect(struct store_conn *conn)
{
	struct store *st = conn->st;
	redisAsyncContext *ac;

	conn_set_state(conn, CONN_CONNECTING);
	/* Note: a host name is resolved here, synchronously. */
	ac = redisAsyncConnect(st->cfg->redis_host, st->cfg->redis_port);
	if (!ac) {
		conn_lost(conn, "out of memory");
		return;
	}
	if (ac->err) {
		char why[128];

		snprintf(why, sizeof(why), "%s", ac->errstr);
		redisAsyncFree(ac);
		conn_lost(conn, why);
		return;
	}
	ac->data = conn;
	if (redisLibeventAttach(ac, st->base) != REDIS_OK ||
	    redisAsyncSetConnectCallback(ac, on_connect) != REDIS_OK ||
	    redisAsyncSetDisconnectCallback(ac, on_disconnect) != REDIS_OK) {
		redisAsyncFree(ac);
		conn_lost(conn, "cannot attach to the event loop");
		return;
	}
	/* A dead peer behind a silent network is found by TCP keepalive on
	 * the subscriber, which otherwise never sends anything. */
	if (redisEnableKeepAlive(&ac->c) != REDIS_OK)
		log_debug("redis keepalive not enabled", "conn=%s", conn->name);
	conn->ac = ac;
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct store_conn *conn = arg;

	if (conn->state == CONN_DOWN && !conn->st->closing)
		conn_connect(conn);
}

static void watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	struct store *st = arg;
	struct store_conn *conns[2] = { &st->cmd, &st->sub };
	struct store_op *op, *next;
	int64_t now = now_ms();
	int i, any = 0;

	for (i = 0; i < 2; i++) {
		struct store_conn *conn = conns[i];

		if (conn->kill_pending)
			conn_kill(conn, "handshake could not be sent");
		else if ((conn->state == CONN_CONNECTING || conn->state == CONN_HANDSHAKE) &&
			 now - conn->state_since_ms > CONNECT_TIMEOUT_MS)
			conn_kill(conn, "connect timed out");
		else if (conn->state == CONN_READY && conn->n_sent > 0 &&
			 now - conn->progress_ms > COMMAND_TIMEOUT_MS)
			conn_kill(conn, "command timed out");
	}
	for (op = st->ops_head; op; op = next) {
		next = op->next;
		if (op->state == OP_QUEUED && now > op->deadline_ms) {
			op->state = OP_FAILED;
			any = 1;
		}
	}
	if (any)
		event_active(st->defer_ev, EV_TIMEOUT, 0);
}

/* ---- lifecycle ---- */

static int conn_init(struct store *st, struct store_conn *conn,
		     const char *name, int is_sub)
{
	conn->st = st;
	conn->name = name;
	conn->is_sub = is_sub;
	conn->state = CONN_DOWN;
	conn->retry_ev = evtimer_new(st->base, retry_cb, conn);
	return conn->retry_ev ? 0 : -1;
}

struct store *store_new(struct event_base *base, const struct config *cfg,
			char *err, size_t errlen)
{
	struct timeval tv = { 0, WATCHDOG_MS * 1000 };
	struct store *st = calloc(1, sizeof(*st));
	struct buf ch;

	if (!st) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	st->base = base;
	st->cfg = cfg;
	buf_init(&ch, 64);
	buf_addf(&ch, "pw:changes:%d", cfg->redis_db);
	st->channel = ch.failed ? NULL : buf_detach(&ch, NULL);
	buf_release(&ch);
	st->watchdog_ev = event_new(base, -1, EV_PERSIST, watchdog_cb, st);
	st->defer_ev = event_new(base, -1, 0, defer_cb, st);
	if (!st->channel || !st->watchdog_ev || !st->defer_ev ||
	    conn_init(st, &st->cmd, "cmd", 0) < 0 ||
	    conn_init(st, &st->sub, "sub", 1) < 0 ||
	    event_add(st->watchdog_ev, &tv) < 0) {
		snprintf(err, errlen, "cannot set up the redis store: out of memory");
		store_free(st);
		return NULL;
	}
	conn_connect(&st->cmd);
	conn_connect(&st->sub);
	return st;
}

static void conn_close(struct store_conn *conn)
{
	redisAsyncContext *ac = conn->ac;

	conn->ac = NULL;
	if (ac)
		redisAsyncFree(ac); /* pending replies come back NULL: ops end */
	if (conn->retry_ev)
		event_free(conn->retry_ev);
	conn->retry_ev = NULL;
}

void store_free(struct store *st)
{
	struct store_op *op;

	if (!st)
		return;
	st->closing = 1;
	conn_close(&st->cmd);
	conn_close(&st->sub);
	while ((op = st->ops_head) != NULL) {
		op_unlink(st, op);
		op_free(op);
	}
	if (st->watchdog_ev)
		event_free(st->watchdog_ev);
	if (st->defer_ev)
		event_free(st->defer_ev);
	free(st->channel);
	free(st);
}

int store_is_ready(const struct store *st)
{
	return st->cmd.state == CONN_READY;
}

void store_subscribe(struct store *st, store_change_cb *cb, void *arg)
{
	st->change_cb = cb;
	st->change_arg = arg;
}

/* ---- operations ---- */

static struct store_op *start_write(struct store *st, enum op_kind kind,
				    const char *name, int script,
				    store_write_cb *cb, void *arg)
{
	struct store_op *op = op_new(st, kind, name, script, arg);

	if (op)
		op->cb.write = cb;
	return op;
}

int store_webhook_create(struct store *st, const struct webhook *wh,
			 store_write_cb *cb, void *arg)
{
	struct webhook copy = *wh;
	struct store_op *op;
	struct buf doc;
	int rc;

	op = start_write(st, OP_CREATE, "webhook_create", SCRIPT_CREATE, cb, arg);
	if (!op)
		return -1;
	copy.revision = 1;
	buf_init(&doc, OP_ARGS_MAX);
	webhook_to_storage(&copy, &doc);
	op_args(op, "3");
	op_args(op, "pw:webhooks");
	op_argkey(op, "pw:company:", wh->company_id, ":webhooks");
	op_args(op, "pw:version");
	op_args(op, wh->id);
	op_arg(op, buf_str(&doc), doc.len);
	op_args(op, st->channel);
	if (doc.failed)
		op->args.failed = 1;
	buf_release(&doc);
	rc = op_start(st, op);
	return rc;
}

int store_webhook_replace(struct store *st, const struct webhook *wh,
			  int clear_failures, store_write_cb *cb, void *arg)
{
	struct webhook copy = *wh;
	struct store_op *op;
	struct buf doc;
	char rev[24];

	op = start_write(st, OP_REPLACE, "webhook_replace", SCRIPT_REPLACE, cb, arg);
	if (!op)
		return -1;
	copy.revision = wh->revision + 1;
	snprintf(rev, sizeof(rev), "%lld", (long long)wh->revision);
	buf_init(&doc, OP_ARGS_MAX);
	webhook_to_storage(&copy, &doc);
	op_args(op, "4");
	op_args(op, "pw:webhooks");
	op_argkey(op, "pw:company:", wh->company_id, ":webhooks");
	op_args(op, "pw:version");
	op_argkey(op, "pw:failures:", wh->id, "");
	op_args(op, wh->id);
	op_arg(op, buf_str(&doc), doc.len);
	op_args(op, st->channel);
	op_args(op, rev);
	op_args(op, clear_failures ? "1" : "0");
	if (doc.failed)
		op->args.failed = 1;
	buf_release(&doc);
	return op_start(st, op);
}

int store_webhook_delete(struct store *st, const char *company_id,
			 const char *id, store_write_cb *cb, void *arg)
{
	struct store_op *op;

	op = start_write(st, OP_DELETE, "webhook_delete", SCRIPT_DELETE, cb, arg);
	if (!op)
		return -1;
	op_args(op, "5");
	op_args(op, "pw:webhooks");
	op_argkey(op, "pw:company:", company_id, ":webhooks");
	op_args(op, "pw:version");
	op_argkey(op, "pw:failures:", id, "");
	op_argkey(op, "pw:attempts:", id, "");
	op_args(op, id);
	op_args(op, st->channel);
	return op_start(st, op);
}

int store_webhook_get(struct store *st, const char *company_id,
		      const char *id, store_webhook_cb *cb, void *arg)
{
	struct store_op *op = op_new(st, OP_GET, "webhook_get", -1, arg);

	if (!op)
		return -1;
	op->cb.webhook = cb;
	op->company_id = strdup(company_id);
	if (!op->company_id) {
		op_free(op);
		return -1;
	}
	op_args(op, "HGET");
	op_args(op, "pw:webhooks");
	op_args(op, id);
	return op_start(st, op);
}

int store_webhook_list(struct store *st, const char *company_id,
		       store_list_cb *cb, void *arg)
{
	struct store_op *op = op_new(st, OP_LIST, "webhook_list", SCRIPT_LIST, arg);

	if (!op)
		return -1;
	op->cb.list = cb;
	op_args(op, "2");
	op_argkey(op, "pw:company:", company_id, ":webhooks");
	op_args(op, "pw:webhooks");
	return op_start(st, op);
}

int store_settings_get(struct store *st, const char *company_id,
		       store_settings_cb *cb, void *arg)
{
	struct store_op *op = op_new(st, OP_SETTINGS_GET, "settings_get", -1, arg);

	if (!op)
		return -1;
	op->cb.settings = cb;
	op->company_id = strdup(company_id);
	if (!op->company_id) {
		op_free(op);
		return -1;
	}
	op_args(op, "HGET");
	op_args(op, "pw:settings");
	op_args(op, company_id);
	return op_start(st, op);
}

int store_settings_put(struct store *st, const char *company_id,
		       const struct company_settings *s, store_write_cb *cb,
		       void *arg)
{
	struct store_op *op;
	struct buf doc;

	op = start_write(st, OP_SETTINGS_PUT, "settings_put", SCRIPT_SETTINGS_PUT,
			 cb, arg);
	if (!op)
		return -1;
	buf_init(&doc, OP_ARGS_MAX);
	company_settings_to_json(s, &doc);
	op_args(op, "2");
	op_args(op, "pw:settings");
	op_args(op, "pw:version");
	op_args(op, company_id);
	op_arg(op, buf_str(&doc), doc.len);
	op_args(op, st->channel);
	if (doc.failed)
		op->args.failed = 1;
	buf_release(&doc);
	return op_start(st, op);
}

int store_load_all(struct store *st, store_snapshot_cb *cb, void *arg)
{
	struct store_op *op = op_new(st, OP_LOAD_ALL, "load_all", SCRIPT_LOAD_ALL, arg);

	if (!op)
		return -1;
	op->cb.snapshot = cb;
	op_args(op, "3");
	op_args(op, "pw:version");
	op_args(op, "pw:webhooks");
	op_args(op, "pw:settings");
	return op_start(st, op);
}

int store_version_get(struct store *st, store_version_cb *cb, void *arg)
{
	struct store_op *op = op_new(st, OP_VERSION, "version_get", -1, arg);

	if (!op)
		return -1;
	op->cb.version = cb;
	op_args(op, "GET");
	op_args(op, "pw:version");
	return op_start(st, op);
}

/* ---- the failure rule ---- */

static void op_argnum(struct store_op *op, int64_t v)
{
	char num[24];

	snprintf(num, sizeof(num), "%lld", (long long)v);
	op_args(op, num);
}

static void add_json_or_null(struct buf *out, const char *s)
{
	if (s)
		buf_add_json_string(out, s, strlen(s));
	else
		buf_adds(out, "null");
}

/* The members an attempt log entry and a failure member share, from
 * "status" on: status (null when none was received), error. */
static void add_outcome(struct buf *out, const struct store_attempt *a)
{
	buf_adds(out, "\"status\":");
	if (a->status > 0)
		buf_addf(out, "%ld", a->status);
	else
		buf_adds(out, "null");
	buf_adds(out, ",\"error\":");
	add_json_or_null(out, a->error);
}

/* An attempt log entry, the contract's shape (section 7):
 * {"at","eventId","attempt","status","error","durationMs"}, plus
 * "responseBody" (the first KiB the receiver answered) on failures. */
static void attempt_json(const struct store_attempt *a, const char *at_text,
			 struct buf *out)
{
	buf_adds(out, "{\"at\":");
	add_json_or_null(out, at_text);
	buf_adds(out, ",\"eventId\":");
	add_json_or_null(out, a->event_id);
	buf_addf(out, ",\"attempt\":%d,", a->attempt);
	add_outcome(out, a);
	buf_addf(out, ",\"durationMs\":%lld", (long long)a->duration_ms);
	/* Beyond the contract's fields: what a failing receiver answered. */
	if (a->response && a->response_len) {
		buf_adds(out, ",\"responseBody\":");
		buf_add_json_string(out, a->response,
				    a->response_len < 1024 ? a->response_len : 1024);
	}
	buf_addc(out, '}');
}

int store_record_failure(struct store *st, const struct store_failure *f,
			 store_failure_cb *cb, void *arg)
{
	const struct store_attempt *a = &f->attempt;
	const char *at_text = f->at_text;
	struct store_op *op;
	struct buf entry, tail;
	char ts[32];

	if (!a->webhook_id)
		return -1;
	if (!at_text) {
		event_format_time(a->at_ms, ts, sizeof(ts));
		at_text = ts;
	}
	op = op_new(st, OP_FAILURE, "record_failure", SCRIPT_RECORD_FAILURE, arg);
	if (!op)
		return -1;
	op->cb.failure = cb;
	buf_init(&entry, OP_ARGS_MAX);
	attempt_json(a, at_text, &entry);
	/* The failure member after its unique id, which the script adds. */
	buf_init(&tail, OP_ARGS_MAX);
	buf_adds(&tail, "\"at\":");
	buf_add_json_string(&tail, at_text, strlen(at_text));
	buf_addc(&tail, ',');
	add_outcome(&tail, a);
	buf_addc(&tail, '}');
	op_args(op, "10");
	op_args(op, "pw:webhooks");
	op_argkey(op, "pw:attempts:", a->webhook_id, "");
	op_argkey(op, "pw:failures:", a->webhook_id, "");
	op_args(op, "pw:retries");
	op_args(op, "pw:retry-jobs");
	op_args(op, "pw:version");
	op_args(op, "pw:settings");
	op_args(op, "pw:seq");
	op_args(op, "pw:notices");
	op_args(op, "pw:outbox");
	op_args(op, a->webhook_id);
	op_args(op, st->channel);
	op_arg(op, buf_str(&entry), entry.len);
	op_argnum(op, ATTEMPTS_TTL_MS);
	op_argnum(op, a->at_ms);
	op_args(op, at_text);
	op_arg(op, buf_str(&tail), tail.len);
	op_argnum(op, f->window_ms > 0 ? f->window_ms : 1);
	op_argnum(op, f->threshold > 0 ? f->threshold : 1);
	op_args(op, f->retry_id ? f->retry_id : "");
	op_args(op, f->next_job ? f->next_job : "");
	op_argnum(op, f->next_due_ms);
	op_argnum(op, ATTEMPTS_KEEP);
	if (entry.failed || tail.failed)
		op->args.failed = 1;
	buf_release(&entry);
	buf_release(&tail);
	return op_start(st, op);
}

int store_record_success(struct store *st, const struct store_attempt *a,
			 const char *retry_id, store_write_cb *cb, void *arg)
{
	struct store_op *op;
	struct buf entry;
	char ts[32];

	if (!a->webhook_id)
		return -1;
	op = start_write(st, OP_SUCCESS, "record_success", SCRIPT_RECORD_SUCCESS,
			 cb, arg);
	if (!op)
		return -1;
	event_format_time(a->at_ms, ts, sizeof(ts));
	buf_init(&entry, OP_ARGS_MAX);
	attempt_json(a, ts, &entry);
	op_args(op, "4");
	op_args(op, "pw:webhooks");
	op_argkey(op, "pw:attempts:", a->webhook_id, "");
	op_args(op, "pw:retries");
	op_args(op, "pw:retry-jobs");
	op_args(op, a->webhook_id);
	op_arg(op, buf_str(&entry), entry.len);
	op_argnum(op, ATTEMPTS_TTL_MS);
	op_argnum(op, ATTEMPTS_KEEP);
	op_args(op, retry_id ? retry_id : "");
	if (entry.failed)
		op->args.failed = 1;
	buf_release(&entry);
	return op_start(st, op);
}

/* The one reply of an attempt batch. Nobody waits for it: a lost batch
 * is only logged. */
static void on_log_reply(redisAsyncContext *ac, void *r, void *privdata)
{
	struct store *st = privdata;
	struct store_conn *conn = &st->cmd;
	redisReply *reply = r;

	if (conn->ac == ac && conn->n_sent > 0) {
		conn->n_sent--;
		conn->progress_ms = now_ms();
	}
	if (!reply || reply->type != REDIS_REPLY_ERROR)
		return;
	/* The script cache was flushed: the next batch goes as EVAL, which
	 * caches the script again, so the known sha works after it. */
	if (strncmp(reply->str, "NOSCRIPT", 8) == 0)
		st->log_eval = 1;
	log_warn("attempt log batch lost", "error=\"%.120s\"", reply->str);
}

/* A batch's arguments, built back to back in one buffer and addressed by
 * offset until the buffer stops moving. */
struct log_args {
	struct buf b;
	size_t *off;
	size_t *len;
	size_t k;     /* arguments so far */
};

/* Ends the argument that began at offset start. */
static void log_args_end(struct log_args *la, size_t start)
{
	la->off[la->k] = start;
	la->len[la->k] = la->b.len - start;
	la->k++;
}

/* Sends one batch (n <= LOG_BATCH_MAX) as one EVALSHA. Returns 0, or -1
 * when it could not be sent. */
static int log_batch(struct store *st, const struct store_attempt *a, size_t n)
{
	size_t nargs = 4 + 3 * n, i, start;
	const char **argv = NULL;
	size_t *argvlen = NULL;
	struct log_args la;
	char ts[32];
	int rc = -1;

	memset(&la, 0, sizeof(la));
	buf_init(&la.b, OP_ARGS_MAX);
	la.off = calloc(nargs, sizeof(*la.off));
	la.len = calloc(nargs, sizeof(*la.len));
	argv = calloc(nargs + 2, sizeof(*argv));
	argvlen = calloc(nargs + 2, sizeof(*argvlen));
	if (!la.off || !la.len || !argv || !argvlen)
		goto out;
	start = la.b.len;
	buf_addf(&la.b, "%zu", n + 1);
	log_args_end(&la, start);
	start = la.b.len;
	buf_adds(&la.b, "pw:webhooks");
	log_args_end(&la, start);
	for (i = 0; i < n; i++) {
		start = la.b.len;
		buf_adds(&la.b, "pw:attempts:");
		buf_adds(&la.b, a[i].webhook_id);
		log_args_end(&la, start);
	}
	start = la.b.len;
	buf_addf(&la.b, "%lld", (long long)ATTEMPTS_TTL_MS);
	log_args_end(&la, start);
	start = la.b.len;
	buf_addf(&la.b, "%d", ATTEMPTS_KEEP);
	log_args_end(&la, start);
	for (i = 0; i < n; i++) {
		start = la.b.len;
		buf_adds(&la.b, a[i].webhook_id);
		log_args_end(&la, start);
		event_format_time(a[i].at_ms, ts, sizeof(ts));
		start = la.b.len;
		attempt_json(&a[i], ts, &la.b);
		log_args_end(&la, start);
	}
	if (la.b.failed)
		goto out;
	if (st->sha[SCRIPT_LOG_ATTEMPTS][0] && !st->log_eval) {
		argv[0] = "EVALSHA";
		argv[1] = st->sha[SCRIPT_LOG_ATTEMPTS];
	} else {
		argv[0] = "EVAL";
		argv[1] = script_src[SCRIPT_LOG_ATTEMPTS];
	}
	argvlen[0] = strlen(argv[0]);
	argvlen[1] = strlen(argv[1]);
	for (i = 0; i < la.k; i++) {
		argv[2 + i] = la.b.data + la.off[i];
		argvlen[2 + i] = la.len[i];
	}
	if (redisAsyncCommandArgv(st->cmd.ac, on_log_reply, st, (int)(2 + la.k),
				  argv, argvlen) != REDIS_OK)
		goto out;
	st->log_eval = 0;
	if (st->cmd.n_sent++ == 0)
		st->cmd.progress_ms = now_ms();
	rc = 0;
out:
	free(la.off);
	free(la.len);
	free(argv);
	free(argvlen);
	buf_release(&la.b);
	return rc;
}

void store_log_attempts(struct store *st, const struct store_attempt *a,
			size_t n)
{
	size_t done = 0, chunk, i;

	/* A success path must not wait: without a connection the entries
	 * are dropped, not queued. */
	while (done < n) {
		chunk = n - done < LOG_BATCH_MAX ? n - done : LOG_BATCH_MAX;
		for (i = done; i < done + chunk; i++) {
			if (!a[i].webhook_id)
				break;
		}
		if (i < done + chunk || st->cmd.state != CONN_READY ||
		    log_batch(st, a + done, chunk) < 0) {
			st->log_dropped += n - done;
			log_debug("attempt log entries dropped", "count=%zu total=%llu",
				  n - done, st->log_dropped);
			return;
		}
		done += chunk;
	}
}

int store_attempts_list(struct store *st, const char *webhook_id,
			store_attempts_cb *cb, void *arg)
{
	struct store_op *op = op_new(st, OP_ATTEMPTS, "attempts_list", -1, arg);

	if (!op)
		return -1;
	op->cb.attempts = cb;
	op_args(op, "LRANGE");
	op_argkey(op, "pw:attempts:", webhook_id, "");
	op_args(op, "0");
	op_argnum(op, ATTEMPTS_KEEP - 1);
	return op_start(st, op);
}

static int start_claim(struct store *st, enum op_kind kind, const char *name,
		       int script, const char *zset, const char *hash,
		       int64_t now, int64_t lease_ms, size_t max,
		       store_claim_cb *cb, void *arg)
{
	struct store_op *op = op_new(st, kind, name, script, arg);

	if (!op)
		return -1;
	op->cb.claim = cb;
	op_args(op, kind == OP_RETRY_CLAIM ? "3" : "2");
	op_args(op, zset);
	op_args(op, hash);
	if (kind == OP_RETRY_CLAIM)
		op_args(op, "pw:webhooks");
	op_argnum(op, now);
	op_argnum(op, lease_ms > 0 ? lease_ms : 1);
	op_argnum(op, (int64_t)(max < CLAIM_MAX ? max : CLAIM_MAX));
	return op_start(st, op);
}

int store_retry_claim(struct store *st, int64_t now_ms, int64_t lease_ms,
		      size_t max, store_claim_cb *cb, void *arg)
{
	return start_claim(st, OP_RETRY_CLAIM, "retry_claim", SCRIPT_RETRY_CLAIM,
			   "pw:retries", "pw:retry-jobs", now_ms, lease_ms, max,
			   cb, arg);
}

int store_outbox_claim(struct store *st, int64_t now_ms, int64_t lease_ms,
		       size_t max, store_claim_cb *cb, void *arg)
{
	return start_claim(st, OP_OUTBOX_CLAIM, "outbox_claim", SCRIPT_OUTBOX_CLAIM,
			   "pw:outbox", "pw:notices", now_ms, lease_ms, max,
			   cb, arg);
}

int store_outbox_ack(struct store *st, const char *notice_id,
		     store_write_cb *cb, void *arg)
{
	struct store_op *op;

	op = start_write(st, OP_OUTBOX_ACK, "outbox_ack", SCRIPT_OUTBOX_ACK, cb, arg);
	if (!op)
		return -1;
	op_args(op, "2");
	op_args(op, "pw:outbox");
	op_args(op, "pw:notices");
	op_args(op, notice_id);
	return op_start(st, op);
}

int store_retry_defer(struct store *st, const char *webhook_id,
		      const char *job, int64_t due_ms, store_write_cb *cb,
		      void *arg)
{
	struct store_op *op;

	op = start_write(st, OP_RETRY_DEFER, "retry_defer", SCRIPT_RETRY_DEFER, cb, arg);
	if (!op)
		return -1;
	op_args(op, "3");
	op_args(op, "pw:retries");
	op_args(op, "pw:retry-jobs");
	op_args(op, "pw:seq");
	op_args(op, webhook_id);
	op_argnum(op, due_ms);
	op_args(op, job);
	return op_start(st, op);
}

int store_counts(struct store *st, store_counts_cb *cb, void *arg)
{
	struct store_op *op = op_new(st, OP_COUNTS, "counts", SCRIPT_COUNTS, arg);

	if (!op)
		return -1;
	op->cb.counts = cb;
	op_args(op, "2");
	op_args(op, "pw:retries");
	op_args(op, "pw:outbox");
	return op_start(st, op);
}

/* ---- promotions and their period occurrences ---- */

/* ms, or null when absent. */
static void add_ms_or_null(struct buf *out, int has, int64_t ms)
{
	if (has)
		buf_addf(out, "%lld", (long long)ms);
	else
		buf_adds(out, "null");
}

int store_promotion_apply(struct store *st, const struct store_promotion *pr,
			  store_write_cb *cb, void *arg)
{
	struct buf doc, member;
	struct store_op *op;

	if (!pr->company_id || !pr->promotion_id || (!pr->deleted && !pr->data))
		return -1;
	op = start_write(st, OP_PROMO_APPLY, "promotion_apply", SCRIPT_PROMO_APPLY,
			 cb, arg);
	if (!op)
		return -1;
	/* The state as store.h lays it out; a tombstone keeps only the time
	 * that orders it against late events. */
	buf_init(&doc, OP_ARGS_MAX);
	buf_addf(&doc, "{\"time\":%lld,", (long long)pr->event_time_ms);
	if (pr->deleted) {
		buf_adds(&doc, "\"deleted\":true}");
	} else {
		buf_adds(&doc, "\"deleted\":false,\"data\":");
		buf_add_json_string(&doc, pr->data, pr->data_len);
		buf_adds(&doc, ",\"start\":");
		add_ms_or_null(&doc, pr->has_start, pr->start_ms);
		buf_adds(&doc, ",\"end\":");
		add_ms_or_null(&doc, pr->has_end, pr->end_ms);
		buf_addc(&doc, '}');
	}
	buf_init(&member, OP_ARGS_MAX);
	buf_adds(&member, pr->company_id);
	buf_addc(&member, '\n');
	buf_adds(&member, pr->promotion_id);
	op_args(op, "5");
	op_argkey(op, "pw:promo:", pr->company_id, "");
	op_argkey(op, "pw:promo-start:", pr->company_id, "");
	op_argkey(op, "pw:promo-end:", pr->company_id, "");
	op_args(op, "pw:promo-fresh");
	op_args(op, "pw:promo-gen");
	op_args(op, pr->promotion_id);
	op_argnum(op, pr->event_time_ms);
	op_args(op, pr->deleted ? "1" : "0");
	op_arg(op, buf_str(&doc), doc.len);
	if (!pr->deleted && pr->has_start)
		op_argnum(op, pr->start_ms);
	else
		op_args(op, "");
	if (!pr->deleted && pr->has_end)
		op_argnum(op, pr->end_ms);
	else
		op_args(op, "");
	op_arg(op, buf_str(&member), member.len);
	if (doc.failed || member.failed)
		op->args.failed = 1;
	buf_release(&doc);
	buf_release(&member);
	return op_start(st, op);
}

int store_period_scan(struct store *st, int64_t now_ms, const char *now_text,
		      int64_t lock_ms, const struct store_period_hook *hooks,
		      size_t n, store_scan_cb *cb, void *arg)
{
	struct store_op *op;
	struct buf list;
	size_t i, k = 0;

	op = op_new(st, OP_PERIOD_SCAN, "period_scan", SCRIPT_PERIOD_SCAN, arg);
	if (!op)
		return -1;
	op->cb.scan = cb;
	buf_init(&list, OP_ARGS_MAX);
	buf_addc(&list, '[');
	for (i = 0; i < n; i++) {
		const struct store_period_hook *h = &hooks[i];
		const char *event = event_type_name(h->type);
		const char *period = period_unit_name(h->period);
		const char *which;

		if (h->type == EVENT_PROMOTION_STARTING_IN_PERIOD)
			which = "start";
		else if (h->type == EVENT_PROMOTION_ENDING_IN_PERIOD)
			which = "end";
		else
			which = NULL;
		if (!which || !period || !h->webhook_id || !h->company_id ||
		    h->period_ms <= 0 || h->period_value <= 0) {
			log_debug("period hook skipped", "webhook=%s",
				  h->webhook_id ? h->webhook_id : "-");
			continue;
		}
		if (k++ > 0)
			buf_addc(&list, ',');
		buf_addc(&list, '[');
		buf_add_json_string(&list, h->webhook_id, strlen(h->webhook_id));
		buf_addc(&list, ',');
		buf_add_json_string(&list, h->company_id, strlen(h->company_id));
		buf_addf(&list, ",\"%s\",\"%s\",\"%s\",%lld,%lld]", which, event,
			 period, (long long)h->period_value,
			 (long long)h->period_ms);
	}
	buf_addc(&list, ']');
	op_args(op, "7");
	op_args(op, "pw:scheduler:lock");
	op_args(op, "pw:seq");
	op_args(op, "pw:retries");
	op_args(op, "pw:retry-jobs");
	op_args(op, "pw:promo-fresh");
	op_args(op, "pw:sched:pass");
	op_args(op, "pw:promo-gen");
	op_argnum(op, now_ms);
	op_args(op, now_text);
	op_argnum(op, lock_ms > 0 ? lock_ms : 1);
	op_arg(op, buf_str(&list), list.len);
	op_argnum(op, SCAN_CLAIM_MAX);
	if (list.failed)
		op->args.failed = 1;
	buf_release(&list);
	return op_start(st, op);
}

/* ---- test sends (the console's "Send test"; added by the console branch,
 * kept apart for the store split to move into its outcomes module) ---- */

int store_record_test(struct store *st, const struct store_attempt *a,
		      store_write_cb *cb, void *arg)
{
	struct store_op *op;
	struct buf entry;
	char ts[32];

	if (!a->webhook_id)
		return -1;
	op = start_write(st, OP_SUCCESS, "record_test", SCRIPT_RECORD_SUCCESS,
			 cb, arg);
	if (!op)
		return -1;
	event_format_time(a->at_ms, ts, sizeof(ts));
	buf_init(&entry, OP_ARGS_MAX);
	attempt_json(a, ts, &entry);
	/* The entry is an object: mark it as a test before its last '}'. */
	if (!entry.failed && entry.len > 0) {
		entry.len--;
		buf_adds(&entry, ",\"test\":true}");
	}
	/* The success script: the log entry only (while the webhook exists),
	 * nothing in pw:failures, no retry. */
	op_args(op, "4");
	op_args(op, "pw:webhooks");
	op_argkey(op, "pw:attempts:", a->webhook_id, "");
	op_args(op, "pw:retries");
	op_args(op, "pw:retry-jobs");
	op_args(op, a->webhook_id);
	op_arg(op, buf_str(&entry), entry.len);
	op_argnum(op, ATTEMPTS_TTL_MS);
	op_argnum(op, ATTEMPTS_KEEP);
	op_args(op, "");
	if (entry.failed)
		op->args.failed = 1;
	buf_release(&entry);
	return op_start(st, op);
}
