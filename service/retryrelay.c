/*
 * retryrelay: due retries from Redis to the pipeline. See
 * include/promo_webhooks/retryrelay.h.
 */
#include "promo_webhooks/retryrelay.h"
#include "promo_webhooks/log.h"
#include "promo_webhooks/store_outcomes.h"
#include "promo_webhooks/store_promos.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct retryrelay {
	struct store *store;
	struct registry *reg;
	retryrelay_submit_fn *submit;
	void *arg;
	int claiming;          /* a claim is in flight */
	size_t claim_want;     /* what it asked for */
	size_t n_checks;       /* in rr->checks */
	uint64_t redis_errors; /* claims and checks that failed */
	uint64_t dropped;      /* period occurrences whose promotion is gone
				* or whose date moved */
	uint64_t unreadable;   /* undecodable retry jobs removed */
	struct occurrence_check *checks; /* in flight */
	struct job_drop *drops;          /* in flight */
};

/* An undecodable retry job being removed from Redis. */
struct job_drop {
	struct retryrelay *rr;
	struct job_drop *prev, *next; /* in rr->drops */
	char *retry_id;
	char reason[128];             /* why retryjob.c refused it */
};

/* A period occurrence's attempt waiting for its promotion's re-check. */
struct occurrence_check {
	struct retryrelay *rr;
	struct occurrence_check *prev, *next; /* in rr->checks */
	struct retry_claim *rc;
};

void retry_claim_free(struct retry_claim *rc)
{
	if (!rc)
		return;
	retry_job_release(&rc->job);
	free(rc->retry_id);
	free(rc->token);
	free(rc);
}

static void check_free(struct occurrence_check *oc)
{
	struct retryrelay *rr = oc->rr;

	if (oc->prev)
		oc->prev->next = oc->next;
	else
		rr->checks = oc->next;
	if (oc->next)
		oc->next->prev = oc->prev;
	rr->n_checks--;
	retry_claim_free(oc->rc);
	free(oc);
}

static void checked(void *arg, enum store_status status, int64_t live)
{
	struct occurrence_check *oc = arg;
	struct retryrelay *rr = oc->rr;
	const struct webhook *wh;

	if (status != STORE_OK) {
		/* Leased still: claimed and checked again when it ends. */
		rr->redis_errors++;
		check_free(oc);
		return;
	}
	if (!live) {
		rr->dropped++;
		log_info("period occurrence dropped: its promotion was deleted or its date moved",
			 "webhook=%s event_id=%s", oc->rc->job.webhook_id, oc->rc->job.event_id);
		check_free(oc);
		return;
	}
	wh = registry_webhook(rr->reg, oc->rc->job.webhook_id);
	if (wh && wh->enabled && strcmp(wh->company_id, oc->rc->job.company_id) == 0 &&
	    rr->submit(rr->arg, oc->rc, wh) == 0)
		oc->rc = NULL; /* the pipeline's now */
	check_free(oc);
}

/* A period occurrence (Promotion.StartingInPeriod/EndingInPeriod) is
 * re-checked against its promotion before each attempt: the event id is
 * "<promotionId>:<start|end>:<S ms>" (retryjob.h). Returns 0 when the
 * check was started (it owns rc then), -1 when rc is not a period
 * occurrence or the check could not start. */
static int check_occurrence(struct retryrelay *rr, struct retry_claim *rc)
{
	const char *id = rc->job.event_id;
	const char *last, *mid;
	char promo[256], date[8];
	struct occurrence_check *oc;
	char *end;
	long long at;
	size_t n;

	last = id ? strrchr(id, ':') : NULL;
	if (!last || last == id)
		return -1;
	for (mid = last - 1; mid > id && *mid != ':'; mid--)
		;
	if (mid == id || (size_t)(last - mid - 1) >= sizeof(date) ||
	    (size_t)(mid - id) >= sizeof(promo))
		return -1;
	n = (size_t)(mid - id);
	memcpy(promo, id, n);
	promo[n] = '\0';
	memcpy(date, mid + 1, (size_t)(last - mid - 1));
	date[last - mid - 1] = '\0';
	at = strtoll(last + 1, &end, 10);
	if (*end || end == last + 1 || (strcmp(date, "start") != 0 && strcmp(date, "end") != 0))
		return -1;
	oc = calloc(1, sizeof(*oc));
	if (!oc)
		return -1;
	oc->rr = rr;
	oc->rc = rc;
	if (store_occurrence_check(rr->store, rc->job.company_id, promo, date, (int64_t)at,
				   rc->retry_id, checked, oc) < 0) {
		free(oc);
		return -1;
	}
	oc->next = rr->checks;
	if (rr->checks)
		rr->checks->prev = oc;
	rr->checks = oc;
	rr->n_checks++;
	return 0;
}

