/*
 * noticerelay: publishes "webhook disabled" notices from the Redis outbox
 * (store_outcomes.h) to PROMO_WEBHOOKS_EMAIL_TOPIC, on every replica. A
 * notice is claimed with a lease longer than librdkafka's message timeout,
 * rendered (notice.c), produced with the idempotent producer (key: the
 * webhook id) and removed from the outbox only after the broker
 * acknowledged it: a replica that dies, or a Kafka that is away, delays a
 * notice; nothing loses it.
 */
#ifndef PROMO_WEBHOOKS_NOTICERELAY_H
#define PROMO_WEBHOOKS_NOTICERELAY_H

#include <stdint.h>

#include "promo_webhooks/buf.h"
#include "promo_webhooks/config.h"
#include "promo_webhooks/kafka.h"
#include "promo_webhooks/store.h"

struct noticerelay;

/* cfg, store and kafka must outlive the relay. NULL when out of memory. */
struct noticerelay *noticerelay_new(const struct config *cfg,
				    struct store *store, struct kafka *kafka);
/* Forgets notices in flight (their leases run out; another claim takes
 * them). Call after kafka_free, so that no produce completes later. */
void noticerelay_free(struct noticerelay *nr);

/* Claims due notices (one claim in flight at most) and publishes them. */
void noticerelay_claim(struct noticerelay *nr, int64_t now_ms);

/* Failed Redis and Kafka steps so far, for the pipeline's error totals. */
void noticerelay_errors(const struct noticerelay *nr, uint64_t *redis,
			uint64_t *kafka);
/* promo_webhooks_notices_published_total. */
void noticerelay_metrics(const struct noticerelay *nr, struct buf *out);

#endif
