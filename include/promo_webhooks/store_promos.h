/*
 * store_promos: promotions and their period occurrences (derived events)
 * in Redis (a domain store on the store's Redis link; store.h has the
 * calling convention). Scripts: service/lua/promotion_apply.lua,
 * period_hooks_sync.lua, period_requeue.lua, period_due.lua,
 * period_claim.lua, occurrence_check.lua.
 *
 * Keys (store.h: every key under the hash tag {pw}):
 *   {pw}:promo:<companyId>        HASH  promotion id -> its state:
 *                                     {"time": event time ms, "deleted": bool,
 *                                     "data": "<json text>", "start": ms|null,
 *                                     "end": ms|null}; "data" only while a
 *                                     date is ahead (the payload of a claim
 *                                     needs it), a tombstone only
 *                                     {"time", "deleted": true}
 *   {pw}:promo-start:<companyId>  ZSET  promotion id -> start date (ms), only
 *                                     dates ahead (S > now when written)
 *   {pw}:promo-end:<companyId>    ZSET  promotion id -> end date (ms), same
 *   {pw}:promo-expiry             ZSET  "<companyId>\n<promotionId>" -> when
 *                                     its state is pruned: a state with data
 *                                     at its last date (then it keeps only
 *                                     time and dates, for the retention), any
 *                                     other state (tombstone, no date ahead)
 *                                     at write time + the retention (removed)
 *   {pw}:period-hooks:<companyId>:<start|end>
 *                                 ZSET  "<webhookId>\n<period>\n<value>" -> P
 *                                     (ms): the company's enabled period
 *                                     webhooks of that kind, written by the
 *                                     scheduler (store_period_hooks_sync)
 *   {pw}:period-hooks-sync        HASH  "<companyId>\n<start|end>" ->
 *                                     "<registry version>:<digest>" of the
 *                                     last write of that set ("-": none)
 *   {pw}:period-due               ZSET  "<start|end>\n<companyId>\n<promotionId>"
 *                                     -> when the date S next becomes due
 *                                     for a hook of its company: S - P for
 *                                     the largest P whose window is not yet
 *                                     open (a date of a company without a
 *                                     hook of its kind is not queued)
 *   {pw}:occurrences              ZSET  "<webhookId>:<promotionId>:<start|end>:
 *                                     <S ms>" -> S + a day: added once when
 *                                     the occurrence is claimed, dropped by
 *                                     the first pass after that time
 *   {pw}:scheduler:lock           STRING the token of the replica passing,
 *                                     held for lock_ms
 * A claimed occurrence becomes a retry due at once in {pw}:retries/
 * {pw}:retry-jobs in the same step (its plain fields; retryjob.c makes the
 * job of attempt 1 and its message id when it is claimed), so the retry
 * machinery delivers it at least once with a stable webhook-id, under the
 * failure rule and the retry schedule, even if the claiming replica dies.
 * Every key a script touches is passed in its KEYS (a pass's second half
 * gets the keys of the companies the first half found due), all under the
 * hash tag {pw} (store.h).
 */
#ifndef PROMO_WEBHOOKS_STORE_PROMOS_H
#define PROMO_WEBHOOKS_STORE_PROMOS_H

#include <stddef.h>
#include <stdint.h>

#include "promo_webhooks/event.h"
#include "promo_webhooks/store.h"
#include "promo_webhooks/webhook.h"

/* The state of one promotion after a Promotion.Created/Updated/Deleted. */
struct store_promotion {
	const char *company_id;
	const char *promotion_id;
	int64_t event_time_ms; /* orders changes: one older than the stored
				* state (or its tombstone) is ignored */
	int deleted;           /* Promotion.Deleted: forget it, keep a tombstone */
	const char *data;      /* the last known data object (JSON text) */
	size_t data_len;
	int has_start;
	int64_t start_ms;
	int has_end;
	int64_t end_ms;
	int64_t now_ms;        /* wall clock now; 0: read it (clock_wall_ms) */
	int64_t retention_ms;  /* how long a tombstone, or a state with no
				* date ahead, is kept; 0: the default */
};

/* PROMO_WEBHOOKS_PROMOTION_RETENTION's default: 7 days, Kafka's default
 * log.retention.hours. */
#define STORE_PROMO_RETENTION_DEFAULT_MS (7LL * 24 * 3600 * 1000)

