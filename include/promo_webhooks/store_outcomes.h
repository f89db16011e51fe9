/*
 * store_outcomes: what became of each delivery, in Redis: the failure
 * rule (failures, disables, notices), the attempt log, retries and the
 * notice outbox (a domain store on the store's Redis link; store.h has the
 * calling convention). Scripts: service/lua/record_failure.lua,
 * record_success.lua, log_attempts.lua, retry_*.lua (retry_renew.lua
 * and retry_drop.lua included), outbox_*.lua, counts.lua.
 *
 * Keys (store.h: every key under the hash tag {pw}):
 *   {pw}:attempts:<webhookId>  LIST  the last 100 attempts, newest first, each
 *                                  a JSON object with the contract's fields:
 *                                  {"at":"<RFC 3339>","eventId":"..."|null,
 *                                  "attempt":1,"status":500|null,
 *                                  "error":"..."|null,"durationMs":12};
 *                                  expires 30 days after its last entry;
 *                                  deleted with the webhook
 *   {pw}:failures:<webhookId>  ZSET  score: the attempt's at (Unix ms);
 *                                  member: {"id":"<20-digit {pw}:seq>",
 *                                  "at":"<RFC 3339>","status":500|null,
 *                                  "error":"..."|null} (unique even within
 *                                  one millisecond); entries older than the
 *                                  window are dropped, the key expires after
 *                                  the window
 *   {pw}:seq                   STRING a counter for unique members and ids
 *   {pw}:retries               ZSET  retry id -> due time (Unix ms); a claimed
 *                                  retry is pushed to now + lease so that a
 *                                  replica that dies holding it lets another
 *                                  one take it when the lease runs out
 *   {pw}:retry-jobs            HASH  retry id -> the job (retryjob.h: a
 *                                  job, or a period occurrence's fields)
 *   {pw}:retry-claims          HASH  retry id -> the token of its current
 *                                  claim (a {pw}:seq value); the outcome,
 *                                  the next retry and a lease renewal need
 *                                  it; removed with the retry
 *   {pw}:recorded:<attemptId>  STRING an attempt's failure was recorded
 *                                  ("<message id>:<attempt>:<start ms>"),
 *                                  so a record sent again after a lost
 *                                  answer is not counted twice; expires
 *                                  after the failure window
 *   {pw}:outbox                ZSET  notice id -> when it may next be claimed
 *   {pw}:notices               HASH  notice id -> the notice's fields
 *                                  (notice_fields_encode); the relay
 *                                  renders the message of contract 5
 *                                  (notice_render) when it publishes it
 *
 * Retry ids are "<webhookId>:<due ms>:<seq>" and notice ids
 * "<webhookId>:<at ms>:<seq>": the webhook id before the first ':' is what
 * the retry claim checks and the notice's Kafka key.
 */
#ifndef PROMO_WEBHOOKS_STORE_OUTCOMES_H
#define PROMO_WEBHOOKS_STORE_OUTCOMES_H

#include <stddef.h>
#include <stdint.h>

#include "promo_webhooks/store.h"

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
	const char *retry_token; /* the claim token retry_id was claimed with:
				  * an outcome under a claim no longer
				  * current is STORE_FAILURE_STALE */
	/* The next retry to schedule while the webhook stays enabled: job is
	 * opaque JSON (NULL = no more retries), due at next_due_ms. */
	const char *next_job;
	int64_t next_due_ms;
	/* Names this attempt (NULL: not deduplicated): a record sent again
	 * because its answer was lost (Redis slow or gone) while the first
	 * one was carried out is STORE_FAILURE_DUPLICATE, not counted twice
	 * ({pw}:recorded:<attempt_id>, kept for the failure window). */
	const char *attempt_id;
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
	STORE_FAILURE_DUPLICATE, /* nothing recorded: this attempt (attempt_id)
				  * was recorded already, by a send whose
				  * answer was lost */
	STORE_FAILURE_STALE,    /* nothing recorded: the retry's claim is no
				 * longer current (its lease ended and it was
				 * claimed again, here or elsewhere) */
};

