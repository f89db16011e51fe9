/*
 * store_promos: promotions and their period occurrences (derived events)
 * in Redis (a domain store on the store's Redis link; store.h has the
 * calling convention). Scripts: service/lua/promotion_apply.lua,
 * period_scan.lua.
 *
 * Keys (store.h: every key under the hash tag {pw}):
 *   {pw}:promo:<companyId>        HASH  promotion id -> {"time": event time ms,
 *                                     "deleted": bool, "data": "<json text>",
 *                                     "start": ms|null, "end": ms|null}
 *   {pw}:promo-start:<companyId>  ZSET  promotion id -> start date (ms)
 *   {pw}:promo-end:<companyId>    ZSET  promotion id -> end date (ms)
 *   {pw}:promo-fresh              ZSET  "<companyId>\n<promotionId>" of every
 *                                     promotion whose start or end was set
 *                                     or moved since the last scheduler
 *                                     pass that finished (which empties
 *                                     it), scored with {pw}:promo-gen
 *   {pw}:promo-gen                STRING a counter of such changes
 *   {pw}:occurrences              ZSET  "<webhookId>:<promotionId>:<start|end>:
 *                                     <S ms>" -> S + a day: added once when
 *                                     the occurrence is claimed, dropped by
 *                                     the first pass after that time
 *   {pw}:scheduler:lock           STRING held for one pass's lock_ms
 *   {pw}:sched:pass               STRING the number of the last pass
 *   {pw}:sched:<webhookId>:<start|end>
 *                               STRING the hook's mark: "<pass>:<P ms>:<done
 *                                     ms>:<gen>": every S <= done and every
 *                                     change up to {pw}:promo-gen = gen was
 *                                     looked at; expires after a day
 *                                     without a pass
 * A claimed occurrence becomes a retry due at once in {pw}:retries/
 * {pw}:retry-jobs in the same step (its plain fields; retryjob.c makes the
 * job of attempt 1 and its message id when it is claimed), so the retry
 * machinery
 * delivers it at least once with a stable webhook-id, under the failure
 * rule and the retry schedule, even if the claiming replica dies.
 * Tombstones stay in {pw}:promo:<c> (a few dozen bytes each) so that no late
 * event can bring a deleted promotion back. Every key a script touches is
 * passed in its KEYS (the scan gets each hook's mark, promotions and date
 * index), all under the hash tag {pw} (store.h).
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
};

/*
 * Applies one promotion change atomically (see event_time_ms; at the same
 * time a tombstone wins over a change that is not a deletion, a change
 * equal in time to a live state replaces it). version in the callback is
 * 1 when the change was applied, 0 when it was ignored as stale. Returns
 * -1 without starting when company_id or promotion_id is missing, or data
 * for a change that is not a deletion.
 */
int store_promotion_apply(struct store *st, const struct store_promotion *pr,
			  store_write_cb *cb, void *arg);

/* A webhook subscribed to a period event, as the scheduler scans it. */
struct store_period_hook {
	const char *webhook_id;
	const char *company_id;
	enum event_type type;    /* Promotion.StartingInPeriod or EndingInPeriod */
	enum period_unit period;
	int64_t period_value;
	int64_t period_ms;       /* P */
};

/* claimed: occurrences newly claimed by this pass; skipped=1 when another
 * replica holds this tick's scan. */
typedef void store_scan_cb(void *arg, enum store_status status,
			   size_t claimed, int skipped);

/*
 * One scheduler pass: for each hook, every promotion of its company whose
 * date S (start or end by the hook's type) satisfies S - P <= now < S and
 * whose occurrence (webhook, promotion, start|end, S) was never claimed is
 * claimed and turned into a retry job due now (attempt 1, message id
 * stable per occurrence, occurredAt = now_text, data = the promotion's last
 * known data). One replica scans per tick (a short lock); claims are
 * exactly once whatever the number of replicas and restarts.
 *
 * Cost: a hook that was in the previous pass with the same P looks only
 * at the dates that entered its window since that pass (the date index,
 * O(log n) plus what it finds) and at the dates set since it last looked
 * ({pw}:promo-fresh, ordered by change); any other hook (new, enabled again, P changed, or left out of
 * a pass by a replica whose cache lagged) looks at its whole window,
 * O(log n + m). So a tick costs O(hooks * log n + dates changed) plus the
 * occurrences that became due. At most 1000 occurrences are claimed in
 * one pass; the next passes go on where it stopped. Hooks with a type that is
 * not a period event, without a period, or with P <= 0 are skipped. The
 * hooks travel as one argument and each brings three keys, so a pass holds
 * up to about 15,000 hooks (the store's 4 MiB cap on a command).
 */
int store_period_scan(struct store *st, int64_t now_ms, const char *now_text,
		      int64_t lock_ms, const struct store_period_hook *hooks,
		      size_t n, store_scan_cb *cb, void *arg);

#endif
