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

struct pmetrics {
	uint64_t consumed;
	uint64_t deliveries[EVENT_TYPE_COUNT][DELIVER_OTHER + 1]; /* by type, outcome */
	uint64_t unmatched;
	uint64_t disabled;          /* webhooks this replica disabled */
	uint64_t retries_scheduled;
	uint64_t redis_errors;
	uint64_t kafka_errors;
	uint64_t parked;            /* first attempts parked for a saturated target */
	int64_t retries_pending;    /* from Redis, refreshed by the claim timer */
	int64_t notices_pending;
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
