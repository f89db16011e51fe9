/*
 * deadletter: the dead-letter copier. An invalid message is copied, with
 * its key, value and headers and the four x- headers of contract section 3,
 * to PROMO_WEBHOOKS_DEAD_LETTER_TOPIC; a failed produce is retried with
 * backoff until the broker acknowledges the copy. Only then is the
 * message's ticket handed back as copied, so its offset advances past it
 * (the pipeline decides that; this module knows nothing of offsets).
 *
 * Permanent failures never hold a partition back. A copy too large for
 * the producer or the broker is sent again with its value cut to
 * DEADLETTER_TRUNCATED_MAX bytes, then empty: original key and headers,
 * x-dead-letter-reason saying so, x-original-size the original value's
 * size. A copy that cannot be made at all (still too large, or the topic
 * missing or refusing writes) is given up: one error line with the
 * message's coordinates (it stays in its topic until retention), counted,
 * and handed back as ended so the offset advances.
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

/* A truncated copy keeps at most this many bytes of the value. */
#define DEADLETTER_TRUNCATED_MAX 65536

/* How a copy ended. */
enum deadletter_end {
	DEADLETTER_GIVEN_UP = 0, /* at shutdown (deadletter_stop): the message
				  * is consumed again after the restart */
	DEADLETTER_COPIED,       /* the broker acknowledged the copy (whole or
				  * truncated) */
	DEADLETTER_NOT_COPIED,   /* permanent: no copy can be made; logged
				  * and counted, the offset may advance */
};

/* Permanent cases, counted for promo_webhooks_permanent_errors_total. */
struct deadletter_counts {
	uint64_t copied;     /* acknowledged copies */
	uint64_t truncated;  /* of which with the value cut */
	uint64_t not_copied; /* DEADLETTER_NOT_COPIED */
	uint64_t failed;     /* produces that failed (any kind) */
};

/* A copy ended. part is what deadletter_copy was given. Runs once per
 * deadletter_copy that returned 0, from the event loop. */
typedef void deadletter_done_fn(void *arg, struct offsets_ticket ticket,
				void *part, enum deadletter_end end);

/* kafka and cfg must outlive the copier. NULL when out of memory. */
struct deadletter *deadletter_new(struct event_base *base,
				  const struct config *cfg, struct kafka *kafka,
				  deadletter_done_fn *done, void *arg);
/* Drops pending copies without calling back. */
void deadletter_free(struct deadletter *d);

/* Starts copying m (copied at once: m may go away after the call); part
 * is handed back to done. Returns 0, or -1 when out of memory (done never
 * runs). */
int deadletter_copy(struct deadletter *d, const struct kafka_message *m,
		    const char *reason, struct offsets_ticket ticket,
		    void *part);
/* Shutdown: a copy that fails from now on is given up instead of retried
 * (its message is consumed again after the restart). */
void deadletter_stop(struct deadletter *d);
/* Copies not yet ended. */
size_t deadletter_pending(const struct deadletter *d);
/* What the copier counted so far. */
void deadletter_counts(const struct deadletter *d, struct deadletter_counts *out);
/* promo_webhooks_events_dead_lettered_total. */
void deadletter_metrics(const struct deadletter *d, struct buf *out);

#endif