static void drop_free(struct job_drop *jd)
{
	struct retryrelay *rr = jd->rr;

	if (jd->prev)
		jd->prev->next = jd->next;
	else
		rr->drops = jd->next;
	if (jd->next)
		jd->next->prev = jd->prev;
	free(jd->retry_id);
	free(jd);
}

/* Logged and counted once, by the replica whose claim removed it. */
static void dropped_job(void *arg, enum store_status status, int64_t removed)
{
	struct job_drop *jd = arg;
	struct retryrelay *rr = jd->rr;

	if (status != STORE_OK) {
		rr->redis_errors++;
		log_warn("unreadable retry job not removed; it comes back when its lease ends",
			 "retry=%s status=%s", jd->retry_id, store_status_name(status));
	} else if (removed) {
		rr->unreadable++;
		log_error("unreadable retry job removed", "retry=%s reason=%s",
			  jd->retry_id, jd->reason);
	}
	drop_free(jd);
}

/* A claimed job retryjob.c cannot decode would be leased again at the end
 * of every lease, forever: it is removed under its claim instead. */
static void drop_job(struct retryrelay *rr, const char *retry_id,
		     const char *token, const char *reason)
{
	struct job_drop *jd = calloc(1, sizeof(*jd));

	if (!jd || !(jd->retry_id = strdup(retry_id))) {
		free(jd);
		return;
	}
	jd->rr = rr;
	snprintf(jd->reason, sizeof(jd->reason), "%s", reason);
	if (store_retry_drop(rr->store, retry_id, token, dropped_job, jd) < 0) {
		free(jd->retry_id);
		free(jd);
		return;
	}
	jd->next = rr->drops;
	if (rr->drops)
		rr->drops->prev = jd;
	rr->drops = jd;
}

static int is_period(enum event_type t)
{
	return t == EVENT_PROMOTION_STARTING_IN_PERIOD || t == EVENT_PROMOTION_ENDING_IN_PERIOD;
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
		rc->token = strdup(items[i].key ? items[i].key : "");
		if (!rc->retry_id || !rc->token) {
			/* Out of memory: its lease runs out and it comes back. */
			retry_claim_free(rc);
			continue;
		}
		if (retry_job_decode(&rc->job, items[i].payload, items[i].payload_len, err,
				     sizeof(err)) < 0) {
			drop_job(rr, rc->retry_id, rc->token, err);
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
		if (is_period(rc->job.type)) {
			if (check_occurrence(rr, rc) < 0) {
				log_warn("period occurrence not checked; it comes back when its lease ends",
					 "retry=%s", rc->retry_id);
				retry_claim_free(rc);
			}
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
	while (rr->checks) {
		store_cancel(rr->store, rr->checks);
		check_free(rr->checks);
	}
	while (rr->drops) {
		store_cancel(rr->store, rr->drops);
		drop_free(rr->drops);
	}
	free(rr);
}

void retryrelay_claim(struct retryrelay *rr, int64_t now_ms, int64_t lease_ms,
		      size_t want)
{
	if (rr->claiming || want == 0)
		return;
	if (store_retry_claim(rr->store, now_ms, lease_ms, want, retries_claimed, rr) == 0) {
		rr->claiming = 1;
		rr->claim_want = want;
	}
}

size_t retryrelay_pending(const struct retryrelay *rr)
{
	return (rr->claiming ? rr->claim_want : 0) + rr->n_checks;
}


uint64_t retryrelay_dropped(const struct retryrelay *rr)
{
	return rr->dropped;
}

uint64_t retryrelay_unreadable(const struct retryrelay *rr)
{
	return rr->unreadable;
}

uint64_t retryrelay_errors(const struct retryrelay *rr)
{
	return rr->redis_errors;
}
