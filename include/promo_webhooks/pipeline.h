/*
 * pipeline: the one module that knows the order of the stages.
 *
 *   kafka consumer -> event decode -> webhook match -> payload render
 *     -> HTTP delivery -> outcome -> offset store/commit
 *
 * It owns the Kafka clients and the deliverer, takes the store and the
 * registry from main (the admin API shares them), tracks every message in
 * flight per partition and stores a partition's offset only when every
 * message before it has a recorded outcome. Invalid messages go to the
 * dead-letter topic; their offset advances once the broker has them.
 */
#ifndef PROMO_WEBHOOKS_PIPELINE_H
#define PROMO_WEBHOOKS_PIPELINE_H

#include "promo_webhooks/buf.h"
#include "promo_webhooks/kafka.h"
#include "promo_webhooks/config.h"

struct event_base;
struct registry;
struct store;
struct pipeline;

/* Called once when a shutdown has completed (the consumer left its group
 * and the producer is flushed). */
typedef void pipeline_stopped_fn(void *arg);

struct pipeline *pipeline_new(struct event_base *base, const struct config *cfg,
			      struct store *store, struct registry *reg,
			      char *err, size_t errlen);
void pipeline_free(struct pipeline *p);

/* Starts consuming once the registry has its first snapshot. */
void pipeline_start(struct pipeline *p);

/* Orderly shutdown: stop fetching, let in-flight deliveries finish within
 * the grace period (what is given up is not committed, so it is delivered
 * again later), commit, leave the group; then stopped(arg). */
void pipeline_stop(struct pipeline *p, pipeline_stopped_fn *stopped, void *arg);

/* For /readyz: the output topics that cannot take messages, as
 * kafka_topic_problems says. */
size_t pipeline_unwritable(const struct pipeline *p, struct kafka_topic_problem *out,
			   size_t max);
/* For /readyz: the consumer is in its group. */
int pipeline_ready(const struct pipeline *p);
/* For /metrics: appends the pipeline's Prometheus lines. */
void pipeline_metrics(const struct pipeline *p, struct buf *out);

#endif
