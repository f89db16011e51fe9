/*
 * store: the webhooks, company settings and their change feed in Redis; the
 * only module that includes hiredis. Asynchronous (hiredis 0.14.1 on the
 * service's libevent loop), with its own connect and command watchdog and
 * reconnection with backoff, since hiredis 0.14 async has neither.
 *
 * Redis layout (every key under "pw:"):
 *   pw:webhooks                 HASH  webhook id -> stored JSON document
 *                                     (webhook_to_storage: times in Unix ms,
 *                                     the secret, a per-webhook "revision")
 *   pw:company:<companyId>:webhooks
 *                               SET   the ids of that company's webhooks
 *   pw:settings                 HASH  company id -> settings JSON
 *                                     (company_settings_to_json)
 *   pw:version                  STRING a counter bumped (INCR) by every
 *                                     write of the two hashes above
 *   pw:failures:<webhookId>     ZSET  the webhook's failed attempts (the
 *                                     failure rule); deleted when the
 *                                     webhook is enabled again or deleted
 *                                     (more keys at "the failure rule")
 *   channel pw:changes:<db>     pub/sub: "<version> webhook <id>" or
 *                                     "<version> settings <companyId>"
 *                                     after every write (channels are not
 *                                     per database, hence the db number)
 *
 * Every write is one Lua script that changes the data, INCRs pw:version and
 * PUBLISHes, so a reader that saw version V has seen every change up to V,
 * and a reader that misses a message still finds the version moved. A script
 * that disables a webhook (the failure rule) must do the same: decode the
 * document with cjson, set enabled=false, disabledAt (ms), disabledReason,
 * revision+1, HSET it back, INCR pw:version, PUBLISH.
 *
 * Calling convention: every operation returns 0 when it was started, and
 * then its callback runs exactly once, later, from the event loop (never
 * from inside the call); -1 (out of memory) means it was not started and
 * the callback never runs. Whatever a callback receives by pointer is valid
 * only during the callback: copy what must outlive it. While Redis is
 * unreachable, operations wait for the connection for a few seconds and
 * then fail with STORE_UNAVAILABLE; once a reconnect attempt has failed
 * they fail at once (callers should not stall behind a dead Redis).
 */
#ifndef PROMO_WEBHOOKS_STORE_H
#define PROMO_WEBHOOKS_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "promo_webhooks/config.h"
#include "promo_webhooks/webhook.h"

struct event_base;
struct store;

enum store_status {
	STORE_OK = 0,      /* done */
	STORE_NOT_FOUND,   /* no such webhook, or not of the company named */
	STORE_CONFLICT,    /* create: the id exists; replace: the webhook was
			    * written since it was read (re-read and retry) */
	STORE_UNAVAILABLE, /* Redis unreachable, too slow, or refused the
			    * command (e.g. out of memory, read-only replica) */
	STORE_ERROR,       /* Redis answered something unexpected or stored
			    * data is unreadable: a bug or a foreign writer */
};

const char *store_status_name(enum store_status status);

/* The settings of one company, as loaded in a snapshot. */
struct store_company {
	char *company_id;
	struct company_settings settings;
};

/* Everything the registry caches, read atomically with the version. */
struct store_snapshot {
	int64_t version;                /* pw:version when read (0 if unset) */
	struct webhook *hooks;          /* every readable stored webhook */
	size_t n_hooks;
	struct store_company *companies; /* every company with settings */
	size_t n_companies;
};

void store_snapshot_free(struct store_snapshot *snap);

/* Operation callbacks. wh, hooks and s are valid during the call only. */
typedef void store_webhook_cb(void *arg, enum store_status status,
			      const struct webhook *wh);
/* hooks sorted by createdAt, then id. */
typedef void store_list_cb(void *arg, enum store_status status,
			   const struct webhook *hooks, size_t n);
/* version: pw:version after the write (0 unless STORE_OK). */
typedef void store_write_cb(void *arg, enum store_status status,
			    int64_t version);
/* s: the stored settings, or the defaults when the company has none. */
typedef void store_settings_cb(void *arg, enum store_status status,
			       const struct company_settings *s);
typedef void store_version_cb(void *arg, enum store_status status,
			      int64_t version);
/* Takes ownership of snap (free it with store_snapshot_free); NULL unless
 * STORE_OK. */
typedef void store_snapshot_cb(void *arg, enum store_status status,
			       struct store_snapshot *snap);

enum store_change_kind {
	STORE_CHANGE_RESYNC,   /* the subscription (re)started: messages may
				* have been missed, compare versions */
	STORE_CHANGE_WEBHOOK,  /* id is a webhook id */
	STORE_CHANGE_SETTINGS, /* id is a company id */
};

