/*
 * pmetrics: the pipeline's counters and its delivery-duration histogram,
 * and their Prometheus text (prom.h). A value type: the pipeline owns one
 * and counts into its fields; the gauges only the pipeline knows are
 * passed in when the text is written.
 */
#ifndef PROMO_WEBHOOKS_PMETRICS_H
#define PROMO_WEBHOOKS_PMETRICS_H

#include <stddef.h>
#include <stdint.h>

#include "promo_webhooks/buf.h"
#include "promo_webhooks/deliver.h"
#include "promo_webhooks/event.h"

/* Upper bounds (seconds) of the histogram's buckets: PMETRICS_BUCKETS of
 * 0.005 .. 30. */
#define PMETRICS_BUCKETS 12

/* Attempts by event type: a Prometheus histogram of their durations. */
struct pmetrics_durations {
	uint64_t buckets[EVENT_TYPE_COUNT][PMETRICS_BUCKETS]; /* cumulative at export */
	uint64_t count[EVENT_TYPE_COUNT];
	double sum[EVENT_TYPE_COUNT];
};

/* Errors that never go away by trying again, by kind: each is logged once
 * at error level where it is decided, and never holds a partition back
 * (promo_webhooks_permanent_errors_total{kind}). */
enum pmetrics_permanent {
	PMETRICS_PERM_DEAD_LETTER_TRUNCATED = 0, /* invalid message too large:
						  * copied with its value cut */
	PMETRICS_PERM_DEAD_LETTER_NOT_COPIED,    /* no copy possible (topic
						  * missing or refusing, or too
						  * large even empty): skipped */
	PMETRICS_PERM_STATE_NOT_STORED,          /* promotion state too large to
						  * store: event dead-lettered */
	PMETRICS_PERM_NOTICE_REFUSED,            /* the email topic refused a
						  * notice (kept in the outbox) */
	PMETRICS_PERM_PAYLOAD_UNRENDERABLE,      /* a body over the render cap:
						  * a failed attempt */
	PMETRICS_PERM_OUTCOME_NOT_RECORDED,      /* Redis refused an outcome
						  * (or a parked attempt) for
						  * good: given up */
	PMETRICS_PERM_COUNT
};

struct pmetrics {
	uint64_t consumed;
	uint64_t deliveries[EVENT_TYPE_COUNT][DELIVER_OTHER + 1]; /* by type, outcome */
	uint64_t unmatched;
	uint64_t disabled;          /* webhooks this replica disabled */
	uint64_t retries_scheduled;
	uint64_t redis_errors;
	uint64_t kafka_errors;
	uint64_t parked;            /* first attempts parked for a saturated target */
	uint64_t stale_outcomes;    /* retry outcomes dropped: stale claim */
	int64_t retries_pending;    /* from Redis, refreshed by the claim timer */
	int64_t notices_pending;
	uint64_t permanent[PMETRICS_PERM_COUNT]; /* enum pmetrics_permanent */
	struct pmetrics_durations durations;
};

/* One attempt of event type type took ms milliseconds. */
void pmetrics_observe(struct pmetrics *m, enum event_type type, int64_t ms);

/* Appends the counters, the histogram and the gauges given: deliveries
 * and events in flight; extra_redis and extra_kafka are other modules'
 * failed steps, added to the error totals. */
void pmetrics_write(const struct pmetrics *m, size_t deliveries_in_flight,
		    size_t events_in_flight, uint64_t extra_redis,
		    uint64_t extra_kafka, struct buf *out);

#endif
