/*
 * pmetrics: the pipeline's counters, histogram and their Prometheus text.
 * See include/promo_webhooks/pmetrics.h.
 */
#include "promo_webhooks/pmetrics.h"
#include "promo_webhooks/prom.h"

#include <inttypes.h>

static const double duration_buckets[PMETRICS_BUCKETS] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
};

void pmetrics_observe(struct pmetrics *m, enum event_type type, int64_t ms)
{
	struct pmetrics_durations *h = &m->durations;
	double secs = (double)ms / 1000.0;
	size_t i;

	if ((unsigned)type >= EVENT_TYPE_COUNT)
		return;
	for (i = 0; i < PMETRICS_BUCKETS; i++) {
		if (secs <= duration_buckets[i]) {
			h->buckets[type][i]++;
			break;
		}
	}
	h->count[type]++;
	h->sum[type] += secs;
}

void pmetrics_write(const struct pmetrics *m, size_t deliveries_in_flight,
		    size_t events_in_flight, uint64_t extra_redis,
		    uint64_t extra_kafka, struct buf *out)
{
	static const char *const outcome_names[] = {
		"success", "http_status", "timeout", "connect", "tls",
		"refused", "cancelled", "other",
	};
	size_t i, t;

	prom_counter(out, "promo_webhooks_events_consumed_total",
		     "Kafka messages taken from the event topics.",
		     m->consumed);
	prom_counter(out, "promo_webhooks_events_unmatched_total",
		     "Valid events no enabled webhook subscribed to.",
		     m->unmatched);
	prom_family(out, "promo_webhooks_deliveries_total", "counter",
		    "Delivery attempts by event type and outcome.");
	for (t = 0; t < EVENT_TYPE_COUNT; t++)
		for (i = 0; i <= DELIVER_OTHER; i++)
			buf_addf(out, "promo_webhooks_deliveries_total{event=\"%s\",outcome=\"%s\"} %" PRIu64 "\n",
				 event_type_name((enum event_type)t), outcome_names[i],
				 m->deliveries[t][i]);
	prom_gauge(out, "promo_webhooks_deliveries_in_flight",
		   "Deliveries queued or running.",
		   (int64_t)deliveries_in_flight);
	prom_gauge(out, "promo_webhooks_events_in_flight",
		   "Consumed events whose offset is not yet stored.",
		   (int64_t)events_in_flight);
	prom_counter(out, "promo_webhooks_webhooks_disabled_total",
		     "Webhooks this replica disabled by the failure rule.",
		     m->disabled);
	prom_counter(out, "promo_webhooks_retries_scheduled_total",
		     "Retries scheduled after a failed attempt.",
		     m->retries_scheduled);
	prom_gauge(out, "promo_webhooks_retries_pending",
		   "Retries waiting in Redis (all replicas).",
		   (int64_t)m->retries_pending);
	prom_gauge(out, "promo_webhooks_notices_pending",
		   "Notices waiting in the outbox (all replicas).",
		   (int64_t)m->notices_pending);
	prom_counter(out, "promo_webhooks_deliveries_parked_total",
		     "First attempts parked in Redis because their target was saturated.",
		     m->parked);
	prom_counter(out, "promo_webhooks_redis_errors_total",
		     "Redis operations of the pipeline that failed.",
		     m->redis_errors + extra_redis);
	prom_counter(out, "promo_webhooks_kafka_errors_total",
		     "Kafka produces of the pipeline that failed.",
		     m->kafka_errors + extra_kafka);
	prom_family(out, "promo_webhooks_delivery_duration_seconds", "histogram",
		    "Duration of delivery attempts.");
	for (t = 0; t < EVENT_TYPE_COUNT; t++) {
		const char *name = event_type_name((enum event_type)t);
		uint64_t cum = 0;

		for (i = 0; i < PMETRICS_BUCKETS; i++) {
			cum += m->durations.buckets[t][i];
			buf_addf(out, "promo_webhooks_delivery_duration_seconds_bucket{event=\"%s\",le=\"%g\"} %" PRIu64 "\n",
				 name, duration_buckets[i], cum);
		}
		buf_addf(out, "promo_webhooks_delivery_duration_seconds_bucket{event=\"%s\",le=\"+Inf\"} %" PRIu64 "\n",
			 name, m->durations.count[t]);
		buf_addf(out, "promo_webhooks_delivery_duration_seconds_sum{event=\"%s\"} %.6f\n", name,
			 m->durations.sum[t]);
		buf_addf(out, "promo_webhooks_delivery_duration_seconds_count{event=\"%s\"} %" PRIu64 "\n",
			 name, m->durations.count[t]);
	}
}
