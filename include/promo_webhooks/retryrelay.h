/*
 * retryrelay: brings due retries back from Redis (store_outcomes.h) to the
 * pipeline. It claims them with a lease (a replica that dies holding one
 * lets another take it when the lease ends), decodes each job (retryjob.c:
 * a retry job, or a period occurrence's plain fields; one that cannot be
 * decoded is removed from Redis under its claim, logged and counted),
 * drops those whose
 * webhook is disabled, deleted or moved to another company in this
 * replica's cache, and hands the rest, with their webhook, to the pipeline,
 * which delivers and records them like any attempt. A period occurrence
 * (Promotion.StartingInPeriod/EndingInPeriod) is first re-checked against
 * its promotion in Redis (store_occurrence_check): one whose promotion was
 * deleted or whose date moved from S is dropped there, and counted.
 */
#ifndef PROMO_WEBHOOKS_RETRYRELAY_H
#define PROMO_WEBHOOKS_RETRYRELAY_H

#include <stddef.h>
#include <stdint.h>

#include "promo_webhooks/registry.h"
#include "promo_webhooks/retryjob.h"
#include "promo_webhooks/store.h"
#include "promo_webhooks/webhook.h"

struct retryrelay;

/* A claimed retry. */
struct retry_claim {
	char *retry_id;       /* removed from Redis with the attempt's outcome */
	char *token;          /* the claim's token: the outcome and a lease
			       * renewal need it to be current */
	struct retry_job job;
};

void retry_claim_free(struct retry_claim *rc);

/* A claimed retry for webhook wh (valid during the call). Returns 0 when
 * the pipeline took rc (and owns it from then on), -1 when it did not (the
 * relay frees it; its lease runs out and it comes back). */
typedef int retryrelay_submit_fn(void *arg, struct retry_claim *rc,
				 const struct webhook *wh);

/* store and reg must outlive the relay. NULL when out of memory. */
struct retryrelay *retryrelay_new(struct store *store, struct registry *reg,
				  retryrelay_submit_fn *submit, void *arg);
void retryrelay_free(struct retryrelay *rr);

/* Claims up to want retries due at now_ms, leased for lease_ms (one claim
 * in flight at most). */
void retryrelay_claim(struct retryrelay *rr, int64_t now_ms, int64_t lease_ms,
		      size_t want);
/* Retries claimed or being claimed but not yet handed over: the claim in
 * flight counts what it asked for, and each period occurrence waiting for
 * its re-check counts one. The pipeline counts them toward its in-flight
 * bound before they arrive. */
size_t retryrelay_pending(const struct retryrelay *rr);
/* Period occurrences dropped by the re-check, for
 * promo_webhooks_period_occurrences_dropped_total. */
uint64_t retryrelay_dropped(const struct retryrelay *rr);
/* Retry jobs that could not be decoded, removed from Redis (each once, by
 * the replica whose claim removed it), for
 * promo_webhooks_retry_jobs_unreadable_total. */
uint64_t retryrelay_unreadable(const struct retryrelay *rr);
/* Claims that failed (Redis), for the pipeline's error total. */
uint64_t retryrelay_errors(const struct retryrelay *rr);

#endif