/*
 * Applies one promotion change atomically (see event_time_ms; at the same
 * time a tombstone wins over a change that is not a deletion, a change
 * equal in time to a live state replaces it). version in the callback is
 * 1 when the change was applied, 0 when it was ignored as stale. Returns
 * -1 without starting when company_id or promotion_id is missing, or data
 * for a change that is not a deletion (or out of memory), and
 * STORE_PROMOTION_TOO_LARGE without starting when the state is larger than
 * one store call may carry (4 MiB): that never changes, the caller must
 * not retry it.
 */
#define STORE_PROMOTION_TOO_LARGE (-2)
int store_promotion_apply(struct store *st, const struct store_promotion *pr,
			  store_write_cb *cb, void *arg);

/* A webhook subscribed to a period event, as the scheduler writes it. */
struct store_period_hook {
	const char *webhook_id;
	const char *company_id;
	enum event_type type;    /* Promotion.StartingInPeriod or EndingInPeriod */
	enum period_unit period;
	int64_t period_value;
	int64_t period_ms;       /* P */
};

/* "start" or "end" for a period event type, else NULL. */
const char *store_period_which(enum event_type type);

#define STORE_DIGEST_LEN 17 /* 16 hex digits and the NUL */
/* The digest of the set hooks[0..n) as store_period_hooks_sync writes it
 * ("-" for none): equal digests, equal sets (hooks in the same order). */
void store_period_hooks_digest(const struct store_period_hook *hooks, size_t n,
			       char out[STORE_DIGEST_LEN]);

/*
 * Writes hooks[0..n), every enabled period webhook of company_id whose
 * type is `type`, read at registry version `version`, with their digest
 * (store_period_hooks_digest; n = 0 clears the set). Does nothing when a
 * later version was written already (a replica whose cache lags never
 * undoes a newer write) or the digest is the stored one. When a hook is
 * new or its period changed, the company's dates ahead of now_ms are
 * queued again (O(its promotions), on a change only, in calls of at most
 * 500 dates) before the callback, so a webhook created or enabled inside
 * an open window fires at the next pass. version in the callback is 1
 * written (or already so), 0 older.
 */
int store_period_hooks_sync(struct store *st, const char *company_id,
			    enum event_type type, int64_t version,
			    const char *digest,
			    const struct store_period_hook *hooks, size_t n,
			    int64_t now_ms, store_write_cb *cb, void *arg);

/* Every "<companyId>\n<start|end>" of {pw}:period-hooks-sync with the
 * digest last written for it, valid during the callback. */
typedef void store_synced_cb(void *arg, enum store_status status, size_t n,
			     const char *const *fields,
			     const char *const *digests);
int store_period_synced(struct store *st, store_synced_cb *cb, void *arg);

/* What a pass did. */
struct store_tick_result {
	int skipped;     /* another replica holds the lock */
	size_t claimed;  /* occurrences newly claimed */
	size_t pruned;   /* promotion states pruned */
	int more;        /* a queue had `limit` entries due, or the claims
			  * reached `budget`: more may be due, go on */
};
typedef void store_tick_cb(void *arg, enum store_status status,
			   const struct store_tick_result *r);

/*
 * One scheduler pass (a round of it): takes {pw}:scheduler:lock with
 * `token` for lock_ms (or goes on when this token holds it; skipped
 * otherwise), takes at most `limit` due dates ({pw}:period-due) and at
 * most `limit` expired states ({pw}:promo-expiry), then claims, for each
 * due date S still ahead, every hook of its company and kind with
 * S - P <= now_ms < S whose occurrence (webhook, promotion, start|end, S)
 * was never claimed, as a retry job due now (attempt 1, message id stable
 * per occurrence, occurredAt = now_text, data = the promotion's last known
 * data), and prunes the expired states (retention_ms: how long a pruned
 * state keeps its time and dates). Two round trips; the cost is
 * O(log n) per entry taken plus the hooks of its company and kind, not
 * the number of period webhooks or promotions. At most about `budget`
 * claims per round. Claims are exactly once whatever the number of
 * replicas and restarts.
 */
int store_period_tick(struct store *st, int64_t now_ms, const char *now_text,
		      int64_t lock_ms, const char *token, size_t limit,
		      size_t budget, int64_t retention_ms, store_tick_cb *cb,
		      void *arg);

/*
 * Before an attempt of a period occurrence (promotion_id, date "start" or
 * "end", at_ms = S) queued as retry retry_id: answers version 1 when the
 * promotion is still there, not deleted, with that date still S; else 0,
 * and the retry is removed in the same step (occurrence_check.lua).
 */
int store_occurrence_check(struct store *st, const char *company_id,
			   const char *promotion_id, const char *date,
			   int64_t at_ms, const char *retry_id,
			   store_write_cb *cb, void *arg);

#endif
