/*
 * deadletter: the dead-letter copier. An invalid message is copied, with
 * its key, value and headers and the four x- headers of contract section 3,
 * to PROMO_WEBHOOKS_DEAD_LETTER_TOPIC; a failed produce is retried with
 * backoff until the broker acknowledges the copy. Only then is the
 * message's ticket handed back as copied, so its offset advances past it
 * (the pipeline decides that; this module knows nothing of offsets).
 */
#ifndef PROMO_WEBHOOKS_DEADLETTER_H
#define PROMO_WEBHOOKS_DEADLETTER_H

#include <stddef.h>
#include <stdint.h>

#include "promo_webhooks/buf.h"
#include "promo_webhooks/config.h"
#include "promo_webhooks/kafka.h"
#include "promo_webhooks/offsets.h"

struct event_base;
struct deadletter;

/* A copy ended: copied=1 when the broker acknowledged it, 0 when it was
 * given up (deadletter_stop). Runs once per deadletter_copy that returned
 * 0, from the event loop. */
typedef void deadletter_done_fn(void *arg, struct offsets_ticket ticket,
				int copied);

/* kafka and cfg must outlive the copier. NULL when out of memory. */
struct deadletter *deadletter_new(struct event_base *base,
				  const struct config *cfg, struct kafka *kafka,
				  deadletter_done_fn *done, void *arg);
/* Drops pending copies without calling back. */
void deadletter_free(struct deadletter *d);

/* Starts copying m (copied at once: m may go away after the call). Returns
 * 0, or -1 when out of memory (done never runs). */
int deadletter_copy(struct deadletter *d, const struct kafka_message *m,
		    const char *reason, struct offsets_ticket ticket);
/* Shutdown: a copy that fails from now on is given up instead of retried
 * (its message is consumed again after the restart). */
void deadletter_stop(struct deadletter *d);
/* Copies not yet ended. */
size_t deadletter_pending(const struct deadletter *d);
/* promo_webhooks_events_dead_lettered_total. */
void deadletter_metrics(const struct deadletter *d, struct buf *out);

#endif
