/*
 * retryrelay: brings due retries back from Redis (store_outcomes.h) to the
 * pipeline. It claims them with a lease (a replica that dies holding one
 * lets another take it when the lease ends), decodes each job (retryjob.c:
 * a retry job, or a period occurrence's plain fields), drops those whose
 * webhook is disabled, deleted or moved to another company in this
 * replica's cache, and hands the rest, with their webhook, to the pipeline,
 * which delivers and records them like any attempt.
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
/* Claims that failed (Redis), for the pipeline's error total. */
uint64_t retryrelay_errors(const struct retryrelay *rr);

#endif