struct store_change {
	enum store_change_kind kind;
	int64_t version; /* pw:version after that change (0 for RESYNC) */
	const char *id;  /* NULL for RESYNC */
};

typedef void store_change_cb(void *arg, const struct store_change *change);

/*
 * Creates the store and starts connecting (host, port, password -> AUTH,
 * db -> SELECT from cfg). Redis being down is not an error here: the store
 * keeps reconnecting and store_is_ready() says when it answers. Returns
 * NULL with err set only when out of memory or the event loop refuses.
 * cfg must outlive the store.
 */
struct store *store_new(struct event_base *base, const struct config *cfg,
			char *err, size_t errlen);
/* Closes the connections. Pending operations are dropped without their
 * callbacks. Must not be called from inside a store callback. */
void store_free(struct store *st);

/* 1 while the command connection is up and past its handshake. */
int store_is_ready(const struct store *st);

/* Operations started with this arg will not call back (they still run).
 * For callers that go away while operations are in flight. */
void store_cancel(struct store *st, void *arg);

/*
 * Delivers every change published by any replica (the store's second,
 * subscriber connection), and a RESYNC each time the subscription starts
 * or restarts. One subscriber per store; cb NULL stops delivery.
 */
void store_subscribe(struct store *st, store_change_cb *cb, void *arg);

/* Stores a new webhook (wh->revision is ignored: it becomes 1). */
int store_webhook_create(struct store *st, const struct webhook *wh,
			 store_write_cb *cb, void *arg);
/* The webhook id of company_id; STORE_NOT_FOUND for another company's. */
int store_webhook_get(struct store *st, const char *company_id,
		      const char *id, store_webhook_cb *cb, void *arg);
int store_webhook_list(struct store *st, const char *company_id,
		       store_list_cb *cb, void *arg);
/*
 * Compare-and-set: replaces webhook wh->id of wh->company_id only if its
 * stored revision is still wh->revision (the revision it was read at), and
 * stores it with revision + 1. STORE_CONFLICT when it changed meanwhile
 * (the failure rule may have disabled it: re-read and re-apply).
 * clear_failures deletes pw:failures:<id> in the same step (re-enabling).
 */
int store_webhook_replace(struct store *st, const struct webhook *wh,
			  int clear_failures, store_write_cb *cb, void *arg);
int store_webhook_delete(struct store *st, const char *company_id,
			 const char *id, store_write_cb *cb, void *arg);

int store_settings_get(struct store *st, const char *company_id,
		       store_settings_cb *cb, void *arg);
int store_settings_put(struct store *st, const char *company_id,
		       const struct company_settings *s, store_write_cb *cb,
		       void *arg);

/* Every webhook and every company's settings, with the version they are at. */
int store_load_all(struct store *st, store_snapshot_cb *cb, void *arg);
/* The current pw:version (cheap: the registry polls it). */
int store_version_get(struct store *st, store_version_cb *cb, void *arg);

/* ---- the failure rule: attempts, failures, disables, retries, notices ----
 *
 * More keys (all under "pw:"):
 *   pw:attempts:<webhookId>  LIST  the last 100 attempts, newest first, each
 *                                  a JSON object with the contract's fields:
 *                                  {"at":"<RFC 3339>","eventId":"..."|null,
 *                                  "attempt":1,"status":500|null,
 *                                  "error":"..."|null,"durationMs":12};
 *                                  expires 30 days after its last entry;
 *                                  deleted with the webhook
 *   pw:failures:<webhookId>  ZSET  score: the attempt's at (Unix ms);
 *                                  member: {"id":"<20-digit pw:seq>",
 *                                  "at":"<RFC 3339>","status":500|null,
 *                                  "error":"..."|null} (unique even within
 *                                  one millisecond); entries older than the
 *                                  window are dropped, the key expires after
 *                                  the window
 *   pw:seq                   STRING a counter for unique members and ids
 *   pw:retries               ZSET  retry id -> due time (Unix ms); a claimed
 *                                  retry is pushed to now + lease so that a
 *                                  replica that dies holding it lets another
 *                                  one take it when the lease runs out
 *   pw:retry-jobs            HASH  retry id -> the job (opaque JSON)
 *   pw:outbox                ZSET  notice id -> when it may next be claimed
 *   pw:notices               HASH  notice id -> the notice JSON (contract 5):
 *                                  {"type":"WebhookDisabled","to","subject",
 *                                  "text","companyId","webhookId","event",
 *                                  "target","disabledAt":"<RFC 3339>",
 *                                  "failures":[{"at","status","error"}, ...
 *                                  every failure in the window, oldest
 *                                  first]}
 *
 * Retry ids are "<webhookId>:<due ms>:<seq>" and notice ids
 * "<webhookId>:<at ms>:<seq>": the webhook id before the first ':' is what
 * the retry claim checks and the notice's Kafka key.
 */