typedef void store_failure_cb(void *arg, enum store_status status,
			      enum store_failure_result result);

/*
 * Step one (record_failure.lua): appends the attempt to the attempt log;
 * adds the failure to {pw}:failures:<id> with a unique member (the member
 * carries at, status and error for the notice), drops entries older than
 * the window and sets the key to expire after the window; removes
 * f->retry_id; and, if the webhook is enabled and under the threshold,
 * schedules f->next_job when set. Step two, when the webhook is enabled
 * and at least threshold failures fall within the window: the disabled
 * document is built here (webhook_disable: enabled false, disabledAt,
 * disabledReason, updatedAt moved up to at_ms, revision + 1) and stored by
 * webhook_disable.lua if the webhook is still at the revision it was built
 * from ({pw}:version, PUBLISH: as every write), with the notice's fields
 * (notice.h) in the outbox when the company's
 * webhookDisabledNotificationEmail is set; a concurrent write makes it
 * build again from what is stored. The callback comes after both steps.
 * Any number of replicas racing: one disable, one notice. A failure of a
 * disabled webhook is only logged; one of a deleted webhook (no stored
 * document) is not even logged, and any keys it left are removed.
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
			 const char *retry_id, const char *retry_token,
			 store_write_cb *cb, void *arg);
/* (version in the callback: 1 recorded, 0 when retry_id's claim under
 * retry_token is no longer current: nothing was changed.) */

/*
 * Renews retry_id's lease until until_ms when its attempt really starts,
 * if the claim under token is still current (version 1; 0 when stale).
 */
int store_retry_renew(struct store *st, const char *retry_id,
		      const char *token, int64_t until_ms, store_write_cb *cb,
		      void *arg);

/*
 * A test send's attempt (POST .../webhooks/{id}/test): appended to the
 * attempt log like any attempt (while the webhook exists), marked
 * "test": true, with responseBody whatever the outcome. Never counted by
 * the failure rule (nothing goes to the failure set) and never retried.
 * version in the callback is 0.
 */
int store_record_test(struct store *st, const struct store_attempt *a,
		      store_write_cb *cb, void *arg);

/*
 * Appends successful first attempts to their attempt logs, best effort and
 * without a reply (no callback): the success path of a delivery does not
 * wait for Redis. a[] is in the order the attempts ended. Coalesced per
 * webhook: only each webhook's newest 100 entries of the call are written
 * (the log keeps no more), in one LPUSH per webhook, up to 256 entries per
 * EVALSHA. While the connection is down the entries are dropped, not
 * queued. Deleted webhooks' entries are skipped.
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
			      * retries: the claim token */
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
 * Removes retry_id (its job, its due time, its claim) if its claim under
 * token is still current: for a claimed job that cannot be decoded, which
 * would otherwise come back at the end of every lease (version 1 removed;
 * 0 when stale: another replica claimed it since and removes it).
 */
int store_retry_drop(struct store *st, const char *retry_id,
		     const char *token, store_write_cb *cb, void *arg);

/*
 * Puts a delivery off without an attempt: stores job (the retry job format,
 * with the attempt number it has not made yet) due at due_ms, to be claimed
 * like any retry. For deliveries whose target is already saturated, so a
 * slow target parks its backlog in Redis instead of in memory. name (not
 * empty) names the delivery: the retry id is "<webhook_id>:<due_ms>:<name>",
 * so the same deferral sent again after a lost answer (same name, same
 * due_ms) changes nothing. -1 without a name.
 */
int store_retry_defer(struct store *st, const char *webhook_id, const char *name,
		      const char *job, int64_t due_ms, store_write_cb *cb,
		      void *arg);

/* Sizes for /metrics: retries pending, notices pending. */
typedef void store_counts_cb(void *arg, enum store_status status,
			     int64_t retries, int64_t notices);
int store_counts(struct store *st, store_counts_cb *cb, void *arg);

#endif
