/*
 * retryrelay: due retries from Redis to the pipeline. See
 * include/promo_webhooks/retryrelay.h.
 */
#include "promo_webhooks/retryrelay.h"
#include "promo_webhooks/log.h"
#include "promo_webhooks/store_outcomes.h"

#include <stdlib.h>
#include <string.h>

struct retryrelay {
	struct store *store;
	struct registry *reg;
	retryrelay_submit_fn *submit;
	void *arg;
	int claiming;          /* a claim is in flight */
	uint64_t redis_errors; /* claims that failed */
};

void retry_claim_free(struct retry_claim *rc)
{
	if (!rc)
		return;
	retry_job_release(&rc->job);
	free(rc->retry_id);
	free(rc);
}

static void retries_claimed(void *arg, enum store_status status,
			    const struct store_claimed *items, size_t n)
{
	struct retryrelay *rr = arg;
	size_t i;

	rr->claiming = 0;
	if (status != STORE_OK) {
		rr->redis_errors++;
		return;
	}
	for (i = 0; i < n; i++) {
		struct retry_claim *rc = calloc(1, sizeof(*rc));
		const struct webhook *wh;
		char err[128];

		if (!rc)
			break;
		rc->retry_id = strdup(items[i].id);
		if (!rc->retry_id ||
		    retry_job_decode(&rc->job, items[i].payload, items[i].payload_len, err,
				     sizeof(err)) < 0) {
			log_error("unreadable retry job", "retry=%s", items[i].id);
			retry_claim_free(rc);
			continue;
		}
		/* The webhook as it is now: a retry for one disabled or
		 * deleted meanwhile is dropped (Redis drops it at the next
		 * claim, when the cache may have lagged). */
		wh = registry_webhook(rr->reg, rc->job.webhook_id);
		if (!wh || !wh->enabled || strcmp(wh->company_id, rc->job.company_id) != 0) {
			retry_claim_free(rc);
			continue;
		}
		if (rr->submit(rr->arg, rc, wh) < 0)
			retry_claim_free(rc);
	}
}

struct retryrelay *retryrelay_new(struct store *store, struct registry *reg,
				  retryrelay_submit_fn *submit, void *arg)
{
	struct retryrelay *rr = calloc(1, sizeof(*rr));

	if (!rr)
		return NULL;
	rr->store = store;
	rr->reg = reg;
	rr->submit = submit;
	rr->arg = arg;
	return rr;
}

void retryrelay_free(struct retryrelay *rr)
{
	if (!rr)
		return;
	store_cancel(rr->store, rr);
	free(rr);
}

void retryrelay_claim(struct retryrelay *rr, int64_t now_ms, int64_t lease_ms,
		      size_t want)
{
	if (rr->claiming || want == 0)
		return;
	if (store_retry_claim(rr->store, now_ms, lease_ms, want, retries_claimed, rr) == 0)
		rr->claiming = 1;
}

uint64_t retryrelay_errors(const struct retryrelay *rr)
{
	return rr->redis_errors;
}