/* One delivery attempt, as the attempt log shows it. */
struct store_attempt {
	const char *webhook_id;
	const char *event_id;    /* the event the attempt delivered */
	int attempt;             /* 1 for the first attempt, 2.. for retries */
	int64_t at_ms;           /* when the attempt started */
	long status;             /* HTTP status, 0 when none was received */
	const char *error;       /* NULL on success, else one line */
	int64_t duration_ms;
	const char *response;    /* failures: the first bytes of the response
				  * body (at most 1 KiB), or NULL */
	size_t response_len;
};

/* A failed attempt to record (one atomic step, contract section 5). The
 * attempt's at_text, when NULL, is formatted from at_ms. */
struct store_failure {
	struct store_attempt attempt;
	int64_t window_ms;       /* PROMO_WEBHOOKS_FAILURE_WINDOW in ms */
	long threshold;          /* PROMO_WEBHOOKS_FAILURE_THRESHOLD */
	const char *at_text;     /* attempt.at_ms as RFC 3339, for the notice */
	/* The retry being finished by this attempt (NULL for a first
	 * attempt): it is removed in the same step. */
	const char *retry_id;
	/* The next retry to schedule while the webhook stays enabled: job is
	 * opaque JSON (NULL = no more retries), due at next_due_ms. */
	const char *next_job;
	int64_t next_due_ms;
};

enum store_failure_result {
	STORE_FAILURE_COUNTED,  /* recorded; still enabled (retry scheduled if
				 * one was given) */
	STORE_FAILURE_DISABLED, /* recorded, and this step disabled the webhook
				 * (and queued the notice when the company
				 * has a notification email); no retry */
	STORE_FAILURE_INACTIVE, /* recorded in the attempt log only: the
				 * webhook was already disabled or is gone; no
				 * retry */
};

typedef void store_failure_cb(void *arg, enum store_status status,
			      enum store_failure_result result);

/*
 * In one Lua step: appends the attempt to the attempt log; adds the failure
 * to pw:failures:<id> with a unique member (the member carries at, status
 * and error for the notice), drops entries older than the window and sets
 * the key to expire after the window; removes f->retry_id; and then, if the
 * webhook is enabled and at least threshold failures fall within the
 * window, disables it (enabled false, disabledAt, disabledReason, revision,
 * pw:version, PUBLISH: as every write) and, when the company's
 * webhookDisabledNotificationEmail is set, adds the notice to the outbox;
 * else, if enabled and f->next_job is set, schedules that retry.
 * Any number of replicas racing: one disable, one notice. A failure of a
 * disabled webhook is only logged; one of a deleted webhook (no stored
 * document) is not even logged, and any keys it left are removed.
 * The disable also sets updatedAt (to at_ms, unless it is later already);
 * disabledReason reads "3 failed deliveries within 3600 s".
 */
int store_record_failure(struct store *st, const struct store_failure *f,
			 store_failure_cb *cb, void *arg);

/*
 * A successful attempt: appends it to the attempt log (unless the webhook
 * is deleted) and, for a retry, removes retry_id (NULL for a first
 * attempt) in the same step. version in the callback is 0.
 */
int store_record_success(struct store *st, const struct store_attempt *a,
			 const char *retry_id, store_write_cb *cb, void *arg);

/*
 * Appends successful first attempts to their attempt logs, best effort and
 * without a reply per attempt (one EVALSHA per 256 attempts, no callback):
 * the success path of a delivery does not wait for Redis. While the
 * connection is down the entries are dropped, not queued. Deleted
 * webhooks' entries are skipped.
 */
void store_log_attempts(struct store *st, const struct store_attempt *a,
			size_t n);

/* The attempt log of a webhook, newest first, at most 100: each item a
 * JSON object (len bytes, NUL-terminated), as stored. No check that the
 * webhook exists: an unknown id has an empty log. */
typedef void store_attempts_cb(void *arg, enum store_status status,
			       const char *const *items, const size_t *lens,
			       size_t n);
int store_attempts_list(struct store *st, const char *webhook_id,
			store_attempts_cb *cb, void *arg);

/* Claimed work: retries or notices. */
struct store_claimed {
	const char *id;      /* retry id or notice id */
	const char *payload; /* the job or the notice JSON */
	size_t payload_len;
	const char *key;     /* notices: the webhook id (the Kafka key);
			      * retries: NULL */
};
typedef void store_claim_cb(void *arg, enum store_status status,
			    const struct store_claimed *items, size_t n);

