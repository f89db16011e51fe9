/*
 * backoff: a doubling delay before a step is tried again (a Redis or Kafka
 * step that failed), and its timer on the event loop.
 */
#ifndef PROMO_WEBHOOKS_BACKOFF_H
#define PROMO_WEBHOOKS_BACKOFF_H

#include <event2/event.h>

struct backoff {
	struct event *timer; /* created on the first arm */
	int ms;              /* the last delay, 0 before the first */
};

/* Arms b to call cb(arg) after the next delay (first_ms, doubling up to
 * max_ms). Returns the delay, or -1 when the timer cannot be armed. */
int backoff_arm(struct backoff *b, struct event_base *base, int first_ms,
		int max_ms, event_callback_fn cb, void *arg);
/* Frees the timer (a pending call is dropped). */
void backoff_release(struct backoff *b);

#endif
