/*
 * scheduler: the source of the two derived events, Promotion.StartingInPeriod
 * and Promotion.EndingInPeriod (contract section 6). Every tick
 * (PROMO_WEBHOOKS_SCHEDULER_TICK_MS) it writes the enabled period webhooks
 * of companies whose set changed in the registry's cache
 * (store_period_hooks_sync) and runs a pass (store_period_tick), which
 * claims each due occurrence exactly once from the due queue and queues it
 * as a retry job due now (the pipeline's retry path then delivers it like
 * any other attempt) and prunes expired promotion states.
 */
#ifndef PROMO_WEBHOOKS_SCHEDULER_H
#define PROMO_WEBHOOKS_SCHEDULER_H

#include <stdint.h>

#include "promo_webhooks/buf.h"
#include "promo_webhooks/config.h"

struct event_base;
struct registry;
struct store;
struct scheduler;

struct scheduler *scheduler_new(struct event_base *base,
				const struct config *cfg, struct store *store,
				struct registry *reg, char *err, size_t errlen);
void scheduler_free(struct scheduler *s);
/* Appends the scheduler's Prometheus lines (occurrences claimed, states
 * pruned, passes, last pass duration). */
void scheduler_metrics(const struct scheduler *s, struct buf *out);

#endif