/*
 * Claims up to max retries due at now_ms: each is leased until now_ms +
 * lease_ms (then another replica may claim it again). A retry whose webhook
 * is disabled or deleted is dropped here instead of returned (it still
 * counts toward max). max is capped at 1000.
 */
int store_retry_claim(struct store *st, int64_t now_ms, int64_t lease_ms,
		      size_t max, store_claim_cb *cb, void *arg);

/* Claims up to max notices of the outbox the same way. */
int store_outbox_claim(struct store *st, int64_t now_ms, int64_t lease_ms,
		       size_t max, store_claim_cb *cb, void *arg);
/* Removes a notice once the broker has acknowledged it (STORE_OK also when
 * it was gone already). */
int store_outbox_ack(struct store *st, const char *notice_id,
		     store_write_cb *cb, void *arg);

/*
 * Puts a delivery off without an attempt: stores job (the retry job format,
 * with the attempt number it has not made yet) due at due_ms, to be claimed
 * like any retry. For deliveries whose target is already saturated, so a
 * slow target parks its backlog in Redis instead of in memory.
 */
int store_retry_defer(struct store *st, const char *webhook_id,
		      const char *job, int64_t due_ms, store_write_cb *cb,
		      void *arg);

/* Sizes for /metrics: retries pending, notices pending. */
typedef void store_counts_cb(void *arg, enum store_status status,
			     int64_t retries, int64_t notices);
int store_counts(struct store *st, store_counts_cb *cb, void *arg);

/* ---- promotions and their period occurrences (derived events) ----------
 *
 * More keys (all under "pw:"):
 *   pw:promo:<companyId>        HASH  promotion id -> {"time": event time ms,
 *                                     "deleted": bool, "data": "<json text>",
 *                                     "start": ms|null, "end": ms|null}
 *   pw:promo-start:<companyId>  ZSET  promotion id -> start date (ms)
 *   pw:promo-end:<companyId>    ZSET  promotion id -> end date (ms)
 *   pw:promo-fresh              ZSET  "<companyId>\n<promotionId>" of every
 *                                     promotion whose start or end was set
 *                                     or moved since the last scheduler
 *                                     pass that finished (which empties
 *                                     it), scored with pw:promo-gen
 *   pw:promo-gen                STRING a counter of such changes
 *   pw:occ:<webhookId>:<promotionId>:<start|end>:<S ms>
 *                               STRING set once when the occurrence is
 *                                     claimed; expires a day after S
 *   pw:scheduler:lock           STRING held for one pass's lock_ms
 *   pw:sched:pass               STRING the number of the last pass
 *   pw:sched:<webhookId>:<start|end>
 *                               STRING the hook's mark: "<pass>:<P ms>:<done
 *                                     ms>:<gen>": every S <= done and every
 *                                     change up to pw:promo-gen = gen was
 *                                     looked at; expires after a day
 *                                     without a pass
 * A claimed occurrence becomes a retry job (attempt 1, due at once) in
 * pw:retries/pw:retry-jobs in the same step, so the retry machinery
 * delivers it at least once with a stable webhook-id, under the failure
 * rule and the retry schedule, even if the claiming replica dies.
 * Tombstones stay in pw:promo:<c> (a few dozen bytes each) so that no late
 * event can bring a deleted promotion back. The scripts name keys they
 * compute (per company, per occurrence): one Redis, not Redis Cluster.
 */

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
 * (pw:promo-fresh, ordered by change); any other hook (new, enabled again, P changed, or left out of
 * a pass by a replica whose cache lagged) looks at its whole window,
 * O(log n + m). So a tick costs O(hooks * log n + dates changed) plus the
 * occurrences that became due. At most 1000 occurrences are claimed in
 * one pass; the next passes go on where it stopped. Hooks with a type that is
 * not a period event, without a period, or with P <= 0 are skipped. The
 * hooks travel as one argument, so a pass holds up to about 25,000 hooks
 * (the store's 4 MiB cap on a command).
 */
int store_period_scan(struct store *st, int64_t now_ms, const char *now_text,
		      int64_t lock_ms, const struct store_period_hook *hooks,
		      size_t n, store_scan_cb *cb, void *arg);

/* ---- test sends ---- */

/*
 * A test send's attempt (POST .../webhooks/{id}/test): appended to the
 * attempt log like any attempt, marked "test": true, with responseBody
 * whatever the outcome, while the webhook exists. Never counted by the
 * failure rule (nothing goes to pw:failures) and never retried. version in
 * the callback is 0.
 */
int store_record_test(struct store *st, const struct store_attempt *a,
		      store_write_cb *cb, void *arg);

#endif
